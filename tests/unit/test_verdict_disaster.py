"""The verdict about a lost region: client RTO, re-consumption, gaps, RPO; never met when nothing was lost."""

from geo_recon.scenario import Limits
from geo_recon.verdict import judge
from tests.unit.test_verdict import _results


def _client(client="a/p0", role="producer", rto_s=3.2, outcome="recovered", cluster="b", failed_over=True):
    return {"client": client, "role": role, "rto_s": rto_s, "outcome": outcome, "cluster": cluster,
            "failed_over": failed_over, "failover_s": 23.0, "recovered_s": None if rto_s is None else 20 + rto_s}


def _loss(clients=None, subscriptions=None, loss_s=20.0, load_end_s=70.0, rebuilt_s=None):
    return {"fault_id": "f1", "fault": "lose", "region": "a", "scheme": "async", "loss_s": loss_s,
            "rebuilt_s": rebuilt_s, "healed_s": rebuilt_s, "load_end_s": load_end_s,
            "rpo": {"count": 5, "first_ok_s": 19.5, "last_ok_s": 19.9, "span_s": 0.4},
            "exposure": {"count": 5, "first_ok_s": 19.5, "last_ok_s": 19.9, "span_s": 0.4},
            "clients": [_client()] if clients is None else clients, "failed_over": True,
            "subscriptions": subscriptions, "writes": {"outcome": "resumed", "stalled_s": 0.0}, "not_counted": 0}


def _lines(results, **limits):
    met, lines = judge(results, Limits(**limits))
    return met, [j for j in lines if j.name in limits]


def test_client_rto_met_not_met_never_and_not_observed():
    clients = [_client(), _client("a/c0", "consumer", rto_s=9.0),
               _client("a/p1", rto_s=None, outcome="never", cluster=None, failed_over=False)]
    met, lines = _lines(_results(region_loss=[_loss(clients)]), max_client_rto_s=5)
    assert met is False
    assert [j.met for j in lines] == [True, False, False]
    assert lines[0].words == ("region a lost (f1): producer a/p0: sending again 3.2 s after the loss on cluster b "
                              "after failing over (at most 5 s)")
    assert lines[2].words == ("region a lost (f1): producer a/p1: never sending again (50.0 s of load after the "
                              "loss; at most 5 s)")
    # the load ended 3 s after the loss: not observed, undecided
    met, lines = _lines(_results(region_loss=[_loss([_client(rto_s=None, outcome="not observed")], load_end_s=23.0)]),
                        max_client_rto_s=5)
    assert met is None and lines[0].met is None and "RTO not observed" in lines[0].words


def test_subscription_limits():
    subs = [{"subscription": "sub-a", "receipts": 700, "reconsumed": 10, "gaps": 2, "gap_examples": ["b/p0:200"]}]
    met, lines = _lines(_results(region_loss=[_loss(subscriptions=subs)]), max_reconsumed=20, max_subscription_gaps=0)
    assert met is False
    assert [(j.name, j.met, j.actual) for j in lines] == [("max_reconsumed", True, 10),
                                                          ("max_subscription_gaps", False, 2)]
    assert lines[1].where == "f1/a/sub-a"


def test_subscription_limits_without_replicated_subscriptions_are_undecided():
    met, lines = _lines(_results(region_loss=[_loss(subscriptions=None)]), max_reconsumed=20)
    assert met is None and lines[0].met is None
    assert "run.json does not say replicated_subscription" in lines[0].words
    met, lines = _lines(_results(region_loss=[_loss(subscriptions=[])]), max_subscription_gaps=0)
    assert met is None and "no receipt of the region names a subscription" in lines[0].words


def test_no_lost_region_is_never_met_by_accident():
    for limit in ("max_rpo_messages", "max_rpo_s", "max_client_rto_s", "max_reconsumed", "max_subscription_gaps"):
        met, lines = _lines(_results(region_loss=[]), **{limit: 1})
        assert met is None, limit
        assert len(lines) == 1 and lines[0].met is None and "no region-loss fault" in lines[0].words, limit
    met, lines = _lines(_results(), max_client_rto_s=5)  # results.json of an older geo-recon
    assert met is None and "older geo-recon" in lines[0].words


def test_a_lost_region_without_clients_is_undecided():
    met, lines = _lines(_results(region_loss=[_loss(clients=[])]), max_client_rto_s=5)
    assert met is None and "no client of the region" in lines[0].words


def test_rpo_limits_judge_the_rpo_rows():
    rpo = [{"fault_id": "f1", "region": "a", "count": 0, "first_ok_s": None, "last_ok_s": None, "span_ms": 0.0,
            "window_ms": None}]
    met, lines = _lines(_results(rpo=rpo, region_loss=[_loss()]), max_rpo_messages=0, max_rpo_s=0)
    assert met is True and [j.met for j in lines] == [True, True]
