"""Every way of reading a history gives the same tables and the same result: JSONL or the workers' Arrow files,
read in one process or a pool, cut in small chunks, receipts held in memory or spilled to temporary files, or the
columnar copy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from geo_recon.check import check_history, ingest, write_columnar
from geo_recon.check.bench import INJECT, generate
from geo_recon.check.columnar import open_fresh
from geo_recon.check.core import region_threads
from geo_recon.check.ingest import read_history
from geo_recon.check.model import History
from geo_recon.history_export import export_run

NAMES = ("regions", "region_names", "processes", "producers", "keys", "receipt_counts", "faults", "subscriptions",
         "failovers")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("paths")
    made = generate(root / "run", messages=4000, regions=3, producers=6, seed=5)  # anomalies of every kind
    export_run(root / "run", root / "native", to="arrow")
    return root, made["injected"]


def tables(history: History) -> dict[str, np.ndarray]:
    out = {f"messages.{k}": getattr(history.messages, k) for k in history.messages.__slots__}
    out.update({f"completions.{k}": getattr(history.completions, k) for k in history.completions.__slots__})
    for code in range(len(history.region_names)):
        r = history.region_receipts(code)
        out.update({f"receipts{code}.{k}": getattr(r, k) for k in r.__slots__})
    return out


def assert_same(history: History, reference: History) -> None:
    for name in NAMES:
        assert getattr(history, name) == getattr(reference, name), name
    mine, theirs = tables(history), tables(reference)
    assert mine.keys() == theirs.keys()
    for name, values in theirs.items():
        assert mine[name].dtype == values.dtype and np.array_equal(mine[name], values), name


def result(history: History) -> bytes:
    out = check_history(history, max_cases=50).to_json()
    out.pop("input")
    return orjson.dumps(out, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)


@pytest.mark.parametrize("directory", ["run", "native"])
@pytest.mark.parametrize(("spill_bytes", "workers"), [(0, 1), (60_000, 1), (0, 2), (None, 2)])
def test_direct_reads_give_the_columnar_copys_history_and_result(runs: tuple[Path, dict[str, Any]], directory: str,
                                                                 spill_bytes: int | None, workers: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, injected = runs
    reference = read_history(root / "run", workers=1, spill_bytes=1 << 40)  # all in memory, whole files
    monkeypatch.setattr(ingest, "BLOCK_ROWS", 1000)  # several blocks per region (in this process)
    history = read_history(root / directory, workers=workers, spill_bytes=spill_bytes, chunk_bytes=100_000,
                           chunk_rows=3000)
    assert history.input.source == ("arrow" if directory == "native" else "jsonl")
    spilled = spill_bytes is not None and spill_bytes < sum(history.receipt_counts) * 49
    assert all(callable(r) == spilled for r, n in zip(history.receipts, history.receipt_counts, strict=True) if n)
    assert_same(history, reference)

    expected = result(reference)
    # cases cite lines by file: the same events, in files of the other format
    assert result(history).replace(b".arrows:", b".jsonl:") == expected
    run_dir = root / directory
    if not (run_dir / "columnar").exists():
        write_columnar(run_dir, read_history(run_dir, workers=1, spill_bytes=1 << 40))
    copy, why = open_fresh(run_dir)
    assert copy is not None, why
    assert result(copy) == result(history)
    found = orjson.loads(expected)["regions"]
    assert {r: {k: found[r][k] for k in INJECT} for r in found} == injected  # the anomalies are in the data


def test_regions_checked_two_at_a_time_give_the_same_result(runs: tuple[Path, dict[str, Any]]) -> None:
    root, _ = runs
    in_memory = read_history(root / "native", workers=1, spill_bytes=1 << 40)
    assert region_threads(in_memory) == min(2, os.cpu_count() or 1)
    one, two = (check_history(in_memory, max_cases=50, threads=n).to_json() for n in (1, 2))
    assert orjson.dumps(two, option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(one, option=orjson.OPT_SERIALIZE_NUMPY)
    # receipts loaded region by region (a spilled read, the columnar copy): one region at a time, as before
    assert region_threads(read_history(root / "native", workers=1, spill_bytes=0)) == 1
