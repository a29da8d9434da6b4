"""Relay-style connections with keyset cursors: a cursor names the last row seen, never an offset."""
from __future__ import annotations

import base64
import json
import math
from datetime import date
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
    as_of: Optional[date] = strawberry.field(
        default=None, description="The date a date-dependent condition was evaluated at (e.g. `customers(where:)` "
                                  "without `asOf`: the latest evaluation's); null when the list depends on none.")


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


def _decode(kind: str, cursor: Optional[str]) -> Optional[list[Any]]:
    """The key a cursor names; a cursor from another list or a forged one is a clear error."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found_kind, key = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise UserError("BAD_CURSOR", f"'after' is not a cursor this API issued: {cursor!r}") from None
    if found_kind != kind or not isinstance(key, list):
        raise UserError("BAD_CURSOR", f"'after' is a cursor of another list ({found_kind!r}), not of {kind!r}")
    return key


# Ids are INTEGER columns (32 bits on PostgreSQL): a larger number in a cursor is forged and would overflow there.
MAX_KEY_INT = 2**31 - 1


def _valid_part(value: Any, expected: type) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool) and -MAX_KEY_INT <= value <= MAX_KEY_INT
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and abs(value) < 1e300
    if expected is date:
        try:
            return isinstance(value, str) and date.fromisoformat(value) is not None
        except ValueError:
            return False
    return isinstance(value, expected)


# What each list's cursor key holds, in order (int, float, or date as ISO text). Lists register here.
KEY_TYPES: dict[str, tuple[type, ...]] = {
    "customers": (int,),
    "tier_changes": (int,),
    "lost_customers": (float, int, date),
    "jobs": (int,),
    "movement": (float, int),  # a movement flow's customers: revenue, customer id
    "rule_preview_movers": (float, int),  # a previewed move's customers: revenue_12m, customer id
}


def decode_cursor(kind: str, cursor: Optional[str], types: Optional[Sequence[type]] = None) -> Optional[list[Any]]:
    """The key of a cursor of `kind`, checked against the types its list orders by (KEY_TYPES): a cursor that
    decodes but has another shape, other types or out-of-range values is BAD_CURSOR, like one that does not."""
    key = _decode(kind, cursor)
    if key is None:
        return None
    types = tuple(types) if types is not None else KEY_TYPES[kind]
    if len(key) != len(types) or not all(_valid_part(v, t) for v, t in zip(key, types)):
        raise UserError("BAD_CURSOR", f"'after' is not a {kind} cursor this API issued")
    return key


def build_connection(nodes_with_keys: list[tuple[Any, Sequence[Any]]], *, kind: str, first: int, total: int,
                     after: Optional[str], as_of: Optional[date] = None) -> Connection:
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
        as_of=as_of,
    )
