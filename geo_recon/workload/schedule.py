"""Pure send schedules: when each message goes, and with which key. No I/O, no clock.

A fixed-rate schedule is absolute: message i of a producer is due at
``start + i / rate``. A producer that falls behind catches up at once instead of
drifting, so the achieved rate over the run is the target rate unless the
system pushes back (outstanding sends at their bound), which the run reports.
"""

from __future__ import annotations

import random


def due_ns(start_ns: int, rate: float, index: int) -> int:
    """When send ``index`` (0-based) of a producer at ``rate``/s is due."""
    return start_ns + int(index * 1e9 / rate)


def count_in(rate: float, duration_s: float) -> int:
    """How many sends a producer at ``rate``/s makes in ``duration_s``."""
    return int(rate * duration_s)


def producer_rates(total_rate: float, producers: int) -> list[float]:
    """Split a region's rate evenly over its producers."""
    return [total_rate / producers] * producers


def key_stream(seed: int, producer: str, keys: int):
    """Keys for seq 0, 1, 2, ... of one producer: the same seed gives the same keys in
    every run and under both schemes."""
    rng = random.Random(f"{seed}:{producer}")
    names = [f"k{i}" for i in range(keys)]
    # randrange(keys)'s own draw (getrandbits, rejecting values >= keys), a thousand at a time: the same keys,
    # for a fifth of the producer's time per key (randrange is three Python calls a key)
    bits, draw = keys.bit_length(), rng.getrandbits
    while True:
        chunk = []
        for _ in range(1024):
            r = draw(bits)
            while r >= keys:
                r = draw(bits)
            chunk.append(names[r])
        yield from chunk


def topic_of(producer_index: int, topics: int) -> int:
    """Producers are spread round-robin over topics; each writes exactly one."""
    return producer_index % topics
