"""The per-request context: engine, settings, the active rules and fresh DataLoaders (caches die with the request)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Optional

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from strawberry.types import Info

from schema.loaders import Loaders


@dataclass
class Context:
    engine: Engine
    settings: Any
    active_rules: Any = None  # domain.rulesets.ActiveRules; asked only when a field needs the rules
    request: Any = None
    connection_params: Optional[dict] = None  # a websocket client's connection_init payload

    @classmethod
    def for_request(cls, engine: Engine, settings: Any, active_rules: Any = None, request: Any = None) -> "Context":
        return cls(engine=engine, settings=settings, active_rules=active_rules, request=request)

    async def prepare(self) -> "Context":
        """Asks the database for the active rules off the event loop, once per request."""
        if self.active_rules is not None and "_active" not in self.__dict__:
            self.__dict__["_active"] = await run_in_threadpool(self.active_rules.current)
        return self

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

    def authorization(self) -> Optional[str]:
        """The caller's `Authorization` value: a request header, or a websocket's connection_init payload."""
        params = self.connection_params or {}
        given = params.get("Authorization") or params.get("authorization")
        if given is None and self.request is not None:
            given = self.request.headers.get("authorization")
        return given


def ctx(info: Info) -> Context:
    return info.context
