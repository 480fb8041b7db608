"""ComposeBackend: the exact `docker compose` command lines and Toxiproxy requests, with fakes for both."""

import json
import re
import subprocess

import pytest

from geo_recon.deploy import compose
from geo_recon.deploy.compose_backend import ComposeBackend, ServiceState, check_engine, parse_ps
from geo_recon.deploy.topology import LabSpec
from geo_recon.errors import ConfigError, EnvironmentProblem, LabError
from tests.unit.compose_fakes import FakeToxiproxy

STRONG = LabSpec(regions=("a", "b"), scheme="strong", name="t2")
ASYNC3 = LabSpec(regions=("a", "b", "c"), scheme="async", name="t3")
NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def _done(argv, code=0, out="", err=""):
    return subprocess.CompletedProcess(list(argv), code, out, err)


def _ps(**services):
    """NDJSON as `docker compose ps --format json` prints it: name=(state, health[, exit code])."""
    rows = []
    for name, (state, health, *code) in services.items():
        rows.append(json.dumps({"Service": name.replace("_", "-"), "State": state, "Health": health,
                                "ExitCode": code[0] if code else 0, "Name": f"p-{name}-1"}))
    return "\n".join(rows) + "\n"


def _healthy(lab, **overrides):
    states = {s.replace("-", "_"): ("running", "healthy") for s in lab.long_running}
    states.update({s.replace("-", "_"): ("exited", "", 0) for s in lab.one_shots})
    states.update(overrides)
    return _ps(**states)


class FakeDocker:
    """A scripted `docker`: an engine (or not), Compose v2 (or not), and `ps` answers in turn."""

    def __init__(self, *, info=(0, "28.2.2\n", ""), compose_version=(0, "2.40.3\n", ""), ps=(), fail=None):
        self.info, self.compose_version = info, compose_version
        self.ps = list(ps)
        self.fail = fail or {}
        self.calls = []

    def __call__(self, argv, timeout):
        argv = list(argv)
        self.calls.append(argv)
        if argv[:2] == ["docker", "info"]:
            return _done(argv, *self.info)
        if argv[:3] == ["docker", "compose", "version"]:
            return _done(argv, *self.compose_version)
        rest = argv[6:]
        if rest[:1] == ["--env-file"]:
            rest = rest[2:]
        sub = next(a for a in rest if not a.startswith("-") and a != "workers")
        if sub in self.fail:
            return _done(argv, 1, "", self.fail[sub])
        if sub == "ps":
            return _done(argv, 0, self.ps.pop(0) if len(self.ps) > 1 else self.ps[0])
        return _done(argv, 0)

    def compose_calls(self):
        return [c[6:] for c in self.calls if c[:3] == ["docker", "compose", "-p"]]


def _backend(tmp_path, spec=STRONG, docker=None, http=None, **kwargs):
    compose.write_project(spec, tmp_path / "lab")
    docker = docker or FakeDocker(ps=[_healthy(compose.compose_lab(spec))])
    lab = compose.compose_lab(spec)
    http = http or FakeToxiproxy(lab)
    return ComposeBackend(tmp_path / "lab", runner=docker, http=http, sleep=lambda s: None, **kwargs), docker, http


# ---------------------------------------------------------------- no engine: nothing happens


OPERATIONS = {
    "up": lambda b: b.up(),
    "down": lambda b: b.down(),
    "status": lambda b: b.status(),
    "kill": lambda b: b.kill("a/broker"),
    "pause": lambda b: b.pause("b/bookie"),
    "latency": lambda b: b.latency("a", "b", 100),
    "partition": lambda b: b.partition("a", "b"),
    "heal": lambda b: b.heal(),
    "workers": lambda b: b.start_workers(),
    "run": lambda b: b.run_tool("a", "status"),
    "run result": lambda b: b.run_tool_result("a", "status"),
    "stop": lambda b: b.stop("a/broker"),
    "build": lambda b: b.build_workers(),
    "stop workers": lambda b: b.stop_workers(),
    "logs": lambda b: b.logs(),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_without_a_docker_engine_only_docker_info_runs_and_the_error_says_so(tmp_path, operation):
    docker = FakeDocker(info=(1, "", NO_DAEMON + "\n"))
    backend, _, http = _backend(tmp_path, docker=docker)
    with pytest.raises(EnvironmentProblem) as caught:
        OPERATIONS[operation](backend)
    assert str(caught.value) == (f"no Docker engine is running here (docker info: {NO_DAEMON}); "
                                 "use --backend local")
    assert docker.calls == [["docker", "info", "--format", "{{.ServerVersion}}"]]
    assert http.requests == []


def test_a_missing_docker_client_or_compose_plugin_is_named():
    with pytest.raises(EnvironmentProblem, match=r"no docker client is installed here \(docker info: docker: "):
        check_engine(FakeDocker(info=(127, "", "docker: command not found")))
    missing = FakeDocker(compose_version=(1, "", "docker: unknown command: docker compose\n"))
    with pytest.raises(EnvironmentProblem, match=r"Docker Compose v2 is not installed here \(docker compose version: "
                                                 r"docker: unknown command: docker compose\)"):
        check_engine(missing)
    assert check_engine(FakeDocker()) == "2.40.3"


def test_the_engine_is_checked_once_per_backend(tmp_path):
    backend, docker, _ = _backend(tmp_path)
    backend.kill("a/broker")
    backend.start("a/broker")
    assert [c[:2] for c in docker.calls].count(["docker", "info"]) == 1


# ---------------------------------------------------------------- up and down


def test_up_starts_a_fresh_lab_and_waits_for_every_health_check_and_one_shot(tmp_path):
    lab = compose.compose_lab(STRONG)
    starting = _healthy(lab, a_broker=("running", "starting"), bookie_racks=("running", ""))
    docker = FakeDocker(ps=[starting, starting, _healthy(lab)])
    messages = []
    backend, _, _ = _backend(tmp_path, docker=docker, progress=messages.append)
    endpoints = backend.up(timeout=60)
    base = ["docker", "compose", "-p", "geo-recon-t2-strong", "-f", str(tmp_path / "lab" / "compose.yaml")]
    assert docker.calls[2] == base + ["up", "--detach", "--force-recreate", "--renew-anon-volumes", "--remove-orphans"]
    assert docker.calls[3:] == [base + ["ps", "--all", "--format", "json"]] * 3
    assert [(e.region, e.cluster, e.service_url, e.admin_url) for e in endpoints] == [
        ("a", "geo", "pulsar://127.0.0.1:20150", "http://127.0.0.1:20180"),
        ("b", "geo", "pulsar://127.0.0.1:20250", "http://127.0.0.1:20280")]
    assert "  a-broker healthy" in messages and "  bookie-racks done" in messages
    assert messages.index("  a-broker healthy") > messages.index("  b-broker healthy")


@pytest.mark.parametrize("ps, reason", [
    ({"bookie_racks": ("exited", "", 1)}, "bookie-racks failed with exit code 1"),
    ({"b_bookie": ("exited", "", 137)}, "b-bookie exited with code 137"),
    ({"zk_zookeeper": ("running", "unhealthy")}, "zk-zookeeper is unhealthy"),
])
def test_up_stops_at_the_first_failure_names_it_and_takes_the_lab_down(tmp_path, ps, reason):
    lab = compose.compose_lab(STRONG)
    docker = FakeDocker(ps=[_healthy(lab, **ps)])
    backend, _, _ = _backend(tmp_path, docker=docker)
    with pytest.raises(LabError) as caught:
        backend.up(timeout=60)
    assert reason in str(caught.value)
    assert f"logs: docker compose -p geo-recon-t2-strong logs {reason.split()[0]}" in str(caught.value)
    assert docker.compose_calls()[-1] == ["--profile", "workers", "down", "--volumes", "--remove-orphans",
                                          "--timeout", "10"]


def test_up_gives_up_after_its_timeout_naming_what_it_still_waits_for(tmp_path):
    lab = compose.compose_lab(STRONG)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    docker = FakeDocker(ps=[_healthy(lab, a_broker=("running", "starting"), metadata_setup=("running", ""))])
    compose.write_project(STRONG, tmp_path / "lab")
    backend = ComposeBackend(tmp_path / "lab", runner=docker, http=FakeToxiproxy(lab), sleep=sleep,
                             clock=lambda: now[0])
    with pytest.raises(LabError, match=r"not ready within 30s; still waiting for a-broker \(running, starting\), "
                                       r"metadata-setup \(running\)"):
        backend.up(timeout=30, keep_on_failure=True)
    assert 30 <= now[0] <= 34
    assert "down" not in docker.compose_calls()[-1]  # kept for inspection


def test_up_fails_with_composes_own_words_when_compose_up_fails(tmp_path):
    docker = FakeDocker(fail={"up": "pull access denied\ndependency failed to start: container x is unhealthy\n"})
    backend, _, _ = _backend(tmp_path, docker=docker)
    with pytest.raises(LabError, match=r"`docker compose up` failed for geo-recon-t2-strong: pull access denied \| "
                                       r"dependency failed to start"):
        backend.up()


def test_up_warns_when_the_directory_differs_from_the_current_render(tmp_path):
    messages = []
    backend, _, _ = _backend(tmp_path, progress=messages.append)
    (tmp_path / "lab" / "toxiproxy" / "a.json").write_text("[]\n")
    backend.up()
    assert any(m.startswith("warning: 1 files in") and "toxiproxy/a.json" in m for m in messages)


def test_down_removes_the_workers_too_and_status_lists_every_service(tmp_path):
    lab = compose.compose_lab(STRONG)
    docker = FakeDocker(ps=[_healthy(lab, a_broker=("paused", "healthy"))])
    backend, _, _ = _backend(tmp_path, docker=docker)
    backend.down()
    rows = backend.status()
    assert docker.compose_calls() == [
        ["--profile", "workers", "down", "--volumes", "--remove-orphans", "--timeout", "10"],
        ["--profile", "workers", "ps", "--all", "--format", "json"]]
    assert [r.service for r in rows] == [*lab.long_running, *lab.one_shots, "a-worker", "b-worker"]
    assert ServiceState("a-broker", "paused", "healthy", 0) in rows
    assert rows[-1] == ServiceState("b-worker", "missing", "", 0)


def test_workers_are_built_and_started_without_touching_the_lab(tmp_path):
    backend, docker, _ = _backend(tmp_path)
    backend.start_workers()
    assert docker.compose_calls() == [["--profile", "workers", "up", "--detach", "--build", "--no-deps",
                                       "a-worker", "b-worker"]]


def test_workers_can_be_built_first_then_started_with_an_env_file_and_stopped_gracefully(tmp_path):
    backend, docker, _ = _backend(tmp_path)
    backend.build_workers()
    backend.start_workers(env_file=tmp_path / "run.env", build=False)
    backend.stop_workers(timeout_s=20)
    assert docker.compose_calls() == [
        ["--profile", "workers", "build", "a-worker", "b-worker"],
        ["--env-file", str(tmp_path / "run.env"), "--profile", "workers", "up", "--detach", "--no-build", "--no-deps",
         "a-worker", "b-worker"],
        ["--profile", "workers", "stop", "--timeout", "20", "a-worker", "b-worker"]]


def test_a_tools_exit_code_and_output_can_be_read_without_an_error(tmp_path):
    docker = FakeDocker(fail={"run": "error: the async scheme is NOT in effect\n"})
    backend, _, _ = _backend(tmp_path, docker=docker)
    proc = backend.run_tool_result("a", "verify-config", "--json")
    assert (proc.returncode, proc.stderr) == (1, "error: the async scheme is NOT in effect\n")
    with pytest.raises(LabError, match=r"`docker compose run` failed for geo-recon-t2-strong: error: the async "):
        backend.run_tool("a", "verify-config")


def test_logs_are_read_from_every_container(tmp_path):
    backend, docker, _ = _backend(tmp_path)
    backend.logs()
    assert docker.compose_calls() == [["--profile", "workers", "logs", "--no-color", "--timestamps"]]


def test_geo_recon_commands_run_inside_a_regions_network(tmp_path):
    backend, docker, _ = _backend(tmp_path)
    backend.run_tool("b", "configure", "--clusters", "/config/clusters.yaml", "--scheme", "strong")
    assert docker.compose_calls() == [["--profile", "workers", "run", "--rm", "--no-deps", "-T", "b-worker",
                                       "geo-recon", "configure", "--clusters", "/config/clusters.yaml",
                                       "--scheme", "strong"]]
    with pytest.raises(ConfigError, match="unknown region 'zk'"):
        backend.run_tool("zk", "status")


def test_compose_ps_output_is_read_in_both_formats():
    array = json.dumps([{"Service": "a", "State": "running", "Health": "healthy", "ExitCode": 0},
                        {"Service": "b", "State": "exited", "Health": "", "ExitCode": 3}])
    lines = "\n".join(json.dumps(row) for row in json.loads(array))
    assert parse_ps(array) == parse_ps(lines) == {"a": ServiceState("a", "running", "healthy", 0),
                                                  "b": ServiceState("b", "exited", "", 3)}
    assert parse_ps("") == {}
    with pytest.raises(LabError, match="could not read `docker compose ps` output"):
        parse_ps("{broken")


# ---------------------------------------------------------------- process faults


def test_process_faults_are_compose_commands_on_the_components_service(tmp_path):
    backend, docker, _ = _backend(tmp_path)
    backend.kill("a/broker")
    backend.start("a-broker")
    backend.pause("zk/zookeeper")
    backend.unpause("zk/zookeeper")
    backend.kill("toxiproxy-b")
    backend.stop("b/bookie", timeout_s=15)
    assert docker.compose_calls() == [["kill", "--signal", "SIGKILL", "a-broker"], ["start", "a-broker"],
                                      ["pause", "zk-zookeeper"], ["unpause", "zk-zookeeper"],
                                      ["kill", "--signal", "SIGKILL", "toxiproxy-b"],
                                      ["stop", "--timeout", "15", "b-bookie"]]


def test_an_unknown_component_is_refused_with_the_known_ones(tmp_path):
    backend, docker, _ = _backend(tmp_path)
    with pytest.raises(ConfigError, match="no component 'a/standalone' in compose lab geo-recon-t2-strong: expected "
                                          "one of zk/zookeeper, a/bookie, a/broker, b/bookie, b/broker"):
        backend.kill("a/standalone")
    assert docker.compose_calls() == []


# ---------------------------------------------------------------- network faults


def test_latency_adds_half_the_rtt_on_each_stream_of_both_directions(tmp_path):
    backend, _, toxiproxy = _backend(tmp_path, spec=ASYNC3)
    changed = backend.latency("a", "c", 101, jitter_ms=10)
    assert changed == ["a_to_c_standalone_broker", "a_to_c_standalone_web",
                       "c_to_a_standalone_broker", "c_to_a_standalone_web"]
    assert set(toxiproxy.toxics) == {("a", "a_to_c_standalone_broker"), ("a", "a_to_c_standalone_web"),
                                     ("c", "c_to_a_standalone_broker"), ("c", "c_to_a_standalone_web")}
    for toxics in toxiproxy.toxics.values():
        assert toxics == {
            "geo_recon_latency_upstream": {"name": "geo_recon_latency_upstream", "type": "latency",
                                           "stream": "upstream", "toxicity": 1.0,
                                           "attributes": {"latency": 50, "jitter": 5}},
            "geo_recon_latency_downstream": {"name": "geo_recon_latency_downstream", "type": "latency",
                                             "stream": "downstream", "toxicity": 1.0,
                                             "attributes": {"latency": 51, "jitter": 5}}}
    first = toxiproxy.requests[0]
    assert first[:2] == ("POST", "http://127.0.0.1:20174/proxies/a_to_c_standalone_broker/toxics")


def test_latency_can_be_one_way_changed_and_removed(tmp_path):
    backend, _, toxiproxy = _backend(tmp_path, spec=ASYNC3)
    assert backend.latency("b", "a", 40, symmetric=False) == ["b_to_a_standalone_broker", "b_to_a_standalone_web"]
    backend.latency("b", "a", 200, symmetric=False)  # already there: updated, not duplicated
    toxics = toxiproxy.toxics[("b", "b_to_a_standalone_web")]
    assert toxics["geo_recon_latency_upstream"]["attributes"] == {"latency": 100, "jitter": 0}
    assert len(toxics) == 2
    backend.clear_latency("b", "a", symmetric=False)
    assert all(not t for t in toxiproxy.toxics.values())
    backend.clear_latency("b", "a")  # removing what is not there is fine


def test_a_toxic_that_does_not_read_back_as_set_is_an_error(tmp_path):
    lab = compose.compose_lab(ASYNC3)
    backend, _, _ = _backend(tmp_path, spec=ASYNC3, http=FakeToxiproxy(lab, honest=False))
    with pytest.raises(LabError, match=r"toxiproxy-a: toxic geo_recon_latency_upstream on a_to_b_standalone_broker "
                                       r"reads back as \{'latency': 0, 'jitter': 0\}, expected"):
        backend.latency("a", "b", 100)


def test_a_partition_black_holes_both_streams_and_heals(tmp_path):
    backend, _, toxiproxy = _backend(tmp_path)
    changed = backend.partition("b", "zk")
    assert changed == ["b_to_zk_zookeeper_client"]  # the witness opens no connections: nothing to add back
    toxics = toxiproxy.toxics[("b", "b_to_zk_zookeeper_client")]
    assert {n: (t["type"], t["stream"], t["attributes"]) for n, t in toxics.items()} == {
        "geo_recon_partition_upstream": ("timeout", "upstream", {"timeout": 0}),
        "geo_recon_partition_downstream": ("timeout", "downstream", {"timeout": 0})}
    backend.heal_partition("b", "zk")
    assert not toxiproxy.toxics[("b", "b_to_zk_zookeeper_client")]


def test_heal_resets_every_regions_toxiproxy(tmp_path):
    backend, _, toxiproxy = _backend(tmp_path, spec=ASYNC3)
    backend.partition("a", "b")
    backend.latency("c", "a", 30)
    toxiproxy.requests.clear()
    backend.heal()
    assert toxiproxy.requests == [("POST", f"http://127.0.0.1:20{i}74/reset", None) for i in (1, 2, 3)]
    assert not toxiproxy.toxics


@pytest.mark.parametrize("src, dst, message", [
    ("zk", "a", "unknown region 'zk': expected one of a, b"),
    ("a", "a", "unknown destination 'a' for region 'a': expected one of b, zk"),
    ("a", "c", "unknown destination 'c'"),
])
def test_links_must_join_a_region_to_another_site(tmp_path, src, dst, message):
    backend, _, toxiproxy = _backend(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        backend.latency(src, dst, 10)
    assert toxiproxy.requests == []
