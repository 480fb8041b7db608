"""Shared test setup.

Tests marked ``root`` or ``integration`` need root and Java 17+. They never
skip: on a machine without them they fail and say what is missing (CI runs as
root with Java). Deselect them explicitly with ``-m "not integration"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # Labs started by tests live in their own home, never beside a user's labs.
    if "GEO_RECON_HOME" not in os.environ:
        os.environ["GEO_RECON_HOME"] = tempfile.mkdtemp(prefix="geo-recon-tests-")


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
