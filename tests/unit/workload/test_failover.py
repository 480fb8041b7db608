"""workload.failover and replicated_subscription: validation, what each mode hands the client, run.json."""

import json
import logging
import socket
import time

import pulsar
import pytest

from geo_recon import history, scenario
from geo_recon.errors import ConfigError
from geo_recon.lifecycle import failover as controller_failover
from geo_recon.schemes import get as scheme_named
from geo_recon.workload import failover
from geo_recon.workload.runner import failover_fields
from geo_recon.workload.spec import FailoverSpec, WorkloadSpec

KILL_A = "faults:\n  - {kind: kill, target: a, at_s: 5}\n"


def _load(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\n" + text)
    return scenario.load(path)


@pytest.mark.parametrize(("text", "message"), [
    ("workload:\n  failover: {mode: sideways}\n",
     ":3: field workload.failover.mode: Input should be 'none', 'auto' or 'controlled'"),
    ("workload:\n  failover: {mode: controlled}\n" + KILL_A,
     ":3: field workload.failover: Value error, mode controlled needs switch_at_s"),
    ("workload:\n  failover: {mode: auto, switch_at_s: 5}\n",
     "field workload.failover: Value error, switch_at_s is only for mode controlled (mode is auto)"),
    ("workload:\n  failover: {mode: auto, check_interval_ms: 0}\n",
     "field workload.failover.check_interval_ms: Input should be greater than 0"),
    ("workload:\n  failover: {mode: auto, failover_threshold: 0}\n",
     "field workload.failover.failover_threshold: Input should be greater than or equal to 1"),
    ("workload:\n  failover: {mode: auto, retries: 3}\n", "field workload.failover.retries: Extra inputs are not permitted"),
    ("workload:\n  driver: go\n  failover: {mode: auto}\n",
     "field workload: Value error, failover: not in the go driver's producers; use driver: python"),
    ("workload:\n  driver: go\n  replicated_subscription: true\n",
     "replicated_subscription: not in the go driver's producers"),
    ("workload:\n  billing: {}\n  replicated_subscription: true\n",
     "replicated_subscription: not in the billing workload"),
    ("workload:\n  failover: {mode: controlled, switch_at_s: 5}\n",
     "workload.failover.mode controlled: no kill or lose fault targets a whole region"),
    ("workload:\n  failover: {mode: controlled, switch_at_s: 5}\nfaults:\n  - {kind: kill, target: a/broker, at_s: 5}\n",
     "no kill or lose fault targets a whole region"),
    ("workload:\n  duration_s: 20\n  failover: {mode: controlled, switch_at_s: 25}\n" + KILL_A,
     "workload.failover.switch_at_s (25.0s) is after the load ends (20.0s)"),
])
def test_bad_failover_settings_name_the_field(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert message.replace("Value error, ", "") in str(err.value)


def test_defaults_are_off():
    w = WorkloadSpec()
    assert w.failover.mode == "none" and w.replicated_subscription is False
    assert failover_fields(w) == {"failover": {"mode": "none"}, "replicated_subscription": False}


def test_controlled_failover_moves_each_targeted_region_to_the_next_one(tmp_path):
    s = _load(tmp_path, "topology: {regions: [a, b, c]}\nworkload:\n  failover: {mode: controlled, switch_at_s: 8}\n"
                        "faults:\n  - {kind: kill, target: c, at_s: 5}\n  - {kind: kill, target: a, at_s: 6}\n"
                        "  - {kind: kill, target: b/broker, at_s: 7}\n")
    assert scenario.switched_regions(s) == {"c": "a", "a": "b"}
    assert failover_fields(s.workload) == {"failover": {"mode": "controlled", "switch_at_s": 8.0},
                                           "replicated_subscription": False}


def test_run_json_records_the_auto_settings():
    w = WorkloadSpec(failover=FailoverSpec(mode="auto", check_interval_ms=500), replicated_subscription=True)
    assert failover_fields(w) == {"failover": {"mode": "auto", "check_interval_ms": 500, "failover_threshold": 3,
                                               "switch_back_threshold": 3}, "replicated_subscription": True}


def test_under_strong_failover_is_off_and_the_run_says_why(tmp_path):
    s = _load(tmp_path, "workload:\n  replicated_subscription: true\n  failover: {mode: auto}\n")
    said = []
    resolved, extra = controller_failover.resolve(s, scheme_named("strong"), said.append)
    assert resolved.workload.failover.mode == "none" and resolved.workload.replicated_subscription is False
    assert extra["failover"]["mode"] == "none" and extra["failover"]["requested"] == "auto"
    assert len(said) == 1 and "one stretched cluster" in said[0]
    same, nothing = controller_failover.resolve(s, scheme_named("async"), said.append)
    assert same is s and nothing == {} and len(said) == 1


def test_compose_workers_cannot_fail_over(tmp_path):
    s = _load(tmp_path, "topology: {backend: compose}\nworkload:\n  failover: {mode: auto}\n")
    with pytest.raises(ConfigError, match="workload.failover: the compose lab's worker containers"):
        controller_failover.resolve(s, scheme_named("async"), print)


URLS = {"a": "pulsar://10.0.0.1:6650", "b": "pulsar://10.0.0.2:6650", "c": "pulsar://10.0.0.3:6650"}


def test_auto_mode_is_primary_home_and_the_others_in_topology_order():
    spec = FailoverSpec(mode="auto", check_interval_ms=250, failover_threshold=2, switch_back_threshold=4)
    acf = failover.service_for(pulsar, "auto", "b", URLS, spec, auth=None, tls_ca=None)
    assert isinstance(acf, pulsar.AutoClusterFailover)
    assert acf.primary.service_url == URLS["b"]
    assert [s.service_url for s in acf.secondary] == [URLS["a"], URLS["c"]]
    assert (acf.check_interval_ms, acf.failover_threshold, acf.switch_back_threshold) == (250, 2, 4)
    assert failover.service_for(pulsar, "none", "b", URLS, spec, auth=None, tls_ca=None) == URLS["b"]


def test_controlled_mode_stays_home_until_switched():
    provider = failover.service_for(pulsar, "controlled", "a", URLS, FailoverSpec(), auth=None, tls_ca=None)
    assert isinstance(provider, pulsar.ServiceInfoProvider)
    assert provider.initial_service_info().service_url == URLS["a"]
    handed = []
    provider.initialize(handed.append)
    provider.switch("c")
    assert [s.service_url for s in handed] == [URLS["c"]]


def test_the_switch_file_is_what_the_controller_wrote(tmp_path):
    failover.write_switch(tmp_path, "a", "b")
    assert json.loads(failover.switch_file(tmp_path, "a").read_text())["to"] == "b"


def test_the_client_log_line_gives_the_switch_time():
    handler = failover.SwitchLog()
    logger = logging.getLogger("test-switch-log")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)  # through Handler.handle, which holds the handler's own lock around emit
    logger.info("Switch service URL from pulsar://10.0.0.1:6650 to pulsar://10.0.0.2:6650")
    logger.info("Connection disconnected")
    assert handler.when(URLS["c"]) is None
    assert handler.when(URLS["b"]) is not None and handler.when(URLS["b"]) is None  # claimed once
    logger.removeHandler(handler)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _watch(tmp_path, mode: str, urls: dict[str, str], spec: FailoverSpec):
    """The real client library on endpoints that only accept TCP connections (all its probe needs; no broker)."""
    service = failover.service_for(pulsar, mode, "a", urls, spec, auth=None, tls_ca=None)
    logger = logging.getLogger(f"test-watch-{mode}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    switch_log = failover.SwitchLog()
    logger.addHandler(switch_log)
    client = pulsar.Client(service, operation_timeout_seconds=5, logger=logger)
    writer = history.HistoryWriter(tmp_path / "h.jsonl")
    watcher = failover.Watcher(client=client, provider=service, mode=mode, region="a", urls=urls,
                               clients={"a/p0": "producer", "a/c0.0": "consumer"}, writer=writer,
                               control=failover.switch_file(tmp_path, "a"), log=switch_log, errors=[])
    watcher.start()
    return client, watcher, writer, switch_log


def _stop(client, watcher, writer, tmp_path) -> list[dict]:
    watcher.stop.set()
    watcher.join()
    writer.close()
    client.close()
    return [json.loads(line) for line in (tmp_path / "h.jsonl").read_text().splitlines()]


def test_auto_failover_is_seen_when_the_client_switches_and_when_it_switches_back(tmp_path):
    home_port = _free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(16)
        urls = {"a": f"pulsar://127.0.0.1:{home_port}", "b": f"pulsar://127.0.0.1:{other.getsockname()[1]}"}
        spec = FailoverSpec(mode="auto", check_interval_ms=100, failover_threshold=2, switch_back_threshold=2)
        started = time.time_ns()
        client, watcher, writer, switch_log = _watch(tmp_path, "auto", urls, spec)
        deadline = time.monotonic() + 10
        while watcher.switches < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get_service_info().service_url == urls["b"]
        with socket.socket() as home:  # home accepts connections again: two good probes, then back
            home.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            home.bind(("127.0.0.1", home_port))
            home.listen(16)
            while watcher.switches < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        lines = _stop(client, watcher, writer, tmp_path)
    assert [(e["client"], e["role"], e["from"], e["to"], e["mode"]) for e in lines] == [
        ("a/p0", "producer", "a", "b", "auto"), ("a/c0.0", "consumer", "a", "b", "auto"),
        ("a/p0", "producer", "b", "a", "auto"), ("a/c0.0", "consumer", "b", "a", "auto")]
    assert all(e["region"] == "a" and e["process"] == e["client"] for e in lines)
    # two failed probes 100 ms apart: the client switched within about 0.2-0.4 s of starting
    assert 0.1e9 < lines[0]["time"] - started < 2e9
    assert switch_log.seen == []  # both times came from the client's own log line, claimed by the watcher


def test_controlled_failover_switches_when_the_controller_says_so_and_stays(tmp_path):
    urls = {"a": f"pulsar://127.0.0.1:{_free_port()}", "b": f"pulsar://127.0.0.1:{_free_port()}"}
    client, watcher, writer, _ = _watch(tmp_path, "controlled", urls, FailoverSpec(mode="controlled", switch_at_s=1))
    time.sleep(0.3)
    assert watcher.switches == 0 and client.get_service_info().service_url == urls["a"]
    told = time.time_ns()
    failover.write_switch(tmp_path, "a", "b")
    deadline = time.monotonic() + 5
    while watcher.switches < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert client.get_service_info().service_url == urls["b"]
    lines = _stop(client, watcher, writer, tmp_path)
    assert [(e["client"], e["from"], e["to"], e["mode"]) for e in lines] == [
        ("a/p0", "a", "b", "controlled"), ("a/c0.0", "a", "b", "controlled")]
    assert 0 <= lines[0]["time"] - told < 0.5e9
