import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo_recon.workload import message, schedule
from geo_recon.workload.runner import caught_up
from geo_recon.workload.spec import WorkloadSpec


@given(rate=st.floats(0.5, 1e6), index=st.integers(0, 10**7))
def test_due_times_are_absolute_so_rate_never_drifts(rate, index):
    start = 1_000_000_000
    due = schedule.due_ns(start, rate, index)
    assert abs(due - (start + index * 1e9 / rate)) <= 1
    assert schedule.due_ns(start, rate, index + 1) >= due


def test_rates_split_evenly_and_counts_follow():
    assert schedule.producer_rates(300, 3) == [100, 100, 100]
    assert schedule.count_in(200, 10) == 2000


def test_keys_are_deterministic_per_seed_and_producer():
    first = list(itertools.islice(schedule.key_stream(7, "a/p0", 50), 100))
    again = list(itertools.islice(schedule.key_stream(7, "a/p0", 50), 100))
    other = list(itertools.islice(schedule.key_stream(8, "a/p0", 50), 100))
    assert first == again and first != other
    assert set(first) <= {f"k{i}" for i in range(50)}


def test_producers_spread_round_robin_over_topics():
    assert [schedule.topic_of(i, 3) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_message_properties_identify_the_send():
    props = message.properties("b/p3", 42, 123)
    assert message.identify(props) == ("b/p3", 42)
    assert message.identify({"__MSG_PROP_REPL_SOURCE_POSITION": "7:0", **props}) == ("b/p3", 42)
    assert message.identify({"other": "x"}) is None
    assert props == {"gr.id": "b/p3 42 123"}  # one property: the clients pay per property
    assert message.identify_sent(props) == ("b/p3", 42, 123)
    # The three properties earlier versions sent are still understood; a malformed id is not ours.
    assert message.identify_sent({"gr.producer": "a/p0", "gr.seq": "5", "gr.sent_ns": "9"}) == ("a/p0", 5, 9)
    assert message.identify_sent({"gr.producer": "a/p0", "gr.seq": "5"}) == ("a/p0", 5, None)
    assert message.identify({"gr.id": "a/p0 x 1"}) is None and message.identify({"gr.id": "a/p0"}) is None


class _Binding:
    """The client's C++ producer as ``message.sender`` uses it: records what it was given."""

    def __init__(self):
        self.sent = []

    def send_async(self, msg, callback):
        self.sent.append((msg, callback))


class _Producer:
    def __init__(self):
        self._producer = _Binding()


@pytest.mark.parametrize("dedup", [False, True])
def test_sender_builds_the_message_public_send_async_would(dedup):
    """The same payload, identity properties and key as pulsar-client's send_async with them, built
    through the binding directly (a real _pulsar.Message, no broker)."""
    producer = _Producer()
    send = message.sender(producer, b"x" * 10, "a/p0", dedup=dedup)
    callback = object()
    send(7, 1_700_000_000_123_456_789, "k3", callback)
    (msg, given), = producer._producer.sent
    assert given is callback
    assert msg.data() == b"x" * 10 and msg.partition_key() == "k3"
    assert msg.properties() == message.properties("a/p0", 7, 1_700_000_000_123_456_789)
    assert message.identify(msg.properties()) == ("a/p0", 7)


def test_sender_falls_back_to_the_public_api_without_the_binding():
    calls = []

    class Public:
        def send_async(self, content, callback, **kwargs):
            calls.append((content, callback, kwargs))

    message.sender(Public(), b"p", "b/p1", dedup=True)(3, 99, "k1", "cb")
    assert calls == [(b"p", "cb", {"properties": message.properties("b/p1", 3, 99), "partition_key": "k1",
                                   "sequence_id": 3})]


def test_workload_needs_a_producer_per_topic():
    with pytest.raises(ValueError, match="producers .* must be at least topics"):
        WorkloadSpec(producers=1, topics=2)


def test_drain_waits_until_every_live_region_saw_every_acked_message():
    progress = {
        "a": {"acked_by_producer": {"a/p0": 10}, "distinct_by_producer": {"a/p0": 10, "b/p0": 5}},
        "b": {"acked_by_producer": {"b/p0": 6}, "distinct_by_producer": {"a/p0": 10, "b/p0": 6}},
    }
    assert not caught_up(progress, {"a", "b"})  # a has seen only 5 of b's 6
    progress["a"]["distinct_by_producer"]["b/p0"] = 6
    assert caught_up(progress, {"a", "b"})
    # A dead region is not waited for, but its acked messages are still expected elsewhere.
    progress["b"]["distinct_by_producer"]["a/p0"] = 3
    assert caught_up(progress, {"a"})
    assert not caught_up(progress, {"a", "b"})
