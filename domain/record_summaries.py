"""A customer's satisfaction, pipeline and payment behaviour on a day D, summed up from its surveys, opportunities
and invoices with the record flags and values of domain.record_flags, so they say what the rule language says.

Records are read as they were known on D (domain.record_flags.known_on): records dated after D do not exist yet,
outcomes (closing, payment) after D are not known yet. Windows end on D (rules.windows.Bounds) and select records
by their own date, as in rules, with one exception named below (won amount).

- satisfaction over a window: the answers in it, its latest (ties: the later stored), average NPS and CSAT score
  apart, and NPS = promoters % - detractors % of the NPS answers (None without NPS answers), -100..100.
- pipeline on D: open deals (count, amount, weighted amount = sum of amount x probability), stalled deals, and
  the amount won in the 12 months ending D, by the date the deal closed (not opened: a deal opened 2 years ago
  and won last month counts).
- payment on D: outstanding (unpaid) amount, overdue invoices and their amount, average days late of the invoices
  issued in a window and paid by D (`avg(invoice.days_late where paid, 12m)` in rules), credit utilisation =
  outstanding / credit limit (None without a positive limit).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from statistics import fmean
from typing import Any, Iterable, Optional

from domain.record_flags import RECORD_VALUES, known_on, record_flag
from rules.nodes import Window
from rules.windows import Bounds, bounds

WON_WINDOW = Window(12, "m")


def known(source: str, records: Iterable[Any], day: date) -> list[Any]:
    """The records as known on `day` (dated on or before it, later outcomes hidden)."""
    return [k for r in records if (k := known_on(source, r, day)) is not None]


def _flag(source: str, name: str, rec: Any, day: date) -> bool:
    return record_flag(source, name).python(rec, day)


def _value(source: str, name: str, rec: Any, day: date) -> float:
    return RECORD_VALUES[(source, name)].python(rec, day)


@dataclass(frozen=True)
class Satisfaction:
    answers: int
    detractors: int
    promoters: int
    latest_score: Optional[float]
    latest_kind: Optional[str]
    latest_answered_at: Optional[date]
    average_nps_score: Optional[float]
    average_csat_score: Optional[float]
    nps: Optional[float]


def satisfaction(surveys: Iterable[Any], window: Bounds) -> Satisfaction:
    day = window.end
    found = [s for s in known("survey", surveys, day) if window.contains(s.answered_at)]
    latest = max(found, key=lambda s: (s.answered_at, s.id), default=None)
    nps = [s for s in found if s.kind == "nps"]
    csat = [s.score for s in found if s.kind == "csat"]
    count = lambda rows, band: sum(1 for s in rows if _flag("survey", band, s, day))
    return Satisfaction(
        answers=len(found), detractors=count(found, "detractor"), promoters=count(found, "promoter"),
        latest_score=latest.score if latest else None, latest_kind=latest.kind if latest else None,
        latest_answered_at=latest.answered_at if latest else None,
        average_nps_score=fmean(s.score for s in nps) if nps else None,
        average_csat_score=fmean(csat) if csat else None,
        nps=100.0 * (count(nps, "promoter") - count(nps, "detractor")) / len(nps) if nps else None)


@dataclass(frozen=True)
class Pipeline:
    open_count: int
    open_amount: float
    weighted_amount: float
    stalled_count: int
    won_amount_12m: float


def pipeline(opportunities: Iterable[Any], day: date) -> Pipeline:
    found = known("opportunity", opportunities, day)
    open_ = [o for o in found if _flag("opportunity", "open", o, day)]
    won_in = bounds(WON_WINDOW, day)
    return Pipeline(
        open_count=len(open_), open_amount=sum(o.amount for o in open_),
        weighted_amount=sum(_value("opportunity", "weighted_amount", o, day) for o in open_),
        stalled_count=sum(1 for o in found if _flag("opportunity", "stalled", o, day)),
        won_amount_12m=sum(o.amount for o in found
                           if _flag("opportunity", "won", o, day) and won_in.contains(o.closed_at)))


@dataclass(frozen=True)
class Payment:
    outstanding: float
    overdue_count: int
    overdue_amount: float
    credit_utilisation: Optional[float]


def payment(invoices: Iterable[Any], credit_limit: Optional[float], day: date) -> Payment:
    found = known("invoice", invoices, day)
    outstanding = sum(_value("invoice", "outstanding", i, day) for i in found)
    overdue = [i for i in found if _flag("invoice", "overdue", i, day)]
    return Payment(
        outstanding=outstanding, overdue_count=len(overdue),
        overdue_amount=sum(_value("invoice", "outstanding", i, day) for i in overdue),
        credit_utilisation=outstanding / credit_limit if credit_limit else None)


def average_days_late(invoices: Iterable[Any], window: Bounds) -> Optional[float]:
    """Mean days late of the invoices issued in the window and paid by its end (on time counts 0); None: none."""
    day = window.end
    late = [_value("invoice", "days_late", i, day) for i in known("invoice", invoices, day)
            if window.contains(i.issued_at) and _flag("invoice", "paid", i, day)]
    return fmean(late) if late else None
