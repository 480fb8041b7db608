"""Golden histories: small runs whose expected verdict was checked by hand (see README.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from geo_recon.check import check_run

HERE = Path(__file__).parent
RUNS = sorted(p.parent.name for p in HERE.glob("*/run.json"))
KEYS = ("valid", "anomaly_types", "regions", "cases", "faults", "convergence", "rpo", "rto", "recovery", "publish_latency_ms",
        "warnings")


def test_every_golden_run_is_here() -> None:
    assert RUNS == ["clean", "duplicate-and-redelivery", "ordering", "outcomes", "reader-drain", "region-loss",
                    "unsorted-split-offsets"]


@pytest.mark.parametrize("name", RUNS)
def test_golden(name: str) -> None:
    result = check_run(HERE / name).to_json()
    got = {k: result[k] for k in KEYS}
    expected_path = HERE / name / "expected.json"
    if os.environ.get("GEO_RECON_REGENERATE_GOLDEN"):
        expected_path.write_text(json.dumps(got, indent=1) + "\n")
    assert got == json.loads(expected_path.read_text())


def test_shuffled_split_and_offset_equals_clean() -> None:
    a, b = check_run(HERE / "clean").to_json(), check_run(HERE / "unsorted-split-offsets").to_json()
    for key in ("valid", "regions", "faults", "publish_latency_ms", "lag_cdf", "lag_series", "rates"):
        assert a[key] == b[key], key


@pytest.mark.parametrize("name", RUNS)
def test_golden_from_arrow(name: str, tmp_path: Path) -> None:
    """The same events as Arrow history files (``history export --arrow``) give the same verdict and facts."""
    from geo_recon.history_export import export_run

    export_run(HERE / name, tmp_path / "run", to="arrow")
    assert all(p.suffix == ".arrows" for p in (tmp_path / "run" / "history").rglob("*") if p.is_file())
    result = check_run(tmp_path / "run").to_json()
    got = json.loads(json.dumps({k: result[k] for k in KEYS}).replace(".arrows:", ".jsonl:"))  # cited event = line
    assert got == json.loads((HERE / name / "expected.json").read_text())
    assert result["input"]["source"] == "arrow"
