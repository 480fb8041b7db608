"""The compiled fold of send lines into messages (check/fold) equals a plain per-message reading of DESIGN's rules."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_recon.check.fold import fold_sends
from geo_recon.check.model import NO_TIME, Outcome


def reference(m: int, lines: list[tuple[int, int, int, int, int, int]]) -> dict[str, list[int]]:
    """lines: (msg, kind 0 invoke/1 ok/2 fail/3 info, time, region, process, key) in file order."""
    out: dict[str, list[int]] = {k: [] for k in ("outcome", "invoke_time", "done_time", "done_ref", "origin",
                                                 "process", "key")}
    for j in range(m):
        mine = [(i, *rest) for i, (msg, *rest) in enumerate(lines) if msg == j]
        kinds = [k for _, k, *_ in mine]
        invokes = [t for _, k, t, *_ in mine if k == 0]
        oks = [t for _, k, t, *_ in mine if k == 1]
        others = [t for _, k, t, *_ in mine if k in (2, 3)]
        if 1 in kinds:
            outcome = Outcome.OK
        elif 3 in kinds:
            outcome = Outcome.INFO
        elif kinds.count(0) > len(kinds) - kinds.count(0):
            outcome = Outcome.PENDING
        elif 2 in kinds:
            outcome = Outcome.FAIL
        else:
            outcome = Outcome.NEVER_INVOKED
        done = min(oks) if oks else max(others) if others else NO_TIME
        done_ref = next((i * 10 + 1 for i, k, t, *_ in mine if k > 0 and t == done and (k == 1 or not oks)), -1)
        first = next((line for line in mine if line[1] == 0), mine[0] if mine else None)
        out["outcome"].append(int(outcome))
        out["invoke_time"].append(min(invokes) if invokes else NO_TIME)
        out["done_time"].append(done)
        out["done_ref"].append(done_ref)
        for name, at in (("origin", 3), ("process", 4), ("key", 5)):
            out[name].append(-1 if first is None else first[at])
    return out


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 8).flatmap(lambda m: st.tuples(st.just(m), st.lists(
    st.tuples(st.integers(0, m - 1), st.integers(0, 3), st.integers(-3, 3), st.integers(0, 2), st.integers(0, 3),
              st.integers(-1, 2)), max_size=40))))
def test_fold_equals_the_rules(case: tuple[int, list]) -> None:
    m, lines = case
    cols = np.array(lines, dtype=np.int64).reshape(-1, 6)
    folded = fold_sends(m=m, send_msg=cols[:, 0], kind=cols[:, 1].astype(np.int8), time=cols[:, 2],
                        ref=np.arange(len(lines), dtype=np.int64) * 10 + 1, region=cols[:, 3].astype(np.int32),
                        process=cols[:, 4].astype(np.int32), key=cols[:, 5].astype(np.int32))
    assert {k: v.tolist() for k, v in folded.items()} == reference(m, lines)
