"""Fakes of a Docker engine and of Toxiproxy's REST API for compose labs (no Docker runs on the test machines).

``FakeEngine`` keeps every container's state the way Docker reports it in
``docker compose ps --format json``, changes it on kill, stop, start, pause,
unpause, up and down, and records every command line. When the workers are
started it plays them: it reads the ``--env-file`` they were started with and
writes what `geo-recon worker --out /history` would write into the mounted
directory (history, summary, progress), and they exit once ``workers_done``
says so.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Callable

NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def _done(argv, code=0, out="", err=""):
    return subprocess.CompletedProcess(list(argv), code, out, err)


def compose_parts(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``docker compose -p P -f F [--env-file E] [--profile X] SUB ...`` -> (global options, [SUB, ...])."""
    options, rest = {}, argv[2:]
    while rest and rest[0].startswith("-"):
        options[rest[0]] = rest[1]
        rest = rest[2:]
    return options, rest


def read_env_file(path: str) -> dict[str, str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            if len(value) >= 2 and value[0] == value[-1] == "'":  # single-quoted: taken literally, as compose does
                value = value[1:-1]
            out[key] = value
    return out


class FakeEngine:
    def __init__(self, lab, *, engine: bool = True, verify_ok: bool = True,
                 workers_done: Callable[["FakeEngine"], bool] | None = None, messages: int = 3,
                 fail: dict[str, str] | None = None):
        self.lab = lab
        self.engine = engine
        self.verify_ok = verify_ok
        self.workers_done = workers_done or (lambda fake: fake.polls_since_workers >= 2)
        self.messages = messages
        self.fail = fail or {}
        self.calls: list[list[str]] = []
        self.states: dict[str, tuple[str, str, int]] = {}
        self.polls_since_workers = 0
        self.worker_env: list[dict[str, str]] = []

    def lab_is_up(self) -> "FakeEngine":
        """As after `docker compose up`: every service healthy, every one-shot done."""
        self.states = {s: ("running", "healthy", 0) for s in self.lab.long_running}
        self.states.update({s: ("exited", "", 0) for s in self.lab.one_shots})
        return self

    # ------------------------------------------------------------ what the tests read

    def compose_calls(self) -> list[list[str]]:
        """Every compose command after ``-p P -f F``, consecutive identical `ps` polls as one."""
        out: list[list[str]] = []
        for argv in self.calls:
            if argv[:2] != ["docker", "compose"] or argv[2] == "version":
                continue
            assert argv[2] == "-p" and argv[4] == "-f", argv
            rest = argv[6:]
            if "ps" in rest and out and out[-1] == rest:
                continue
            out.append(rest)
        return out

    def sent(self, *words: str) -> bool:
        """Whether a compose command (after ``-p P -f F``) held these words, one after the other."""
        n = len(words)
        return any(call[i:i + n] == list(words) for call in self.compose_calls() for i in range(len(call)))

    # ------------------------------------------------------------ the engine

    def __call__(self, argv, timeout):
        argv = list(argv)
        self.calls.append(argv)
        if argv[:2] == ["docker", "info"]:
            return _done(argv, 0, "28.2.2\n") if self.engine else _done(argv, 1, "", NO_DAEMON + "\n")
        if argv[:3] == ["docker", "compose", "version"]:
            return _done(argv, 0, "2.40.3\n")
        assert self.engine, f"ran {argv} without an engine"
        options, rest = compose_parts(argv)
        sub, args = rest[0], rest[1:]
        if sub in self.fail:
            return _done(argv, 1, "", self.fail[sub])
        services = [a for a in args if not a.startswith("-") and not a.isdigit()]
        workers = set(self.lab.workers)
        if sub == "up" and set(services) & workers:
            env = read_env_file(options["--env-file"])
            self.worker_env.append(env)
            self._play_workers(env)
            for service in services:
                self.states[service] = ("running", "", 0)
            self.polls_since_workers = 0
        elif sub == "up":
            self.lab_is_up()
        elif sub == "ps":
            if any(self.states.get(w, ("",))[0] == "running" for w in workers):
                self.polls_since_workers += 1
                if self.workers_done(self):
                    for w in workers:
                        if self.states.get(w, ("",))[0] == "running":
                            self.states[w] = ("exited", "", 0)
            rows = [{"Service": s, "State": st, "Health": h, "ExitCode": code, "Name": f"p-{s}-1"}
                    for s, (st, h, code) in self.states.items()]
            return _done(argv, 0, "".join(json.dumps(r) + "\n" for r in rows))
        elif sub == "kill":
            for s in services:
                self.states[s] = ("exited", "", 137)
        elif sub == "stop":
            for s in services:
                self.states[s] = ("exited", "", 143 if s not in workers else 0)
        elif sub == "start":
            for s in services:
                self.states[s] = ("running", "healthy", 0)
        elif sub == "pause":
            for s in services:
                self.states[s] = ("paused", self.states[s][1], 0)
        elif sub == "unpause":
            for s in services:
                self.states[s] = ("running", self.states[s][1], 0)
        elif sub == "down":
            self.states = {}
        elif sub == "run":
            tool = args[args.index("geo-recon") + 1]
            if tool == "verify-config":
                checks = [{"name": "replication clusters", "ok": True, "detail": "a, b", "region": r}
                          for r in self.lab.regions]
                if not self.verify_ok:
                    checks[-1] = {**checks[-1], "ok": False, "detail": "not replicated to a"}
                return _done(argv, 0 if self.verify_ok else 1,
                             json.dumps({"scheme": "async", "ok": self.verify_ok, "checks": checks}), "Creating\n")
            return _done(argv, 0, f"{tool}: done\n")
        elif sub == "logs":
            return _done(argv, 0, "a-standalone  | started\n")
        return _done(argv, 0)

    def _play_workers(self, env: dict[str, str]) -> None:
        """What each region's `geo-recon worker` writes: every message of every region received everywhere."""
        out = Path(env["GEO_RECON_HISTORY"])
        workload_file = env["GEO_RECON_WORKLOAD_FILE"]
        assert workload_file.startswith("/history/")
        assert (out / workload_file.removeprefix("/history/")).is_file()
        run_id, regions = env["GEO_RECON_RUN_ID"], list(self.lab.regions)
        now = time.time_ns()
        (out / "history").mkdir(parents=True, exist_ok=True)
        (out / "workers").mkdir(parents=True, exist_ok=True)
        for region in regions:
            lines = []
            for seq in range(self.messages):
                producer = f"{region}/p0"
                t = now + seq * 1_000_000
                lines += [{"type": "invoke", "f": "send", "time": t, "region": region, "process": producer,
                           "producer": producer, "seq": seq, "key": "k0", "topic": f"persistent://geo/recon/{run_id}-t0"},
                          {"type": "ok", "f": "send", "time": t + 500_000, "region": region, "process": producer,
                           "producer": producer, "seq": seq, "msg_id": f"{region}:{seq}:-1:0"}]
            for origin in regions:
                for seq in range(self.messages):
                    lines.append({"type": "recv", "time": now + seq * 1_000_000 + 2_000_000, "region": region,
                                  "process": f"{region}/c0.0", "producer": f"{origin}/p0", "seq": seq,
                                  "msg_id": f"{origin}:{seq}:-1:0", "redelivery": 0})
            (out / "history" / f"{region}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
            acked = {f"{region}/p0": self.messages}
            summary = {"region": region, "run_id": run_id, "role": "all", "sent": self.messages,
                       "acked": self.messages, "failed": 0, "unknown": 0, "received": self.messages * len(regions),
                       "acked_by_producer": acked,
                       "distinct_by_producer": {f"{o}/p0": self.messages for o in regions},
                       "clock_offset_ns": 0, "clock_rtt_ns": None, "achieved_rates": {f"{region}/p0": 1.0},
                       "errors": [], "processes": [f"{region}/p0", f"{region}/c0.0", f"{region}/reader"]}
            (out / "workers" / f"{region}.summary.json").write_text(json.dumps(summary))
            (out / "workers" / f"{region}.progress.json").write_text(json.dumps({**summary, "phase": "done"}))


class FakeToxiproxy:
    """Toxiproxy's REST API for every region of a lab, keeping toxics as the real one does."""

    def __init__(self, lab, honest=True):
        self.lab, self.honest = lab, honest
        self.ports = {lab.toxiproxy_api_port(r): r for r in lab.regions}
        self.toxics = {}
        self.requests = []

    def __call__(self, method, url, body):
        self.requests.append((method, url, body))
        port, path = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/.*)", url).groups()
        region = self.ports[int(port)]
        if path == "/reset" and method == "POST":
            self.toxics = {k: v for k, v in self.toxics.items() if k[0] != region}
            return 204, ""
        proxy, toxic = re.fullmatch(r"/proxies/([^/]+)/toxics(?:/([^/]+))?", path).groups()
        if proxy not in {p.name for p in self.lab.proxies(region)}:
            return 404, '{"error":"proxy not found","status":404}'
        bucket = self.toxics.setdefault((region, proxy), {})
        if method == "GET":
            return 200, json.dumps(list(bucket.values()))
        if method == "POST" and toxic is None:
            if body["name"] in bucket:
                return 409, '{"error":"toxic already exists","status":409}'
            stored = dict(body)
            if not self.honest:
                stored["attributes"] = {k: 0 for k in body["attributes"]}
            bucket[body["name"]] = stored
            return 200, json.dumps(stored)
        if method == "POST":
            bucket[toxic]["attributes"] = body["attributes"]
            return 200, json.dumps(bucket[toxic])
        if method == "DELETE":
            if toxic not in bucket:
                return 404, '{"error":"toxic not found","status":404}'
            del bucket[toxic]
            return 204, ""
        raise AssertionError(f"unexpected {method} {url}")

    def active(self) -> dict:
        """(region, proxy) -> toxic names, for proxies that have any."""
        return {k: sorted(v) for k, v in self.toxics.items() if v}
