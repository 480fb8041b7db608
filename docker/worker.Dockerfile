# The geo-recon worker of the compose labs (one service per region, profile "workers").
# Build context: the repository root (the rendered compose files say so); only what
# worker.Dockerfile.dockerignore lets through is sent.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY geo_recon ./geo_recon
RUN pip install --no-cache-dir -c constraints.txt . && rm -rf /src
WORKDIR /
CMD ["geo-recon", "--help"]
