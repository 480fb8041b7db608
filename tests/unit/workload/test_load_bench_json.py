"""`bench load --json`: the ratios the goals are stated in, every recorder beside its baseline."""

from __future__ import annotations

import pytest

from geo_recon.errors import GeoReconError
from geo_recon.workload import bench
from geo_recon.workload.bench import RAW_LABEL, RAW_PLAIN_LABEL, RAW_SAME_LABEL, LoadFigure, to_json


def test_ratios_include_the_arrow_history_recorders_and_several_processes() -> None:
    figures = [LoadFigure("pulsar-perf produce (batching)", None, 100_000, 1, 0, None),
               LoadFigure(RAW_PLAIN_LABEL, None, 5_000, 1, 0, None),
               LoadFigure(RAW_LABEL, None, 20_000, 1, 0, None),
               LoadFigure(RAW_SAME_LABEL, None, 12_500, 1, 0, None),
               LoadFigure("geo-recon max (batching on)", None, 10_000, 1, 1, 0.1),
               LoadFigure("geo-recon max (batching off)", None, 4_000, 1, 1, 0.1),
               LoadFigure("geo-recon arrow max (batching on)", None, 9_000, 1, 1, 0.1),
               LoadFigure("geo-recon 2 processes max (batching on)", None, 16_000, 1, 1, 0.1),
               LoadFigure(bench.raw_processes_label(2), None, 32_000, 1, 0, None),
               LoadFigure("geo-recon native max (go, jsonl, batching on)", None, 70_000, 1, 1, 0.1),
               LoadFigure("geo-recon native max (go, arrow, batching on)", None, 60_000, 1, 1, 0.1)]
    ratios = to_json(figures)["ratios"]
    # the reference is the client keeping its callback thread's state, as the worker does; not the plain one
    assert ratios == {"python_client_vs_perf": 0.2, "python_recorder_vs_python_client": 0.5,
                      "python_client_plain_vs_python_client": 0.25,
                      "python_recorder_vs_python_client_same_messages": 0.8,
                      "python_recorder_arrow_vs_python_client_same_messages": 0.72,
                      "native_recorder_vs_perf": 0.7, "native_recorder_arrow_vs_perf": 0.6,
                      "python_recorder_processes_vs_python_client": 0.8,
                      "python_recorder_processes_vs_python_client_processes": 0.5,
                      "python_recorder_arrow_vs_python_client": 0.45, "python_recorder_arrow_vs_jsonl": 0.9}


def test_pulsar_perf_rate_is_counted_over_its_sending_window():
    # pulsar-perf's own figure (56,444/s here) divided by 20.1 s for a 10 s run: client and producer creation
    # and shutdown included. The recorders count over their sending window; so does the bench now.
    out = ("... ------------- DONE (reached the maximum duration: [10 seconds] of production) --------------\n"
           "... Aggregated throughput stats --- 1134364 records sent --- 56444.123 msg/s --- 43.1 Mbit/s\n")
    assert bench.perf_records(out, 0) == 1134364
    assert bench.perf_rate(out, 10.0) == 113436.4
    with pytest.raises(GeoReconError, match="pulsar-perf printed no throughput"):
        bench.perf_rate("Exception in thread main", 10.0)


def test_each_native_run_is_compared_with_pulsar_perf_right_before_and_after_it_never_the_warm_up():
    from geo_recon.report.console import load_bench_lines

    figures = [LoadFigure(bench.WARMUP_LABEL, None, 50_000, 1, 0, None),
               LoadFigure(bench.PERF_LABEL, None, 100_000, 1, 0, None),
               LoadFigure("geo-recon native max (go, jsonl, batching on)", None, 77_000, 1, 1, 0.1),
               LoadFigure(f"{bench.PERF_AGAIN_LABEL} jsonl run", None, 120_000, 1, 0, None),
               LoadFigure("geo-recon native max (go, arrow, batching on)", None, 88_000, 1, 1, 0.1),
               LoadFigure(f"{bench.PERF_AGAIN_LABEL} arrow run", None, 100_000, 1, 0, None),
               LoadFigure(RAW_LABEL, None, 22_000, 1, 0, None)]
    out = to_json(figures)
    assert out["perf_baseline"] == 106_666.7 and len(out["figures"]) == len(figures)
    assert (out["ratios"]["native_recorder_vs_perf"], out["ratios"]["native_recorder_arrow_vs_perf"]) == (0.7, 0.8)
    assert out["ratios"]["python_client_vs_perf"] == round(22_000 / 106_666.7, 4)
    lines = "\n".join(load_bench_lines(figures, header="h"))
    assert "native (go, jsonl): 70% of pulsar-perf" in lines and "native (go, arrow): 80% of pulsar-perf" in lines


def _round(number: int, perf: float, native: float, raw: float, recorder: float) -> list[LoadFigure]:
    return [LoadFigure(bench.PERF_LABEL, None, perf, 1, 0, None, number),
            LoadFigure("geo-recon native max (go, jsonl, batching on)", None, native, 1, 1, 0.1, number),
            LoadFigure(f"{bench.PERF_AGAIN_LABEL} jsonl run", None, perf, 1, 0, None, number),
            LoadFigure(RAW_LABEL, None, raw, 1, 0, None, number),
            LoadFigure("geo-recon max (batching on)", None, recorder, 1, 1, 0.1, number)]


def test_with_rounds_each_ratio_is_the_median_of_the_rounds_each_from_its_own_figures():
    from geo_recon.report.console import load_bench_lines

    # round 2's pulsar-perf is twice round 1's: were the rounds pooled, round 1's native would read 0.6, not 0.9
    figures = [LoadFigure(bench.WARMUP_LABEL, None, 1, 1, 0, None),
               *_round(1, 100_000, 90_000, 50_000, 30_000),
               LoadFigure(RAW_PLAIN_LABEL, None, 10_000, 1, 0, None, 1),  # context: round 1 only
               *_round(2, 200_000, 140_000, 50_000, 40_000),
               *_round(3, 100_000, 75_000, 40_000, 36_000)]
    out = to_json(figures)
    assert out["rounds"] == 3 and len(out["figures"]) == len(figures)
    assert [r["native_recorder_vs_perf"] for r in out["ratios_by_round"]] == [0.9, 0.7, 0.75]
    assert [r["python_recorder_vs_python_client"] for r in out["ratios_by_round"]] == [0.6, 0.8, 0.9]
    assert out["ratios"]["native_recorder_vs_perf"] == 0.75
    assert out["ratios"]["python_recorder_vs_python_client"] == 0.8
    assert out["ratios"]["python_client_plain_vs_python_client"] == 0.2  # the one round that has it
    assert out["ratios"]["native_recorder_arrow_vs_perf"] is None  # no round has it
    lines = "\n".join(load_bench_lines(figures, header="h"))
    assert "native (go, jsonl): 75% of pulsar-perf right before and after it (the median of 3 rounds: 90%, 70%, 75%)" \
        in lines
    assert "as commonly used (a thread state made per callback) reaches 20% of the one keeping it." in lines
