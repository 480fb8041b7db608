"""What a run shows while it runs: a live progress line, and Pulsar's own replication statistics sampled
into replication-stats.jsonl (next to the history they can be compared with)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from geo_recon import status
from geo_recon.deployment import Deployment
from geo_recon.errors import GeoReconError
from geo_recon.schemes import SchemeSettings

Progress = Callable[[str], None]


class HasActive(Protocol):
    active: dict[str, Any]


class ReplicationSampler:
    """What Pulsar itself reports about replication (connected, backlog, delay), sampled every
    couple of seconds into replication-stats.jsonl, next to the history it can be compared with."""

    def __init__(self, target: Deployment, settings: SchemeSettings, path: Path,
                 every_s: float = 2.0):
        self.target, self.settings, self.path, self.every_s = target, settings, path, every_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="replication-sampler", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with open(self.path, "a") as out:
            while not self.stop.wait(self.every_s):
                now = time.time_ns()
                try:
                    statuses = status.replication_status(self.target, self.settings)
                except GeoReconError:
                    continue  # a region may be down: that is the point of the run
                for t in statuses:
                    for link in t.links:
                        out.write(json.dumps({"time": now, "region": t.region, "topic": t.topic, "remote": link.remote,
                                              "connected": link.connected, "backlog": link.backlog,
                                              "delay_s": link.delay_seconds}) + "\n")
                out.flush()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


class LiveLine:
    """One progress line every few seconds: phase, counts per region, lag, active faults."""

    def __init__(self, progress: Progress, injector: HasActive | None, every_s: float = 3.0):
        self.progress, self.injector, self.every_s = progress, injector, every_s
        self.last = 0.0

    def __call__(self, regions: dict[str, dict]) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        parts = []
        for region, p in sorted(regions.items()):
            lag = p.get("lag_ms_p50")
            parts.append(f"{region} {p.get('phase', '?')}: sent {p.get('sent', 0)} acked {p.get('acked', 0)} "
                         f"recv {p.get('received', 0)}" + (f" lag~{lag:.0f}ms" if lag is not None else ""))
        active = sorted(self.injector.active) if self.injector else []
        self.progress("  " + " | ".join(parts) + (f" | faults: {', '.join(active)}" if active else ""))
