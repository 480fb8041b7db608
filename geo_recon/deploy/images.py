"""The compose labs' images, built from inputs already on this machine; no network inside a build container.

Four images, each tagged by a hash of its inputs and rebuilt only when one changes:

* ``geo-recon-base``: a Debian root filesystem made by ``debootstrap`` on the host
  (Java 17, Python 3, curl, netcat, bash), adjusted before ``docker import``:
  ``/pulsar/{lib,data,logs}``, and Java's DNS cache TTL of 1 s as the official
  Pulsar image sets it (a restarted container may come back with another address).
* ``geo-recon-pulsar``: the base plus the pinned Pulsar server jars from the same
  cache and lock as the local lab, in ``/pulsar/lib``.
* ``geo-recon-toxiproxy``: the Toxiproxy server and ``toxiproxy-cli`` from the Go
  build, at ``/toxiproxy`` and ``/toxiproxy-cli`` as in the official image.
* ``geo-recon-worker``: the base plus a venv installed with ``pip --no-index``
  from wheels downloaded on the host.

Each is also tagged with the stable name the rendered compose files use
(``compose.PULSAR_IMAGE`` ...), so a render never changes with the images.
``official`` images instead pulls the upstream Pulsar and Toxiproxy images and
builds the worker from docker/worker.Dockerfile (both need a reachable registry).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from geo_recon import __version__
from geo_recon.deploy import compose, engine, pulsar_dist
from geo_recon.errors import EnvironmentProblem

Progress = Callable[[str], None]

SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What the compose files need inside a Pulsar container: java (Pulsar), curl and bash (health checks, rack
# labelling), nc (ZooKeeper's health check), python3 (the labeller reads the racks back; the worker).
BASE_PACKAGES = ("openjdk-17-jre-headless", "python3", "python3-venv", "curl", "netcat-openbsd", "bash",
                 "ca-certificates", "procps")
# As the official apachepulsar/pulsar image: resolve names again after a second (containers move).
JAVA_SECURITY_LINES = ("networkaddress.cache.ttl=1", "networkaddress.cache.negative.ttl=1")
BASE_RECIPE = 2  # bump when the rootfs adjustments below change
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PULSAR_DOCKERFILE = """\
FROM {base}
COPY lib/ /pulsar/lib/
WORKDIR /pulsar
"""
TOXIPROXY_DOCKERFILE = """\
FROM scratch
COPY toxiproxy /toxiproxy
COPY toxiproxy-cli /toxiproxy-cli
ENTRYPOINT ["/toxiproxy"]
CMD ["-host=0.0.0.0"]
"""
# Two stages, so the wheels are not a layer of the image.
WORKER_DOCKERFILE = """\
FROM {base} AS install
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/geo-recon \\
 && /opt/geo-recon/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \\
      --find-links /tmp/wheels geo-recon
FROM {base}
COPY --from=install /opt/geo-recon /opt/geo-recon
ENV PATH=/opt/geo-recon/bin:{path}
WORKDIR /
CMD ["geo-recon", "--help"]
"""
# What the worker image is built from: the package, its metadata and its pins.
WORKER_SOURCES = ("pyproject.toml", "constraints.txt", "README.md", "geo_recon")


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Image:
    role: str  # base | pulsar | toxiproxy | worker
    tag: str  # content tag (hash of the inputs)
    alias: str  # the name the compose files use ("" for the base)
    built: bool  # built now (False: it was already there)
    seconds: float
    size_bytes: int


# ---------------------------------------------------------------- docker plumbing


def _docker(args: Sequence[str], *, timeout: float = 1800.0, stdin: bytes | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["docker", *args], input=stdin, capture_output=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except FileNotFoundError:
        raise EnvironmentProblem("no docker client here: run scripts/setup-compose") from None


def _check(proc: subprocess.CompletedProcess[bytes], what: str) -> str:
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-4:])
        raise EnvironmentProblem(f"{what} failed: {tail or f'exit code {proc.returncode}'}")
    return proc.stdout.decode(errors="replace")


def image_size(tag: str) -> int | None:
    """The image's size in bytes, or None when there is no such image."""
    proc = _docker(["image", "inspect", "--format", "{{.Size}}", tag], timeout=60)
    return int(proc.stdout.strip()) if proc.returncode == 0 else None


def _tag(source: str, alias: str) -> None:
    if alias:
        _check(_docker(["tag", source, alias], timeout=60), f"docker tag {source} {alias}")


def _build(context: Path, tag: str, *, dockerfile: Path | None = None) -> None:
    """The classic builder (BuildKit's RUN steps need a bridge network the safe engine has not), and no
    network in the build container: everything it needs is in the context."""
    argv = ["build", "--network", "none", "--tag", tag]
    if dockerfile is not None:
        argv += ["--file", str(dockerfile)]
    _check(_docker([*argv, str(context)], env={"DOCKER_BUILDKIT": "0"}), f"building {tag}")


def _drop_older(tag: str) -> None:
    """Remove the image's earlier builds (same name and version, other inputs): one worker image per source."""
    repository = tag.split(":", 1)[0]
    family = tag.rsplit("-", 1)[0] + "-"  # the same version (geo-recon-pulsar:4.2.4-), another input hash
    proc = _docker(["images", "--format", "{{.Repository}}:{{.Tag}}", repository], timeout=60)
    older = [t for t in proc.stdout.decode().split() if t != tag and t.startswith(family)]
    if older:
        _docker(["rmi", *older], timeout=300)


def _digest(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part if isinstance(part, bytes) else part.encode())
        sha.update(b"\0")
    return sha.hexdigest()[:12]


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _ensure(role: str, tag: str, alias: str, build: Callable[[], None], progress: Progress) -> Image:
    size = image_size(tag)
    started = time.monotonic()
    if size is None:
        progress(f"{role}: building {tag}")
        build()
        size = image_size(tag)
        if size is None:
            raise EnvironmentProblem(f"building {tag} left no image")
        built = True
    else:
        built = False
    _tag(tag, alias)
    if built:
        _drop_older(tag)
    seconds = time.monotonic() - started
    progress(f"{role}: {tag} ({size / 2**20:.0f} MiB){f', built in {seconds:.0f}s' if built else ', up to date'}"
             + (f" = {alias}" if alias else ""))
    return Image(role, tag, alias, built, seconds, size)


# ---------------------------------------------------------------- base


def base_tag() -> str:
    return f"geo-recon-base:{SUITE}-{_digest(SUITE, DEBIAN_MIRROR, ','.join(BASE_PACKAGES), str(BASE_RECIPE))}"


def rootfs_tarball(progress: Progress = _quiet) -> Path:
    """The adjusted debootstrap root filesystem as a tarball in the cache (made once; needs root)."""
    tag = base_tag().split(":", 1)[1]
    tarball = pulsar_dist.cache_root() / "images" / f"rootfs-{tag}.tar"
    if tarball.exists():
        return tarball
    if not shutil.which("debootstrap"):
        raise EnvironmentProblem("debootstrap is needed once to make the base image: run scripts/setup-compose")
    if os.geteuid() != 0:
        raise EnvironmentProblem("making the base image with debootstrap needs root")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geo-recon-rootfs-", dir=tarball.parent) as tmp:
        root = Path(tmp) / "rootfs"
        progress(f"base: debootstrap {SUITE} with {', '.join(BASE_PACKAGES)} (a few minutes)")
        proc = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                               SUITE, str(root), DEBIAN_MIRROR], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-4:])
            raise EnvironmentProblem(f"debootstrap {SUITE} failed: {tail}")
        _adjust_rootfs(root)
        part = tarball.with_suffix(".part")
        proc = subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(part), "."],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise EnvironmentProblem(f"packing the root filesystem failed: {proc.stderr.strip()[-300:]}")
        os.replace(part, tarball)
    return tarball


def _adjust_rootfs(root: Path) -> None:
    """What the compose files expect of the official Pulsar image, done in the tree before it becomes an image."""
    securities = sorted(root.glob("etc/java-*-openjdk/security/java.security"))
    if not securities:
        raise EnvironmentProblem(f"no java.security under {root}/etc: did openjdk install?")
    for security in securities:
        with open(security, "a") as fh:
            fh.write("\n# geo-recon: as the official Pulsar image\n" + "\n".join(JAVA_SECURITY_LINES) + "\n")
    for sub in ("lib", "data", "logs"):
        (root / "pulsar" / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("data", "logs"):
        (root / "pulsar" / sub).chmod(0o777)
    # Smaller image: the package cache and lists are of no use without a network.
    for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (root / leftovers).glob("*"):
            if path.is_file():
                path.unlink()


def ensure_base(progress: Progress = _quiet) -> Image:
    tag = base_tag()

    def build() -> None:
        tarball = rootfs_tarball(progress)
        with open(tarball, "rb") as fh:
            proc = subprocess.run(["docker", "import", "--change", f"ENV PATH={PATH_ENV}",
                                   "--change", "ENV LANG=C.UTF-8", "--change", "WORKDIR /pulsar",
                                   "--change", 'CMD ["bash"]', "-", tag], stdin=fh, capture_output=True,
                                  timeout=1800)
        _check(proc, f"docker import {tarball}")

    return _ensure("base", tag, "", build, progress)


# ---------------------------------------------------------------- Pulsar, Toxiproxy, worker


def _pulsar_lib(version: str, progress: Progress) -> Path:
    """The server jars of Pulsar ``version`` from the local lab's cache and lock (fetched if missing)."""
    if version != pulsar_dist.PULSAR_VERSION:
        raise EnvironmentProblem(f"no locked jars for Pulsar {version}: this geo-recon pins {pulsar_dist.PULSAR_VERSION}")
    return pulsar_dist.fetch_jars("server", progress=progress)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def ensure_pulsar(base: Image, version: str = pulsar_dist.PULSAR_VERSION, progress: Progress = _quiet) -> Image:
    lib = _pulsar_lib(version, progress)
    marker = (lib / ".complete").read_text().strip()  # the lock's digest: every jar's coordinates and sha256
    dockerfile = PULSAR_DOCKERFILE.format(base=base.tag)
    tag = f"geo-recon-pulsar:{version}-{_digest(base.tag, marker, dockerfile)}"

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="geo-recon-image-", dir=pulsar_dist.cache_root()) as tmp:
            (Path(tmp) / "lib").mkdir()
            for jar in sorted(lib.glob("*.jar")):
                _link_or_copy(jar, Path(tmp) / "lib" / jar.name)
            (Path(tmp) / "Dockerfile").write_text(dockerfile)
            _build(Path(tmp), tag)

    return _ensure("pulsar", tag, compose.pulsar_image(version), build, progress)


def ensure_toxiproxy(progress: Progress = _quiet) -> Image:
    from geo_recon.deploy import toxiproxy

    server, cli = toxiproxy.binary(), engine.toxiproxy_cli(progress)
    tag = (f"geo-recon-toxiproxy:{compose.TOXIPROXY_VERSION}-"
           f"{_digest(_file_digest(server), _file_digest(cli), TOXIPROXY_DOCKERFILE)}")

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="geo-recon-image-", dir=pulsar_dist.cache_root()) as tmp:
            _link_or_copy(server, Path(tmp) / "toxiproxy")
            _link_or_copy(cli, Path(tmp) / "toxiproxy-cli")
            (Path(tmp) / "Dockerfile").write_text(TOXIPROXY_DOCKERFILE)
            _build(Path(tmp), tag)

    return _ensure("toxiproxy", tag, compose.TOXIPROXY_IMAGE, build, progress)


def source_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise EnvironmentProblem(f"the worker image is built from a source checkout, and {root} is not one")
    return root


def _source_digest(root: Path) -> str:
    sha = hashlib.sha256()
    for name in WORKER_SOURCES:
        path = root / name
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
        for file in files:
            sha.update(file.relative_to(root).as_posix().encode() + b"\0" + _file_digest(file).encode() + b"\0")
    return sha.hexdigest()


def _host_wheels(root: Path, out: Path, progress: Progress) -> None:
    """geo-recon and every pinned dependency as wheels, made on the host (the image installs them offline)."""
    progress("worker: pip wheel on the host (dependencies from the package index, pinned by constraints.txt)")
    with tempfile.TemporaryDirectory(prefix="geo-recon-src-") as src:
        # A copy, so the build leaves nothing (build/, *.egg-info) in the checkout.
        for name in WORKER_SOURCES:
            path = root / name
            if path.is_dir():
                shutil.copytree(path, Path(src) / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(path, Path(src) / name)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                               "--wheel-dir", str(out), "-c", str(root / "constraints.txt"), src],
                              capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"pip wheel failed: {(proc.stderr or proc.stdout).strip()[-400:]}")


def ensure_worker(base: Image, progress: Progress = _quiet) -> Image:
    root = source_root()
    dockerfile = WORKER_DOCKERFILE.format(base=base.tag, path=PATH_ENV)
    tag = f"geo-recon-worker:{__version__}-{_digest(base.tag, _source_digest(root), dockerfile)}"

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="geo-recon-image-", dir=pulsar_dist.cache_root()) as tmp:
            _host_wheels(root, Path(tmp) / "wheels", progress)
            (Path(tmp) / "Dockerfile").write_text(dockerfile)
            _build(Path(tmp), tag)

    return _ensure("worker", tag, compose.WORKER_IMAGE, build, progress)


def ensure_local(version: str = pulsar_dist.PULSAR_VERSION, progress: Progress = _quiet) -> list[Image]:
    """Every image a compose lab needs, built here (or found up to date)."""
    base = ensure_base(progress)
    return [base, ensure_pulsar(base, version, progress), ensure_toxiproxy(progress), ensure_worker(base, progress)]


def ensure_official(version: str = pulsar_dist.PULSAR_VERSION, progress: Progress = _quiet) -> list[Image]:
    """The upstream Pulsar and Toxiproxy images pulled, the worker built from docker/worker.Dockerfile
    (``python:3.11-slim`` and ``pip install`` from the index: a registry and network in the build)."""
    images = []
    for role, upstream, alias in (("pulsar", f"apachepulsar/pulsar:{version}", compose.pulsar_image(version)),
                                  ("toxiproxy", f"ghcr.io/shopify/toxiproxy:{compose.TOXIPROXY_VERSION}",
                                   compose.TOXIPROXY_IMAGE)):
        progress(f"{role}: docker pull {upstream}")
        started = time.monotonic()
        _check(_docker(["pull", upstream]), f"docker pull {upstream}")
        _tag(upstream, alias)
        images.append(Image(role, upstream, alias, True, time.monotonic() - started, image_size(upstream) or 0))
    root = source_root()
    progress(f"worker: docker build -f {compose.WORKER_DOCKERFILE}")
    started = time.monotonic()
    _check(_docker(["build", "--network", "host", "--tag", compose.WORKER_IMAGE, "--file",
                    str(root / compose.WORKER_DOCKERFILE), str(root)], env={"DOCKER_BUILDKIT": "0"}),
           f"building {compose.WORKER_IMAGE}")
    images.append(Image("worker", compose.WORKER_IMAGE, compose.WORKER_IMAGE, True, time.monotonic() - started,
                        image_size(compose.WORKER_IMAGE) or 0))
    return images


def ensure(kind: str = "local", version: str = pulsar_dist.PULSAR_VERSION, progress: Progress = _quiet) -> list[Image]:
    if kind == "local":
        return ensure_local(version, progress)
    if kind == "official":
        return ensure_official(version, progress)
    raise EnvironmentProblem(f"unknown image kind {kind!r}: expected local or official")


def our_images() -> list[str]:
    """Every geo-recon image on the engine (content tags and aliases)."""
    proc = _docker(["images", "--format", "{{.Repository}}:{{.Tag}}"], timeout=60)
    return [line for line in proc.stdout.decode().split() if line.startswith("geo-recon-")]
