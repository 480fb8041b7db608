"""Properties of the canary's streaming checker, against the hindsight reference.

Histories are drawn by hypothesis: a few producers per region, sends whose
outcome is ok, failed or never known, deliveries per region that are on time,
late, duplicated (another msg_id), redelivered (the same msg_id), reordered, or
missing, and delivery before the ack; advance calls interleaved anywhere.
The checker must agree with the reference on every count, with and without a
checkpoint round trip (JSON) in the middle.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_recon.canary.checker import PAIR_COUNTERS, CanaryChecker
from tests.property.canary_reference import reference

MS = 1_000_000
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[str], list[tuple], int, int]:
    regions = ["a", "b", "c"][: draw(st.integers(1, 3))]
    deadline = draw(st.integers(5, 60)) * MS
    horizon = draw(st.integers(0, 60)) * MS
    timed: list[tuple[int, int, tuple]] = []  # (time, tie-break, event)
    order = 0
    for origin in regions:
        for p in range(draw(st.integers(1, 2))):
            producer = f"{origin}/p{p}"
            t = draw(st.integers(0, 20)) * MS
            for seq in range(draw(st.integers(0, 12))):
                t += draw(st.integers(0, 15)) * MS
                timed.append((t, order, ("sent", t, producer, origin, seq)))
                order += 1
                outcome = draw(st.sampled_from(["ok", "ok", "ok", "failed", "none"]))
                done = t + draw(st.integers(0, 150)) * MS
                if outcome != "none":
                    timed.append((done, order, ("acked" if outcome == "ok" else "failed", done, producer, seq)))
                    order += 1
                for region in regions:
                    for copy in range(draw(st.integers(0, 2))):
                        at = t + draw(st.integers(0, 150)) * MS
                        msg_id = draw(st.sampled_from([f"{seq}:0", f"{seq}:0", f"{seq}:1"]))
                        timed.append((at, order, ("delivered", at, region, producer, seq, msg_id)))
                        order += 1
    # Deliveries of something never sent, and of a foreign producer.
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, 300)) * MS
        timed.append((at, order, ("delivered", at, regions[0], draw(st.sampled_from(["a/p0", "zz/x"])), 99, "x")))
        order += 1
    for _ in range(draw(st.integers(0, 5))):
        at = draw(st.integers(0, 400)) * MS
        timed.append((at, order, ("advance", at)))
        order += 1
    timed.sort(key=lambda x: (x[0], x[1]))
    return regions, [e for _, _, e in timed], deadline, horizon


def _feed(checker: CanaryChecker, events: list[tuple]) -> None:
    for e in events:
        kind = e[0]
        if kind == "sent":
            checker.sent(e[2], e[3], e[4], e[1])
        elif kind == "acked":
            checker.acked(e[2], e[3], e[1])
        elif kind == "failed":
            checker.failed(e[2], e[3], e[1])
        elif kind == "delivered":
            checker.delivered(e[2], e[3], e[4], e[5], e[1])
        else:
            checker.advance(e[1])


def _compare(checker: CanaryChecker, regions: list[str], events: list[tuple], deadline: int, horizon: int) -> None:
    ref = reference(events, regions, deadline, horizon)
    snap = checker.snapshot()
    for pair in snap.pairs:
        want = ref.pairs[(pair.origin, pair.region)]
        got = {name: getattr(pair, name) for name in (*PAIR_COUNTERS, "pending")}
        assert got == {name: want[name] for name in got}, (pair.origin, pair.region)
        assert list(pair.lag.counts) == ref.lags[(pair.origin, pair.region)], (pair.origin, pair.region)
    for o in snap.origins:
        want = ref.origins[o.origin]
        assert (o.sent, o.acked, o.failed, o.exposure) == (want["sent"], want["acked"], want["failed"],
                                                           want["exposure"]), o.origin


@SETTINGS
@given(histories())
def test_the_streaming_checker_agrees_with_the_reference(history):
    regions, events, deadline, horizon = history
    checker = CanaryChecker(regions, deadline_s=deadline / 1e9, horizon_s=horizon / 1e9)
    _feed(checker, events)
    _compare(checker, regions, events, deadline, horizon)


@SETTINGS
@given(histories(), st.floats(0, 1))
def test_a_checkpoint_in_the_middle_changes_nothing(history, where):
    regions, events, deadline, horizon = history
    cut = int(len(events) * where)
    checker = CanaryChecker(regions, deadline_s=deadline / 1e9, horizon_s=horizon / 1e9)
    _feed(checker, events[:cut])
    state = json.loads(json.dumps(checker.to_state()))
    restored = CanaryChecker.from_state(state, now_ns=checker.now_ns, regions=regions, deadline_s=deadline / 1e9,
                                        horizon_s=horizon / 1e9)
    _feed(restored, events[cut:])
    _compare(restored, regions, events, deadline, horizon)


@SETTINGS
@given(histories())
def test_memory_holds_only_what_is_undecided_or_within_the_horizon(history):
    regions, events, deadline, horizon = history
    checker = CanaryChecker(regions, deadline_s=deadline / 1e9, horizon_s=horizon / 1e9)
    _feed(checker, events)
    if events:
        checker.advance(events[-1][1] + 2 * deadline + horizon + 1)
    assert checker.live() == 0
