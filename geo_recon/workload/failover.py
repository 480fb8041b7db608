"""A worker's clients moving between regions' clusters, and the history lines that say when.

``workload.failover.mode``:

- ``none``: the client's service URL is its own region's cluster, for the whole run.
- ``auto``: pulsar-client's ``AutoClusterFailover`` (PIP-121): primary = the own region, secondaries
  = the other regions in topology order. The C++ client probes the cluster in use (a TCP connect to
  its service URL) every ``check_interval_ms`` and, after ``failover_threshold`` failed probes,
  moves to the first secondary that accepts a connection; back home after ``switch_back_threshold``
  good probes of the primary. It has no callback: the switch is observed through the client's own
  log line ("Switch service URL from X to Y", INFO, written by the probing thread at the switch)
  and confirmed by ``Client.get_service_info()``, which the watcher polls.
- ``controlled``: a ``ServiceInfoProvider`` that stays home until the controller writes
  ``workers/switch-<region>.json`` (the runbook's "flip DNS"); the watcher then hands the client
  the target's service URL. Either way the client closes its connections and its producers and
  consumers reconnect, through a lookup on the new cluster, with the same names and subscription.

Every switch (and switch back) is one ``failover`` line per client of the process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from geo_recon import history

SWITCH_LOG = "Switch service URL from "  # pulsar-client-cpp 4.2 AutoClusterFailover.cc, switchTo()
POLL_S = 0.05


def switch_file(workers_dir: Path, region: str) -> Path:
    """Where the controller tells region ``region``'s workers to switch (controlled failover)."""
    return workers_dir / f"switch-{region}.json"


def write_switch(workers_dir: Path, region: str, to: str) -> None:
    """The controller's side of controlled failover: atomically, so a worker never reads half of it."""
    path = switch_file(workers_dir, region)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"to": to, "time": time.time_ns()}))
    tmp.replace(path)


def service_for(pulsar: Any, mode: str, own: str, urls: dict[str, str], spec: Any, *, auth: Any,
                tls_ca: str | None) -> Any:
    """What ``pulsar.Client`` is given as its service URL for this failover mode."""
    if mode == "none":
        return urls[own]

    def info(region: str) -> Any:
        return pulsar.ServiceInfo(urls[region], authentication=auth, tls_trust_certs_file_path=tls_ca)

    if mode == "auto":
        return pulsar.AutoClusterFailover(
            info(own), [info(r) for r in urls if r != own], check_interval_ms=spec.check_interval_ms,
            failover_threshold=spec.failover_threshold, switch_back_threshold=spec.switch_back_threshold)

    class Controlled(pulsar.ServiceInfoProvider):
        """Home until told otherwise: ``switch`` hands the client another region's cluster."""

        def __init__(self) -> None:
            self.update: Callable[[Any], None] | None = None

        def initial_service_info(self) -> Any:
            return info(own)

        def initialize(self, on_service_info_update: Callable[[Any], None]) -> None:
            self.update = on_service_info_update

        def switch(self, region: str) -> None:
            assert self.update is not None, "the client has not initialised its provider"
            self.update(info(region))

    return Controlled()


class SwitchLog(logging.Handler):
    """Catches the C++ client's switch line the moment it is written (the probing thread writes it
    right before it hands the client the new service URL): the time of the switch."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        # not ``self.lock``: logging.Handler holds that one (non-reentrant here) around emit()
        self.seen_lock = threading.Lock()
        self.seen: list[tuple[int, str]] = []  # (time ns, new service URL)

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if SWITCH_LOG in text:
            target = text.split(" to ", 1)[-1].strip()
            with self.seen_lock:
                self.seen.append((time.time_ns(), target))

    def when(self, url: str) -> int | None:
        """The time of the latest logged switch to ``url`` not yet claimed."""
        with self.seen_lock:
            for i in range(len(self.seen) - 1, -1, -1):
                if self.seen[i][1] == url:
                    return self.seen.pop(i)[0]
        return None


class Watcher(threading.Thread):
    """Follows the client's cluster: writes the failover lines and keeps ``cluster`` current, which
    the worker puts on ok and recv lines served away from home."""

    def __init__(self, *, client: Any, provider: Any, mode: str, region: str, urls: dict[str, str],
                 clients: dict[str, str], writer: history.HistoryWriter, control: Path, log: SwitchLog | None,
                 errors: list[str]) -> None:
        super().__init__(name="failover", daemon=True)
        self.client, self.provider, self.mode, self.region = client, provider, mode, region
        self.by_url = {url: r for r, url in urls.items()}
        self.clients, self.writer, self.control, self.log, self.errors = clients, writer, control, log, errors
        self.cluster = region
        self.stop = threading.Event()
        self.switches = 0

    def run(self) -> None:
        told = False
        while not self.stop.wait(POLL_S):
            if self.mode == "controlled" and not told and self.control.exists():
                told = True
                self._switch_as_told()
            try:
                url = self.client.get_service_info().service_url
            except Exception as exc:  # the client is closing
                self.errors.append(f"failover watcher: {type(exc).__name__}: {exc}")
                return
            region = self.by_url.get(url)
            if region is not None and region != self.cluster:
                at = (self.log.when(url) if self.log is not None else None) or history.now_ns()
                self._record(self.cluster, region, at)

    def _switch_as_told(self) -> None:
        try:
            to = json.loads(self.control.read_text())["to"]
        except (OSError, ValueError, KeyError) as exc:
            self.errors.append(f"failover: unreadable {self.control.name}: {exc}")
            return
        at = history.now_ns()
        self.provider.switch(to)
        self._record(self.cluster, to, at)

    def _record(self, source: str, target: str, at: int) -> None:
        self.cluster = target
        self.switches += 1
        for name, role in self.clients.items():
            self.writer.append({"type": "failover", "time": at, "region": self.region, "process": name,
                                "client": name, "role": role, "from": source, "to": target, "mode": self.mode})
        self.writer.flush()
