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

from typing import Callable

from geo_recon.admin import AdminClient
from geo_recon.deployment import Deployment
from geo_recon.errors import FaultError
from geo_recon.schemes import cluster_names

Undo = Callable[[], None]


def _replication_path(namespace: str) -> str:
    return f"/admin/v2/namespaces/{namespace}/replication"


def _set_and_check(admin: AdminClient, region: str, path: str, clusters: list[str], fault_id: str) -> None:
    admin.post(path, clusters)
    have = sorted(admin.get(path) or [])
    if have != sorted(clusters):
        raise FaultError(f"{fault_id}: region {region} reads back replication clusters {have}, "
                         f"not {sorted(clusters)}")


def remove_from_replication(deployment: Deployment, namespace: str, region: str, fault_id: str) -> Undo:
    """Cut ``region``'s cluster out of ``namespace``'s replication in every other region; the undo."""
    target = deployment.region(region)
    cluster = cluster_names(deployment)[target.region]
    path = _replication_path(namespace)
    before: dict[str, list[str]] = {}
    for ep in (e for e in deployment.regions if e.region != target.region):
        admin = ep.admin()
        try:
            clusters = list(admin.get(path) or [])
            cut = [c for c in clusters if c != cluster]
            if cut == clusters:
                raise FaultError(f"{fault_id}: region {ep.region} does not replicate {namespace} to "
                                 f"{target.region} (replication clusters {clusters}); nothing to remove")
            before[ep.region] = clusters
            _set_and_check(admin, ep.region, path, cut, fault_id)
        finally:
            admin.close()

    def restore() -> None:
        for name, clusters in before.items():
            admin = deployment.region(name).admin()
            try:
                _set_and_check(admin, name, path, clusters, fault_id)
            finally:
                admin.close()

    return restore

