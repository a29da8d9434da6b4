"""Admin calls to manage signed webhook endpoints for tier / status changes."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry
from strawberry.types import Info

from domain import webhooks
from schema.context import ctx
from schema.errors import UserError
from schema.permissions import IsAdmin


@strawberry.type
class WebhookEndpoint:
    id: int
    url: str
    kinds: list[str]
    active: bool
    delivered_through: int = strawberry.field(description="Id of the last change the endpoint acknowledged.")
    failures: int
    next_attempt_at: Optional[datetime]
    last_error: Optional[str]

    @classmethod
    def of(cls, e: webhooks.Endpoint) -> "WebhookEndpoint":
        return cls(id=e.id, url=e.url, kinds=e.kinds, active=e.active, delivered_through=e.delivered_through,
                   failures=e.failures, next_attempt_at=e.next_attempt_at, last_error=e.last_error)


@strawberry.type
class WebhookRegistration:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(description="HMAC-SHA256 key for X-Tiergraph-Signature; shown only once.")


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Registered webhook endpoints and their delivery state (admin).",
                      permission_classes=[IsAdmin])
    async def webhooks(self, info: Info) -> list[WebhookEndpoint]:
        c = ctx(info)
        return [WebhookEndpoint.of(e) for e in await c.loaders.run(webhooks.list_endpoints, c.engine)]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="Send tier / status changes to a URL, signed (admin).",
                         permission_classes=[IsAdmin])
    async def register_webhook(self, info: Info, url: str, kinds: Optional[list[str]] = None,
                               from_beginning: bool = False) -> WebhookRegistration:
        c = ctx(info)
        try:
            endpoint, secret = await c.loaders.run(webhooks.register, c.engine, url, kinds,
                                                   from_beginning=from_beginning)
        except webhooks.WebhookError as exc:
            raise UserError("BAD_ARGUMENT", str(exc)) from None
        return WebhookRegistration(endpoint=WebhookEndpoint.of(endpoint), secret=secret)

    @strawberry.mutation(description="Stop sending to an endpoint (admin).", permission_classes=[IsAdmin])
    async def remove_webhook(self, info: Info, id: int) -> bool:
        c = ctx(info)
        try:
            await c.loaders.run(webhooks.remove, c.engine, id)
        except webhooks.WebhookError as exc:
            raise UserError("NOT_FOUND", str(exc)) from None
        return True
