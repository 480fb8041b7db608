"""The Python Pulsar client's own ceiling: unthrottled ``send_async`` with a counting callback.

Nothing is recorded and nothing is consumed, so this is the most any Python
load generator built on ``pulsar-client`` can publish from one process. The
load benchmark prints it beside pulsar-perf and geo-recon's recording worker,
so the gap between them can be split into "the client" and "the recording".

Run as ``python -m geo_recon.workload.raw_client URL TOPIC SECONDS SIZE``;
prints one JSON object (sent, acked, failed, seconds, rate).
"""

from __future__ import annotations

import json
import sys
import time


def measure(service_url: str, topic: str, *, seconds: float, size: int, max_outstanding: int = 1000,
            batch_delay_ms: int = 1) -> dict:
    """The client's settings are the recording worker's (batching, its delay, the pending bound,
    blocking when full, one I/O thread per producer process), and so is the window of unacknowledged
    sends (a C-level queue of tokens): the two differ only by what the worker records."""
    import queue

    import pulsar

    client = pulsar.Client(service_url, operation_timeout_seconds=30, io_threads=1, message_listener_threads=1)
    try:
        producer = client.create_producer(topic, batching_enabled=True, block_if_queue_full=True,
                                          max_pending_messages=max_outstanding,
                                          batching_max_publish_delay_ms=batch_delay_ms)
        payload = b"x" * size
        window: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(max_outstanding):
            window.put(None)
        counts = {"acked": 0, "failed": 0}

        def done(result, _msg_id) -> None:
            if result == pulsar.Result.Ok:
                counts["acked"] += 1
            else:
                counts["failed"] += 1
            window.put(None)

        sent = 0
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            for _ in range(100):
                window.get()
                producer.send_async(payload, done)
            sent += 100
        producer.flush()
        elapsed = time.monotonic() - started
        return {"sent": sent, "acked": counts["acked"], "failed": counts["failed"], "seconds": round(elapsed, 3),
                "rate": counts["acked"] / elapsed}
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        print("usage: python -m geo_recon.workload.raw_client SERVICE_URL TOPIC SECONDS SIZE", file=sys.stderr)
        return 2
    url, topic, seconds, size = args[0], args[1], float(args[2]), int(args[3])
    print(json.dumps(measure(url, topic, seconds=seconds, size=size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
