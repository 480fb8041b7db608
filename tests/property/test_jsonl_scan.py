"""The compiled JSONL scan (check/jsonscan) accepts only what the exact path accepts, with the same values.

Lines are drawn from valid send and recv events, then damaged: mistyped or null fields, floats, big integers,
escapes, non-ASCII, repeated keys, nested values, whitespace, missing fields, trailing bytes, or one byte
replaced, inserted or deleted anywhere. Whatever the bytes, the reader's answer is the exact path's
(:func:`geo_recon.history.parse_line` line by line): the same columns, or an error naming the same line.
"""

from __future__ import annotations

import json

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_recon.check import ingest, jsonscan
from geo_recon.check.ingest import _exact_chunk, _scanned_chunk, parse_chunk

PLAIN = st.sampled_from(["a", "b", "a/p0", "b/c0", "k1", "", "x y", "c:1", "~"])
NAMES = st.one_of(PLAIN, st.sampled_from(['q"', "é", "back\\", "tab\t", "\x7f", "\u2028"]))
INTS = st.one_of(st.integers(-5, 10**6), st.integers(-(2**64), 2**64),
                 st.sampled_from([2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**19, 1_700_000_000_123_456_789]))
ODD = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.just([]),
                st.just({"a": 1}), st.just("5"), st.just(5), st.just(1.0), INTS, NAMES)


@st.composite
def event(draw) -> dict:
    kind = draw(st.sampled_from(["invoke", "ok", "fail", "info", "recv", "recv"]))
    names = draw(st.sampled_from([PLAIN, PLAIN, PLAIN, NAMES]))  # a line of plain names, or of any
    e: dict = {"type": kind}
    if kind != "recv":
        e["f"] = draw(st.sampled_from(["send", "send", "send", "poll"]))
    e.update(time=draw(INTS), region=draw(names), process=draw(names), producer=draw(names), seq=draw(INTS))
    if kind == "recv":
        e["msg_id"] = draw(names)
        for name, values in (("via", ["consumer", "reader", "other"]),
                             ("subscription_type", ["Exclusive", "Key_Shared", "key-shared", "SHARED", "x"]),
                             ("subscription", ["s1", "s2"]), ("cluster", ["a", "b"])):
            if draw(st.booleans()):
                e[name] = draw(st.sampled_from([None, *values]))
    else:
        for name in ("key", "cluster", "msg_id", "topic"):
            if draw(st.booleans()):
                e[name] = draw(st.one_of(st.none(), names))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):  # damage: a field of any value, or gone
        name = draw(st.sampled_from([*e, "extra", "redelivery"]))
        if draw(st.booleans()):
            e[name] = draw(ODD)
        else:
            e.pop(name, None)
    return e


def _dumps(value: object) -> bytes:
    """Compact JSON, as the workers write it (any integer: the stdlib's, not orjson's 64-bit one)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@st.composite
def line(draw) -> bytes:
    e = draw(event())
    how = draw(st.sampled_from(["compact", "compact", "compact", "spaced", "ascii", "repeat", "tail", "cr"]))
    if how == "spaced":
        raw = json.dumps(e).encode()
    elif how == "ascii":
        raw = json.dumps(e, ensure_ascii=True, separators=(",", ":")).encode()
    elif how == "repeat" and e:  # a key twice (the text, as a third-party writer may have it)
        key = draw(st.sampled_from(list(e)))
        raw = _dumps(e)[:-1] + b"," + _dumps({key: draw(ODD)})[1:]
    elif how == "tail":
        raw = _dumps(e) + draw(st.sampled_from([b" ", b"\t", b" x", b"}", b",", b"\x00"]))
    elif how == "cr":
        raw = _dumps(e) + b"\r"
    else:
        raw = _dumps(e)
    if draw(st.integers(0, 6)) == 0:  # one byte replaced, inserted or deleted
        at = draw(st.integers(0, len(raw)))
        byte = bytes([draw(st.sampled_from(list(b'{}[]",:0123456789-+.eE \\ntfalsenul\x7f\xc3\x80')))])
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        raw = (raw[:at] + byte + raw[at + 1:] if op == "replace" else raw[:at] + byte + raw[at:] if op == "insert"
               else raw[:at] + raw[at + 1:])
        raw = raw.replace(b"\n", b" ")
    return raw


def _columns(chunk: ingest.Chunk) -> dict:
    """The chunk's content with names instead of chunk-local codes."""
    out: dict = {}
    for field in ("send_kind", "send_time", "send_seq", "send_line", "recv_time", "recv_seq", "recv_hash",
                  "recv_flags", "recv_line"):
        out[field] = getattr(chunk, field).tolist()
    for kind, column in (("region", "send_region"), ("process", "send_process"), ("producer", "send_producer"),
                         ("key", "send_key"), ("region", "send_cluster"), ("region", "recv_region"),
                         ("process", "recv_process"), ("producer", "recv_producer"),
                         ("subscription", "recv_subscription"), ("region", "recv_cluster")):
        out[column] = [chunk.names[kind][c] if c >= 0 else None for c in getattr(chunk, column).tolist()]
    out.update(faults=chunk.faults, failovers=chunk.failovers, ignored=dict(chunk.ignored), error=chunk.error)
    return out


def _agree(data: bytes) -> None:
    exact = _exact_chunk(data, skip_bad=False)
    found = jsonscan.scan(data)
    scanned = None if found is None else _scanned_chunk(found)
    if scanned is not None:
        assert exact.error is None, exact.error
        assert _columns(scanned) == _columns(exact)
        assert scanned.lines == len(data.split(b"\n")) - data.endswith(b"\n")
    whole = parse_chunk(data)
    assert (whole.error is None) == (exact.error is None)
    if exact.error is not None:
        assert whole.error == exact.error
    else:
        assert _columns(whole) == _columns(exact)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line(), min_size=1, max_size=6), st.booleans())
def test_the_scan_accepts_only_what_the_exact_path_accepts(raw: list[bytes], newline_at_end: bool) -> None:
    _agree(b"\n".join(raw) + (b"\n" if newline_at_end else b""))


@settings(max_examples=300, deadline=None)
@given(st.lists(event(), min_size=1, max_size=30))
def test_valid_lines_take_the_scan(events: list[dict]) -> None:
    """Events the workers write (compact, no escapes) are read by the scan itself, not by a fallback."""
    def plain(name: str, v: object) -> bool:
        """A value the workers write: the scan's fields hold their own type (a string, or time and seq an int)."""
        if v is None:
            return True
        if isinstance(v, str):
            return v.isascii() and v.isprintable() and "\\" not in v and '"' not in v and name not in ("time", "seq")
        return type(v) is int and -(2**63) < v < 2**63 and name not in jsonscan.FIELDS[:jsonscan.TIME] + ("msg_id",)

    valid = [e for e in events if ingest.parse_line(_dumps(e))[0] in ("send", "recv")
             and all(plain(k, v) for k, v in e.items())]
    data = b"".join(_dumps(e) + b"\n" for e in valid)
    found = jsonscan.scan(data)
    assert found is not None
    scanned = _scanned_chunk(found)
    assert scanned is not None
    assert _columns(scanned) == _columns(_exact_chunk(data, skip_bad=False))


def test_the_scan_hashes_msg_ids_as_the_reader_does() -> None:
    ids = ["", "1", "12:5:-1:0", "1234567", "12345678", "123456789", "x" * 40]
    data = b"".join(orjson.dumps({"type": "recv", "time": 1, "region": "a", "process": "a/c0", "producer": "p",
                                  "seq": i, "msg_id": m}) + b"\n" for i, m in enumerate(ids))
    found = jsonscan.scan(data)
    assert found is not None
    assert found.msg_hash.tolist() == [ingest.hash_msg_id(m) for m in ids]


def test_many_distinct_names_grow_the_table() -> None:
    data = b"".join(orjson.dumps({"type": "invoke", "f": "send", "time": i, "region": "a", "process": "a/p0",
                                  "producer": "a/p0", "seq": i, "key": f"k{i}"}) + b"\n" for i in range(5000))
    found = jsonscan.scan(data, table=16)
    assert found is not None
    chunk = _scanned_chunk(found)
    assert chunk is not None
    assert [chunk.names["key"][c] for c in chunk.send_key.tolist()] == [f"k{i}" for i in range(5000)]
    assert np.array_equal(chunk.send_seq, np.arange(5000))


def test_lines_shorter_than_the_first_guess_are_scanned_again_with_room() -> None:
    data = b"".join(b'{"type":"x","time":%d}\n' % i for i in range(500))  # 22 to 24 bytes a line
    assert len(data) // jsonscan.LINE_BYTES + 1 < 500
    found = jsonscan.scan(data)
    assert found is not None
    assert found.lines == 500
    assert found.time.tolist() == list(range(500))
    assert [found.table_text[c] for c in found.codes[0].tolist()] == ["x"] * 500
