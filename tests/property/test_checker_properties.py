"""Property tests: on simulated histories with anomalies injected on purpose, the checker's counts equal the
injected ground truth, and everything it reports equals the reference implementation's."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_recon.check import CannotDecide, check_run, write_columnar
from geo_recon.check.ingest import read_history
from geo_recon.history import HistoryError
from tests.property import reference
from tests.property.sim import SimConfig, simulate

KINDS = ("lost", "stored_not_consumed", "duplicates", "redelivered", "reordered", "unexpected", "recovered")

configs = st.builds(
    SimConfig,
    seed=st.integers(0, 2**32 - 1),
    regions=st.integers(1, 3),
    producers_per_region=st.integers(1, 3),
    messages=st.integers(1, 25),
    keys=st.integers(1, 3),
    lost=st.integers(0, 3),
    skipped=st.integers(0, 2),
    dups=st.integers(0, 2),
    redeliveries=st.integers(0, 2),
    reorders=st.integers(0, 3),
    phantoms=st.integers(0, 2),
    p_fail=st.sampled_from([0.0, 0.1]),
    p_info=st.sampled_from([0.0, 0.1]),
    p_pending=st.sampled_from([0.0, 0.05]),
    readers=st.booleans(),
    two_consumers=st.booleans(),
    faults=st.integers(0, 3),
    offsets=st.booleans(),
    files_per_process=st.integers(1, 3),
    shuffle=st.booleans(),
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _has_ok(sim: Any) -> bool:
    return any(m.outcome == "ok" for m in sim.messages)


def _subset(entry: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: entry.get(k) for k in keys}


@SETTINGS
@given(configs)
def test_counts_match_injected_truth_and_reference(cfg: SimConfig) -> None:
    sim = simulate(cfg)
    if not _has_ok(sim):
        return  # nothing acknowledged: "cannot decide", tested elsewhere
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        sim.write(run_dir)
        got = check_run(run_dir).to_json()
        ref = reference.check(run_dir)
    for region in sim.regions:
        mine = got["regions"][region]
        theirs = ref["regions"][region]
        for kind in KINDS:
            assert mine[kind] == sim.truth[region][kind], (region, kind, mine[kind], sim.truth[region][kind])
            assert mine[kind] == theirs[kind], (region, kind)
        assert mine["expected"] == theirs["expected"]
        assert mine["lag_ms"] == theirs["lag_ms"]
        assert mine["lag_ms_by_origin"] == theirs["lag_ms_by_origin"]
    assert got["valid"] == ref["valid"]
    assert got["publish_latency_ms"] == ref["publish_latency_ms"]
    conv_keys = ("fault_id", "stop_s", "converged", "ms", "still_missing")
    assert [_subset(c, conv_keys) for c in got["convergence"]] == ref["convergence"]
    assert [_subset(r, ("fault_id", "region", "ms", "recovered")) for r in got["rto"]] == ref["rto"]
    mine_rpo = []
    for r in got["rpo"]:
        keys: tuple[str, ...] = ("fault_id", "region", "count")
        if r["count"]:
            keys += ("span_ms", "window_ms")
        mine_rpo.append(_subset(r, keys))
    assert mine_rpo == ref["rpo"]
    # every anomaly found is explained, up to the case limit
    for kind in KINDS:
        total = sum(got["regions"][r][kind] for r in sim.regions)
        cases = got["cases"][kind]
        if kind in ("lost", "stored_not_consumed", "duplicates", "unexpected", "recovered"):
            assert len(cases) == sum(min(10, got["regions"][r][kind]) for r in sim.regions)
        assert (len(cases) > 0) == (total > 0)
        assert all(c["explanation"] for c in cases)


def _without_lines(value: Any) -> Any:
    if isinstance(value, dict):
        skip = ("line", "ack_line", "fail_line", "input", "explanation")
        return {k: _without_lines(v) for k, v in value.items() if k not in skip}
    if isinstance(value, list):
        return [_without_lines(v) for v in value]
    return value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_file_layout_and_line_order_do_not_matter(cfg: SimConfig) -> None:
    plain = dataclasses.replace(cfg, files_per_process=1, shuffle=False)
    mixed = dataclasses.replace(cfg, files_per_process=3, shuffle=True)
    a, b = simulate(plain), simulate(mixed)
    if not _has_ok(a):
        return
    with tempfile.TemporaryDirectory() as tmp1, tempfile.TemporaryDirectory() as tmp2:
        a.write(Path(tmp1))
        b.write(Path(tmp2))
        assert _without_lines(check_run(tmp1).to_json()) == _without_lines(check_run(tmp2).to_json())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_columnar_copy_gives_the_same_result(cfg: SimConfig) -> None:
    sim = simulate(cfg)
    if not _has_ok(sim):
        return
    with tempfile.TemporaryDirectory() as tmp:
        sim.write(Path(tmp))
        from_jsonl = check_run(tmp, source="jsonl").to_json()
        write_columnar(tmp)
        from_columnar = check_run(tmp, source="columnar").to_json()
    assert from_columnar["input"]["source"] == "columnar"
    from_jsonl.pop("input")
    from_columnar.pop("input")
    assert from_columnar == from_jsonl


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_spilled_receipts_give_the_same_history(cfg: SimConfig) -> None:
    """Receipts spilled to temporary files while reading (as at 30M receipts) normalise to the same tables."""
    sim = simulate(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        sim.write(Path(tmp))
        held, spilled = read_history(tmp, spill_bytes=1 << 40), read_history(tmp, spill_bytes=0)
        for name in ("producers", "processes", "region_names", "receipt_counts", "subscriptions"):
            assert getattr(spilled, name) == getattr(held, name)
        for part in ("messages", "completions"):
            for name in getattr(held, part).__slots__:
                a, b = getattr(getattr(held, part), name), getattr(getattr(spilled, part), name)
                assert a.dtype == b.dtype and a.tolist() == b.tolist(), (part, name)
        for code, count in enumerate(held.receipt_counts):
            assert not count or callable(spilled.receipts[code])
            a, b = held.region_receipts(code), spilled.region_receipts(code)
            for name in a.__slots__:
                assert getattr(a, name).dtype == getattr(b, name).dtype, name
                assert getattr(a, name).tolist() == getattr(b, name).tolist(), name


corruptions = st.sampled_from([
    lambda line: line[: len(line) // 2],  # cut short
    lambda line: line.replace('"seq": ', '"seq": "', 1).replace(", ", '", ', 1) if '"seq": ' in line else "{",
    lambda line: line.replace('"time": ', '"time": 1.5e', 1),
    lambda line: "[" + line + "]",
    lambda line: line.replace('"type": "', '"type": 7, "x": "', 1),
    lambda line: "not json at all",
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs, st.data())
def test_bad_lines_are_named_or_skipped_exactly(cfg: SimConfig, data: st.DataObject) -> None:
    """Corrupt some lines: without --skip-bad the first one is named; with it, exactly those are skipped
    and the check equals the check of the history without them."""
    sim = simulate(dataclasses.replace(cfg, shuffle=False))
    if not _has_ok(sim):
        return
    name = data.draw(st.sampled_from(sorted(sim.written)))
    lines = [json.dumps(e) for e in sim.written[name]]
    bad = sorted(data.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1, max_size=3)))
    broken = list(lines)
    for i in bad:
        broken[i] = data.draw(corruptions)(lines[i])
    with tempfile.TemporaryDirectory() as tmp1, tempfile.TemporaryDirectory() as tmp2:
        sim.write(Path(tmp1))
        (Path(tmp1) / "history" / name).write_text("".join(x + "\n" for x in broken))
        with pytest.raises(HistoryError) as err:
            check_run(tmp1)
        assert err.value.line == bad[0] + 1 and err.value.path is not None and err.value.path.endswith(name)
        kept = dataclasses.replace(sim, written={**sim.written, name: [e for i, e in enumerate(sim.written[name])
                                                                        if i not in bad]})
        kept.write(Path(tmp2))
        if not kept_has_ok(kept):
            with pytest.raises(CannotDecide):
                check_run(tmp1, skip_bad=True)
            return
        skipped = check_run(tmp1, skip_bad=True)
        clean = check_run(tmp2)
    assert skipped.input.skipped == len(bad)
    assert [int(x.split(": ", 1)[0].rsplit(":", 1)[1]) for x in skipped.input.skipped_examples] == [i + 1 for i in bad]
    a, b = _without_lines(skipped.to_json()), _without_lines(clean.to_json())
    a.pop("warnings"), b.pop("warnings")
    assert a == b


def kept_has_ok(sim: Any) -> bool:
    return any(e.get("type") == "ok" for lines in sim.written.values() for e in lines)
