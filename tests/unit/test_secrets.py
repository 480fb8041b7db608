"""A token from a clusters file never shows: not in an error, not in a run's output or its files, even when
a server echoes it back (an admin endpoint answering 401 with the bearer token in its reason)."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

from geo_recon.admin import AdminClient, AdminError
from geo_recon.secrets import MASK, scrub, scrubbing
from tests.conftest import run_cli

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLWZvci1nZW8tcmVjb24.s1gn4tur3"


class _EchoingAdmin(http.server.BaseHTTPRequestHandler):
    """Every request: 401, with the request's Authorization header in the reason (a careless proxy does this)."""

    def _refuse(self) -> None:
        body = json.dumps({"reason": f"HTTP 401 Unauthorized: token rejected: {self.headers.get('Authorization')}"})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_PUT = do_POST = do_DELETE = _refuse

    def log_message(self, *args) -> None:  # noqa: D401 - quiet
        pass


@pytest.fixture
def echoing_admin():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingAdmin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def clusters_file(tmp_path, echoing_admin):
    path = tmp_path / "clusters.yaml"
    path.write_text("regions:\n" + "".join(
        f"  {r}:\n    service_url: pulsar://127.0.0.1:1\n    admin_url: {echoing_admin}\n    cluster: {r}\n"
        f"    token: {TOKEN}\n" for r in ("a", "b")))
    return path


def test_scrub_masks_every_secret_longest_first_and_leaves_short_values_alone():
    assert scrub(f"Bearer {TOKEN} and {TOKEN[:20]}", [TOKEN[:20], TOKEN, None]) == f"Bearer {MASK} and {MASK}"
    assert scrub("a b abc", ["a", "ab"]) == "a b abc"  # too short to be a token; masking them would mangle text
    lines = []
    scrubbing(lines.append, [TOKEN])(f"401: {TOKEN}")
    assert lines == [f"401: {MASK}"]


def test_an_admin_error_never_carries_the_token_the_server_echoed(echoing_admin):
    admin = AdminClient(echoing_admin, label="region a", token=TOKEN, deadline=2)
    with pytest.raises(AdminError) as caught:
        admin.get("/admin/v2/clusters")
    assert caught.value.status == 401
    assert "token rejected: Bearer ***" in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in caught.value.detail


def test_the_cli_prints_one_line_without_the_token(clusters_file):
    proc = run_cli("verify-config", "--clusters", str(clusters_file), "--scheme", "async", timeout=120)
    assert proc.returncode == 2
    assert "HTTP 401" in proc.stderr and "Traceback" not in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr


def test_a_run_on_existing_clusters_keeps_the_token_out_of_its_output_and_every_file(tmp_path, clusters_file):
    scenario = tmp_path / "external.yaml"
    scenario.write_text(f"name: external\ntopology:\n  backend: external\n  regions: [a, b]\n"
                        f"  clusters: {clusters_file}\nworkload: {{rate: 10, duration_s: 2}}\n")
    proc = run_cli("run", str(scenario), "--runs", str(tmp_path / "runs"), timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "HTTP 401" in proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    run_dir = (tmp_path / "runs" / "latest").resolve()
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "outcome.json" for p in written)
    for path in written:
        assert TOKEN not in path.read_text(errors="replace"), path
    assert "HTTP 401" in json.loads((run_dir / "outcome.json").read_text())["error"]
