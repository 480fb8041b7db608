"""Faults through the Pulsar admin API: they need no control of processes or networks, so every
backend has them (existing clusters too). Each reads its effect back before it counts as in effect.

``replication``: the target region's cluster is removed from the test
namespace's replication clusters in every other region (each async cluster
keeps its own copy of the namespace policies; a cluster cannot drop itself),
and restored on heal. Messages published meanwhile are not replicated to it,
and what its own replicators send is refused by the others.

(The place for more admin faults, e.g. unloading a topic or a namespace bundle.)
"""

from __future__ import annotations

from typing import Any

from geo_recon.admin import AdminClient
from geo_recon.deployment import Deployment
from geo_recon.errors import FaultError
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
