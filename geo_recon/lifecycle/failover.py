"""The controller's side of client failover: what a scheme makes of it, and the controlled switch.

Under a scheme that is one stretched cluster (strong) there is no other cluster to fail over to
and no subscription to replicate: the run says so in one line, runs with failover off, and
run.json records both what was asked and what ran. Under controlled failover the controller
tells the workers of every region a region fault targets to switch to the next region, at
``switch_at_s`` (a file each worker watches; ``workload.failover``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from geo_recon.errors import ConfigError
from geo_recon.scenario import Scenario, switched_regions
from geo_recon.schemes import Scheme
from geo_recon.workload import failover

Progress = Callable[[str], None]


def resolve(scenario: Scenario, scheme: Scheme, progress: Progress) -> tuple[Scenario, dict[str, Any]]:
    """The scenario as this scheme runs it, and what run.json adds about failover (besides the
    resolved ``failover`` and ``replicated_subscription`` every run records)."""
    w = scenario.workload
    asked = w.failover.mode != "none" or w.replicated_subscription
    if not asked:
        return scenario, {}
    if w.failover.mode != "none" and scenario.topology.backend == "compose":
        raise ConfigError("workload.failover: the compose lab's worker containers know only their own region's "
                          "service URL; run failover on the local or external backend")
    if not scheme.stretched:
        return scenario, {}
    progress(f"  workload.failover {w.failover.mode}, replicated_subscription {w.replicated_subscription}: the "
             f"{scheme.name} scheme is one stretched cluster, so there is no other cluster to fail over to and no "
             "subscription to replicate; both are off in this run")
    off = w.model_copy(update={"failover": w.failover.model_copy(update={"mode": "none", "switch_at_s": None}),
                               "replicated_subscription": False})
    note = {"requested": w.failover.mode, "requested_replicated_subscription": w.replicated_subscription,
            "note": f"{scheme.name} is one stretched cluster: nothing to fail over to"}
    return scenario.model_copy(update={"workload": off}), {"failover": {"mode": "none", **note}}


class ControlledSwitch(threading.Thread):
    """At ``switch_at_s`` after the load started, tells each targeted region's workers where to go."""

    def __init__(self, scenario: Scenario, workers_dir: Path, start_at_ns: int, stop: threading.Event,
                 progress: Progress) -> None:
        super().__init__(name="failover-switch", daemon=True)
        self.targets = switched_regions(scenario)
        self.at_ns = start_at_ns + int((scenario.workload.failover.switch_at_s or 0) * 1e9)
        self.workers_dir, self.stop, self.progress = workers_dir, stop, progress

    def run(self) -> None:
        if self.stop.wait(max(0.0, (self.at_ns - time.time_ns()) / 1e9)):
            return
        for region, to in self.targets.items():
            failover.write_switch(self.workers_dir, region, to)
            self.progress(f"told region {region}'s workers to switch to {to} (controlled failover)")
