"""A producer's end: sends with no callback are counted as stuck, flush and close failures are reported."""

from __future__ import annotations

import threading

from geo_recon.workload.spec import WorkloadSpec
from geo_recon.workload.worker import Worker, WorkerConfig


class _Producer:
    def __init__(self, flush_error: Exception | None = None, close_error: Exception | None = None):
        self.flush_error, self.close_error, self.closed = flush_error, close_error, False

    def flush(self) -> None:
        if self.flush_error:
            raise self.flush_error

    def close(self) -> None:
        self.closed = True
        if self.close_error:
            raise self.close_error


class Timeout(Exception):  # named as the client's send timeout
    pass


def _worker(tmp_path) -> Worker:
    cfg = WorkerConfig(run_id="r", region="a", regions=["a", "b"], service_url="pulsar://x", admin_url="http://x",
                       topics=["t"], workload=WorkloadSpec(max_outstanding=5, send_timeout_ms=0),
                       start_at_ns=0, run_dir=str(tmp_path))
    return Worker(cfg, role="produce")


def test_sends_without_a_callback_are_stuck_and_failures_are_words(tmp_path, monkeypatch):
    monkeypatch.setattr("geo_recon.workload.worker.time.monotonic", iter(range(0, 10_000, 10)).__next__)  # deadline at 30: two more tries
    worker = _worker(tmp_path)
    outstanding = threading.BoundedSemaphore(5)
    for _ in range(3):  # three sends still waiting for their callback
        outstanding.acquire()
    producer = _Producer(flush_error=RuntimeError("connection closed"), close_error=ValueError("already closed"))
    worker.finish_sends(producer, outstanding, "a/p0")
    assert producer.closed and worker.counters.stuck == 3
    assert worker.errors == ["a/p0: flush failed: RuntimeError: connection closed",
                             "a/p0: close failed: ValueError: already closed"]
    assert worker.counters.snapshot()["stuck"] == 3
    worker.writer.close()


def test_a_flush_that_times_out_is_no_worker_error(tmp_path):
    worker = _worker(tmp_path)
    worker.finish_sends(_Producer(flush_error=Timeout()), threading.BoundedSemaphore(5), "a/p0")
    assert worker.errors == [] and worker.counters.stuck == 0
    worker.writer.close()
