from geo_recon.billing.classify import Label, ReplicationFacts, classify, explain, explain_missed, label_verdicts, render
from geo_recon.billing.events import ErrorKind, InjectedError
from geo_recon.billing.reconciler import Verdict, VerdictKind

MS = 1_000_000
K = VerdictKind


def v(kind, txn, system=None, event_ids=(), amounts=(100, 100, 100), t=0, watermark=0):
    return Verdict(kind, txn, system, event_ids, amounts, t, 0, watermark)


def labels(verdicts, injected=(), facts=ReplicationFacts()):
    return [(c.verdict.txn_id, c.verdict.kind, c.label) for c in label_verdicts(verdicts, injected, facts)]


def test_injected_errors_are_business_when_found_with_the_right_kind_and_system():
    injected = [InjectedError("t1", ErrorKind.AMOUNT_MISMATCH, "payment"),
                InjectedError("t2", ErrorKind.MISSING_PAYMENT, "payment"),
                InjectedError("t3", ErrorKind.DUPLICATE_CHARGE, "payment")]
    verdicts = [v(K.MISMATCHED, "t1", "ledger"),  # the odd system may differ: the mismatch is per transaction
                v(K.MISSING, "t2", "payment"), v(K.MISSING, "t2", "ledger"),
                v(K.DUPLICATE, "t3", "payment", (1, 2)), v(K.MATCHED, "t4")]
    assert labels(verdicts, injected) == [
        ("t1", K.MISMATCHED, Label.BUSINESS), ("t2", K.MISSING, Label.BUSINESS),
        ("t2", K.MISSING, Label.UNEXPLAINED), ("t3", K.DUPLICATE, Label.BUSINESS)]
    summary = classify(verdicts, injected)
    assert (summary.found, summary.injected, summary.missed, summary.valid) == (3, 3, (), False)
    assert summary.exceptions == {"business": 3, "unexplained": 1}
    assert summary.transactions == 4 and summary.matched == 1


def test_the_wrong_kind_or_system_does_not_find_an_injected_error():
    injected = [InjectedError("t1", ErrorKind.MISSING_PAYMENT, "payment")]
    assert labels([v(K.MISSING, "t1", "ledger"), v(K.DUPLICATE, "t1", "payment")], injected) == [
        ("t1", K.MISSING, Label.UNEXPLAINED), ("t1", K.DUPLICATE, Label.UNEXPLAINED)]
    summary = classify([], injected)
    assert summary.found == 0 and not summary.valid
    assert summary.missed[0].masked_by == ()
    assert "not reported" in explain_missed(summary.missed[0])


def test_missing_events_are_explained_by_the_checker_facts():
    facts = ReplicationFacts(lost=frozenset({("payment", "t1")}), late=frozenset({("ledger", "t2")}),
                             unacked=frozenset({("order", "t3")}))
    verdicts = [v(K.MISSING, "t1", "payment"), v(K.MISSING, "t2", "ledger"), v(K.MISSING, "t3", "order"),
                v(K.MISSING, "t4", "order")]
    assert [c[2] for c in labels(verdicts, (), facts)] == [
        Label.REPLICATION_LOSS, Label.REPLICATION_LAG, Label.SOURCE_UNAVAILABLE, Label.UNEXPLAINED]


def test_late_events_are_lag_when_the_checker_says_so_and_never_loss():
    facts = ReplicationFacts(lost=frozenset({("payment", "t1")}), late=frozenset({("ledger", "t2")}),
                             unacked=frozenset({("order", "t3")}))
    verdicts = [v(K.LATE, "t1", "payment", (5,), (100,)), v(K.LATE, "t2", "ledger", (6,), (100,)),
                v(K.LATE, "t3", "order", (7,), (100,)), v(K.LATE, "t9", "order", (8,), (100,))]
    assert [c[2] for c in labels(verdicts, (), facts)] == [
        Label.UNEXPLAINED, Label.REPLICATION_LAG, Label.SOURCE_UNAVAILABLE, Label.UNEXPLAINED]
    summary = classify(verdicts, (), facts)
    assert summary.late_events == {"replication_lag": 1, "source_unavailable": 1, "unexplained": 2}
    assert summary.exceptions == {} and summary.transactions == 0


def test_mismatches_and_duplicates_are_never_blamed_on_replication():
    facts = ReplicationFacts(lost=frozenset({("payment", "t1")}), late=frozenset({("payment", "t2")}))
    assert [c[2] for c in labels([v(K.MISMATCHED, "t1", "payment"), v(K.DUPLICATE, "t2", "payment")], (), facts)] \
        == [Label.UNEXPLAINED, Label.UNEXPLAINED]


def test_a_missed_error_is_masked_when_replication_hid_it():
    injected = [InjectedError("t1", ErrorKind.DUPLICATE_CHARGE, "payment")]
    facts = ReplicationFacts(lost=frozenset({("payment", "t1"), ("payment", "t7")}))
    summary = classify([v(K.MATCHED, "t1")], injected, facts)
    assert summary.found == 0 and summary.valid
    assert summary.missed[0].masked_by == ((Label.REPLICATION_LOSS, ("payment", "t1")),)
    assert explain_missed(summary.missed[0]) == (
        "t1: the injected duplicate_charge (payment) could not be seen: masked by payment replication_loss.")


def test_an_error_found_twice_is_not_valid():
    injected = [InjectedError("t1", ErrorKind.MISSING_PAYMENT, "payment")]
    summary = classify([v(K.MISSING, "t1", "payment"), v(K.MISSING, "t1", "payment")], injected)
    assert summary.found_more_than_once == (injected[0],) and not summary.valid


def test_cases_are_kept_per_label_up_to_the_limit_and_explained_in_words():
    facts = ReplicationFacts(lost=frozenset({("payment", f"t{i}") for i in range(10)}))
    verdicts = [v(K.MISSING, f"t{i}", "payment", amounts=(100, None, 100)) for i in range(10)]
    summary = classify(verdicts, (), facts, max_cases=3)
    assert summary.exceptions == {"replication_loss": 10}
    assert [c.verdict.txn_id for c in summary.cases["replication_loss"]] == ["t0", "t1", "t2"]
    assert explain(summary.cases["replication_loss"][0]) == (
        "t0: missing: no payment event had arrived when the transaction became final; "
        "acked in its origin region but never received here: replication loss.")
    text = "\n".join(render(summary))
    assert "replication_loss: 10 exceptions (missing 10), 0 late events" in text
    assert text.endswith("valid")


def test_explanations_for_every_kind():
    inj = InjectedError("t1", ErrorKind.AMOUNT_MISMATCH, "payment")
    (case,) = label_verdicts([v(K.MISMATCHED, "t1", "payment", amounts=(100, 105, None))], [inj])
    assert explain(case) == ("t1: mismatched: amounts disagree (100, 105, -) (first odd one: payment); "
                             "the injected amount_mismatch error, found.")
    (case,) = label_verdicts([v(K.DUPLICATE, "t2", "payment", (4, 9))], [])
    assert "payment sent 2 distinct events (ids 4, 9)" in explain(case) and "reconciler bug" in explain(case)
    (case,) = label_verdicts([v(K.LATE, "t3", "ledger", (4,), (100,), t=10 * MS, watermark=260 * MS)], [],
                             ReplicationFacts(late=frozenset({("ledger", "t3")})))
    assert explain(case) == ("t3: late: ledger event 4 arrived after the transaction was final (its event time "
                             "is 250.0 ms behind the watermark); acked in its origin region and received here "
                             "too late: replication lag.")
