"""A small client for the Pulsar admin REST API (v2), over requests.

Retries (tenacity) only what can heal by itself: connection errors, timeouts
and 5xx answers, with exponential backoff under a deadline. A 4xx is an answer,
never retried. Every error names the cluster, the method and path, and the
status. Tokens go in the Authorization header and nowhere else: they are never
part of an error message or a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
import tenacity

from geo_recon.errors import GeoReconError
from geo_recon.secrets import scrub


class AdminError(GeoReconError):
    """An admin call failed; says which cluster, endpoint and status."""

    def __init__(self, label: str, method: str, path: str, status: int | None, detail: str):
        self.label, self.method, self.path, self.status, self.detail = label, method, path, status, detail
        where = f"{label}: {method} {path}"
        super().__init__(f"{where} -> HTTP {status}: {detail}" if status else f"{where} failed: {detail}")


class _Retryable(Exception):
    def __init__(self, status: int | None, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class AdminClient:
    """Admin REST for one cluster (one region's admin URL)."""

    base_url: str
    label: str = ""
    token: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    timeout: float = 10.0
    deadline: float = 30.0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.label = self.label or self.base_url
        self._session = requests.Session()
        if self.token:
            self._session.headers["Authorization"] = f"Bearer {self.token}"
        if self.ca_file:
            self._session.verify = self.ca_file

    def close(self) -> None:
        self._session.close()

    # -- raw verbs ---------------------------------------------------------

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict | None = None,
                ok_statuses: tuple[int, ...] = (), deadline: float | None = None) -> Any:
        """Call ``path`` (starting with /admin/v2/...) and return parsed JSON (or text, or None)."""
        url = self.base_url + path

        def once() -> requests.Response:
            try:
                resp = self._session.request(method, url, json=json_body, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                raise _Retryable(None, f"{type(exc).__name__}: {_short(str(exc))}") from None
            if resp.status_code >= 500:
                raise _Retryable(resp.status_code, _reason(resp))
            return resp

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=tenacity.wait_exponential(multiplier=0.2, max=3),
            stop=tenacity.stop_after_delay(self.deadline if deadline is None else deadline),
            reraise=True,
        )
        try:
            resp = retrying(once)
        except _Retryable as exc:
            raise AdminError(self.label, method, path, exc.status, scrub(exc.detail, [self.token])) from None
        if resp.status_code >= 400 and resp.status_code not in ok_statuses:
            # a server may echo the request (the bearer token too) in its reason
            raise AdminError(self.label, method, path, resp.status_code, scrub(_reason(resp), [self.token]))
        if resp.status_code in ok_statuses and resp.status_code >= 400:
            return None
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json_body=body, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json_body=body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    # -- typed helpers -----------------------------------------------------

    def clusters(self) -> list[str]:
        return list(self.get("/admin/v2/clusters"))

    def cluster(self, name: str) -> dict | None:
        return self.get(f"/admin/v2/clusters/{quote(name)}", ok_statuses=(404, 412))

    def health(self) -> None:
        """Raises unless the broker's own produce/consume health check passes."""
        self.get("/admin/v2/brokers/health")

    def bookies(self) -> list[str]:
        data = self.get("/admin/v2/bookies/all") or {}
        return [b["bookieId"] for b in data.get("bookies", [])]

    def racks(self) -> dict[str, dict[str, dict]]:
        return self.get("/admin/v2/bookies/racks-info") or {}

    def set_rack(self, bookie: str, rack: str, hostname: str, group: str = "default") -> None:
        self.post(f"/admin/v2/bookies/racks-info/{quote(bookie)}", {"rack": rack, "hostname": hostname},
                  params={"group": group})


def topic_path(topic: str) -> str:
    """``persistent://t/n/x`` -> ``/admin/v2/persistent/t/n/x``."""
    domain, _, rest = topic.partition("://")
    return f"/admin/v2/{domain}/{rest}"


def namespace_topics(admin: AdminClient, namespace: str) -> list[str]:
    """The persistent topics of ``tenant/namespace`` on this cluster, without system topics."""
    return sorted(t for t in admin.get(f"/admin/v2/persistent/{namespace}") or []
                  if not t.rsplit("/", 1)[-1].startswith("__"))


def last_ledger(admin: AdminClient, topic: str) -> int | None:
    """The ledger the topic writes to now. Reading it loads the topic if it is not loaded."""
    ledgers = (admin.get(topic_path(topic) + "/internalStats") or {}).get("ledgers") or []
    return max((int(entry["ledgerId"]) for entry in ledgers), default=None)


def unload(admin: AdminClient, namespace: str, *, whole_namespace: bool = False,
           timeout: float = 30.0) -> dict[str, tuple[int | None, int]]:
    """Unload every topic of ``namespace`` (one by one, or the whole namespace's bundles at once)
    and prove it happened: a reloaded topic reopens its managed ledger on a new ledger, so each
    topic's current ledger id must change. Returns {topic: (ledger before, ledger after)}.

    Proving it reloads the topics (apache/pulsar#22890 is triggered by any reload)."""
    import time

    topics = namespace_topics(admin, namespace)
    if not topics:
        raise GeoReconError(f"{admin.label}: namespace {namespace} has no topics to unload")
    before = {t: last_ledger(admin, t) for t in topics}
    if whole_namespace:
        admin.put(f"/admin/v2/namespaces/{namespace}/unload")
    else:
        for topic in topics:
            admin.put(topic_path(topic) + "/unload")
    after: dict[str, tuple[int | None, int]] = {}
    deadline = time.monotonic() + timeout
    while len(after) < len(topics):
        for topic in topics:
            if topic in after:
                continue
            now = last_ledger(admin, topic)
            if now is not None and (before[topic] is None or now > before[topic]):  # type: ignore[operator]
                after[topic] = (before[topic], now)
        if len(after) < len(topics):
            if time.monotonic() > deadline:
                stuck = sorted(set(topics) - set(after))
                raise GeoReconError(f"{admin.label}: unload of {namespace} not verified within {timeout:.0f}s: "
                                    f"{', '.join(stuck)} still on the same ledger")
            time.sleep(0.5)
    return after


def set_topic_replication(admin: AdminClient, topic: str, clusters: list[str], timeout: float = 20.0) -> None:
    """Topic-level replication clusters, read back until they are in effect (the policy
    travels through a system topic and takes a moment to read back)."""
    import time

    path = topic_path(topic) + "/replication"
    admin.post(path, clusters)
    deadline = time.monotonic() + timeout
    while sorted(admin.get(path, ok_statuses=(404,)) or []) != sorted(clusters):
        if time.monotonic() > deadline:
            raise GeoReconError(f"{admin.label}: topic-level replication of {topic} does not read back as "
                                f"{sorted(clusters)} after {timeout:.0f}s")
        time.sleep(0.5)


def _reason(resp: requests.Response) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and "reason" in body:
            return _short(str(body["reason"]))
    except ValueError:
        pass
    return _short(resp.text or resp.reason or "")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
