"""The survivors' replicators to a rebuilt region: a stuck one gets its topic unloaded once, and the stop line
says so. Fakes stand in for the admin API: this proves the decisions, not Pulsar's behaviour (test_lose.py)."""

from __future__ import annotations

from geo_recon.lifecycle import configure
from geo_recon.status import LinkStatus, TopicStatus

T = "persistent://geo/recon/r1-t0"


class FakeAdmin:
    def __init__(self, calls: list[str], region: str):
        self.calls, self.region = calls, region

    def put(self, path: str, body=None, **kw) -> None:
        self.calls.append(f"{self.region} PUT {path}")

    def close(self) -> None:
        pass


class FakeRegion:
    def __init__(self, calls: list[str], name: str):
        self.calls, self.name = calls, name

    def admin(self, *, deadline: float = 30.0) -> FakeAdmin:
        return FakeAdmin(self.calls, self.name)


class FakeTarget:
    region_names = ["a", "b"]

    def __init__(self):
        self.calls: list[str] = []

    def region(self, name: str) -> FakeRegion:
        return FakeRegion(self.calls, name)


def _status(connected_after_unload: bool, target: FakeTarget):
    def replication_status(_target, _settings):
        unloaded = any("unload" in c for c in target.calls)
        link = lambda region, remote, ok: LinkStatus(region=region, topic=T, remote=remote, connected=ok,  # noqa: E731
                                                     backlog=0, delay_seconds=0.0, rate_in=0.0, rate_out=0.0,
                                                     rate_expired=0.0)
        return [TopicStatus(region="b", topic=T, msg_in_counter=0, backlog_by_subscription={},
                            links=[link("b", "a", unloaded and connected_after_unload)]),
                TopicStatus(region="a", topic=T, msg_in_counter=0, backlog_by_subscription={},
                            links=[link("a", "b", False)]),  # the rebuilt region's own link is not ours to mend
                TopicStatus(region="b", topic="persistent://geo/recon/other", msg_in_counter=0,
                            backlog_by_subscription={}, links=[link("b", "a", False)])]  # not a run topic
    return replication_status


def test_a_stuck_replicator_gets_its_topic_unloaded_once_and_is_then_seen_connected(monkeypatch):
    target = FakeTarget()
    monkeypatch.setattr(configure.status, "replication_status", _status(True, target))
    said: list[str] = []
    out = configure.reconnect_replicators(target, None, "a", [T], said.append, wait_s=0.0)  # type: ignore[arg-type]
    assert target.calls == ["b PUT /admin/v2/persistent/geo/recon/r1-t0/unload"]
    assert out == {"replicators_unloaded": [f"b:{T}"], "replicators_not_connected": []}
    assert said[-1] == "  ok   replicators of every survivor to a connected"


def test_a_replicator_still_stuck_after_the_unload_is_named(monkeypatch):
    target = FakeTarget()
    monkeypatch.setattr(configure.status, "replication_status", _status(False, target))
    said: list[str] = []
    out = configure.reconnect_replicators(target, None, "a", [T], said.append, wait_s=0.0)  # type: ignore[arg-type]
    assert len(target.calls) == 1 and out["replicators_not_connected"] == [f"b:{T}"]
    assert said[-1] == f"  replicators to a not connected: b:{T}"


def test_a_survivor_without_a_link_to_the_rebuilt_region_or_without_the_topic_is_not_counted_connected(monkeypatch):
    """No replicator statistics for a is no proof that one is connected: named, never passed."""
    target = FakeTarget()
    bare = TopicStatus(region="b", topic=T, msg_in_counter=0, backlog_by_subscription={}, links=[])
    for found, want in (([bare], [f"b:{T}"]), ([], ["b:no run topic listed"])):
        monkeypatch.setattr(configure.status, "replication_status", lambda _t, _s, found=found: found)
        out = configure.reconnect_replicators(target, None, "a", [T], lambda m: None, wait_s=0.0)  # type: ignore[arg-type]
        assert out["replicators_not_connected"] == want
