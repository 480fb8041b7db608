from collections import Counter, defaultdict

import pytest

from geo_recon.billing.events import (
    BillingEvent,
    BillingSpec,
    ErrorKind,
    PayloadError,
    SystemSpec,
    decode,
    decode_fields,
    default_systems,
    encode,
    events_in_time_order,
    generate,
    injected_errors,
    to_message,
    topic_for,
    transactions,
)
from geo_recon.errors import ConfigError

SYSTEMS = (SystemSpec("order", "a", 0, 20), SystemSpec("payment", "b", 50, 40), SystemSpec("ledger", "c", 120, 60))


def spec(**kw):
    base = dict(systems=SYSTEMS, transactions=3000, rate_per_s=500, error_rate=0.2, seed=7, start_ns=10**18)
    return BillingSpec(**{**base, **kw})


def test_same_spec_same_events_and_another_seed_other_events():
    assert generate(spec()) == generate(spec())
    assert generate(spec()).events != generate(spec(seed=8)).events


def test_injected_errors_are_exactly_what_the_events_show():
    by_txn = defaultdict(lambda: defaultdict(list))
    for e in generate(spec()).events:
        by_txn[e.txn_id][e.system].append(e)
    truth = {err.txn_id: err for err in injected_errors(spec())}
    assert len(by_txn) == 3000
    for txn_id, per in by_txn.items():
        order, ledger, payments = per["order"], per["ledger"], per["payment"]
        assert len(order) == 1 and len(ledger) == 1
        assert order[0].amount_cents == ledger[0].amount_cents
        err = truth.get(txn_id)
        if err is None:
            assert [p.amount_cents for p in payments] == [order[0].amount_cents]
        elif err.kind == ErrorKind.MISSING_PAYMENT:
            assert payments == []
        elif err.kind == ErrorKind.DUPLICATE_CHARGE:
            assert len(payments) == 2 and payments[0].event_id != payments[1].event_id
            assert {p.amount_cents for p in payments} == {order[0].amount_cents}
        else:
            assert err.kind == ErrorKind.AMOUNT_MISMATCH
            assert len(payments) == 1 and 1 <= abs(payments[0].amount_cents - order[0].amount_cents) <= 500
            assert payments[0].amount_cents >= 1
        if err is not None:
            assert err.system == "payment"


def test_error_rate_and_kinds_are_roughly_as_asked():
    kinds = Counter(err.kind for err in injected_errors(spec(transactions=20000)))
    assert 0.18 < sum(kinds.values()) / 20000 < 0.22
    assert set(kinds) == set(ErrorKind)
    assert min(kinds.values()) > 1000
    only = injected_errors(spec(error_kinds=(ErrorKind.DUPLICATE_CHARGE,)))
    assert only and {e.kind for e in only} == {ErrorKind.DUPLICATE_CHARGE}
    assert injected_errors(spec(error_rate=0.0)) == ()


def test_other_events_do_not_move_when_the_error_rate_changes():
    """The generator draws the same numbers per transaction whatever it injects."""
    clean = {(e.txn_id, e.system): e for e in generate(spec(error_rate=0.0)).events}
    dirty = generate(spec(error_rate=0.5))
    touched = {err.txn_id for err in dirty.injected}
    for e in dirty.events:
        if e.txn_id not in touched:
            assert clean[(e.txn_id, e.system)] == e


def test_event_ids_are_unique_and_times_respect_delay_and_jitter():
    g = generate(spec())
    assert len({e.event_id for e in g.events}) == len(g.events)
    txn_time = {t.txn_id: t.time_ns for t in transactions(spec())}
    limits = {s.name: (s.delay_ms * 1e6, (s.delay_ms + s.jitter_ms) * 1e6) for s in SYSTEMS}
    for e in g.events:
        low, high = limits[e.system]
        offset = e.event_time_ns - txn_time[e.txn_id]
        slack = 5e6 if e.system == "payment" else 0  # a duplicate charge comes up to duplicate_gap_ms later
        assert low <= offset < high + slack
        assert e.region == {"order": "a", "payment": "b", "ledger": "c"}[e.system]


def test_max_spread_covers_every_transaction():
    s = spec()
    times = defaultdict(list)
    for e in generate(s).events:
        times[e.txn_id].append(e.event_time_ns)
    widest = max(max(t) - min(t) for t in times.values())
    assert widest <= s.max_spread_ms() * 1e6
    assert s.max_spread_ms() == pytest.approx(120 + 60 - 0)


def test_time_ordered_streams_match_the_materialised_run():
    s = spec(transactions=800)
    everything = generate(s).events
    assert tuple(events_in_time_order(s)) == everything
    payments = list(events_in_time_order(s, ["payment"]))
    assert payments == [e for e in everything if e.system == "payment"]
    assert [e.event_time_ns for e in payments] == sorted(e.event_time_ns for e in payments)
    with pytest.raises(ConfigError, match="unknown systems"):
        list(events_in_time_order(s, ["refund"]))


def test_transactions_are_paced_by_the_rate():
    txns = list(transactions(spec(transactions=5, rate_per_s=4, start_ns=0)))
    assert [t.time_ns for t in txns] == [0, 250_000_000, 500_000_000, 750_000_000, 1_000_000_000]
    assert [t.txn_id for t in txns] == ["t0", "t1", "t2", "t3", "t4"]


def test_default_systems_cycle_over_regions():
    systems = default_systems(("east", "west"))
    assert [(s.name, s.region) for s in systems] == [("order", "east"), ("payment", "west"), ("ledger", "east")]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(systems=SYSTEMS[:1]), "at least 2 systems"),
        (dict(systems=(SYSTEMS[0], SYSTEMS[0])), "distinct"),
        (dict(systems=(SystemSpec("order", ""), SYSTEMS[1])), "region name"),
        (dict(systems=(SystemSpec("order", "a", -1), SYSTEMS[1])), "delay_ms"),
        (dict(transactions=-1), "transactions"),
        (dict(rate_per_s=0), "rate_per_s"),
        (dict(error_rate=1.5), "error_rate"),
        (dict(error_system="refund"), "error_system 'refund'"),
        (dict(error_kinds=()), "at least one error kind"),
        (dict(min_amount_cents=0), "amounts"),
        (dict(duplicate_gap_ms=-1), "duplicate_gap_ms"),
        (dict(txn_prefix="x" * 300), "255 bytes"),
    ],
)
def test_bad_specs_name_the_field(kw, message):
    with pytest.raises(ConfigError, match=message):
        spec(**kw).validate()


# --------------------------------------------------------------------------- wire format


def test_payload_round_trip_and_message_mapping():
    e = BillingEvent("txn-élan-42", "payment", "eu-west", -15, 2**62, 1_700_000_000_123_456_789)
    assert decode(encode(e)) == e
    assert decode_fields(encode(e)) == ("payment", "eu-west", "txn-élan-42", -15, 2**62, 1_700_000_000_123_456_789)
    msg = to_message(e, namespace="geo/billing")
    assert msg.topic == "persistent://geo/billing/billing-payment" == topic_for("payment", namespace="geo/billing")
    assert msg.partition_key == "txn-élan-42"
    assert msg.event_timestamp_ms == 1_700_000_000_123
    assert len(msg.payload) < 60


def test_every_generated_event_survives_the_wire():
    for e in generate(spec(transactions=200)).events:
        assert decode(encode(e)) == e


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda p: p[:10], "too short"),
        (lambda p: bytes([9]) + p[1:], "format version 9"),
        (lambda p: p + b"x", "header says"),
        (lambda p: p[:-1], "header says"),
        (lambda p: p[:-2] + b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_payloads_are_rejected(mangle, message):
    good = encode(BillingEvent("t1", "order", "a", 100, 3, 5))
    with pytest.raises(PayloadError, match=message):
        decode(mangle(good))


def test_names_too_long_for_the_format_are_refused():
    with pytest.raises(ValueError, match="255 bytes"):
        encode(BillingEvent("t" * 256, "order", "a", 1, 1, 1))
