"""The checker: does a history show lost, duplicated, reordered or unexpected messages?

Public API::

    check_run(run_dir, *, skip_bad=False, allow=(), max_cases=10) -> CheckResult
    write_results(result, run_dir) -> Path               # RUN_DIR/results.json
    explain(case) -> str
    write_columnar(run_dir, *, skip_bad=False) -> Path   # RUN_DIR/columnar/, an optional faster copy

``CheckResult.valid`` is the verdict; ``CheckResult.to_json()`` is the
DESIGN.md shape. Definitions: :mod:`geo_recon.check.anomalies` (anomalies) and
:mod:`geo_recon.check.recovery` (convergence, RPO, RTO).

Names are imported on first use (PEP 562), so ``import geo_recon.check.cli``
stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Anomaly": "geo_recon.check.anomalies",
    "CannotDecide": "geo_recon.check.core",
    "CheckResult": "geo_recon.check.core",
    "check_history": "geo_recon.check.core",
    "check_run": "geo_recon.check.core",
    "load_history": "geo_recon.check.core",
    "write_results": "geo_recon.check.core",
    "write_columnar": "geo_recon.check.columnar",
    "explain": "geo_recon.check.explanations",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
