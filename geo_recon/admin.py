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
