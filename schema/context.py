"""The per-request context: the engine and a fresh set of DataLoaders (caches never outlive a request)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from strawberry.types import Info

from schema.loaders import Loaders


@dataclass
class Context:
    engine: Engine
    settings: Any
    loaders: Loaders
    rules: Any = None  # the active, checked rule set (rules.nodes.RuleSet)
    request: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_request(cls, engine: Engine, settings: Any, rules: Any = None, request: Any = None) -> "Context":
        return cls(engine=engine, settings=settings, loaders=Loaders(engine, rules), rules=rules, request=request)


def ctx(info: Info) -> Context:
    return info.context
