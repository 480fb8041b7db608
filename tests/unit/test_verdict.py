"""The verdict on hand-built results: every rule can fail, and nothing passes by accident."""

from geo_recon.scenario import Limits
from geo_recon.verdict import Judgement, judge, merge


def _region(**counts):
    return {"expected": 100, "lost": 0, "duplicates": 0, "reordered": 0, "unexpected": 0, "receipts": 100,
            "lag_ms": {"p99": 120.0}, **counts}


def _results(a=None, b=None, **extra):
    return {"regions": {"a": a or _region(), "b": b or _region()}, "allowed": [],
            "run": {"sends_by_region": {"a": {"ok": 50, "fail": 0, "info": 0, "pending": 0},
                                        "b": {"ok": 50, "fail": 0, "info": 0, "pending": 0}}},
            "convergence": [], "rpo": [], "rto": [], "recovery": [], **extra}


def _by(lines):
    return {(j.name, j.where): j for j in lines}


def test_a_clean_run_is_met_line_by_line():
    met, lines = judge(_results(), Limits())
    assert met is True
    assert all(j.met for j in lines)
    assert {j.name for j in lines} >= {"published", "received", "lost", "duplicates", "reordered", "max_unexpected"}


def test_anomalies_found_without_a_limit_are_not_met():
    met, lines = judge(_results(b=_region(lost=3, duplicates=2)), Limits())
    assert met is False
    by = _by(lines)
    assert by[("lost", "b")].met is False and by[("lost", "a")].met is True
    assert by[("lost", "b")].words == ("region b: 3 acknowledged message(s) lost (none allowed: the scenario neither "
                                       "allows lost nor sets max_lost)")
    assert by[("duplicates", "b")].met is False


def test_an_allowed_kind_or_a_limit_replaces_the_default_of_none():
    results = _results(b=_region(lost=3, duplicates=2))
    met, lines = judge(results, Limits(allow=["duplicates"], max_lost=5))
    assert met is True
    names = {j.name for j in lines}
    assert "duplicates" not in names and ("max_lost", "b") in _by(lines)
    # run.json's allowed (e.g. reordered for an unordered workload) arrives through results["allowed"]
    met, _ = judge({**_results(b=_region(reordered=4)), "allowed": ["reordered"]}, Limits())
    assert met is True
    # a delivered fraction limits loss: judged by it, not by "none allowed"
    met, lines = judge(results, Limits(allow=["duplicates"], min_delivered_fraction=0.9))
    assert met is True and "lost" not in {j.name for j in lines}


def test_nothing_judged_is_undecided_never_met():
    assert judge(None, Limits()) == (None, [])
    assert merge([]) is None
    assert merge([Judgement("x", 0, 0, True, "", ""), Judgement("y", 0, None, None, "", "")]) is None
    assert merge([Judgement("x", 0, 0, False, "", ""), Judgement("y", 0, None, None, "", "")]) is False


def test_a_region_with_zero_acknowledged_sends_is_not_met():
    results = _results()
    results["run"]["sends_by_region"]["a"] = {"ok": 0, "fail": 0, "info": 40, "pending": 3}
    met, lines = judge(results, Limits())
    assert met is False
    line = _by(lines)[("published", "a")]
    assert line.met is False and line.words == "region a: never published: 43 send(s) invoked, none acknowledged"


def test_sends_with_an_unknown_outcome_are_said_in_words_and_judged_neither_way():
    results = _results()
    results["run"]["sends_by_region"]["a"] = {"ok": 900, "fail": 0, "info": 2000, "pending": 0}
    met, lines = judge(results, Limits())
    line = _by(lines)[("unknown_outcomes", "a")]
    assert met is True and line.met is True and line.actual == 2000
    assert line.words.startswith("region a: 2000 send(s) ended with an unknown outcome")
    assert ("unknown_outcomes", "b") not in _by(lines)  # b's sends were all acknowledged or failed


def test_a_producer_that_never_started_is_named_with_its_first_error():
    results = _results()
    results["run"]["sends_by_region"]["a"] = {"ok": 0, "fail": 0, "info": 0, "pending": 0}
    workers = {"a": {"fate": "finished", "errors": ["a/p0: could not create a producer on t0: ConnectError"]},
               "b": {"fate": "finished", "errors": []}}
    met, lines = judge(results, Limits(), workers=workers)
    by = _by(lines)
    assert met is False
    assert by[("published", "a")].words == ("region a: never published: no send invoked "
                                            "(a/p0: could not create a producer on t0: ConnectError)")
    assert by[("worker_errors", "a")].words == ("region a: 1 worker error(s); the first: a/p0: could not create a "
                                                "producer on t0: ConnectError")


def test_a_worker_that_died_is_not_met():
    workers = {"a": {"fate": "consume worker died before finishing (log: x.log)"}, "b": {"fate": "finished"}}
    met, lines = judge(_results(), Limits(), workers=workers)
    assert met is False
    assert _by(lines)[("worker_finished", "a")].words == "region a: consume worker died before finishing (log: x.log)"


def test_stuck_sends_get_their_own_line_and_fail_the_run():
    workers = {"a": {"fate": "finished", "errors": [], "stuck": 7}, "b": {"fate": "finished"}}
    met, lines = judge(_results(), Limits(), workers=workers)
    line = _by(lines)[("stuck_sends", "a")]
    assert met is False and line.met is False and line.actual == 7
    assert line.words.startswith("region a: 7 send(s) never completed")


def _rto(**row):
    return {"fault_id": "f1", "region": "a", "failed": True, "recovered": False, "ms": None,
            "first_failure_s": 15.0, "heal_s": 35.0, **row}


def test_rto_not_observed_when_the_load_ended_first_and_never_when_it_went_on():
    limits = Limits(max_rto_s=30, max_recovery_s=None)
    met, lines = judge(_results(rto=[_rto(load_end_s=40.0)]), limits)
    assert met is None
    assert "RTO not observed: the load ended 25.0 s after the first failure" in lines[-1].words
    met, lines = judge(_results(rto=[_rto(load_end_s=80.0)]), limits)
    assert met is False and "publishing never recovered (65.0 s of load" in lines[-1].words
    met, lines = judge(_results(rto=[_rto(recovered=True, ms=12_000.0)]), limits)
    assert met is True and "recovered in 12.0 s" in lines[-1].words


def _recovery(**row):
    return {"fault_id": "f1", "region": "a", "heal_s": 35.0, "publish_ms": 800.0, "receive_ms": 300.0,
            "load_end_s": 70.0, **row}


def test_recovery_after_every_heal_is_judged_by_default():
    met, lines = judge(_results(recovery=[_recovery()]), Limits())
    assert met is True
    assert _by(lines)[("max_recovery_s", "f1/a/publish")].words == ("region a after f1 healed: publishing again after 0.8 s "
                                                           "(at most 30 s)")
    met, lines = judge(_results(recovery=[_recovery(publish_ms=None)]), Limits())
    assert met is False
    assert "publishing never recovered; the load ran 35.0 s past the heal" in _by(lines)[("max_recovery_s", "f1/a/publish")].words
    met, lines = judge(_results(recovery=[_recovery(publish_ms=None, load_end_s=40.0)]), Limits())
    assert met is None
    assert "publishing recovery not observed: the load ended first; the load ran 5.0 s past the heal" in _by(lines)[("max_recovery_s", "f1/a/publish")].words
    met, _ = judge(_results(recovery=[_recovery(publish_ms=None, load_end_s=40.0)]), Limits(max_recovery_s=4))
    assert met is False  # the scenario's own limit: 5 s of load after the heal is enough to say "never"


def test_a_heal_not_verified_when_the_load_ended_at_its_cap_is_undecided_never_met():
    # e.g. a killed region whose JVMs never came back: no stop line, so no recovery row to judge either
    load = {"scheduled_s": 70, "cap_s": 190, "window_s": 35, "ended_s": 190.2, "heals_not_observed": ["f1"]}
    met, lines = judge(_results(), Limits(), load=load)
    assert met is None
    assert _by(lines)[("heal_observed", "f1")].words == ("f1: its heal was not verified before the load ended at "
                                                         "its cap (190 s): recovery after it was not observed")
    met, _ = judge(_results(), Limits(), load={**load, "heals_not_observed": []})
    assert met is True


def test_recovery_of_a_region_another_fault_still_held_down_counts_from_that_faults_heal():
    row = _recovery(fault_id="f2", region="b", heal_s=15.0, held_down_by="f1", recovers_from_s=41.0,
                    publish_ms=2500.0, receive_ms=None, load_end_s=60.0)
    met, lines = judge(_results(recovery=[row]), Limits())
    assert met is None  # 19 s of load after b came back: receiving not observed yet, not "never"
    assert _by(lines)[("max_recovery_s", "f2/b/publish")].words == (
        "region b after f2 healed (and f1, which still held it down, at 41.0 s): publishing again after 2.5 s "
        "(at most 30 s)")
    assert "the load ran 19.0 s past the heal" in _by(lines)[("max_recovery_s", "f2/b/receive")].words


def test_a_region_that_need_not_publish_is_not_judged_for_it():
    results = _results(recovery=[_recovery(region="b", publish_ms=None)])
    results["run"]["sends_by_region"]["b"]["ok"] = 0
    met, lines = judge(results, Limits(), publishing=["a"])
    assert met is True
    assert ("published", "b") not in _by(lines)


def test_each_limit_is_judged_per_region_in_words():
    met, lines = judge(_results(b=_region(lag_ms={"p99": 900.0})), Limits(max_lost=0, max_lag_p99_ms=500))
    assert met is False
    by = _by(lines)
    assert by[("max_lost", "b")].words == "region b: 0 acknowledged message(s) lost (at most 0 allowed)"
    assert not by[("max_lag_p99_ms", "b")].met and by[("max_lag_p99_ms", "a")].met


def test_rpo_and_convergence():
    results = _results(convergence=[{"fault_id": "f1", "converged": True, "ms": 4200.0, "still_missing": {}}],
                       rpo=[{"fault_id": "f1", "region": "a", "count": 3, "span_ms": 1500.0}])
    met, lines = judge(results, Limits(max_rpo_messages=5, max_convergence_s=5))
    by = {j.name: j for j in lines}
    assert met is True and by["max_rpo_messages"].met and by["max_convergence_s"].met
    met, _ = judge(results, Limits(max_rpo_messages=2))
    assert met is False


def test_old_results_without_per_region_sends_are_undecided():
    results = _results()
    del results["run"]
    met, lines = judge(results, Limits())
    assert met is None and "re-check with `geo-recon check RUN_DIR --write`" in lines[0].words


def test_a_worker_of_a_region_lost_for_good_may_die_but_not_one_of_a_rebuilt_region():
    """Its clients have no cluster left: the death is what the fault does. A rebuilt region's workers must finish."""
    workers = {"a": {"fate": "consume worker died before finishing (log: x.log)"}, "b": {"fate": "finished"}}
    for rebuilt_s, want in ((None, True), (45.0, False)):
        results = _results()
        results["region_loss"] = [{"fault_id": "f1", "region": "a", "loss_s": 20.0, "rebuilt_s": rebuilt_s,
                                   "clients": []}]
        line = _by(judge(results, Limits(), workers=workers)[1])[("worker_finished", "a")]
        assert line.met is want, line
    assert line.words == "region a: consume worker died before finishing (log: x.log)"
    results["region_loss"][0]["rebuilt_s"] = None
    words = _by(judge(results, Limits(), workers=workers)[1])[("worker_finished", "a")].words
    assert words.endswith("expected: the region was lost for good at 20.0 s and not rebuilt, so its clients had no "
                          "cluster left")


def test_worker_errors_of_a_region_lost_for_good_are_expected_and_said_but_not_elsewhere():
    """Its reader finds no cluster to read from; the same error in a surviving region is a failure."""
    workers = {"a": {"fate": "finished", "errors": ["reader on t0: Timeout: Pulsar error: TimeOut"]},
               "b": {"fate": "finished", "errors": ["reader on t0: Timeout: Pulsar error: TimeOut"]}}
    results = _results()
    results["region_loss"] = [{"fault_id": "f1", "region": "a", "loss_s": 20.0, "rebuilt_s": None, "clients": []}]
    lines = _by(judge(results, Limits(), workers=workers)[1])
    assert lines[("worker_errors", "a")].met is True
    assert lines[("worker_errors", "a")].words.endswith("expected: the region was lost for good at 20.0 s")
    assert lines[("worker_errors", "b")].met is False
