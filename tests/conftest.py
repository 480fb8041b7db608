"""Shared test setup.

Tests marked ``root`` or ``integration`` need root and Java 17+. They never
skip: on a machine without them they fail and say what is missing (CI runs as
root with Java). Deselect them explicitly with ``-m "not integration"``.

Run in parallel (``-n N``, as scripts/test does), every module is one unit of work for one worker
(``--dist loadfile``): a module's tests share its lab, and no two modules
share a lab name, port or subnet (tests/unit/test_integration_labs.py). Work that can run apart goes
in modules of its own (``--dist loadgroup`` would allow groups within a module, but xdist 3.8 cannot
rename pytest 9.2's node ids, so its groups are silently ignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# The slowest modules first, so that none starts last and keeps the others waiting (a worker takes the
# next module in this order); the rest follow in collection order.
SLOWEST_FIRST = (  # by module times under -n 3 and -n 4 (2026-11-29/30; the suite prints them at its end)
    "tests/integration/test_compose_lab.py",  # 500-810 s (the worker image is rebuilt when the source changes)
    "tests/integration/test_lose.py",  # 390-850 s: three labs of its own, two rebuilt regions
    "tests/integration/test_known_bugs.py",  # 370-720 s: a fresh lab per Pulsar version
    "tests/integration/test_faults_async.py",  # 430-710 s, with the delayed heal
    "tests/integration/test_external.py",
    "tests/integration/test_failover.py",
    "tests/integration/test_workload.py",
    "tests/integration/test_pulsar_versions.py",
    "tests/integration/test_billing.py",
    "tests/e2e/test_run_cli.py",
    "tests/integration/test_faults_strong.py",
    "tests/integration/test_canary.py",
    "tests/integration/test_schemes_strong.py",
    "tests/integration/test_schemes_async.py",
    "tests/integration/test_lab_strong.py",
    "tests/integration/test_lab_async.py",
)
HOME_KEY = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dist", "no") not in ("no", "loadfile"):
        raise pytest.UsageError("run the tests in parallel with --dist loadfile (as scripts/test does): a module's "
                                "tests share its lab, which no other worker may start at the same time")
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # keep SLOWEST_FIRST's order, not xdist's (most tests first)
    # Labs started by tests live in their own home, never beside a user's labs. The process that made
    # it (the xdist controller, whose workers inherit it) removes it after a passing session.
    if "GEO_RECON_HOME" not in os.environ:
        os.environ["GEO_RECON_HOME"] = tempfile.mkdtemp(prefix="geo-recon-tests-")
        config.stash[HOME_KEY] = Path(os.environ["GEO_RECON_HOME"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: keeps the rest's order


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    home = session.config.stash.get(HOME_KEY, None)
    if home is not None and exitstatus == 0:
        shutil.rmtree(home, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    seconds: dict[str, float] = {}  # each module's setup, call and teardown time: what SLOWEST_FIRST orders by
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport):
                module = report.nodeid.split("::")[0]
                seconds[module] = seconds.get(module, 0.0) + report.duration
    slow = sorted(((s, m) for m, s in seconds.items() if s >= 30), reverse=True)
    if slow:
        terminalreporter.write_line("module times (s; SLOWEST_FIRST in tests/conftest.py is ordered by them): " +
                                    ", ".join(f"{m.removeprefix('tests/')} {s:.0f}" for s, m in slow))
    home = config.stash.get(HOME_KEY, None)
    if home is not None and home.exists():
        terminalreporter.write_line(f"kept the labs' home (state, logs, data) for inspection: GEO_RECON_HOME={home}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, iptables); CI runs as root", pytrace=False)
    if item.get_closest_marker("integration"):
        from geo_recon.deploy import pulsar_dist
        from geo_recon.errors import GeoReconError

        try:
            pulsar_dist.find_java()
        except GeoReconError as exc:
            pytest.fail(f"this test starts real Pulsar JVMs: {exc}", pytrace=False)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "geo_recon", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=REPO, input=input_text,
    )
