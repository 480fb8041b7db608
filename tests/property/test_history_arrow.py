"""DESIGN.md's JSONL stays the definition of the events: JSONL -> Arrow -> JSONL gives back the same objects,
for every event kind, with the optional fields of issue 13 (CONTRACT-13), other fields and odd types alike."""

from __future__ import annotations

import orjson
import pyarrow.ipc as ipc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_recon import history_arrow
from geo_recon.history import check_event

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz/-_0123456789", min_size=1, max_size=8)
texts = st.text(max_size=12)  # any unicode, control characters included
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_scalars = st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | texts
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(texts, inner, max_size=3), max_leaves=6)

base = {"time": ints, "region": names, "process": names}
send = st.fixed_dictionaries(
    {"type": st.sampled_from(["invoke", "ok", "fail", "info"]), "f": st.just("send"), **base, "producer": names,
     "seq": ints},
    optional={"key": names, "topic": names, "msg_id": names, "error": names, "cluster": names})
recv = st.fixed_dictionaries(
    {"type": st.just("recv"), **base, "producer": names, "seq": ints, "msg_id": names},
    optional={"via": st.sampled_from(["consumer", "reader"]), "topic": names, "redelivery": ints,
              "subscription_type": st.sampled_from(["Failover", "exclusive", "Key_Shared", "shared"]),
              "subscription": names, "cluster": names})
fault = st.fixed_dictionaries(
    {"type": st.just("fault"), "time": ints, "phase": st.sampled_from(["start", "stop"]),
     "fault": st.sampled_from(["lose", "kill", "partition"]), "target": names, "id": names},
    optional={"region_loss": st.booleans(), "regions": st.lists(names, max_size=3), "rebuilt": st.booleans(),
              "verified": st.dictionaries(names, json_values, max_size=3), "process": names})
failover = st.fixed_dictionaries(
    {"type": st.just("failover"), "time": ints, "region": names, "process": names, "client": names,
     "role": st.sampled_from(["producer", "consumer"]), "from": names, "to": names,
     "mode": st.sampled_from(["auto", "controlled"])})
known = send | recv | fault | failover
# anything else a third-party tool may write: other fields, other types in known fields, explicit nulls
other = st.dictionaries(texts, json_values, max_size=6)
odd = st.builds(lambda event, extra: {**event, **extra}, known,
                st.dictionaries(st.sampled_from([n for n, _ in history_arrow.FIELDS] + ["x", "extra"]), json_values,
                                max_size=3))
events = st.lists(known | other | odd, min_size=1, max_size=40)


def as_json(event: dict) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)  # types stay apart: true is not 1, 1.0 is not 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_jsonl_arrow_jsonl_is_lossless(batch: list[dict]) -> None:
    lines = [orjson.loads(orjson.dumps(e)) for e in batch]  # what a JSONL reader gives
    encoded = history_arrow.batch_bytes(history_arrow.encode_batch(lines))
    table = ipc.open_stream(history_arrow.stream_schema_bytes() + encoded).read_all()
    back = history_arrow.decode_rows(table)
    assert [as_json(e) for e in back] == [as_json(e) for e in lines]
    assert [check_event(e) for e in back] == [check_event(e) for e in lines]


@settings(max_examples=100, deadline=None)
@given(st.lists(send | recv, min_size=1, max_size=40))
def test_worker_events_use_typed_columns_only(batch: list[dict]) -> None:
    """What our workers write never needs the extra JSON: the checker reads it without parsing."""
    table = history_arrow.encode_batch(batch)
    assert table.column(history_arrow.EXTRA).null_count == len(batch)
