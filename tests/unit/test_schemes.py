import pytest

from geo_recon import schemes
from geo_recon.errors import ConfigError


def test_ensembles_are_parsed_from_ledger_metadata():
    meta = ("LedgerMetadata{formatVersion=3, ensembleSize=2, writeQuorumSize=2, ackQuorumSize=2, state=OPEN, "
            "digestType=CRC32C, password=OMITTED, ensembles={0=[198.18.0.10:20181, 198.18.0.11:20281], "
            "12=[198.18.0.10:20181, 198.18.0.12:20381]}, customMetadata={component=base64:bWFu}}")
    assert schemes.ensembles_from_metadata(meta) == [
        ["198.18.0.10:20181", "198.18.0.11:20281"], ["198.18.0.10:20181", "198.18.0.12:20381"]]


def test_write_sets_stripe_round_robin():
    assert schemes.write_sets(["x", "y", "z"], 2) == [["x", "y"], ["y", "z"], ["z", "x"]]
    assert schemes.write_sets(["x", "y"], 2) == [["x", "y"], ["y", "x"]]


def test_impossible_persistence_is_refused():
    with pytest.raises(ConfigError, match="ensemble >= write quorum >= ack quorum"):
        schemes.SchemeSettings(ensemble=2, write_quorum=3, ack_quorum=2).validate()


def test_rack_names_put_the_region_first():
    assert schemes.rack_for("eu") == "/eu/rack-1"
