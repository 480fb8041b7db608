"""What the shape of a message costs the bare Python client, before anything is recorded.

    ip netns exec gr-LAB-a .venv/bin/python scripts/bench-message-shapes.py pulsar://IP:PORT SECONDS ROUNDS

Each round sends, one after the other, each on a fresh topic of geo/recon (the lab's namespace once a scheme
is configured), unthrottled for SECONDS, as ``bench load``'s reference client does (the client's C++
binding, batching with a 1 ms delay, 1000 sends pending, its callback thread's Python state kept):

- ``payload``: the 100-byte payload alone (``bench load``'s reference);
- ``key``: the payload and a key, as the workload's messages carry (Key_Shared routing);
- ``identity+key``: the recorder's message today, the ``gr.id`` property and a key;
- ``identity-in-payload+key``: the identity written into the payload's first bytes instead, and a key;
- ``identity-in-payload``: the same without the key.

A pulsar-perf-free warm-up of the broker (one ``payload`` run, not counted) comes first. Prints a JSON line a
run (rate, CPU-us a message of this process, client threads included), then each shape's median rate and
its ratio to ``payload``'s median. Rates on 2 cores swing with the brokers' load: read the medians.
"""

from __future__ import annotations

import json
import queue
import resource
import statistics
import sys
import threading
import time

SHAPES = ("payload", "key", "identity+key", "identity-in-payload+key", "identity-in-payload")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(url: str, shape: str, seconds: float, size: int = 100) -> dict:
    import _pulsar
    import pulsar

    from geo_recon.workload import message, threadstate

    client = pulsar.Client(url, operation_timeout_seconds=30, io_threads=1, message_listener_threads=1,
                           logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        producer = client.create_producer(f"persistent://geo/recon/shape-{time.time_ns()}", batching_enabled=True,
                                          block_if_queue_full=True, max_pending_messages=1000,
                                          batching_max_publish_delay_ms=1)
        builder, send_async = _pulsar.MessageBuilder, producer._producer.send_async
        window: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(1000):
            window.put(None)
        acked = [0]
        ok, (kept, keep), ident = pulsar.Result.Ok.value, threadstate.keeper(), threading.get_ident

        def done(result, _msg_id) -> None:
            if ident() not in kept:
                keep()
            if result.value == ok:
                acked[0] += 1
            window.put(None)

        payload, keys, name, name_bytes = b"x" * size, [f"k{i}" for i in range(100)], "bench/p0", b"bench/p0 "
        time_ns, take = time.time_ns, window.get
        cpu, started = _cpu(), time.monotonic()
        sent, deadline = 0, started + seconds
        while time.monotonic() < deadline:
            for seq in range(sent, sent + 100):
                take()
                if shape == "payload":
                    m = builder().content(payload)
                elif shape == "key":
                    m = builder().content(payload).partition_key(keys[seq % 100])
                elif shape == "identity+key":
                    m = builder().content(payload).property(message.ID, f"{name} {seq} {time_ns()}") \
                        .partition_key(keys[seq % 100])
                else:
                    head = b"%b%d %d " % (name_bytes, seq, time_ns())
                    m = builder().content(head + payload[len(head):])
                    if shape == "identity-in-payload+key":
                        m.partition_key(keys[seq % 100])
                send_async(m.build(), done)
            sent += 100
        producer.flush()
        elapsed = time.monotonic() - started
        return {"shape": shape, "rate": round(acked[0] / elapsed), "cpu_us": round((_cpu() - cpu) / acked[0] * 1e6, 2)}
    finally:
        client.close()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    url, seconds, rounds = argv[0], float(argv[1]), int(argv[2])
    measure(url, "payload", seconds)  # the broker's JIT
    rates: dict[str, list[int]] = {shape: [] for shape in SHAPES}
    for _ in range(rounds):
        for shape in SHAPES:
            run = measure(url, shape, seconds)
            rates[shape].append(run["rate"])
            print(json.dumps(run), flush=True)
    reference = statistics.median(rates["payload"])
    for shape in SHAPES:
        median = statistics.median(rates[shape])
        print(json.dumps({"shape": shape, "median_rate": median, "vs_payload": round(median / reference, 3),
                          "rates": rates[shape]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
