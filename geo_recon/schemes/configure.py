"""How each scheme is applied and verified on a deployment: the Scheme objects in ``base`` call these
(what each scheme means is in the package's docstring). Every change is made only where it differs;
every check reads the setting back from the cluster.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Callable

from geo_recon.admin import AdminClient, AdminError
from geo_recon.deployment import Deployment, RegionEndpoint
from geo_recon.errors import ConfigError, GeoReconError
from geo_recon.probe import round_trip

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class SchemeSettings:
    tenant: str = "geo"
    namespace: str = "recon"
    dedup: bool = False
    ensemble: int = 2
    write_quorum: int = 2
    ack_quorum: int = 2
    replication: str = "namespace"  # async: "namespace" or "topic" (topic-level policies)

    @property
    def ns_path(self) -> str:
        return f"{self.tenant}/{self.namespace}"

    def validate(self) -> None:
        if self.replication not in ("namespace", "topic"):
            raise ConfigError(f"replication {self.replication!r}: expected namespace or topic")
        if not (self.ensemble >= self.write_quorum >= self.ack_quorum >= 1):
            raise ConfigError(f"persistence needs ensemble >= write quorum >= ack quorum >= 1, got "
                              f"{self.ensemble}/{self.write_quorum}/{self.ack_quorum}")


@dataclass(frozen=True)
class Change:
    region: str
    what: str


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    region: str | None = None


class SchemeError(GeoReconError):
    """The deployment cannot be put into the scheme (e.g. a static broker setting is wrong)."""


RETENTION = {"retentionTimeInMinutes": -1, "retentionSizeInMB": -1}


# ---------------------------------------------------------------- helpers


def cluster_names(deployment: Deployment) -> dict[str, str]:
    """Each region's Pulsar cluster name, as its brokers report it."""
    names = {}
    for ep in deployment.regions:
        reported = _runtime_config(ep).get("clusterName")
        if not reported:
            raise SchemeError(f"region {ep.region}: the broker at {ep.admin_url} did not report its clusterName")
        if ep.cluster and ep.cluster != reported:
            raise ConfigError(f"{deployment.source}: region {ep.region} says cluster {ep.cluster!r}, "
                              f"but its broker reports {reported!r}")
        names[ep.region] = reported
    return names


def _runtime_config(ep: RegionEndpoint) -> dict[str, str]:
    admin = ep.admin()
    try:
        return admin.get("/admin/v2/brokers/configuration/runtime") or {}
    finally:
        admin.close()


def _ns(settings: SchemeSettings, suffix: str = "") -> str:
    return f"/admin/v2/namespaces/{settings.ns_path}{suffix}"


# ---------------------------------------------------------------- apply


def apply_async(deployment: Deployment, settings: SchemeSettings, names: dict[str, str]) -> list[Change]:
    _require_distinct(deployment, names)
    changes: list[Change] = []
    for ep in deployment.regions:
        changes += _apply_async_region(ep, deployment, names, settings)
    return changes


def apply_strong(deployment: Deployment, settings: SchemeSettings, names: dict[str, str]) -> list[Change]:
    _require_one_cluster(deployment, names)
    return _apply_strong(deployment, names, settings)


def _require_distinct(deployment: Deployment, names: dict[str, str]) -> None:
    if len(set(names.values())) != len(names):
        raise SchemeError(f"async geo-replication needs a separate cluster per region, but {deployment.source} "
                          f"has {names}; use --scheme strong for a stretched cluster")


def _require_one_cluster(deployment: Deployment, names: dict[str, str]) -> None:
    if len(set(names.values())) != 1:
        raise SchemeError(f"the strong scheme needs one cluster stretched over every region, but {deployment.source} "
                          f"has separate clusters {names}; use --scheme async")


def _apply_async_region(ep: RegionEndpoint, deployment: Deployment, names: dict[str, str],
                        settings: SchemeSettings) -> list[Change]:
    admin = ep.admin()
    changes = []
    try:
        for peer in deployment.regions:
            if peer.region == ep.region:
                continue
            want = {"serviceUrl": peer.admin_url, "brokerServiceUrl": peer.service_url}
            have = admin.cluster(names[peer.region])
            path = f"/admin/v2/clusters/{names[peer.region]}"
            if have is None:
                admin.put(path, want)
                changes.append(Change(ep.region, f"registered peer cluster {names[peer.region]} ({peer.service_url})"))
            elif any(have.get(k) != v for k, v in want.items()):
                admin.post(path, {**have, **want})
                changes.append(Change(ep.region, f"updated peer cluster {names[peer.region]} URLs"))
        all_clusters = sorted(names.values())
        changes += _ensure_tenant_and_namespace(admin, ep.region, all_clusters, settings)
        wanted = _namespace_clusters(settings, all_clusters, names[ep.region])
        current = admin.get(_ns(settings, "/replication")) or []
        if sorted(current) != wanted:
            admin.post(_ns(settings, "/replication"), wanted)
            changes.append(Change(ep.region, f"namespace {settings.ns_path} replicated to {', '.join(wanted)}"))
        changes += _ensure_common_policies(admin, ep.region, settings)
    finally:
        admin.close()
    return changes


def _namespace_clusters(settings: SchemeSettings, all_clusters: list[str], own: str) -> list[str]:
    """Topic-level replication keeps the namespace to its own cluster: only the topics' policies replicate."""
    return [own] if settings.replication == "topic" else all_clusters


def replicate_topics(deployment: Deployment, topics: list[str], settings: SchemeSettings,
                     progress: Progress = _quiet) -> None:
    """Topic-level replication: create each topic in every cluster and set its replication
    clusters to all of them, read back before any message is sent."""
    from geo_recon.admin import set_topic_replication, topic_path

    names = cluster_names(deployment)
    everywhere = sorted(names.values())
    for ep in deployment.regions:
        admin = ep.admin()
        try:
            for topic in topics:
                admin.put(topic_path(topic), ok_statuses=(409,))
                set_topic_replication(admin, topic, everywhere)
        finally:
            admin.close()
    progress(f"topic-level replication to {', '.join(everywhere)} on {len(topics)} topic(s), read back in every region")


def _ensure_tenant_and_namespace(admin: AdminClient, region: str, clusters: list[str],
                                 settings: SchemeSettings) -> list[Change]:
    changes = []
    tenant = admin.get(f"/admin/v2/tenants/{settings.tenant}", ok_statuses=(404,))
    if tenant is None:
        admin.put(f"/admin/v2/tenants/{settings.tenant}", {"adminRoles": [], "allowedClusters": clusters})
        changes.append(Change(region, f"created tenant {settings.tenant} allowed in {', '.join(clusters)}"))
    elif not set(clusters) <= set(tenant.get("allowedClusters", [])):
        merged = sorted(set(clusters) | set(tenant.get("allowedClusters", [])))
        admin.post(f"/admin/v2/tenants/{settings.tenant}", {**tenant, "allowedClusters": merged})
        changes.append(Change(region, f"tenant {settings.tenant} now allowed in {', '.join(merged)}"))
    existing = admin.get(f"/admin/v2/namespaces/{settings.tenant}") or []
    if settings.ns_path not in existing:
        admin.put(_ns(settings))
        changes.append(Change(region, f"created namespace {settings.ns_path}"))
    return changes


def _ensure_common_policies(admin: AdminClient, region: str, settings: SchemeSettings) -> list[Change]:
    changes = []
    dedup = admin.get(_ns(settings, "/deduplication"))
    if bool(dedup) != settings.dedup or dedup is None:
        admin.post(_ns(settings, "/deduplication"), settings.dedup)
        changes.append(Change(region, f"deduplication {'on' if settings.dedup else 'off'} for {settings.ns_path}"))
    retention = admin.get(_ns(settings, "/retention")) or {}
    if any(retention.get(k) != v for k, v in RETENTION.items()):
        admin.post(_ns(settings, "/retention"), RETENTION)
        changes.append(Change(region, f"infinite retention for {settings.ns_path} (the drain reader reads from the start)"))
    return changes


def _apply_strong(deployment: Deployment, names: dict[str, str], settings: SchemeSettings) -> list[Change]:
    cluster = next(iter(names.values()))
    first = deployment.regions[0]
    missing = [ep.region for ep in deployment.regions if not ep.bookies]
    if missing:
        raise ConfigError(f"{deployment.source}: the strong scheme needs each region's bookies "
                          f"(field regions.<region>.bookies), missing for: {', '.join(missing)}")
    for ep in deployment.regions:
        config = _runtime_config(ep)
        if config.get("bookkeeperClientRegionawarePolicyEnabled") != "true":
            raise SchemeError(
                f"region {ep.region}: broker {ep.admin_url} has bookkeeperClientRegionawarePolicyEnabled="
                f"{config.get('bookkeeperClientRegionawarePolicyEnabled')}; set it to true (and reppRegionsToWrite="
                f"{';'.join(deployment.region_names)}) in broker.conf and restart it: it cannot be changed at run time")
    admin = first.admin()
    changes = []
    try:
        racks = (admin.racks() or {}).get("default", {})
        for ep in deployment.regions:
            for bookie in ep.bookies:
                want = rack_for(ep.region)
                if racks.get(bookie, {}).get("rack") != want:
                    admin.set_rack(bookie, want, bookie.rsplit(":", 1)[0])
                    changes.append(Change(ep.region, f"labelled bookie {bookie} with rack {want}"))
        changes += _ensure_tenant_and_namespace(admin, first.region, [cluster], settings)
        want_persistence = {"bookkeeperEnsemble": settings.ensemble, "bookkeeperWriteQuorum": settings.write_quorum,
                            "bookkeeperAckQuorum": settings.ack_quorum}
        have = admin.get(_ns(settings, "/persistence")) or {}
        if any(have.get(k) != v for k, v in want_persistence.items()):
            admin.post(_ns(settings, "/persistence"), {**want_persistence, "managedLedgerMaxMarkDeleteRate": 0})
            changes.append(Change(first.region, f"persistence E/W/A = {settings.ensemble}/{settings.write_quorum}/"
                                                f"{settings.ack_quorum} for {settings.ns_path}"))
        changes += _ensure_common_policies(admin, first.region, settings)
    finally:
        admin.close()
    return changes


def rack_for(region: str) -> str:
    """BookKeeper's region-aware placement takes the first path element as the region."""
    return f"/{region}/rack-1"


# ---------------------------------------------------------------- verify


def verify_async(deployment: Deployment, settings: SchemeSettings, names: dict[str, str],
                 probe_placement: bool = True) -> list[Check]:
    distinct = len(set(names.values())) == len(names)
    checks = [Check("separate clusters", distinct, f"cluster per region: {names}")]
    if distinct:
        for ep in deployment.regions:
            checks += _verify_async_region(ep, deployment, names, settings)
    return checks


def verify_strong(deployment: Deployment, settings: SchemeSettings, names: dict[str, str],
                  probe_placement: bool = True) -> list[Check]:
    one = len(set(names.values())) == 1
    checks = [Check("one stretched cluster", one, f"cluster per region: {names}")]
    if one:
        checks += _verify_strong(deployment, next(iter(names.values())), settings, probe_placement)
    return checks


def _verify_async_region(ep: RegionEndpoint, deployment: Deployment, names: dict[str, str],
                         settings: SchemeSettings) -> list[Check]:
    admin = ep.admin()
    checks = []
    r = ep.region
    try:
        for peer in deployment.regions:
            if peer.region == r:
                continue
            have = admin.cluster(names[peer.region]) or {}
            ok = have.get("brokerServiceUrl") == peer.service_url and have.get("serviceUrl") == peer.admin_url
            detail = (f"knows {names[peer.region]} at {have.get('brokerServiceUrl')}" if have
                      else f"cluster {names[peer.region]} is not registered")
            checks.append(Check(f"peer {names[peer.region]} registered", ok, detail, r))
        all_clusters = sorted(names.values())
        tenant = admin.get(f"/admin/v2/tenants/{settings.tenant}", ok_statuses=(404,))
        allowed = sorted((tenant or {}).get("allowedClusters", []))
        checks.append(Check(f"tenant {settings.tenant} allowed everywhere", set(all_clusters) <= set(allowed),
                            f"allowed clusters: {allowed}" if tenant else "tenant does not exist", r))
        replication = admin.get(_ns(settings, "/replication"), ok_statuses=(404,))
        wanted = _namespace_clusters(settings, all_clusters, names[r])
        missing = sorted(set(wanted) - set(replication or []))
        extra = sorted(set(replication or []) - set(wanted))
        name = (f"namespace {settings.ns_path} replicated to all regions" if settings.replication == "namespace" else
                f"namespace {settings.ns_path} kept to {names[r]} (topic-level replication)")
        checks.append(Check(
            name, replication is not None and not missing and not extra,
            "namespace does not exist" if replication is None else
            (f"replication clusters {sorted(replication)}" + (f"; missing {', '.join(missing)}" if missing else "")
             + (f"; unexpected {', '.join(extra)}" if extra else "")),
            r))
        checks += _verify_common(admin, r, settings)
    finally:
        admin.close()
    return checks


def _verify_common(admin: AdminClient, region: str, settings: SchemeSettings) -> list[Check]:
    dedup = admin.get(_ns(settings, "/deduplication"), ok_statuses=(404,))
    retention = admin.get(_ns(settings, "/retention"), ok_statuses=(404,)) or {}
    return [
        Check(f"deduplication {'on' if settings.dedup else 'off'}", dedup is not None and bool(dedup) == settings.dedup,
              f"deduplication reads back as {dedup}", region),
        Check("infinite retention", all(retention.get(k) == v for k, v in RETENTION.items()),
              f"retention reads back as {retention or 'unset'}", region),
    ]


def _verify_strong(deployment: Deployment, cluster: str, settings: SchemeSettings,
                   probe_placement: bool) -> list[Check]:
    checks = []
    for ep in deployment.regions:
        enabled = _runtime_config(ep).get("bookkeeperClientRegionawarePolicyEnabled")
        checks.append(Check("region-aware placement", enabled == "true",
                            f"bookkeeperClientRegionawarePolicyEnabled={enabled}", ep.region))
    first = deployment.regions[0]
    admin = first.admin()
    try:
        racks = (admin.racks() or {}).get("default", {})
        region_of: dict[str, str] = {}
        for ep in deployment.regions:
            labelled = [b for b in ep.bookies if racks.get(b, {}).get("rack") == rack_for(ep.region)]
            wrong = {b: racks.get(b, {}).get("rack") for b in ep.bookies if b not in labelled}
            checks.append(Check("bookies labelled with their region", bool(labelled) and not wrong,
                                f"{len(labelled)} labelled {rack_for(ep.region)}" +
                                (f"; wrong or missing: {wrong}" if wrong else ""), ep.region))
        for bookie, info in racks.items():
            parts = str(info.get("rack", "")).strip("/").split("/")
            if parts and parts[0]:
                region_of[bookie] = parts[0]
        persistence = admin.get(_ns(settings, "/persistence"), ok_statuses=(404,)) or {}
        e, w, a = (persistence.get(k) for k in ("bookkeeperEnsemble", "bookkeeperWriteQuorum", "bookkeeperAckQuorum"))
        want = (settings.ensemble, settings.write_quorum, settings.ack_quorum)
        checks.append(Check("namespace persistence", (e, w, a) == want,
                            f"E/W/A reads back as {e}/{w}/{a}, wanted {'/'.join(map(str, want))}"))
        # An ack needs A bookies; with every write set spanning >= 2 regions, A > W - W/2 makes
        # any A of them span 2 regions (BookKeeper's own durability rule with minimum 2 regions).
        durable = bool(w and a and a > w - w // 2)
        checks.append(Check("an ack needs two regions", durable,
                            f"ack quorum {a} of write quorum {w}: any {a} bookies of a write set "
                            + ("span two regions" if durable else "may all be in one region")))
        checks += _verify_common(admin, first.region, settings)
        if probe_placement:
            checks.append(_probe_placement(first, admin, settings, region_of, w or settings.write_quorum))
    finally:
        admin.close()
    return checks


ENSEMBLE_RE = re.compile(r"(\d+)=\[([^\]]*)\]")


def ensembles_from_metadata(metadata: str) -> list[list[str]]:
    """``...ensembles={0=[h1:p, h2:p], 7=[h1:p, h3:p]}...`` -> [[h1:p, h2:p], [h1:p, h3:p]]."""
    section = metadata.split("ensembles={", 1)[-1]
    return [[b.strip() for b in members.split(",") if b.strip()] for _, members in ENSEMBLE_RE.findall(section)]


def write_sets(ensemble: list[str], write_quorum: int) -> list[list[str]]:
    """BookKeeper stripes entry i over ensemble[i..i+W) (round-robin)."""
    n = len(ensemble)
    return [[ensemble[(i + j) % n] for j in range(min(write_quorum, n))] for i in range(n)]


#: Ledgers the placement probe inspects. One ledger cannot show random placement: with two bookies per
#: region and E=2, a random ensemble lands in one region one time in three, so one ledger passes two
#: times in three. Over 16 ledgers random placement goes unnoticed with odds (2/3)^16, below 0.2%.
PLACEMENT_LEDGERS = 16


def _probe_placement(ep: RegionEndpoint, admin: AdminClient, settings: SchemeSettings,
                     region_of: dict[str, str], write_quorum: int) -> Check:
    """Write to one topic (an ack proves the write path) and open ``PLACEMENT_LEDGERS`` topics in all, each
    with its own ledger; every write set of every ledger's ensembles must span two regions."""
    base = f"persistent://{settings.ns_path}/geo-recon-placement-{uuid.uuid4().hex[:8]}"
    topics = [f"{base}-{i}" for i in range(PLACEMENT_LEDGERS)]
    stats_paths = [t.replace("persistent://", "/admin/v2/persistent/") for t in topics]
    ledgers: list[dict] = []
    try:
        round_trip(ep.service_url, timeout=60, topic=topics[0])
        for path in stats_paths[1:]:
            admin.put(path, ok_statuses=(409,))  # loading the topic opens its first ledger
        for path in stats_paths:
            ledgers += admin.get(path + "/internalStats", params={"metadata": "true"}).get("ledgers", [])
    except (GeoReconError, AdminError) as exc:
        return Check("ledger placement spans regions", False, f"could not write and inspect {topics[0]}: {exc}")
    finally:
        for path in stats_paths:
            try:
                admin.delete(path, params={"force": "true"}, ok_statuses=(404, 412, 500), deadline=5)
            except AdminError:
                pass
    bad, seen, inspected = [], 0, 0
    for ledger in ledgers:
        ensembles = ensembles_from_metadata(ledger.get("metadata") or "")
        inspected += bool(ensembles)
        for ensemble in ensembles:
            for ws in write_sets(ensemble, write_quorum):
                seen += 1
                regions = {region_of.get(b, "unknown") for b in ws}
                if len(regions - {"unknown"}) < 2:
                    bad.append(f"ledger {ledger.get('ledgerId')}: {ws} -> {sorted(regions)}")
    if not seen:
        return Check("ledger placement spans regions", False, f"no ledger metadata came back for {base}-*")
    where = f"{seen} write sets of {inspected} ledgers on {len(topics)} topics {base}-*"
    return Check("ledger placement spans regions", not bad,
                 where + (f"; {len(bad)} in one region: {bad[:3]}" if bad else ": all span two regions"))
