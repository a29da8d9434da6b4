"""Signed webhooks: tier / status changes pushed to integrators, at least once, in order, resumable.

Each POST carries a JSON body {"events": [...]} and the headers
  X-Tiergraph-Timestamp: unix seconds
  X-Tiergraph-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the endpoint's secret>
Receivers check the signature and reject old timestamps (replays); event ids let them drop duplicates.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional
from urllib.parse import urlparse

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.events import ChangeEvent, changes_after
from domain.models import WebhookEndpoint, utcnow

endpoints_t = WebhookEndpoint.__table__
BATCH = 100
MAX_BACKOFF_SECONDS = 300


class WebhookError(ValueError):
    """A webhook registration was refused (bad URL, unknown kinds, unknown endpoint)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: int, body: bytes, signature: str, *, now: Optional[float] = None,
           tolerance: int = 300) -> bool:
    """What a receiver does: constant-time compare, and refuse a timestamp outside the tolerance."""
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    kinds: list[str]
    active: bool
    delivered_through: int
    failures: int
    next_attempt_at: Optional[datetime]
    last_error: Optional[str]


def _endpoint(row) -> Endpoint:
    m = row._mapping
    return Endpoint(m["id"], m["url"], list(m["kinds"] or []), m["active"], m["delivered_through"], m["failures"],
                    m["next_attempt_at"], m["last_error"])


def register(engine: Engine, url: str, kinds: Optional[list[str]] = None, *, from_beginning: bool = False
             ) -> tuple[Endpoint, str]:
    """Adds an endpoint and returns it with its secret (shown once). It receives changes made from now on,
    or every change in the log with from_beginning."""
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise WebhookError(f"webhook url must be an http(s) URL, got {url!r}")
    kinds = list(kinds or [])
    unknown = [k for k in kinds if k not in ("tier", "status")]
    if unknown:
        raise WebhookError(f"unknown kind(s) {unknown}: use 'tier' and/or 'status'")
    secret = secrets.token_urlsafe(32)
    from domain.events import last_change_id

    start = 0 if from_beginning else last_change_id(engine)
    with engine.begin() as conn:
        new_id = conn.execute(endpoints_t.insert().values(
            url=url, secret=secret, kinds=kinds, active=True, created_at=utcnow(), delivered_through=start,
            failures=0).returning(endpoints_t.c.id)).scalar_one()
        row = conn.execute(sa.select(endpoints_t).where(endpoints_t.c.id == new_id)).one()
    return _endpoint(row), secret


def remove(engine: Engine, endpoint_id: int) -> None:
    with engine.begin() as conn:
        if conn.execute(endpoints_t.delete().where(endpoints_t.c.id == endpoint_id)).rowcount == 0:
            raise WebhookError(f"no webhook endpoint {endpoint_id}")


def list_endpoints(engine: Engine) -> list[Endpoint]:
    with engine.connect() as conn:
        return [_endpoint(r) for r in conn.execute(sa.select(endpoints_t).order_by(endpoints_t.c.id))]


def payload(events: list[ChangeEvent]) -> bytes:
    return json.dumps({"events": [{
        "id": e.id, "kind": e.kind, "customer_external_id": e.customer_external_id, "old_value": e.old_value,
        "new_value": e.new_value, "as_of": e.as_of.isoformat(), "changed_at": e.changed_at.isoformat(),
    } for e in events]}, separators=(",", ":")).encode()


def _due(engine: Engine, now: datetime) -> list[tuple[Endpoint, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(endpoints_t).where(endpoints_t.c.active.is_(True)).order_by(endpoints_t.c.id))
        due = []
        for r in rows:
            at = r.next_attempt_at
            if at is not None and at.tzinfo is None:
                at = at.replace(tzinfo=now.tzinfo)
            if at is None or at <= now:
                due.append((_endpoint(r), r.secret))
        return due


async def deliver_due(engine: Engine, client: httpx.AsyncClient, *, now: Optional[datetime] = None) -> int:
    """One round: every due endpoint gets its next batch of changes. Returns how many events were acknowledged."""
    from starlette.concurrency import run_in_threadpool

    now = now or utcnow()
    acknowledged = 0
    for endpoint, secret in await run_in_threadpool(_due, engine, now):
        events = await run_in_threadpool(lambda: changes_after(engine, endpoint.delivered_through, limit=BATCH,
                                                               kinds=endpoint.kinds or None))
        if not events:
            continue
        body = payload(events)
        stamp = int(time.time())
        headers = {"content-type": "application/json", "x-tiergraph-timestamp": str(stamp),
                   "x-tiergraph-signature": sign(secret, stamp, body),
                   "x-tiergraph-delivery": f"{events[0].id}-{events[-1].id}"}
        try:
            response = await client.post(endpoint.url, content=body, headers=headers, timeout=10)
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        if error is None:
            values = {"delivered_through": events[-1].id, "failures": 0, "next_attempt_at": None, "last_error": None}
            acknowledged += len(events)
        else:
            failures = endpoint.failures + 1
            backoff = min(2 ** failures, MAX_BACKOFF_SECONDS)
            values = {"failures": failures, "next_attempt_at": now + timedelta(seconds=backoff), "last_error": error}
        await run_in_threadpool(_update, engine, endpoint.id, values)
    return acknowledged


def _update(engine: Engine, endpoint_id: int, values: dict) -> None:
    with engine.begin() as conn:
        conn.execute(endpoints_t.update().where(endpoints_t.c.id == endpoint_id).values(**values))
