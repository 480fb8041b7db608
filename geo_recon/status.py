"""`geo-recon status`: what Pulsar itself says about replication, per region and topic.

Pulsar's ``replicationDelayInSeconds`` is the age of the oldest message in the
replicator's producer queue, not end-to-end lag: it reads 0 while the link is
disconnected, however large the backlog. Read it next to ``connected`` and
``replicationBacklog``; geo-recon measures real lag from its own history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from geo_recon.admin import AdminError
from geo_recon.deployment import Deployment
from geo_recon.schemes import SchemeSettings

DELAY_NOTE = ("replicationDelayInSeconds is Pulsar's age of the oldest message waiting in the replicator, "
              "not end-to-end lag; it reads 0 while disconnected. Judge a link by connected and backlog.")


@dataclass(frozen=True)
class LinkStatus:
    region: str
    topic: str
    remote: str
    connected: bool
    backlog: int
    delay_seconds: float
    rate_in: float
    rate_out: float
    rate_expired: float


@dataclass(frozen=True)
class TopicStatus:
    region: str
    topic: str
    msg_in_counter: int
    backlog_by_subscription: dict[str, int]
    links: list[LinkStatus]


def replication_status(deployment: Deployment, settings: SchemeSettings = SchemeSettings()) -> list[TopicStatus]:
    out = []
    for ep in deployment.regions:
        admin = ep.admin(deadline=10)
        try:
            topics = admin.get(f"/admin/v2/persistent/{settings.ns_path}", ok_statuses=(404,)) or []
            for topic in sorted(topics):
                if "geo-recon-placement" in topic or topic.endswith("__change_events"):
                    continue
                try:
                    stats = admin.get(topic.replace("persistent://", "/admin/v2/persistent/") + "/stats")
                except AdminError:
                    continue
                links = [
                    LinkStatus(
                        region=ep.region, topic=topic, remote=remote, connected=bool(rep.get("connected")),
                        backlog=int(rep.get("replicationBacklog", 0)),
                        delay_seconds=float(rep.get("replicationDelayInSeconds", 0)),
                        rate_in=float(rep.get("msgRateIn", 0)), rate_out=float(rep.get("msgRateOut", 0)),
                        rate_expired=float(rep.get("msgRateExpired", 0)),
                    )
                    for remote, rep in sorted((stats.get("replication") or {}).items())
                ]
                out.append(TopicStatus(
                    region=ep.region, topic=topic, msg_in_counter=int(stats.get("msgInCounter", 0)),
                    backlog_by_subscription={s: int(v.get("msgBacklog", 0))
                                             for s, v in (stats.get("subscriptions") or {}).items()},
                    links=links,
                ))
        finally:
            admin.close()
    return out


def to_json(statuses: list[TopicStatus]) -> dict:
    regions: dict[str, dict] = {}
    for st in statuses:
        regions.setdefault(st.region, {})[st.topic] = {
            "msg_in_counter": st.msg_in_counter,
            "backlog_by_subscription": st.backlog_by_subscription,
            "replication": {link.remote: {k: v for k, v in asdict(link).items()
                                          if k not in ("region", "topic", "remote")} for link in st.links},
        }
    return {"note": DELAY_NOTE, "regions": regions}
