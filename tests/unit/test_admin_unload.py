"""The unload fault's admin logic: unload, then prove every topic reopened on a new ledger.
Against a scripted stand-in for the admin client (the HTTP client is tested in test_admin.py;
the real broker in tests/integration/test_known_bugs.py)."""

import pytest

from geo_recon import admin
from geo_recon.errors import GeoReconError


class _Admin:
    label = "a admin"

    def __init__(self, ledgers_after_unload):
        self.ledgers = {"persistent://geo/recon/t0": 7, "persistent://geo/recon/t1": 9}
        self.after = ledgers_after_unload
        self.puts = []

    def get(self, path, **_kw):
        if path == "/admin/v2/persistent/geo/recon":
            return [*self.ledgers, "persistent://geo/recon/__change_events"]
        topic = "persistent://" + path.removeprefix("/admin/v2/persistent/").removesuffix("/internalStats")
        return {"ledgers": [{"ledgerId": 1}, {"ledgerId": self.ledgers[topic]}]}

    def put(self, path, body=None, **_kw):
        self.puts.append(path)
        self.ledgers.update(self.after)


def test_unload_each_topic_and_see_it_reopen_on_a_new_ledger():
    fake = _Admin({"persistent://geo/recon/t0": 8, "persistent://geo/recon/t1": 12})
    moved = admin.unload(fake, "geo/recon", timeout=1)
    assert moved == {"persistent://geo/recon/t0": (7, 8), "persistent://geo/recon/t1": (9, 12)}
    assert fake.puts == ["/admin/v2/persistent/geo/recon/t0/unload", "/admin/v2/persistent/geo/recon/t1/unload"]


def test_unload_of_the_namespace_is_one_call():
    fake = _Admin({"persistent://geo/recon/t0": 8, "persistent://geo/recon/t1": 10})
    admin.unload(fake, "geo/recon", whole_namespace=True, timeout=1)
    assert fake.puts == ["/admin/v2/namespaces/geo/recon/unload"]


def test_a_topic_still_on_its_ledger_was_not_unloaded():
    fake = _Admin({"persistent://geo/recon/t0": 8})  # t1 never reopened
    with pytest.raises(GeoReconError, match="persistent://geo/recon/t1 still on the same ledger"):
        admin.unload(fake, "geo/recon", timeout=0.6)
