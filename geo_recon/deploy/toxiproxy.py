"""Toxiproxy (Shopify/toxiproxy), the userspace WAN emulator used where tc netem is missing.

Built once with ``go install`` from the Go module proxy at a pinned version into
the cache; one server per lab runs in the root namespace, its proxies listening
on the lab bridge address so every region's namespace can reach them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import requests

from geo_recon.deploy import procs, pulsar_dist
from geo_recon.errors import EnvironmentProblem, LabError

VERSION = "v2.12.0"
MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"


def binary() -> Path:
    """The toxiproxy server binary, built on first use (about 20 s)."""
    home = pulsar_dist.cache_root() / f"toxiproxy-{VERSION}"
    exe = home / "bin" / "server"
    if exe.exists():
        return exe
    env = {**os.environ, "GOBIN": str(home / "bin"), "GOPATH": str(home / "gopath"), "GOFLAGS": "-modcacherw",
           "CGO_ENABLED": "0"}
    go = pulsar_dist.find_go("Toxiproxy (WAN latency faults)")
    proc = subprocess.run([go, "install", f"{MODULE}@{VERSION}"], env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0 or not exe.exists():
        raise EnvironmentProblem(f"building Toxiproxy {VERSION} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    shutil.rmtree(home / "gopath", ignore_errors=True)
    return exe


class Toxiproxy:
    """REST client of one running toxiproxy server."""

    def __init__(self, api: str):
        self.api = api.rstrip("/")

    def _call(self, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = ()) -> dict | list | None:
        try:
            resp = requests.request(method, self.api + path, json=body, timeout=5)
        except requests.RequestException as exc:
            raise LabError(f"toxiproxy at {self.api}: {method} {path} failed: {exc}") from None
        if resp.status_code >= 400 and resp.status_code not in ok:
            raise LabError(f"toxiproxy at {self.api}: {method} {path} -> HTTP {resp.status_code}: {resp.text.strip()}")
        return resp.json() if resp.content and resp.status_code < 400 else None

    def alive(self) -> bool:
        try:
            return requests.get(self.api + "/version", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def proxies(self) -> dict:
        return self._call("GET", "/proxies") or {}

    def create_proxy(self, name: str, listen: str, upstream: str) -> None:
        self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True})

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}", ok=(404,))

    def add_toxic(self, proxy: str, name: str, kind: str, stream: str, attributes: dict) -> None:
        self._call("POST", f"/proxies/{proxy}/toxics",
                   {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes})

    def update_toxic(self, proxy: str, name: str, attributes: dict) -> None:
        self._call("POST", f"/proxies/{proxy}/toxics/{name}", {"attributes": attributes})

    def delete_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}", ok=(404,))

    def clear_toxics(self, proxy: str) -> int:
        """Delete every toxic of ``proxy``; the proxy and its connections stay. How many there were."""
        toxics = self.toxics(proxy)
        for toxic in toxics:
            self.delete_toxic(proxy, toxic["name"])
        return len(toxics)

    def toxics(self, proxy: str) -> list:
        return self._call("GET", f"/proxies/{proxy}/toxics") or []


def start_server(host: str, port: int, log: Path, lab: str) -> procs.ProcessRef:
    exe = binary()
    ref = procs.start([str(exe), "-host", host, "-port", str(port)], cwd=log.parent, log_path=log,
                      env={"GEO_RECON_LAB": lab})
    client = Toxiproxy(f"http://{host}:{port}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if client.alive():
            return ref
        if not procs.alive(ref):
            break
        time.sleep(0.1)
    procs.kill(ref)
    raise LabError(f"toxiproxy did not start on {host}:{port}; log: {log}")
