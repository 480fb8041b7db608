"""The progress file: the reporter thread and run()'s last write must not trip over each other."""

from __future__ import annotations

import json
import threading

from geo_recon.workload.spec import WorkloadSpec
from geo_recon.workload.worker import Worker, WorkerConfig


def test_progress_written_from_several_threads_at_once_is_never_lost(tmp_path):
    # CI once lost a consume worker here: two writers shared the temporary file and the second's rename found none
    cfg = WorkerConfig(run_id="r", region="a", regions=["a", "b"], service_url="pulsar://x", admin_url="http://x",
                       topics=["t"], workload=WorkloadSpec(), start_at_ns=0, run_dir=str(tmp_path))
    worker = Worker(cfg, role="consume")
    failures: list[BaseException] = []

    def write_many() -> None:
        try:
            for _ in range(300):
                worker._write_progress()
        except BaseException as exc:  # noqa: BLE001 - the test reports what a writer hit
            failures.append(exc)

    threads = [threading.Thread(target=write_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    worker.writer.close()
    assert failures == []
    assert json.loads(worker.progress_path.read_text())["region"] == "a"
