"""The admin client's retry and error rules, against a local HTTP stub (not a Pulsar fake:
this tests the HTTP client alone)."""

import http.server
import json
import socket
import threading

import pytest

from geo_recon.admin import AdminClient, AdminError


class _Stub(http.server.BaseHTTPRequestHandler):
    script: list = []
    seen: list = []

    def do_GET(self):  # noqa: N802
        self.seen.append((self.path, self.headers.get("Authorization")))
        status, body = self.script.pop(0) if self.script else (200, {"ok": True})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    _Stub.script, _Stub.seen = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Stub
    server.shutdown()
    server.server_close()


def test_5xx_is_retried_until_it_heals(stub):
    server, handler = stub
    handler.script = [(503, {"reason": "busy"}), (500, {"reason": "oops"}), (200, ["a"])]
    admin = AdminClient(f"http://127.0.0.1:{server.server_port}", label="region a", deadline=10)
    assert admin.clusters() == ["a"]
    assert len(handler.seen) == 3


def test_4xx_is_an_answer_and_never_retried(stub):
    server, handler = stub
    handler.script = [(403, {"reason": "not authorized"})]
    admin = AdminClient(f"http://127.0.0.1:{server.server_port}", label="region a", token="tok-123")
    with pytest.raises(AdminError) as err:
        admin.get("/admin/v2/clusters")
    assert str(err.value) == "region a: GET /admin/v2/clusters -> HTTP 403: not authorized"
    assert len(handler.seen) == 1
    assert handler.seen[0][1] == "Bearer tok-123"
    assert "tok-123" not in str(err.value)


def test_an_unreachable_cluster_is_named_after_the_deadline():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed: nothing listens
    admin = AdminClient(f"http://127.0.0.1:{port}", label="region b (http://127.0.0.1)", deadline=1)
    with pytest.raises(AdminError, match=r"region b \(http://127.0.0.1\): GET /admin/v2/clusters failed: ConnectionError"):
        admin.clusters()


def test_404_can_be_an_expected_answer(stub):
    server, handler = stub
    handler.script = [(404, {"reason": "Cluster does not exist"})]
    assert AdminClient(f"http://127.0.0.1:{server.server_port}").cluster("zz") is None
