"""What a deployment is: per region, where its Pulsar answers; and existing clusters from a clusters file.

A ``Deployment`` is a plain value naming, per region, the Pulsar service URL,
the admin URL and the credentials to use. Everything downstream (schemes,
workers, faults that do not need processes) takes a Deployment, so the same
code runs against the local lab and against real regions.

Clusters file (YAML)::

    regions:
      us-east:
        service_url: pulsar+ssl://pulsar.us-east.example:6651
        admin_url: https://pulsar.us-east.example:8443
        cluster: us-east            # optional: read from the broker when absent
        token_env: PULSAR_TOKEN_US  # or token_file: /path, or token: (inline; avoid)
        tls_ca: /etc/ssl/pulsar-ca.pem
        bookies: ["bk1.us-east.example:3181"]   # strong scheme only: this region's bookies
      eu-west:
        ...

Tokens are only ever placed in request headers; they never appear in a repr,
an error, a history or a report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from geo_recon.admin import AdminClient
from geo_recon.errors import ConfigError


@dataclass(frozen=True)
class RegionEndpoint:
    region: str
    service_url: str
    admin_url: str
    cluster: str | None = None
    token: str | None = field(default=None, repr=False)
    tls_ca: str | None = None
    bookies: tuple[str, ...] = ()

    def admin(self, *, deadline: float = 30.0) -> AdminClient:
        return AdminClient(self.admin_url, label=f"region {self.region} ({self.admin_url})", token=self.token,
                           ca_file=self.tls_ca, deadline=deadline)


@dataclass(frozen=True)
class Deployment:
    regions: tuple[RegionEndpoint, ...]
    source: str  # "lab <name>" or the clusters file path
    scheme: str | None = None  # what the lab was built for, when known
    lab: str | None = None

    def region(self, name: str) -> RegionEndpoint:
        for ep in self.regions:
            if ep.region == name:
                return ep
        raise ConfigError(f"{self.source}: no region {name!r} (regions: {', '.join(self.region_names)})")

    @property
    def region_names(self) -> list[str]:
        return [ep.region for ep in self.regions]

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every token in this deployment: what ``secrets.scrub`` keeps out of every line shown or written."""
        return tuple(ep.token for ep in self.regions if ep.token)


class _RegionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_url: str
    admin_url: str
    cluster: str | None = None
    token: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    tls_ca: str | None = None
    bookies: list[str] = []

    @model_validator(mode="after")
    def _one_token_source(self) -> "_RegionModel":
        given = [k for k in ("token", "token_env", "token_file") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give at most one of token, token_env, token_file (got {', '.join(given)})")
        if not self.service_url.startswith(("pulsar://", "pulsar+ssl://")):
            raise ValueError(f"service_url must start with pulsar:// or pulsar+ssl:// (got {self.service_url!r})")
        if not self.admin_url.startswith(("http://", "https://")):
            raise ValueError(f"admin_url must start with http:// or https:// (got {self.admin_url!r})")
        return self


class _ClustersModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    regions: dict[str, _RegionModel]


def from_clusters_file(path: str | Path) -> Deployment:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"clusters file {path} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    try:
        model = _ClustersModel.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field_path = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: field {field_path}: {err['msg']}") from None
    if len(model.regions) < 2:
        raise ConfigError(f"{path}: field regions: at least 2 regions are needed, got {len(model.regions)}")
    regions = []
    for name, reg in model.regions.items():
        regions.append(RegionEndpoint(
            region=name, service_url=reg.service_url, admin_url=reg.admin_url, cluster=reg.cluster,
            token=_token(path, name, reg), tls_ca=reg.tls_ca, bookies=tuple(reg.bookies),
        ))
    return Deployment(tuple(regions), source=str(path))


def _token(path: Path, region: str, reg: _RegionModel) -> str | None:
    if reg.token:
        return reg.token
    if reg.token_env:
        value = os.environ.get(reg.token_env)
        if not value:
            raise ConfigError(f"{path}: field regions.{region}.token_env: environment variable {reg.token_env} is not set")
        return value.strip()
    if reg.token_file:
        try:
            return Path(reg.token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{path}: field regions.{region}.token_file: cannot read {reg.token_file}: "
                              f"{exc.strerror}") from None
    return None


def write_clusters_file(deployment: Deployment, path: Path) -> None:
    """A clusters file for a deployment (never with tokens in it)."""
    data = {"regions": {
        ep.region: {k: v for k, v in (("service_url", ep.service_url), ("admin_url", ep.admin_url),
                                      ("cluster", ep.cluster), ("tls_ca", ep.tls_ca),
                                      ("bookies", list(ep.bookies) or None)) if v}
        for ep in deployment.regions}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
