"""A compose lab as a ``Backend``: ``ComposeBackend``'s command lines, wrapped for a run.

``prepare`` knows everything before anything is created (an engine, the lab,
the faults compose can do); ``up`` renders the project into the run directory
when none was given, refuses a project that already has containers, starts it
and builds the worker image. The scheme is configured and verified from inside
the lab (``configure_inside``), where peers are reached by the names the
replicators use. Faults are ``ComposeFaults``: docker kill/stop/pause, Toxiproxy.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from geo_recon.deploy import compose as compose_lab
from geo_recon.deploy import compose_backend, images
from geo_recon.deploy.base import DelegatesFaults, Progress
from geo_recon.deploy.compose_faults import ComposeFaults, Scheduled, check_schedule
from geo_recon.deploy.topology import LabSpec
from geo_recon.deployment import Deployment, RegionEndpoint
from geo_recon.errors import ConfigError, GeoReconError, LabError


def ensure_images(progress: Progress) -> object:
    """The images of $GEO_RECON_IMAGES (local, the default: built here; official: pulled)."""
    return images.ensure(os.environ.get("GEO_RECON_IMAGES", "local"), progress=progress)


@dataclass
class ComposeHooks:
    """What a compose run talks to: Docker (command lines), Toxiproxy's API, time. Tests pass fakes."""

    runner: compose_backend.Runner = compose_backend.run_command
    http: compose_backend.Http = compose_backend.http_request
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    start_delay_s: float = 15.0  # from `up` of the workers to their common start: container start, client connect
    poll_s: float = 2.0
    # Makes sure the lab's images are there before `up` (geo_recon.deploy.images; cached by their inputs).
    images: Callable[[Progress], object] = ensure_images


class ComposeLabBackend(DelegatesFaults):
    name = "compose"
    shapes = ComposeFaults.shapes

    def __init__(self, spec: LabSpec, project_dir: Path | None, compose_version: str, hooks: ComposeHooks) -> None:
        self.spec = spec
        self.project_dir = project_dir  # topology.compose_dir; None: rendered into the run directory by ``up``
        self.compose_version = compose_version
        self.hooks = hooks
        self.compose: compose_backend.ComposeBackend | None = None
        self.started = False
        self._faults: ComposeFaults | None = None

    @classmethod
    def prepare(cls, *, spec: LabSpec, compose_dir: str | None, schedule: Sequence[Scheduled], where: str,
                hooks: ComposeHooks, version: str) -> "ComposeLabBackend":
        """Everything a compose run can know before it creates anything (after ``check_engine``, which
        gave ``version``): the lab and its faults."""
        if compose_dir:
            directory: Path | None = Path(compose_dir)
            lab = compose_lab.load_project(directory)  # type: ignore[arg-type]
            if lab.spec.scheme != spec.scheme or list(lab.regions) != list(spec.regions):
                raise ConfigError(f"{where}topology.compose_dir {directory} holds the {lab.spec.scheme} lab of regions "
                                  f"{', '.join(lab.regions)}; this run needs the {spec.scheme} lab of regions "
                                  f"{', '.join(spec.regions)} (render one: geo-recon compose render --regions "
                                  f"{','.join(spec.regions)} --scheme {spec.scheme} -o DIR)")
            spec = lab.spec
        else:
            lab = compose_lab.compose_lab(spec)
            compose_lab.build_context_for(Path.cwd())  # the worker image is built from a source checkout
            directory = None
        try:
            check_schedule(lab, schedule)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None
        return cls(spec, directory, version, hooks)

    # ------------------------------------------------------------ Backend

    def up(self, progress: Progress, workdir: Path | None = None) -> Deployment:
        """Render the project into ``workdir/compose`` unless the scenario named one; make sure its images exist;
        start it."""
        sub = lambda m: progress(f"  {m}")  # noqa: E731
        if self.project_dir is None:
            if workdir is None:
                raise LabError("a compose lab without topology.compose_dir is rendered into the run directory")
            self.project_dir = workdir / "compose"
            compose_lab.write_project(self.spec, self.project_dir,
                                      build_context=compose_lab.build_context_for(self.project_dir))
            sub(f"rendered the compose lab into {self.project_dir}")
        hooks = self.hooks
        self.compose = compose_backend.ComposeBackend(self.project_dir, runner=hooks.runner, http=hooks.http,
                                                      progress=sub, sleep=hooks.sleep, clock=hooks.clock,
                                                      engine_version=self.compose_version)
        busy = [s.service for s in self.compose.status() if s.state != "missing"]
        if busy:
            project = self.compose.lab.project
            raise LabError(f"compose project {project} already has containers ({', '.join(busy)}); "
                           f"take it down first: docker compose -p {project} down --volumes")
        hooks.images(sub)  # every image, the worker's too, before anything starts
        self.started = True
        self.compose.up()
        return self.deployment()

    def down(self, progress: Progress) -> None:
        if self.compose is not None and self.started:
            self.compose.down()

    def status(self) -> list[compose_backend.ServiceState]:
        return self.compose.status() if self.compose is not None else []

    def deployment(self) -> Deployment:
        """The lab's regions as published on this machine (admin calls, replication statistics)."""
        lab = self._backend().lab
        return Deployment(tuple(RegionEndpoint(e.region, e.service_url, e.admin_url, e.cluster)
                                for e in lab.host_endpoints()),
                          source=f"compose lab {lab.project}", scheme=self.spec.scheme)

    def left_running(self) -> str:
        project = self.compose.lab.project if self.compose is not None else self.spec.name
        return f"compose lab {project} left running: geo-recon compose down {self.project_dir}"

    def versions(self) -> dict[str, str]:
        return {"docker compose": self.compose_version}

    def keep_logs(self, run_dir: Path, progress: Progress) -> None:
        if not self.started:  # a project that already had containers is someone else's
            return
        try:
            text = self._backend().logs()
        except GeoReconError as exc:
            progress(f"  could not keep the containers' logs: {exc}")
            return
        path = run_dir / "logs" / "compose.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _backend(self) -> compose_backend.ComposeBackend:
        if self.compose is None:
            raise LabError("the compose lab is not up")
        return self.compose

    # ------------------------------------------------------------ the scheme, from inside

    def configure_inside(self, scheme: str, settings_args: list[str], progress: Progress) -> list[dict[str, Any]]:
        """`geo-recon configure` then `verify-config` inside the first region's network, with the lab's own
        clusters file (there, peers are reached by the names the replicators use)."""
        backend = self._backend()
        args = ["--clusters", "/config/clusters.yaml", "--scheme", scheme, *settings_args]
        region = backend.lab.regions[0]
        for line in backend.run_tool(region, "configure", *args).splitlines():
            if line.strip():
                progress(f"  {line.strip()}")
        proc = backend.run_tool_result(region, "verify-config", *args, "--json")
        try:
            return list(json.loads(proc.stdout)["checks"])
        except (ValueError, KeyError, TypeError):
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]) or f"exit code {proc.returncode}"
            raise LabError(f"verify-config in region {region} of {backend.lab.project} gave no result "
                           f"(exit code {proc.returncode}): {tail}") from None

    # ------------------------------------------------------------ faults (deploy.base capabilities)

    def _mechanics(self) -> ComposeFaults:
        if self._faults is None:
            self._faults = ComposeFaults(self._backend(), sleep=self.hooks.sleep, clock=self.hooks.clock)
        return self._faults

    def sweep(self, progress: Progress) -> list[str]:
        return self._mechanics().sweep(progress) if self._faults is not None else []
