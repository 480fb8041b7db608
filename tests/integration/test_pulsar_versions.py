"""Other Pulsar versions than the default: each comes up under both schemes, and the scheme reads back in effect.

One lab at a time (4 labs, about 40 s each), on the versions beside the default (4.2.4) that users
run: the newest 3.0.x and the newest 4.0.x, both LTS lines.
"""

import json

import pytest
import requests

from tests.conftest import run_cli
from tests.integration import lab_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "tvers", 24400, 110


@pytest.mark.parametrize("scheme", ["async", "strong"])
@pytest.mark.parametrize("version", ["3.0.7", "4.0.7"])
def test_version_comes_up_and_the_scheme_verifies(version, scheme):
    run_cli("lab", "down", "--name", NAME, "--force")
    try:
        proc = run_cli("lab", "up", "--pulsar", version, "--scheme", scheme, "--json", *h.lab_args(NAME, BASE, SUBNET))
        assert proc.returncode == 0, f"lab up --pulsar {version} failed:\n{proc.stderr}"
        endpoints = json.loads(proc.stdout)
        for region, ep in endpoints.items():
            # The broker itself says which version it runs (not just the jar names we chose).
            running = requests.get(f"{ep['admin_url']}/admin/v2/brokers/version", timeout=10).text.strip('"')
            assert running == version, region
        status = json.loads(run_cli("lab", "status", "--name", NAME, "--json").stdout)
        assert status["pulsar_version"] == version
        configured = run_cli("configure", "--lab", NAME)
        assert configured.returncode == 0, configured.stderr
        verified = run_cli("verify-config", "--lab", NAME, "--json")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        checks = json.loads(verified.stdout)["checks"]
        assert checks and all(c["ok"] for c in checks)
    finally:
        run_cli("lab", "down", "--name", NAME)
    assert h.leftovers(NAME, []) == []
