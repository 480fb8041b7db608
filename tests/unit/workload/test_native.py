"""The native producer's build and the workload options that choose it (the binary's behaviour is
tested on the lab: tests/integration/test_workload.py runs the same checks on both drivers)."""

import json
import subprocess

import pytest
from pydantic import ValidationError

from geo_recon.errors import EnvironmentProblem
from geo_recon.workload import native
from geo_recon.workload.spec import BillingWorkload, WorkloadSpec
from geo_recon.workload.worker import WorkerConfig, history_file, stem


def test_the_build_is_named_by_its_sources_so_an_edit_rebuilds(tmp_path):
    for name in native.SOURCES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"// {name}\n")
    before = native.source_hash(tmp_path)
    (tmp_path / "main.go").write_text("// changed\n")
    assert native.source_hash(tmp_path) != before


def test_missing_sources_name_the_file(tmp_path):
    with pytest.raises(EnvironmentProblem, match=r"go\.mod"):
        native.source_hash(tmp_path)


def test_the_pinned_client_is_patched_once_and_again_when_the_patch_changes(tmp_path):
    for name in ("go.mod", "go.sum", str(native.CLIENT_PATCH)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((native.SOURCE_DIR / name).read_bytes())
    copy = native.patched_client(tmp_path)
    producer = copy / "pulsar" / "producer_partition.go"
    assert "if !sr.sendAsBatch {\n\t\tsr.mm = p.genMetadata(" in producer.read_text()
    made = producer.stat().st_mtime_ns
    assert native.patched_client(tmp_path) == copy and producer.stat().st_mtime_ns == made
    patch = tmp_path / native.CLIENT_PATCH
    patch.write_text(patch.read_text().replace("Received send request: \", sr.msg)",
                                               "Received send request: \", sr.msg) // again"))
    native.patched_client(tmp_path)
    assert 'Received send request: ", sr.msg) // again' in producer.read_text()
    patch.write_text(patch.read_text().replace("p.log.Debug(", "p.log.Nothing("))
    with pytest.raises(EnvironmentProblem, match=r"pulsar-client-go\.patch does not apply"):
        native.patched_client(tmp_path)


def test_the_native_worker_refuses_a_config_it_cannot_run(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = subprocess.run([str(native.binary()), "--config", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"{bad}: not a worker config" in proc.stderr
    cfg = WorkerConfig(run_id="r", region="a", regions=["a"], service_url="pulsar://127.0.0.1:1", admin_url="x",
                       topics=["t"], workload=WorkloadSpec(), start_at_ns=0, run_dir=str(tmp_path), part=2, parts=2)
    good = tmp_path / "c.json"
    good.write_text(cfg.model_dump_json())
    proc = subprocess.run([str(native.binary()), "--config", str(good)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "part 2 is not below parts 2" in proc.stderr


def test_processes_split_producers_and_never_share_a_file():
    assert [stem("a", "produce", k) for k in range(3)] == ["a.produce", "a.produce1", "a.produce2"]
    assert [history_file("a", "produce", k) for k in range(3)] == ["a.jsonl", "a.1.jsonl", "a.2.jsonl"]
    assert history_file("a", "consume") == "a-recv.jsonl"
    with pytest.raises(ValidationError, match="producers \\(1\\) must be at least processes \\(2\\)"):
        WorkloadSpec(processes=2)


def test_billing_stays_on_the_python_driver():
    with pytest.raises(ValidationError, match="python driver in one process"):
        WorkloadSpec(billing=BillingWorkload(), driver="go")
    assert json.loads(WorkloadSpec(driver="go").model_dump_json())["driver"] == "go"


def test_a_regions_progress_merges_every_producer_process_with_its_consumer(tmp_path):
    from geo_recon.workload.runner import read_progress

    workers = tmp_path / "workers"
    workers.mkdir()
    for name, data in {"a.produce": {"phase": "done", "sent": 3, "acked": 3},
                       "a.produce1": {"phase": "producing", "sent": 2, "acked": 1},
                       "a.consume": {"phase": "draining", "received": 4, "lag_ms_p50": 7.0}}.items():
        (workers / f"{name}.progress.json").write_text(json.dumps(data))
    a = read_progress(tmp_path, ["a"])["a"]
    assert (a["phase"], a["sent"], a["acked"], a["received"], a["lag_ms_p50"]) == ("producing", 5, 4, 4, 7.0)


def test_the_native_history_writers_own_tests_pass():
    """native/worker/history_test.go: flushes that reuse their buffers write what fresh ones would."""
    from geo_recon.deploy import pulsar_dist

    go = pulsar_dist.find_go("the native worker's tests")
    native.patched_client()  # go.mod's replace target
    proc = subprocess.run([go, "test", "-count=1", "."], cwd=native.SOURCE_DIR, env=native.go_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
