"""CPU microseconds a message: the bare Python client against the recording worker's producer loop.

    ip netns exec gr-LAB-a .venv/bin/python scripts/bench-recorder-cpu.py pulsar://IP:PORT bare 8
    ip netns exec gr-LAB-a .venv/bin/python scripts/bench-recorder-cpu.py pulsar://IP:PORT bare-id 8
    ip netns exec gr-LAB-a .venv/bin/python scripts/bench-recorder-cpu.py pulsar://IP:PORT recorder 8 jsonl
    ip netns exec gr-LAB-a .venv/bin/python scripts/bench-recorder-cpu.py pulsar://IP:PORT recorder 8 arrow

    ip netns exec gr-LAB-a .venv/bin/python scripts/bench-recorder-cpu.py pulsar://IP:PORT bare-kept 8
    ip netns exec gr-LAB-a .venv/bin/python scripts/bench-recorder-cpu.py pulsar://IP:PORT bare-id-kept 8

One variant a process, unthrottled for SECONDS on a fresh topic of public/default: ``bare`` is
``raw_client.measure`` (payload only), ``bare-id`` the same with the recorder's messages (one property and a
key), ``recorder`` the worker's real ``_produce`` (one producer, its history in a temporary directory).
``bare`` and ``bare-id`` make a Python thread state per callback (the client as commonly used);
``bare-kept`` and ``bare-id-kept`` are ``bare`` and ``bare-id`` with their callback keeping the client's thread's
Python state as the recorder's does (``workload/threadstate.py``): ``bare-kept`` is ``bench load``'s reference
(payload only), ``bare-id-kept`` the like-with-like baseline (the recorder's messages).
Prints one JSON line: rate, CPU-us a message (user+system of the whole process, client threads included),
load average. Rates on a shared machine are noisy: compare CPU-us, and interleave variants.
``py-spy record --native --threads -- <this command>`` shows where the time goes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def recorder(url: str, topic: str, seconds: float, history_format: str) -> tuple[int, float, float]:
    import pulsar

    from geo_recon.workload.spec import WorkloadSpec
    from geo_recon.workload.worker import Worker, WorkerConfig, _few_collections

    workload = WorkloadSpec(rate=1e7, duration_s=seconds, message_size=100, batching=True, max_outstanding=1000,
                            batch_delay_ms=1.0, history_format=history_format)  # type: ignore[arg-type]
    run_dir = tempfile.mkdtemp(prefix="geo-recon-cpu-")  # removed after the run: ~150 MB of history a run
    config = WorkerConfig(run_id="cpu", region="a", regions=["a"], service_url=url, admin_url="http://unused",
                          topics=[topic], workload=workload, start_at_ns=time.time_ns(), run_dir=run_dir)
    worker = Worker(config, role="produce")
    worker.result_ok = pulsar.Result.Ok.value
    client = pulsar.Client(url, operation_timeout_seconds=30, io_threads=1, message_listener_threads=1,
                           logger=pulsar.FileLogger(pulsar.LoggerLevel.Warn, os.devnull))
    try:
        cpu, started = _cpu(), time.monotonic()
        worker.cfg.start_at_ns = time.time_ns()
        with _few_collections():
            worker._produce(client, 0, topic, 1e7)
        worker.writer.close()
        return worker.counters.snapshot()["acked"], time.monotonic() - started, _cpu() - cpu
    finally:
        client.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[1] not in ("bare", "bare-kept", "bare-id", "bare-id-kept", "recorder"):
        print(__doc__, file=sys.stderr)
        return 2
    url, variant, seconds = argv[0], argv[1], float(argv[2])
    history_format = argv[3] if len(argv) > 3 else "jsonl"
    topic = f"persistent://public/default/cpu-{variant}-{time.time_ns()}"
    if variant == "recorder":
        acked, elapsed, cpu = recorder(url, topic, seconds, history_format)
    else:
        from geo_recon.workload import raw_client

        cpu0 = _cpu()
        out = raw_client.measure(url, topic, seconds=seconds, size=100, identity=variant.startswith("bare-id"),
                                 keep_thread_state=variant.endswith("-kept"))
        acked, elapsed, cpu = out["acked"], out["seconds"], _cpu() - cpu0
    print(json.dumps({"variant": variant, "history_format": history_format if variant == "recorder" else None,
                      "rate": round(acked / elapsed), "cpu_us": round(cpu / max(acked, 1) * 1e6, 2),
                      "load": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
