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
    request: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_request(cls, engine: Engine, settings: Any, request: Any = None) -> "Context":
        return cls(engine=engine, settings=settings, loaders=Loaders(engine), request=request)


def ctx(info: Info) -> Context:
    return info.context
