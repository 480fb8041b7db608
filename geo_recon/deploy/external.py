"""Existing clusters as a ``Backend``: given by a clusters file, never started or stopped here.

It has none of the process or network capabilities; the faults that work on
it are the ones every backend gets from the fault driver: ``command`` (shell
commands you give, e.g. kubectl or a chaos tool) and the admin-API faults.
"""

from __future__ import annotations

from pathlib import Path

from geo_recon.deploy.base import Progress
from geo_recon.deploy.local_backend import lab_deployment
from geo_recon.deployment import Deployment, from_clusters_file
from geo_recon.errors import ConfigError


class ExternalBackend:
    name = "external"
    started = False  # never: these clusters are not ours

    def __init__(self, clusters_file: str | Path) -> None:
        self.clusters_file = str(clusters_file)
        self._deployment: Deployment | None = None

    def up(self, progress: Progress, workdir: Path | None = None) -> Deployment:
        self._deployment = from_clusters_file(self.clusters_file)
        progress(f"  existing clusters from {self.clusters_file}: regions {', '.join(self._deployment.region_names)}")
        return self._deployment

    def down(self, progress: Progress) -> None:
        """Nothing: these clusters are not ours to stop."""

    def status(self) -> list[str]:
        return self.deployment().region_names

    def deployment(self) -> Deployment:
        if self._deployment is None:
            self._deployment = from_clusters_file(self.clusters_file)
        return self._deployment

    def left_running(self) -> str:
        return ""  # never started here, never taken down here

    def versions(self) -> dict[str, str]:
        return {}

    def keep_logs(self, run_dir: Path, progress: Progress) -> None:
        """Nothing: the clusters' logs are where their operators keep them."""

    def worker_placement(self, regions: list[str]) -> tuple[dict[str, str], str]:
        return {}, "127.0.0.1"


def resolve(lab: str | None, clusters: str | None) -> Deployment:
    """The CLI's --lab / --clusters pair: exactly one, defaulting to the lab named 'lab'
    (was ``deployment.resolve``)."""
    if lab and clusters:
        raise ConfigError("give either --lab or --clusters, not both")
    if clusters:
        return from_clusters_file(clusters)
    return lab_deployment(lab or "lab")
