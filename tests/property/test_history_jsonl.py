"""The JSONL writer formats a flush's events in bulk (history_jsonl): its bytes are exactly orjson's, line by
line and in order, whatever the events hold (any unicode, quotes, control characters, '%', big and negative
integers, floats, None, lists, repeated keys, lines already encoded)."""

from __future__ import annotations

from array import array

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_recon import history_jsonl

OPTION = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY

keys = st.sampled_from(["type", "time", "seq", "key", "msg_id", "a%d", 'q"uote', "é", "%s"])
shapes = (st.lists(keys, min_size=0, max_size=5, unique=True) | st.lists(keys, max_size=5)).map(tuple)
texts = st.text(max_size=8) | st.sampled_from(["k1", "a/p0", "12:5:-1:0", "100%", "%d%s", "", 'say "hi"',
                                               "back\\slash", "tab\t", "bell\x07", "del\x7f", "\u2028", "ü"])
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.sampled_from([0, 1, -1, 2**63 - 1])
scalars = st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | texts
values = scalars | st.lists(scalars, max_size=3)


@st.composite
def buffers(draw) -> list:
    """What a writer buffers: (keys, values) of a few shapes, mostly of one type per key, and encoded lines."""
    pool = draw(st.lists(shapes, min_size=1, max_size=3))
    kinds = {shape: [draw(st.sampled_from([texts, ints, values])) for _ in shape] for shape in pool}
    items = []
    for _ in range(draw(st.integers(min_value=1, max_value=30))):
        if draw(st.integers(0, 9)) == 0:
            items.append(orjson.dumps({"type": "recv", "x": draw(values)}, option=OPTION))
            continue
        shape = draw(st.sampled_from(pool))
        items.append((shape, tuple(draw(kind if draw(st.integers(0, 9)) else values) for kind in kinds[shape])))
    return items


def reference(items: list) -> bytes:
    return b"".join(item if type(item) is bytes else orjson.dumps(dict(zip(*item)), option=OPTION)
                    for item in items)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(buffers())
def test_bulk_lines_are_orjsons(items: list) -> None:
    assert history_jsonl.encode_lines(items) == reference(items)


def test_a_producers_buffer_is_formatted_once_per_shape() -> None:
    invoke = ("type", "f", "region", "process", "producer", "time", "seq", "key", "topic")
    ok = ("type", "f", "region", "process", "producer", "time", "seq", "msg_id")
    items = []
    for seq in range(50):
        items.append((invoke, ("invoke", "send", "a", "a/p0", "a/p0", 1_700_000_000_000_000_000 + seq, seq,
                               f"k{seq % 7}", "persistent://geo/recon/t")))
        items.append((ok, ("ok", "send", "a", "a/p0", "a/p0", 1_700_000_000_000_000_001 + seq, seq,
                           f"12:{seq}:-1:0")))
    assert history_jsonl.encode_lines(items) == reference(items)
    assert history_jsonl.encode_lines([(("n",), (np.int64(5),))]) == b'{"n":5}\n'


def test_what_orjson_refuses_is_refused() -> None:
    for bad in (2**64, -(2**63) - 1, "\ud800"):
        with pytest.raises(orjson.JSONEncodeError):
            history_jsonl.encode_lines([(("a", "b"), (bad, 1)), (("a", "b"), (1, 2))])


@pytest.mark.parametrize("special", ['say "hi"', "back\\slash", "tab\t", "bell\x07", "del\x7f", "\u2028", "ü", "100%",
                                     "%s"])
def test_strings_that_need_escaping_in_a_column_of_plain_ones(special: str) -> None:
    items = [(("k", "n"), ("plain", 1)), (("k", "n"), (special, 2)), (("k", "n"), ("other", 3))]
    assert history_jsonl.encode_lines(items) == reference(items)


columns_of = st.sampled_from([texts, ints, values])


@st.composite
def column_events(draw) -> tuple:
    """Events of one shape as a writer's send log gives them: each field one value for all or a column."""
    shape = draw(st.lists(keys, min_size=1, max_size=5, unique=True).map(tuple))
    count = draw(st.integers(min_value=1, max_value=20))
    constant, columns = {}, {}
    for key in shape:
        how = draw(st.integers(0, 2))
        if how == 0:
            constant[key] = draw(scalars)
        elif how == 1:
            columns[key] = array("q", draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=count,
                                                     max_size=count)))
        else:
            kind = draw(columns_of)
            columns[key] = draw(st.lists(kind, min_size=count, max_size=count))
    return shape, constant, columns, count


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column_events())
def test_column_lines_are_orjsons(given_events: tuple) -> None:
    shape, constant, columns, count = given_events
    rows = [(shape, tuple(constant[k] if k in constant else columns[k][i] for k in shape)) for i in range(count)]
    assert history_jsonl.encode_columns(shape, constant, columns, count) == reference(rows)
