"""The per-request context: engine, settings, the active rules and fresh DataLoaders (caches die with the request)."""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Optional

from sqlalchemy.engine import Engine
from strawberry.types import Info

from schema.errors import UserError
from schema.loaders import Loaders


@dataclass
class Context:
    engine: Engine
    settings: Any
    active_rules: Any = None  # domain.rulesets.ActiveRules; asked only when a field needs the rules
    request: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    connection_params: Optional[dict] = None  # a websocket client's connection_init payload

    @classmethod
    def for_request(cls, engine: Engine, settings: Any, active_rules: Any = None, request: Any = None) -> "Context":
        return cls(engine=engine, settings=settings, active_rules=active_rules, request=request)

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.engine, lambda: self.rules)

    @cached_property
    def _active(self) -> tuple[Any, Any]:
        return self.active_rules.current()

    @property
    def rules(self):
        """The checked rule set that is active now (rules.nodes.RuleSet)."""
        return self._active[1]

    @property
    def rule_version(self):
        return self._active[0]

    def require_admin(self) -> str:
        """Admin calls need `Authorization: Bearer <TIERGRAPH_ADMIN_TOKEN>`; returns who called."""
        token: Optional[str] = getattr(self.settings, "admin_token", None)
        if not token:
            raise UserError("FORBIDDEN", "admin calls are disabled on this server: set TIERGRAPH_ADMIN_TOKEN")
        given = bearer(self.request.headers.get("authorization") if self.request is not None else None)
        if not given:
            raise UserError("UNAUTHENTICATED", "this call needs an admin token: 'Authorization: Bearer <token>'")
        if not token_matches(given, token):
            raise UserError("FORBIDDEN", "the admin token is not valid")
        return "admin"


def bearer(header: Optional[str]) -> str:
    """The token of an `Authorization: Bearer <token>` value, or ''."""
    header = header or ""
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def token_matches(given: str, *tokens: Optional[str]) -> bool:
    return bool(given) and any(t and hmac.compare_digest(given.encode(), t.encode()) for t in tokens)


def ctx(info: Info) -> Context:
    return info.context
