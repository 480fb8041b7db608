"""`geo-recon run` on a compose lab, against a fake Docker engine and a fake Toxiproxy: the exact commands,
the run directory it leaves, and that the lab is taken down on success, on errors and on Ctrl-C.

No Docker engine runs on the machines these tests run on, so there is no integration test of this path.
"""

import json
import threading
import time
from pathlib import Path

import pytest

from geo_recon import run as run_mod
from geo_recon.deploy import compose
from geo_recon.deploy.topology import LabSpec
from geo_recon.errors import ConfigError, EnvironmentProblem
from geo_recon.faults.spec import FaultSpec
from geo_recon.scenario import Expectations, LabOptions, Scenario, Topology
from geo_recon.workload.spec import WorkloadSpec
from tests.unit.compose_fakes import NO_DAEMON, FakeEngine, FakeToxiproxy

SPEC = LabSpec(regions=("a", "b"), scheme="async", name="t2")
LAB = compose.compose_lab(SPEC)
PS = ["--profile", "workers", "ps", "--all", "--format", "json"]  # every service, workers too
LAB_PS = ["ps", "--all", "--format", "json"]  # the lab's services, while it comes up
VERIFY_ARGS = ["--clusters", "/config/clusters.yaml", "--scheme", "async", "--tenant", "geo", "--namespace", "recon",
               "--no-dedup", "--persistence", "2/2/2"]


def _scenario(faults=(), warmup_s=0.0, **topology):
    return Scenario(name="cmp", seed=3, topology=Topology(backend="compose", regions=["a", "b"],
                                                         lab=LabOptions(name="t2"), **topology),
                    workload=WorkloadSpec(rate=10, duration_s=2, warmup_s=warmup_s), faults=list(faults),
                    # the fake workers write their whole history at start: nothing is recorded after a heal
                    expectations=Expectations(max_recovery_s=None))


def _sleep(seconds):
    time.sleep(0.001)  # polls come quickly, without spinning


def _hooks(engine, toxiproxy, sleep=_sleep):
    return run_mod.ComposeHooks(runner=engine, http=toxiproxy, sleep=sleep, start_delay_s=0.0, poll_s=0.0,
                                images=lambda progress: None)


def _run(tmp_path, scenario, engine, toxiproxy, sleep=_sleep, **kwargs):
    messages = []
    outcome = run_mod.run_scenario(scenario, "async", runs_root=tmp_path / "runs", progress=messages.append,
                                   compose_hooks=_hooks(engine, toxiproxy, sleep), **kwargs)
    return outcome, messages


def _events(run_dir):
    lines = [json.loads(x) for x in (run_dir / "history" / "controller.jsonl").read_text().splitlines()]
    for line in lines:
        assert isinstance(line.pop("time"), int)
    return lines


def _without_ps(calls):
    return [c for c in calls if "ps" not in c]


@pytest.fixture
def quick_report(monkeypatch):
    """The report's plots take a second; only the full lifecycle test renders them."""
    import geo_recon.report

    monkeypatch.setattr(geo_recon.report, "render_run", lambda run_dir: [])


# ---------------------------------------------------------------- no engine: nothing at all


def test_without_a_docker_engine_nothing_runs_and_no_run_directory_is_created(tmp_path):
    engine = FakeEngine(LAB, engine=False)
    toxiproxy = FakeToxiproxy(LAB)
    with pytest.raises(EnvironmentProblem) as caught:
        _run(tmp_path, _scenario([FaultSpec(kind="kill", target="b", at_s=0, duration_s=1)]), engine, toxiproxy)
    assert str(caught.value) == f"no Docker engine is running here (docker info: {NO_DAEMON}); use --backend local"
    assert engine.calls == [["docker", "info", "--format", "{{.ServerVersion}}"]]
    assert toxiproxy.requests == []
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("fault, message", [
    (FaultSpec(kind="bandwidth", rate_kbps=100, at_s=0), "fault f1 (bandwidth 100 KB/s between all): bandwidth "
                                                         "faults are not available on the compose backend"),
    (FaultSpec(kind="kill", target="a/broker", at_s=0), "fault f1 (kill a/broker): the target matches no component"),
])
def test_a_fault_compose_cannot_do_is_refused_before_the_lab_or_the_run_directory(tmp_path, fault, message):
    engine = FakeEngine(LAB)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _run(tmp_path, _scenario([fault]), engine, FakeToxiproxy(LAB))
    assert [c[:3] for c in engine.calls] == [["docker", "info", "--format"], ["docker", "compose", "version"]]
    assert not (tmp_path / "runs").exists()


def test_a_compose_dir_for_another_lab_is_refused_before_anything_starts(tmp_path):
    compose.write_project(LabSpec(regions=("a", "b"), scheme="strong", name="t2"), tmp_path / "strong")
    engine = FakeEngine(LAB)
    with pytest.raises(ConfigError, match=r"topology.compose_dir .*/strong holds the strong lab of regions a, b; "
                                          r"this run needs the async lab of regions a, b"):
        _run(tmp_path, _scenario(compose_dir=str(tmp_path / "strong")), engine, FakeToxiproxy(LAB))
    assert not engine.compose_calls() and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- the whole lifecycle


def test_a_compose_run_brings_the_lab_up_configures_loads_injects_heals_checks_and_takes_it_down(tmp_path):
    toxiproxy = FakeToxiproxy(LAB)
    faults = [FaultSpec(kind="kill", target="b", at_s=0, duration_s=0.05),
              FaultSpec(kind="latency", rtt_ms=40, at_s=0.1, duration_s=0.05)]
    # the workers finish once the last fault was healed (its toxics deleted)
    engine = FakeEngine(LAB, workers_done=lambda fake: any(r[0] == "DELETE" for r in toxiproxy.requests))
    outcome, messages = _run(tmp_path, _scenario(faults), engine, toxiproxy)

    run_dir = outcome.run_dir
    assert (outcome.met, outcome.error, outcome.exit_code) == (True, None, 0), messages
    project = run_dir / "compose"
    assert (project / "compose.yaml").is_file()  # rendered into the run directory
    base = ["docker", "compose", "-p", "geo-recon-t2-async", "-f", str(project / "compose.yaml")]
    assert engine.calls[:4] == [["docker", "info", "--format", "{{.ServerVersion}}"],
                                ["docker", "compose", "version", "--short"],
                                base + PS,  # nothing of this project is running yet
                                base + ["up", "--detach", "--force-recreate", "--renew-anon-volumes",
                                        "--remove-orphans"]]
    env_file = run_dir / "compose-workers" / "compose.env"
    calls = engine.compose_calls()
    assert _without_ps(calls) == [
        ["up", "--detach", "--force-recreate", "--renew-anon-volumes", "--remove-orphans"],
        ["--profile", "workers", "run", "--rm", "--no-deps", "-T", "a-worker", "geo-recon", "configure", *VERIFY_ARGS],
        ["--profile", "workers", "run", "--rm", "--no-deps", "-T", "a-worker", "geo-recon", "verify-config",
         *VERIFY_ARGS, "--json"],
        ["--env-file", str(env_file), "--profile", "workers", "up", "--detach", "--no-build", "--no-deps",
         "a-worker", "b-worker"],
        ["kill", "--signal", "SIGKILL", "b-standalone"],
        ["start", "b-standalone"],
        ["--profile", "workers", "logs", "--no-color", "--timestamps"],
        ["--profile", "workers", "down", "--volumes", "--remove-orphans", "--timeout", "10"]]
    # the lab's health is polled before it is configured; the kill is verified before it is healed
    assert calls[calls.index(["up", "--detach", "--force-recreate", "--renew-anon-volumes", "--remove-orphans"]) + 1] \
        == LAB_PS
    assert calls[calls.index(["kill", "--signal", "SIGKILL", "b-standalone"]) + 1] == PS
    assert calls[calls.index(["start", "b-standalone"]) + 1] == PS

    # latency: half the round trip on each stream of every a<->b proxy, read back, removed, then every proxy reset
    posts = [(url, body) for method, url, body in toxiproxy.requests if method == "POST" and body]
    assert posts[0] == ("http://127.0.0.1:20174/proxies/a_to_b_standalone_broker/toxics",
                        {"name": "geo_recon_latency_upstream", "type": "latency", "stream": "upstream",
                         "toxicity": 1.0, "attributes": {"latency": 20, "jitter": 0}})
    assert len(posts) == 8  # 2 streams x 4 proxies
    assert [r[:2] for r in toxiproxy.requests[-2:]] == [("POST", "http://127.0.0.1:20174/reset"),
                                                        ("POST", "http://127.0.0.1:20274/reset")]
    assert toxiproxy.active() == {}

    # the workers got the scenario's workload, one start time and the run directory as their history mount
    (env,) = engine.worker_env
    assert env["GEO_RECON_HISTORY"] == str(run_dir / "compose-workers")
    assert env["GEO_RECON_WORKLOAD_FILE"] == "/history/workload.json"
    assert (env["GEO_RECON_SEED"], env["GEO_RECON_TENANT"], env["GEO_RECON_NAMESPACE"]) == ("3", "geo", "recon")
    workload = json.loads((run_dir / "compose-workers" / "workload.json").read_text())
    assert (workload["rate"], workload["duration_s"]) == (10, 2)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["run_id"] == env["GEO_RECON_RUN_ID"] and run["regions"] == ["a", "b"]
    seconds, millis = env["GEO_RECON_START_AT"].split(".")
    assert run["start_at_ns"] == int(seconds) * 10**9 + int(millis) * 10**6  # the instant the workers were given
    assert run["workers"]["a"]["fate"] == run["workers"]["b"]["fate"] == "finished"
    assert run["backend"] == "compose" and run["schedule"][1]["fault"] == "latency +40 ms RTT (jitter 0) between all"

    # merged histories (as `geo-recon merge`) beside the controller's fault lines (as the local injector writes)
    assert sorted(p.name for p in (run_dir / "history").iterdir()) == ["a.jsonl", "b.jsonl", "controller.jsonl"]
    assert _events(run_dir) == [
        {"type": "fault", "phase": "start", "fault": "kill", "target": "b", "id": "f1", "regions": ["b"],
         "region_loss": True, "description": "kill b"},
        {"type": "fault", "phase": "stop", "fault": "kill", "target": "b", "id": "f1"},
        {"type": "fault", "phase": "start", "fault": "latency", "target": "*", "id": "f2", "regions": ["a", "b"],
         "description": "latency +40 ms RTT (jitter 0) between all"},
        {"type": "fault", "phase": "stop", "fault": "latency", "target": "*", "id": "f2"}]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["valid"] is True and results["regions"]["b"]["expected"] == 6
    assert json.loads((run_dir / "outcome.json").read_text())["exit_code"] == 0
    assert (run_dir / "logs" / "compose.log").read_text() == "a-standalone  | started\n"
    assert (run_dir / "report.md").is_file() and (run_dir / "verdict.json").is_file()
    assert json.loads((run_dir / "resolved.json").read_text())["versions"]["docker compose"] == "2.40.3"
    assert "== lab down" in messages


def test_a_warm_up_runs_the_workers_once_unrecorded_before_the_run(tmp_path, quick_report):
    engine = FakeEngine(LAB)
    outcome, _ = _run(tmp_path, _scenario(warmup_s=1), engine, FakeToxiproxy(LAB))
    assert outcome.met is True
    warm, real = engine.worker_env
    assert warm["GEO_RECON_HISTORY"] == str(outcome.run_dir / "warm-up") != real["GEO_RECON_HISTORY"]
    assert warm["GEO_RECON_RUN_ID"] != real["GEO_RECON_RUN_ID"]
    assert not (outcome.run_dir / "warm-up").exists()
    assert "warm-up" in outcome.phases


def test_an_existing_compose_dir_is_used_as_it_is(tmp_path, quick_report):
    compose.write_project(SPEC, tmp_path / "lab")
    engine = FakeEngine(LAB)
    outcome, _ = _run(tmp_path, _scenario(compose_dir=str(tmp_path / "lab")), engine, FakeToxiproxy(LAB))
    assert outcome.met is True
    assert not (outcome.run_dir / "compose").exists()
    assert all(c[5] == str(tmp_path / "lab" / "compose.yaml") for c in engine.calls if c[2] == "-p")


def test_keep_lab_leaves_it_running_and_says_how_to_take_it_down(tmp_path, quick_report):
    engine = FakeEngine(LAB)
    outcome, messages = _run(tmp_path, _scenario(), engine, FakeToxiproxy(LAB), keep_lab=True)
    assert outcome.met is True
    assert not engine.sent("down")
    assert f"compose lab geo-recon-t2-async left running: geo-recon compose down {outcome.run_dir / 'compose'}" \
        in messages


# ---------------------------------------------------------------- errors and Ctrl-C: the lab still goes down


def test_a_scheme_that_does_not_verify_stops_the_run_and_the_lab_goes_down(tmp_path):
    engine = FakeEngine(LAB, verify_ok=False)
    outcome, messages = _run(tmp_path, _scenario(), engine, FakeToxiproxy(LAB))
    assert (outcome.met, outcome.exit_code) == (None, 2)
    assert outcome.error == "the async scheme is not in effect: replication clusters: not replicated to a"
    assert "  FAIL [b] replication clusters: not replicated to a" in messages
    assert not engine.sent("--env-file")  # no workers
    assert engine.compose_calls()[-1] == ["--profile", "workers", "down", "--volumes", "--remove-orphans", "--timeout",
                                          "10"]
    assert not (outcome.run_dir / "results.json").exists()
    assert json.loads((outcome.run_dir / "outcome.json").read_text())["exit_code"] == 2


def test_a_lab_that_fails_to_start_is_taken_down_and_named(tmp_path):
    engine = FakeEngine(LAB, fail={"up": "dependency failed to start: container t2-a-standalone-1 is unhealthy\n"})
    outcome, _ = _run(tmp_path, _scenario(), engine, FakeToxiproxy(LAB))
    assert outcome.exit_code == 2
    assert "`docker compose up` failed for geo-recon-t2-async: dependency failed to start" in outcome.error
    assert engine.compose_calls()[-1][:4] == ["--profile", "workers", "down", "--volumes"]
    assert not engine.sent("run")


def test_a_project_that_already_has_containers_is_not_taken_over(tmp_path):
    engine = FakeEngine(LAB).lab_is_up()
    outcome, _ = _run(tmp_path, _scenario(), engine, FakeToxiproxy(LAB))
    assert outcome.error.startswith("compose project geo-recon-t2-async already has containers (toxiproxy-a, ")
    assert _without_ps(engine.compose_calls()) == []  # neither up nor down: it is someone else's lab


def test_ctrl_c_heals_the_faults_stops_the_workers_keeps_the_history_and_takes_the_lab_down(tmp_path, quick_report):
    toxiproxy = FakeToxiproxy(LAB)
    engine = FakeEngine(LAB, workers_done=lambda fake: fake.sent("--profile", "workers", "stop"))

    def sleep(seconds):  # Ctrl-C while the workers run and the partition is in effect
        if threading.current_thread() is threading.main_thread() and toxiproxy.active():
            raise KeyboardInterrupt
        time.sleep(0.001)

    partition = FaultSpec(kind="partition", groups=[["a"], ["b"]], at_s=0, duration_s=1.5)
    outcome, messages = _run(tmp_path, _scenario([partition]), engine, toxiproxy, sleep=sleep)
    assert (outcome.interrupted, outcome.exit_code, outcome.met) == (True, 130, None)
    assert toxiproxy.active() == {}
    calls = _without_ps(engine.compose_calls())
    assert calls[-3:] == [["--profile", "workers", "stop", "--timeout", "30", "a-worker", "b-worker"],
                          ["--profile", "workers", "logs", "--no-color", "--timestamps"],
                          ["--profile", "workers", "down", "--volumes", "--remove-orphans", "--timeout", "10"]]
    assert [(e["id"], e["phase"]) for e in _events(outcome.run_dir)] == [("f1", "start"), ("f1", "stop")]
    run = json.loads((outcome.run_dir / "run.json").read_text())
    assert run["interrupted"] is True
    assert (outcome.run_dir / "history" / "a.jsonl").is_file()  # what was recorded is kept and checked
    assert (outcome.run_dir / "results.json").is_file()
    assert json.loads((outcome.run_dir / "outcome.json").read_text())["interrupted"] is True


def test_a_fault_that_does_not_take_stops_the_workers_and_leaves_no_verdict(tmp_path):
    toxiproxy = FakeToxiproxy(compose.compose_lab(LabSpec(regions=("a", "b"), scheme="strong", name="t2")))
    engine = FakeEngine(LAB, workers_done=lambda fake: fake.sent("--profile", "workers", "stop"))
    outcome, _ = _run(tmp_path, _scenario([FaultSpec(kind="latency", rtt_ms=10, at_s=0, duration_s=1)]), engine,
                      toxiproxy)
    assert outcome.exit_code == 2
    assert outcome.error.startswith("f1 (latency +10 ms RTT (jitter 0) between all) inject: fault f1 (latency ")
    assert "HTTP 404" in outcome.error
    assert engine.sent("--profile", "workers", "stop") and engine.compose_calls()[-1][2] == "down"
    assert not (outcome.run_dir / "results.json").exists()
    assert Path(outcome.run_dir / "run.json").is_file()


def test_a_runs_directory_compose_cannot_be_told_about_is_named_and_the_lab_still_goes_down(tmp_path):
    engine = FakeEngine(LAB)
    messages = []
    outcome = run_mod.run_scenario(_scenario(), "async", runs_root=tmp_path / "it's", progress=messages.append,
                                   compose_hooks=_hooks(engine, FakeToxiproxy(LAB)))
    assert outcome.exit_code == 2
    assert "cannot be passed to docker compose: no quotes, backslashes or line breaks" in outcome.error
    assert not engine.sent("--env-file") and engine.compose_calls()[-1][2] == "down"
