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
- survey `detractor` / `passive` / `promoter`: NPS (0-10) below 7 / 7 up to 9 / 9 and above; CSAT (1-5) below 3 /
  3 up to 4 / 4 and above.
- opportunity `open` on D: not closed on or before D; `won` / `lost`: closed on or before D with that outcome;
  `stalled`: open on D and its expected close date is before D.
- invoice `paid` on D: paid on or before D; `open`: not paid by D; `overdue`: not paid by D and due before D;
  `paid_late`: paid by D, after its due date.

Besides flags, a few record values are derived rather than stored (RECORD_VALUES), e.g. invoice `days_late` on D:
days from the due date to the payment (paid by D) or to D (not paid), never below 0.

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
    "survey": "answered_at",
    "opportunity": "opened_at",
    "invoice": "issued_at",
    "order_line": "ordered_at",
}
# dates that record an outcome: known only once they have passed
OUTCOME_DATES: dict[str, tuple[str, ...]] = {"complaint": ("resolved_at",), "delivery": ("delivered_at",),
                                             "opportunity": ("closed_at",), "invoice": ("paid_at",)}
# fields that say what the outcome was: hidden with their outcome date
OUTCOME_FIELDS: dict[str, tuple[str, ...]] = {"closed_at": ("outcome",)}
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


# ---------- survey ----------
# (scale, detractor below, promoter from): NPS 0-10 and CSAT 1-5
SURVEY_SCALES: dict[str, tuple[float, float, float, float]] = {"nps": (0, 10, 7, 9), "csat": (1, 5, 3, 4)}


def _survey_band_sql(band: str) -> Callable[[Any, ColumnElement], ColumnElement]:
    def sql(t: Any, d: ColumnElement) -> ColumnElement:
        return sa.or_(*(sa.and_(t.c.kind == sa.literal(kind), _band_sql(band, t.c.score, lo, hi))
                        for kind, (_, _, lo, hi) in SURVEY_SCALES.items()))
    return sql


def _band_sql(band: str, score: ColumnElement, lo: float, hi: float) -> ColumnElement:
    if band == "detractor":
        return score < sa.literal(lo)
    if band == "promoter":
        return score >= sa.literal(hi)
    return sa.and_(score >= sa.literal(lo), score < sa.literal(hi))


def _survey_band_py(band: str) -> Callable[[Any, date], bool]:
    def python(r: Any, d: date) -> bool:
        scale = SURVEY_SCALES.get(r.kind)
        if scale is None:
            return False
        lo, hi = scale[2], scale[3]
        return r.score < lo if band == "detractor" else r.score >= hi if band == "promoter" else lo <= r.score < hi
    return python


# ---------- opportunity ----------

def _closed_by_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.and_(t.c.closed_at.is_not(None), t.c.closed_at <= d)


def _closed_by_py(r: Any, d: date) -> bool:
    return r.closed_at is not None and r.closed_at <= d


def _outcome_sql(outcome: str) -> Callable[[Any, ColumnElement], ColumnElement]:
    return lambda t, d: sa.and_(_closed_by_sql(t, d), t.c.outcome == sa.literal(outcome))


def _outcome_py(outcome: str) -> Callable[[Any, date], bool]:
    return lambda r, d: _closed_by_py(r, d) and r.outcome == outcome


def _stalled_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.and_(sa.not_(_closed_by_sql(t, d)), t.c.expected_close_on.is_not(None), t.c.expected_close_on < d)


def _stalled_py(r: Any, d: date) -> bool:
    return not _closed_by_py(r, d) and r.expected_close_on is not None and r.expected_close_on < d


# ---------- invoice ----------

def _paid_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.and_(t.c.paid_at.is_not(None), t.c.paid_at <= d)


def _paid_py(r: Any, d: date) -> bool:
    return r.paid_at is not None and r.paid_at <= d


def _invoice_overdue_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.and_(sa.not_(_paid_sql(t, d)), t.c.due_at < d)


def _invoice_overdue_py(r: Any, d: date) -> bool:
    return not _paid_py(r, d) and r.due_at < d


def _paid_late_sql(t: Any, d: ColumnElement) -> ColumnElement:
    return sa.and_(_paid_sql(t, d), t.c.paid_at > t.c.due_at)


def _paid_late_py(r: Any, d: date) -> bool:
    return _paid_py(r, d) and r.paid_at > r.due_at


FLAGS: dict[tuple[str, str], RecordFlag] = {
    (f.source, f.name): f for f in (
        RecordFlag("complaint", "open", _open_sql, _open_py, ("resolved_at",)),
        RecordFlag("complaint", "overdue", _overdue_sql, _overdue_py, ("due_at", "resolved_at")),
        RecordFlag("delivery", "late", _late_sql, _late_py, ("promised_at", "delivered_at")),
        RecordFlag("delivery", "on_time", _on_time_sql, _on_time_py, ("promised_at", "delivered_at")),
        RecordFlag("interaction", "win_back", _win_back_sql, _win_back_py, ()),
        *(RecordFlag("survey", band, _survey_band_sql(band), _survey_band_py(band), ())
          for band in ("detractor", "passive", "promoter")),
        RecordFlag("opportunity", "open", lambda t, d: sa.not_(_closed_by_sql(t, d)),
                   lambda r, d: not _closed_by_py(r, d), ("closed_at",)),
        RecordFlag("opportunity", "won", _outcome_sql("won"), _outcome_py("won"), ("closed_at",)),
        RecordFlag("opportunity", "lost", _outcome_sql("lost"), _outcome_py("lost"), ("closed_at",)),
        RecordFlag("opportunity", "stalled", _stalled_sql, _stalled_py, ("closed_at", "expected_close_on")),
        RecordFlag("invoice", "paid", _paid_sql, _paid_py, ("paid_at",)),
        RecordFlag("invoice", "open", lambda t, d: sa.not_(_paid_sql(t, d)), lambda r, d: not _paid_py(r, d),
                   ("paid_at",)),
        RecordFlag("invoice", "overdue", _invoice_overdue_sql, _invoice_overdue_py, ("due_at", "paid_at")),
        RecordFlag("invoice", "paid_late", _paid_late_sql, _paid_late_py, ("paid_at",)),
    )
}


# ---------- derived record values ----------

@dataclass(frozen=True)
class RecordValue:
    """A number derived from a record's stored fields on D, usable wherever a stored field is."""

    source: str
    name: str
    sql: Callable[[Any, ColumnElement], ColumnElement]
    python: Callable[[Any, date], float | None]
    dates: tuple[str, ...]  # the record dates it reads (it can change the day after one of them) ...
    daily: bool = False  # ... or it can change every day,
    settled_by: str | None = None  # ... except on records with this flag (where a `where` requires it)


def _days_late_sql(t: Any, d: ColumnElement) -> ColumnElement:
    from rules.to_sql import DaysBetween  # the one date difference the SQL computes, per dialect
    zero = sa.literal(0.0, sa.Float)
    late = lambda end: sa.case((end > t.c.due_at, sa.cast(DaysBetween(end, t.c.due_at), sa.Float)), else_=zero)
    return sa.case((_paid_sql(t, d), late(t.c.paid_at)), else_=late(d))


def _days_late_py(r: Any, d: date) -> float:
    end = r.paid_at if _paid_py(r, d) else d
    return float(max((end - r.due_at).days, 0))


RECORD_VALUES: dict[tuple[str, str], RecordValue] = {
    (v.source, v.name): v for v in (
        # an unpaid invoice is one day later every day; a paid one's lateness is fixed
        RecordValue("invoice", "days_late", _days_late_sql, _days_late_py, ("due_at", "paid_at"), daily=True,
                    settled_by="paid"),
        RecordValue("invoice", "outstanding",
                    lambda t, d: sa.case((_paid_sql(t, d), sa.literal(0.0, sa.Float)), else_=t.c.amount),
                    lambda r, d: 0.0 if _paid_py(r, d) else r.amount, ("paid_at",)),
        RecordValue("opportunity", "weighted_amount", lambda t, d: t.c.amount * t.c.probability,
                    lambda r, d: r.amount * r.probability, ()),
    )
}


def record_value_sql(t: Any, source: str, name: str, d: ColumnElement) -> ColumnElement:
    """A record field in SQL: the stored column, or the derived value on D."""
    derived = RECORD_VALUES.get((source, name))
    return derived.sql(t, d) if derived else t.c[name]


def record_value_py(rec: Any, source: str, name: str, d: date) -> Any:
    derived = RECORD_VALUES.get((source, name))
    return derived.python(rec, d) if derived else getattr(rec, name)


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
    hidden.update({g: None for f in list(hidden) for g in OUTCOME_FIELDS.get(f, ())})
    return _replaced(rec, hidden) if hidden else rec


def _replaced(rec: Any, changes: dict[str, Any]) -> Any:
    if dataclasses.is_dataclass(rec):
        return dataclasses.replace(rec, **changes)
    fields = dict(rec._mapping) if hasattr(rec, "_mapping") else dict(vars(rec))
    return SimpleNamespace(**{**fields, **changes})
