"""What an integration test needs to bring a lab up and prove it is gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from geo_recon.deploy import netns, procs, state
from tests.conftest import REPO, run_cli


def lab_args(name: str, base_port: int, subnet: int) -> list[str]:
    return ["--name", name, "--base-port", str(base_port), "--subnet", str(subnet)]


def up(name: str, scheme: str, base_port: int, subnet: int, regions: str = "a,b") -> tuple[dict, str]:
    proc = run_cli("lab", "up", "--regions", regions, "--scheme", scheme, "--json", *lab_args(name, base_port, subnet))
    assert proc.returncode == 0, f"lab up failed:\n{proc.stderr}"
    return json.loads(proc.stdout), proc.stderr


def start_then_signal(name: str, scheme: str, base_port: int, subnet: int, sig: int) -> subprocess.CompletedProcess:
    """Start `lab up` and signal the CLI once its first JVM is running."""
    cli = subprocess.Popen(
        [sys.executable, "-m", "geo_recon", "lab", "up", "--scheme", scheme, *lab_args(name, base_port, subnet)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        # A suite started in the background (`cmd &` in a script) inherits SIGINT ignored, and Python then
        # installs no KeyboardInterrupt handler: the CLI would never see the Ctrl-C this test sends.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lab = state.load(name)
        if lab and any(c.pid for c in lab.components):
            break
        time.sleep(0.1)
    else:
        cli.kill()
        raise AssertionError("lab up never started a JVM")
    time.sleep(1.0)
    cli.send_signal(sig)
    out, err = cli.communicate(timeout=120)
    return subprocess.CompletedProcess(cli.args, cli.returncode, out, err)


def leftovers(name: str, pids: list[int]) -> list[str]:
    """Everything of lab ``name`` still on this machine (empty when clean)."""
    found = [f"pid {p} alive" for p in pids if Path(f"/proc/{p}").exists() and
             procs.state(procs.ProcessRef(p, procs.start_ticks(p) or -1)) != "dead"]
    found += [f"marker process {r.pid}" for r in procs.find_by_marker(name)]
    found += [f"netns {n}" for n in netns.lab_namespaces(name)]
    found += [f"link {link}" for link in netns.existing_links() if link == f"grb-{name}" or link.startswith(f"grv-{name}-")]
    found += [f"rule {r}" for r in netns.host_rules(name)]
    if (state.lab_dir(name) / state.STATE_FILE).exists():
        found.append("state file")
    return found


def component_pids(name: str) -> list[int]:
    lab = state.load(name)
    return [c.pid for c in lab.components if c.pid] if lab else []


__all__ = ["up", "start_then_signal", "leftovers", "component_pids", "lab_args", "signal"]
