from geo_recon.scenario import Limits
from geo_recon.verdict import judge

RESULTS = {
    "regions": {"a": {"expected": 100, "lost": 0, "duplicates": 2, "reordered": 0, "unexpected": 0,
                      "lag_ms": {"p99": 120.0}},
                "b": {"expected": 100, "lost": 3, "duplicates": 0, "reordered": 0, "unexpected": 0,
                      "lag_ms": {"p99": 900.0}}},
    "convergence": [{"fault_id": "f1", "converged": True, "ms": 4200.0, "still_missing": {}}],
    "rpo": [{"fault_id": "f1", "region": "a", "count": 3, "span_ms": 1500.0}],
    "rto": [{"fault_id": "f1", "region": "b", "failed": True, "recovered": False, "ms": None}],
}


def test_each_limit_is_judged_per_region_in_words():
    met, lines = judge(RESULTS, Limits(max_lost=0, max_lag_p99_ms=500))
    assert met is False
    by = {(j.name, j.where): j for j in lines}
    assert by[("max_lost", "a")].met and not by[("max_lost", "b")].met
    assert by[("max_lost", "b")].words == "region b: 3 acknowledged message(s) lost (at most 0 allowed)"
    assert not by[("max_lag_p99_ms", "b")].met


def test_rpo_rto_and_convergence():
    met, lines = judge(RESULTS, Limits(max_unexpected=None, max_rpo_messages=5, max_rto_s=30, max_convergence_s=5))
    by = {j.name: j for j in lines}
    assert by["max_rpo_messages"].met and by["max_convergence_s"].met
    assert not by["max_rto_s"].met and "never recovered" in by["max_rto_s"].words
    assert met is False


def test_no_results_means_no_verdict():
    assert judge(None, Limits()) == (None, [])
