"""One anomaly, one detector, one tiny history each: counts, cases and the words that explain them."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_recon.check import CannotDecide, check_run, explain
from geo_recon.errors import ConfigError
from tests.unit.check.helpers import fault, make_run, recv, sent


def clean_sends(n: int = 3, producer: str = "a/p0") -> list[dict]:
    return [line for s in range(n) for line in sent(producer, s, 10 * s, key=f"k{s % 2}")]


def deliver(region: str, seqs: list[int], *, producer: str = "a/p0", start_ms: float = 5, step: float = 10,
            process: str | None = None, **extra: object) -> list[dict]:
    process = process or f"{region}/c0"
    return [recv(process, producer, s, start_ms + step * i, **extra) for i, s in enumerate(seqs)]


def check(tmp_path: Path, files: dict[str, list[dict]], **kw: object) -> dict:
    return check_run(make_run(tmp_path, files, **kw)).to_json()


def test_a_clean_run_is_valid(tmp_path: Path) -> None:
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]),
                           "b.jsonl": deliver("b", [0, 1, 2], start_ms=50)})
    assert got["valid"] is True and got["anomaly_types"] == []
    for region in ("a", "b"):
        r = got["regions"][region]
        assert r["expected"] == 3
        assert all(r[k] == 0 for k in ("lost", "duplicates", "redelivered", "reordered", "unexpected", "recovered",
                                       "stored_not_consumed"))
    assert got["regions"]["a"]["lag_ms"] == {"p50": 4.0, "p90": 4.0, "p99": 4.0, "max": 4.0}
    assert got["regions"]["b"]["lag_ms"] == {"p50": 49.0, "p90": 49.0, "p99": 49.0, "max": 49.0}
    assert got["publish_latency_ms"] == {"a": {"p50": 1.0, "p90": 1.0, "p99": 1.0, "max": 1.0}}


def test_lost_message_is_found_and_explained(tmp_path: Path) -> None:
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]),
                           "b.jsonl": deliver("b", [0, 2])})
    assert got["valid"] is False and got["anomaly_types"] == ["lost"]
    assert got["regions"]["b"]["lost"] == 1 and got["regions"]["a"]["lost"] == 0
    (case,) = got["cases"]["lost"]
    assert (case["region"], case["producer"], case["seq"], case["key"]) == ("b", "a/p0", 1, "k1")
    assert case["seen_in"] == [["a", 0.015]]
    text = case["explanation"]
    for words in ("a/p0 seq 1", "acknowledged in a at 0.011 s", "history/p.jsonl:4", "never received in b",
                  "received in a (first at 0.015 s)"):
        assert words in text


def test_a_message_seen_only_by_the_reader_is_not_lost(tmp_path: Path) -> None:
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]),
                           "b.jsonl": deliver("b", [0, 2]),
                           "r.jsonl": deliver("b", [0, 1, 2], start_ms=500, process="b/reader", via="reader")})
    b = got["regions"]["b"]
    assert (b["lost"], b["stored_not_consumed"], b["redelivered"], b["duplicates"]) == (0, 1, 0, 0)
    assert got["valid"] is True
    (case,) = got["cases"]["stored_not_consumed"]
    assert "the reader b/reader at 0.510 s" in case["explanation"]


def test_stored_twice_is_a_duplicate_not_a_redelivery(tmp_path: Path) -> None:
    b = deliver("b", [0, 1, 2]) + [recv("b/c0", "a/p0", 1, 40, msg_id="second-copy")]
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]), "b.jsonl": b})
    assert got["regions"]["b"]["duplicates"] == 1 and got["regions"]["b"]["redelivered"] == 0
    assert got["regions"]["b"]["reordered"] == 0  # a repeat is not a first-time receipt
    (case,) = got["cases"]["duplicates"]
    assert [c["msg_id"] for c in case["copies"]] == ["a/p0:1", "second-copy"]
    assert "stored 2 times in b" in case["explanation"]


def test_the_reader_reveals_a_copy_the_consumer_missed(tmp_path: Path) -> None:
    reader = deliver("b", [0, 1, 2], start_ms=500, process="b/reader", via="reader")
    reader.append(recv("b/reader", "a/p0", 2, 600, msg_id="other", via="reader"))
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]),
                           "b.jsonl": deliver("b", [0, 1, 2]), "r.jsonl": reader})
    assert got["regions"]["b"]["duplicates"] == 1
    assert got["regions"]["b"]["redelivered"] == 0  # reader receipts never count as redeliveries


def test_same_msg_id_again_is_a_redelivery_and_does_not_invalidate(tmp_path: Path) -> None:
    b = deliver("b", [0, 1, 2]) + [recv("b/c0", "a/p0", 0, 40), recv("b/c1", "a/p0", 0, 50)]
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]), "b.jsonl": b})
    assert got["regions"]["b"]["redelivered"] == 2
    assert got["valid"] is True
    (case,) = got["cases"]["redelivered"]
    assert case["deliveries"] == 3
    assert "delivered 3 times with the same msg_id in b" in case["explanation"]


@pytest.mark.parametrize("subscription, expected", [(None, 1), ("Exclusive", 1), ("Failover", 1), ("Shared", 0)])
def test_reordering_per_consumer_and_producer(tmp_path: Path, subscription: str | None, expected: int) -> None:
    extra = {"subscription_type": subscription} if subscription else {}
    got = check(tmp_path, {"p.jsonl": clean_sends(4), "a.jsonl": deliver("a", [0, 2, 1, 3], **extra),
                           "b.jsonl": deliver("b", [0, 1, 2, 3])})
    assert got["regions"]["a"]["reordered"] == expected
    assert got["regions"]["b"]["reordered"] == 0
    if expected:
        (case,) = got["cases"]["reordered"]
        assert (case["process"], case["seq"], case["after_seq"]) == ("a/c0", 1, 2)
        assert "a/c0 in a received a/p0 seq 1 at 0.025 s" in case["explanation"]
        assert "after it had already received seq 2 from a/p0 at 0.015 s" in case["explanation"]


def test_key_shared_orders_per_key(tmp_path: Path) -> None:
    # keys alternate: seq 0,2 have k0 and seq 1,3 have k1; receiving 0,1,3,2 keeps each key in order ...
    ok = deliver("a", [0, 1, 3, 2], subscription_type="Key_Shared")
    # ... while 2,0 within k0 does not
    bad = deliver("b", [2, 0, 1, 3], subscription_type="KeyShared")
    got = check(tmp_path, {"p.jsonl": clean_sends(4), "a.jsonl": ok, "b.jsonl": bad})
    assert got["regions"]["a"]["reordered"] == 0
    assert got["regions"]["b"]["reordered"] == 1
    assert got["cases"]["reordered"][0]["key"] == "k0"


def test_reordering_is_per_consumer_process(tmp_path: Path) -> None:
    # after a failover the new consumer starts again from seq 1: not a reordering of its own stream
    a = deliver("a", [0, 1, 2]) + deliver("a", [1, 2, 3], start_ms=60, process="a/c1")
    got = check(tmp_path, {"p.jsonl": clean_sends(4), "a.jsonl": a, "b.jsonl": deliver("b", [0, 1, 2, 3])})
    assert got["regions"]["a"]["reordered"] == 0
    assert got["regions"]["a"]["redelivered"] == 2


def test_unexpected_never_invoked_or_failed(tmp_path: Path) -> None:
    sends = clean_sends() + sent("a/p0", 3, 40, outcome="fail")
    b = deliver("b", [0, 1, 2, 3]) + [recv("b/c0", "a/p0", 99, 80), recv("b/c0", "z/ghost", 0, 90)]
    got = check(tmp_path, {"p.jsonl": sends, "a.jsonl": deliver("a", [0, 1, 2]), "b.jsonl": b})
    assert got["regions"]["b"]["unexpected"] == 3
    assert got["regions"]["b"]["reordered"] == 0  # sends that never happened are left out of ordering
    texts = [c["explanation"] for c in got["cases"]["unexpected"]]
    assert "but that send failed at 0.041 s" in texts[0]
    assert texts[1].endswith("but a/p0 never invoked seq 99.")
    assert texts[2].endswith("but z/ghost never invoked seq 0.")


def test_unknown_outcomes_that_arrive_are_recovered(tmp_path: Path) -> None:
    sends = clean_sends() + sent("a/p0", 3, 40, outcome="info") + sent("a/p0", 4, 50, outcome=None)
    got = check(tmp_path, {"p.jsonl": sends, "a.jsonl": deliver("a", [0, 1, 2, 3, 4]),
                           "b.jsonl": deliver("b", [0, 1, 2])})
    assert got["regions"]["a"]["recovered"] == 2 and got["regions"]["b"]["recovered"] == 0
    assert got["regions"]["a"]["expected"] == 3
    assert got["valid"] is True
    texts = [c["explanation"] for c in got["cases"]["recovered"]]
    assert "unknown outcome (info at 0.041 s)" in texts[0]
    assert "was invoked at 0.050 s and never completed" in texts[1]


def test_allowed_anomalies_do_not_invalidate(tmp_path: Path) -> None:
    b = deliver("b", [0, 2, 1]) + [recv("b/c0", "a/p0", 1, 40, msg_id="x")]
    run = make_run(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]), "b.jsonl": b},
                   allowed=["duplicates"])
    assert check_run(run).anomaly_types == ["reordered"]
    result = check_run(run, allow=["reordered"])
    assert result.valid is True
    assert result.to_json()["allowed"] == ["duplicates", "reordered"]
    assert check_run(run, allow=["reordered", "recovered"]).valid is True  # recovered never invalidates anyway
    with pytest.raises(ConfigError, match="unknown anomaly 'dupes'"):
        check_run(run, allow=["lost,dupes"])


def test_lag_percentiles_are_nearest_rank_per_origin(tmp_path: Path) -> None:
    sends = [x for s in range(10) for x in sent("a/p0", s, 100 * s)] + [x for s in range(2) for x in
                                                                        sent("b/p0", s, 100 * s)]
    a = [recv("a/c0", "a/p0", s, 100 * s + 1 + s) for s in range(10)]  # lags 0..9 ms after the 1 ms ack
    a += [recv("a/c0", "b/p0", s, 100 * s + 51) for s in range(2)]  # 50 ms
    b = [recv("b/c0", "a/p0", s, 100 * s + 90) for s in range(10)] + [recv("b/c0", "b/p0", s, 100 * s + 3)
                                                                       for s in range(2)]
    got = check(tmp_path, {"p.jsonl": sends, "a.jsonl": a, "b.jsonl": b})
    a_lag = got["regions"]["a"]["lag_ms_by_origin"]
    assert a_lag["a"] == {"p50": 4.0, "p90": 8.0, "p99": 9.0, "max": 9.0}
    assert a_lag["b"] == {"p50": 50.0, "p90": 50.0, "p99": 50.0, "max": 50.0}
    # all 12: 0..9 and 50, 50 -> rank ceil(.5*12)=6th = 5, ceil(.9*12)=11th = 50
    assert got["regions"]["a"]["lag_ms"] == {"p50": 5.0, "p90": 50.0, "p99": 50.0, "max": 50.0}
    assert len(got["lag_cdf"]["a"]) == 101 and got["lag_cdf"]["a"][0] == 0.0 and got["lag_cdf"]["a"][100] == 50.0


def test_clock_offsets_are_added_per_process(tmp_path: Path) -> None:
    # b/c0's clock runs 100 ms behind: its receipts look 99 ms *before* the ack until corrected
    b = deliver("b", [0, 1, 2], start_ms=-95)
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]), "b.jsonl": b},
                clock_offsets_ns={"b/c0": 100_000_000})
    assert got["regions"]["b"]["lag_ms"]["max"] == 4.0


def test_unknown_clock_offset_process_is_a_warning(tmp_path: Path) -> None:
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]),
                           "b.jsonl": deliver("b", [0, 1, 2])}, clock_offsets_ns={"nobody": 5})
    assert any("nobody" in w for w in got["warnings"])


def test_receipts_in_unlisted_regions_are_a_warning(tmp_path: Path) -> None:
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]),
                           "b.jsonl": deliver("b", [0, 1, 2]), "c.jsonl": deliver("c", [0])})
    assert "c" not in got["regions"]
    assert any("'c'" in w and "does not list" in w for w in got["warnings"])


def test_no_ok_send_cannot_be_decided(tmp_path: Path) -> None:
    with pytest.raises(CannotDecide, match="no acknowledged send"):
        check(tmp_path, {"p.jsonl": sent("a/p0", 0, 0, outcome="fail"), "a.jsonl": deliver("a", [0])})


def test_a_region_with_no_receipts_lost_everything(tmp_path: Path) -> None:
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2])}, regions=("a", "b", "c"))
    assert got["regions"]["b"]["lost"] == 3 and got["regions"]["c"]["lost"] == 3
    assert got["regions"]["b"]["lag_ms"] is None


def test_max_cases_limits_cases_not_counts(tmp_path: Path) -> None:
    got = check_run(make_run(tmp_path, {"p.jsonl": clean_sends(20), "a.jsonl": deliver("a", list(range(20)))}),
                    max_cases=3).to_json()
    assert got["regions"]["b"]["lost"] == 20
    assert [c["seq"] for c in got["cases"]["lost"]] == [0, 1, 2]


def test_explain_rejects_what_is_not_a_case() -> None:
    with pytest.raises(TypeError):
        explain("lost")


def test_faults_windows_in_the_result(tmp_path: Path) -> None:
    nemesis = [fault("start", 5, target="a|b", fault="partition", id="p1", regions=["a", "b"]),
               fault("stop", 15, target="a|b", fault="partition", id="p1")]
    got = check(tmp_path, {"p.jsonl": clean_sends(), "a.jsonl": deliver("a", [0, 1, 2]),
                           "b.jsonl": deliver("b", [0, 1, 2]), "n.jsonl": nemesis})
    (w,) = got["faults"]
    assert (w["id"], w["fault"], w["target"], w["start_s"], w["stop_s"], w["region_loss"]) == (
        "p1", "partition", "a|b", 0.005, 0.015, False)
    assert got["rpo"] == []


def test_unread_files_and_unused_lines_are_warnings(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"p.jsonl": clean_sends() + [{"type": "log", "time": 1}],
                              "a.jsonl": deliver("a", [0, 1, 2]), "b.jsonl": deliver("b", [0, 1, 2])})
    (run / "history" / "notes.txt").write_text("hello")
    got = check_run(run).to_json()
    assert got["input"]["not_read"] == ["history/notes.txt"]
    assert any("not read (not *.jsonl): history/notes.txt" in w for w in got["warnings"])
    assert any("lines not used: 1 'log'" in w for w in got["warnings"])
