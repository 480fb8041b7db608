"""Faults through the Pulsar admin API: they need no control of processes or networks, so every
backend has them (existing clusters too). Each reads its effect back before it counts as in effect.

``replication``: the target region's cluster is removed from the test
namespace's replication clusters in every other region (each async cluster
keeps its own copy of the namespace policies; a cluster cannot drop itself),
and restored on heal. Messages published meanwhile are not replicated to it,
and what its own replicators send is refused by the others.

``unload``: every topic of the test namespace in the target region is unloaded
(one by one, or the namespace's bundles at once) and each must reopen on a new
ledger before the fault counts as in effect; it is over once injected (its stop
follows its start). apache/pulsar#22890 is triggered by such a reload.
"""

from __future__ import annotations

from typing import Any

from geo_recon.admin import AdminClient, unload
from geo_recon.deployment import Deployment
from geo_recon.errors import FaultError, GeoReconError
from geo_recon.schemes import cluster_names


def _replication_path(namespace: str) -> str:
    return f"/admin/v2/namespaces/{namespace}/replication"


def _set_and_check(admin: AdminClient, region: str, path: str, clusters: list[str], fault_id: str) -> None:
    admin.post(path, clusters)
    have = sorted(admin.get(path) or [])
    if have != sorted(clusters):
        raise FaultError(f"{fault_id}: region {region} reads back replication clusters {have}, "
                         f"not {sorted(clusters)}")


class ReplicationCut:
    """Region ``region``'s cluster cut out of ``namespace``'s replication in every other region; ``restore``
    puts back what ``apply`` changed (also after an apply that stopped half-way)."""

    def __init__(self, deployment: Deployment, namespace: str, region: str, fault_id: str) -> None:
        self.deployment, self.namespace, self.fault_id = deployment, namespace, fault_id
        self.target = deployment.region(region)
        self.path = _replication_path(namespace)
        self.before: dict[str, list[str]] = {}  # region -> its replication clusters before the cut

    def apply(self) -> dict[str, Any]:
        cluster = cluster_names(self.deployment)[self.target.region]
        for ep in (e for e in self.deployment.regions if e.region != self.target.region):
            admin = ep.admin()
            try:
                clusters = list(admin.get(self.path) or [])
                cut = [c for c in clusters if c != cluster]
                if cut == clusters:
                    raise FaultError(f"{self.fault_id}: region {ep.region} does not replicate {self.namespace} to "
                                     f"{self.target.region} (replication clusters {clusters}); nothing to remove")
                self.before[ep.region] = clusters
                _set_and_check(admin, ep.region, self.path, cut, self.fault_id)
            finally:
                admin.close()
        return {"replication_cut": {region: sorted(c for c in clusters if c != cluster)
                                    for region, clusters in self.before.items()}}

    def restore(self) -> None:
        for name in list(self.before):
            admin = self.deployment.region(name).admin()
            try:
                _set_and_check(admin, name, self.path, self.before[name], self.fault_id)
            finally:
                admin.close()
            del self.before[name]


class Unload:
    """Every topic of ``namespace`` in ``region`` unloaded and seen reopening on a new ledger."""

    def __init__(self, deployment: Deployment, namespace: str, region: str, fault_id: str, *,
                 whole_namespace: bool) -> None:
        self.target = deployment.region(region)
        self.namespace, self.fault_id, self.whole_namespace = namespace, fault_id, whole_namespace

    def apply(self) -> dict[str, Any]:
        admin = self.target.admin()
        try:
            ledgers = unload(admin, self.namespace, whole_namespace=self.whole_namespace)
        except GeoReconError as exc:
            raise FaultError(f"{self.fault_id}: {exc}") from None
        finally:
            admin.close()
        return {"reloaded_on_ledger": {t.rsplit("/", 1)[-1]: f"{old} -> {new}" for t, (old, new) in ledgers.items()}}

    def restore(self) -> None:
        """Nothing to undo: the topics are loaded again by their next client."""
