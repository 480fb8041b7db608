"""The Python Pulsar client's own ceiling: unthrottled ``send_async`` with a counting callback.

Nothing is recorded and nothing is consumed, so this is the most any Python
load generator built on ``pulsar-client`` can publish from one process. The
load benchmark prints it beside pulsar-perf and geo-recon's recording worker,
so the gap between them can be split into "the client" and "the recording".

Run as ``python -m geo_recon.workload.raw_client URL TOPIC SECONDS SIZE [--identity] [--plain]``;
prints one JSON object (sent, acked, failed, seconds, rate). ``--identity``: every
message carries the recording worker's identity (one property and a key), so
the two runs split the recorder's cost into "what it sends" and "what it records".
Its callback keeps the client's thread's Python state, as the recording worker's
do (see threadstate: 3 to 4 times the rate of the client as commonly used);
``--plain`` leaves that out, to show the client as most applications run it.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from geo_recon.workload import message, threadstate


def measure(service_url: str, topic: str, *, seconds: float, size: int, max_outstanding: int = 1000,
            batch_delay_ms: int = 1, identity: bool = False, keep_thread_state: bool = True) -> dict:
    """The client's settings are the recording worker's (batching, its delay, the pending bound,
    blocking when full, one I/O thread per producer process), and so is the window of unacknowledged
    sends (a C-level queue of tokens) and the way a message is built and sent (the client's C++
    binding, as :func:`message.sender`), and so is the callback thread's kept Python state: the two differ
    only by what the worker records. With ``identity`` each message also carries what the worker's do (one
    property and a key); without ``keep_thread_state`` pybind11 makes and frees a thread state a callback."""
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
        ok = pulsar.Result.Ok.value
        kept, keep = threadstate.keeper()
        ident = threading.get_ident

        def done(result, _msg_id) -> None:
            if keep_thread_state and ident() not in kept:
                keep()
            if result.value == ok:
                counts["acked"] += 1
            else:
                counts["failed"] += 1
            window.put(None)

        send = message.sender(producer, payload, "bench/p0")
        send_payload = message.payload_sender(producer, payload)
        keys = [f"k{i}" for i in range(100)]
        sent = 0
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            if identity:
                for seq in range(sent, sent + 100):
                    window.get()
                    send(seq, time.time_ns(), keys[seq % 100], done)
            else:
                for _ in range(100):
                    window.get()
                    send_payload(done)
            sent += 100
        producer.flush()
        elapsed = time.monotonic() - started
        return {"sent": sent, "acked": counts["acked"], "failed": counts["failed"], "seconds": round(elapsed, 3),
                "rate": counts["acked"] / elapsed}
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    identity, plain = "--identity" in args, "--plain" in args
    args = [a for a in args if a not in ("--identity", "--plain")]
    if len(args) != 4:
        print("usage: python -m geo_recon.workload.raw_client SERVICE_URL TOPIC SECONDS SIZE [--identity] [--plain]",
              file=sys.stderr)
        return 2
    url, topic, seconds, size = args[0], args[1], float(args[2]), int(args[3])
    print(json.dumps(measure(url, topic, seconds=seconds, size=size, identity=identity, keep_thread_state=not plain)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
