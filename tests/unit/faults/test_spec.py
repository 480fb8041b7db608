"""Helpers every fault backend shares."""


def test_heal_each_heals_the_others_when_one_heal_fails():
    from types import SimpleNamespace

    from geo_recon.errors import LabError
    from geo_recon.faults.spec import heal_each

    active = {"f1": SimpleNamespace(kind="pause", target="a"), "f2": SimpleNamespace(kind="latency", target="a<->b")}
    events, said = [], []

    def heal(fault):
        if fault.kind == "pause":
            raise LabError("a/broker did not resume")

    healed = heal_each(active, heal, events.append, said.append)
    assert healed == ["f2"] and active == {}
    assert [(e["id"], e["phase"]) for e in events] == [("f2", "stop")]
    assert said == ["healing f1 failed: a/broker did not resume"]


def test_unload_is_an_instant_fault_on_a_region():
    from geo_recon.faults.spec import INSTANT_KINDS, FaultSpec

    spec = FaultSpec(kind="unload", target="a", scope="namespace")
    assert spec.kind in INSTANT_KINDS
    assert spec.describe() == "unload the namespace in a"
    assert FaultSpec(kind="unload", target="b").describe() == "unload every topic in b"
    assert not spec.region_loss
