"""Relay-style connections with keyset cursors: a cursor names the last row seen, never an offset."""
from __future__ import annotations

import base64
import json
from typing import Any, Generic, Optional, Sequence, TypeVar

import strawberry

from schema.errors import UserError

T = TypeVar("T")
MAX_PAGE = 100
DEFAULT_PAGE = 20


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: Optional[str]
    end_cursor: Optional[str]


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int


def page_size(first: Optional[int]) -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0:
        raise UserError("BAD_ARGUMENT", f"'first' must be 0 or more, got {first}")
    if first > MAX_PAGE:
        raise UserError("BAD_ARGUMENT", f"'first' is capped at {MAX_PAGE}, got {first}")
    return first


def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    raw = json.dumps([kind, [k.isoformat() if hasattr(k, "isoformat") else k for k in key]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: Optional[str]) -> Optional[list[Any]]:
    """The key a cursor names; a cursor from another list or a forged one is a clear error."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found_kind, key = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, TypeError, UnicodeDecodeError):
        raise UserError("BAD_CURSOR", f"'after' is not a cursor this API issued: {cursor!r}") from None
    if found_kind != kind or not isinstance(key, list):
        raise UserError("BAD_CURSOR", f"'after' is a cursor of another list ({found_kind!r}), not of {kind!r}")
    return key


def build_connection(nodes_with_keys: list[tuple[Any, Sequence[Any]]], *, kind: str, first: int, total: int,
                     after: Optional[str]) -> Connection:
    """`nodes_with_keys` holds up to first+1 rows: the extra one only tells that a next page exists."""
    page = nodes_with_keys[:first]
    edges = [Edge(cursor=encode_cursor(kind, key), node=node) for node, key in page]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(nodes_with_keys) > first,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=total,
    )
