"""What a customer's records say on a date D: each record flag defined once, in SQL and in Python side by side.

Both rule back ends (rules.to_sql, rules.to_python), the loss report (domain.loss) and the GraphQL record types
(schema.customers) read the flags from here, so they cannot disagree. Meanings (docs/rules.md, "Record flags"):

- complaint `open` on D: not resolved on or before D.
- complaint `overdue` on D: its due date is before D and it was not resolved by its due date. A complaint
  resolved late stays overdue in the record; `open and overdue` is the still-pending case.
- delivery `late` on D: delivered after its promised date, or not delivered by D with the promised date before D
  (delivered means delivered on or before D; both cases are "promised before D and not delivered by the promise").
- delivery `on_time` on D: delivered on or before D, and on or before its promised date.
- interaction `win_back`: its kind says it was a win-back attempt (any ASCII letter case).

A record exists on D when its own date (RECORD_DATE) is on or before D. Resolution and delivery dates after D are
not yet known on D: `known_on` hides them, so nothing computed for D (a forecast included) can read them.
Every flag is true or false, never unknown, in both forms.
"""
from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass
from datetime import date
from functools import reduce
from types import SimpleNamespace
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

# the date a record happens on: it is part of the customer's history on D when this date is on or before D
RECORD_DATE: dict[str, str] = {
    "order": "ordered_at",
    "complaint": "opened_at",
    "delivery": "promised_at",
    "interaction": "occurred_at",
}
# dates that record an outcome: known only once they have passed
OUTCOME_DATES: dict[str, tuple[str, ...]] = {"complaint": ("resolved_at",), "delivery": ("delivered_at",)}
WIN_BACK_KINDS = ("win_back", "win-back", "winback", "win back")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass(frozen=True)
class RecordFlag:
    source: str
    name: str
    # SQL: a boolean expression over the record table `t` (anything with `.c`) and the date D as a bound value
    sql: Callable[[Any, ColumnElement], ColumnElement]
    # Python: the same over one record (any object with the table's attribute names) and D
    python: Callable[[Any, date], bool]
    dates: tuple[str, ...]  # the record dates it reads: the flag can change only the day after one of them


# ---------- complaint ----------

def _open_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.or_(t.c.resolved_at.is_(None), t.c.resolved_at > d)


def _open_py(r: Any, d: date) -> bool:
    return r.resolved_at is None or r.resolved_at > d


def _overdue_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.and_(t.c.due_at.is_not(None), t.c.due_at < d,
                   sa.or_(t.c.resolved_at.is_(None), t.c.resolved_at > t.c.due_at))


def _overdue_py(r: Any, d: date) -> bool:
    return r.due_at is not None and r.due_at < d and (r.resolved_at is None or r.resolved_at > r.due_at)


# ---------- delivery ----------

def _late_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.and_(t.c.promised_at < d, sa.or_(t.c.delivered_at.is_(None), t.c.delivered_at > t.c.promised_at))


def _late_py(r: Any, d: date) -> bool:
    return r.promised_at < d and (r.delivered_at is None or r.delivered_at > r.promised_at)


def _on_time_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.and_(t.c.delivered_at.is_not(None), t.c.delivered_at <= d, t.c.delivered_at <= t.c.promised_at)


def _on_time_py(r: Any, d: date) -> bool:
    return r.delivered_at is not None and r.delivered_at <= d and r.delivered_at <= r.promised_at


# ---------- interaction ----------

# lower() differs between SQLite (ASCII only) and PostgreSQL (Unicode), so the SQL lower-cases by hand, and only
# the letters of the win-back words: any other capital letter leaves the kind unequal to them either way
_WIN_BACK_LETTERS = sorted(set("".join(WIN_BACK_KINDS)) & set(string.ascii_lowercase))


def _win_back_sql(t: Any, d: ColumnElement) -> ColumnElement:
    lowered = reduce(lambda e, c: sa.func.replace(e, c.upper(), c), _WIN_BACK_LETTERS, t.c.kind)
    return sa.and_(t.c.kind.is_not(None), lowered.in_(WIN_BACK_KINDS))


def _win_back_py(r: Any, d: date) -> bool:
    return r.kind is not None and r.kind.translate(_ASCII_LOWER) in WIN_BACK_KINDS


FLAGS: dict[tuple[str, str], RecordFlag] = {
    (f.source, f.name): f for f in (
        RecordFlag("complaint", "open", _open_sql, _open_py, ("resolved_at",)),
        RecordFlag("complaint", "overdue", _overdue_sql, _overdue_py, ("due_at", "resolved_at")),
        RecordFlag("delivery", "late", _late_sql, _late_py, ("promised_at", "delivered_at")),
        RecordFlag("delivery", "on_time", _on_time_sql, _on_time_py, ("promised_at", "delivered_at")),
        RecordFlag("interaction", "win_back", _win_back_sql, _win_back_py, ()),
    )
}


class UnknownRecordFlag(KeyError):
    pass


def record_flag(source: str, name: str) -> RecordFlag:
    try:
        return FLAGS[(source, name)]
    except KeyError:
        raise UnknownRecordFlag(f"unknown record flag {source} {name}") from None


def flag_names(source: str) -> tuple[str, ...]:
    return tuple(name for (s, name) in FLAGS if s == source)


def known_on(source: str, rec: Any, day: date) -> Any | None:
    """The record as it was known on `day`: None when dated after it; outcome dates after it hidden (None)."""
    if getattr(rec, RECORD_DATE[source]) > day:
        return None
    hidden = {f: None for f in OUTCOME_DATES.get(source, ()) if (v := getattr(rec, f)) is not None and v > day}
    return _replaced(rec, hidden) if hidden else rec


def _replaced(rec: Any, changes: dict[str, Any]) -> Any:
    if dataclasses.is_dataclass(rec):
        return dataclasses.replace(rec, **changes)
    fields = dict(rec._mapping) if hasattr(rec, "_mapping") else dict(vars(rec))
    return SimpleNamespace(**{**fields, **changes})
