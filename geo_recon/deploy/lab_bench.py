"""`geo-recon lab bench`: cold start time and memory of labs, measured for real."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from geo_recon.deploy import local, procs
from geo_recon.deploy.topology import LabSpec


@dataclass(frozen=True)
class LabFigure:
    scheme: str
    regions: int
    ready_seconds: float
    total_rss_mib: float
    components: int


def measure(scheme: str, regions: int, *, name: str, isolation: str, base_port: int, subnet: int,
            progress: Callable[[str], None], settle_seconds: float = 5.0) -> LabFigure:
    """Bring a lab up from nothing (jars cached), record time-to-ready and RSS, tear it down."""
    spec = LabSpec(regions=tuple("abcdefghi"[:regions]), scheme=scheme, name=name,  # type: ignore[arg-type]
                   base_port=base_port, isolation=isolation, subnet=subnet)  # type: ignore[arg-type]
    started = time.monotonic()
    lab = local.up(spec, progress=progress)
    ready = time.monotonic() - started
    try:
        time.sleep(settle_seconds)  # RSS right after the round trip still grows; let it settle a little
        refs = [c.ref for c in lab.components if c.ref]
        rss = sum(procs.rss_bytes(r) for r in refs) / 2**20
        return LabFigure(scheme, regions, round(ready, 1), round(rss, 0), len(refs))
    finally:
        local.down(name)
