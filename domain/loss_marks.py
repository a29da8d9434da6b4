"""Manual loss marks: an admin marks a customer lost on a day, with a reason, or reactivates it, with a note.

A lost mark starts a MANUAL loss episode on its day. The episode ends at the EARLIER of
- the customer's first order dated AFTER the lost day (an order ON that day does not end it: a day has no time
  of day, so an order that day is part of what the admin saw when judging the customer lost), and
- the customer's first reactivation mark on or after the lost day;
on a tie the reactivation ends it (it is the explicit statement, and it carries a note). With neither, the
episode is open. `manual_episodes_query()` is the one definition of these episodes; the loss history reads it,
and the rules below are checked against it.

Rules of `mark_lost(customer, on, reason)`:
- the customer must exist (CustomerNotFound); `on` lies in the accepted calendar (domain.data_date FIRST_DAY ..
  LAST_DAY) and not before the customer's created_at; the reason is required, not blank, at most 2,000
  characters (stored without surrounding blanks);
- the same mark again (same customer, day and reason) is a no-op returning the stored mark (`changed` False),
  even after the episode ended: a retry never starts a second episode;
- a CONFLICT (MarkConflict), nothing written: another reason on a day that already has a lost mark; a manual
  loss already open on `on` (an episode with start <= on < end); a reactivation mark on `on` (the episode would
  end the day it starts); or a later lost mark that the new episode would run into (no order or reactivation in
  between). So a customer's manual episodes never overlap: at most one is open on any day.

Rules of `reactivate(customer, on, note)`:
- the same checks of the customer and of `on`; the note is optional (blank: none), at most 2,000 characters;
- the same reactivation again (same day and note) is a no-op (`changed` False); another note on a day that
  already has a reactivation mark is a CONFLICT;
- a manual loss must be open on `on` (so `on` is on or after its lost day, and before the order that would
  have ended it), else NotLost naming the customer and the day; the mark ends that episode on `on`.

Each call is one transaction in evaluation_state.writer_transaction, so writers take turns: of two callers
marking the same customer at once, the second sees the first's mark (a no-op or a CONFLICT), never a second
open episode. WriterBusy when another writer held the turn too long. Marks change no stored evaluation: they
feed the loss history only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Optional, Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import evaluation_state as es
from domain.data_date import FIRST_DAY, LAST_DAY
from domain.models import Customer, LossMark, Order, utcnow
from domain.writes import BadInput, FieldProblem

__all__ = ["LOST", "REACTIVATED", "MAX_TEXT", "MarkWritten", "CustomerNotFound", "MarkConflict", "NotLost",
           "mark_lost", "reactivate", "manual_episodes_query"]

marks_t = LossMark.__table__
customers_t = Customer.__table__
orders_t = Order.__table__

LOST = "lost"
REACTIVATED = "reactivated"
MAX_TEXT = 2000
MAX_BY = 200

CustomerRef = Union[str, int]  # the customer's external id, or its row id


@dataclass(frozen=True)
class MarkWritten:
    mark: Any  # the stored loss_marks row (an identical retry: the one stored before)
    customer: Any  # the customer's row
    changed: bool  # False: the same mark was already stored; nothing was written


class CustomerNotFound(LookupError):
    """No customer has the given id; nothing was written."""


class MarkConflict(Exception):
    """The mark contradicts the customer's stored marks; `lost_on` / `reason` name the lost mark it collides with
    (None when it collides with a reactivation)."""

    def __init__(self, message: str, *, lost_on: Optional[date] = None, reason: Optional[str] = None):
        super().__init__(message)
        self.lost_on, self.reason = lost_on, reason


class NotLost(Exception):
    """A reactivation with no manual loss open on its day; nothing was written."""

    def __init__(self, message: str, *, customer_external_id: str, on: date):
        super().__init__(message)
        self.customer_external_id, self.on = customer_external_id, on


# ---- the episodes ----


def manual_episodes_query(*, customer_id: Optional[int] = None) -> sa.Select:
    """One row per lost mark: (customer_id, lost_on, reason, ended_on, end_kind, reactivation_note).

    ended_on is the earlier of the first order dated after lost_on and the first reactivation mark on or after
    it (a tie: the reactivation); end_kind 'ORDER' / 'REACTIVATED', both NULL while the episode is open;
    reactivation_note is the note of the reactivation that ended it. Set-based: each end is a correlated MIN over
    the customer's own rows (orders by ix_orders_customer_date, marks by ix_loss_marks_customer_marked_on), tied on
    customer_id only; values are bound parameters. `customer_id` narrows it to one customer."""
    lost = marks_t.alias("lost")
    later = marks_t.alias("reactivation")
    first_order = (sa.select(sa.func.min(orders_t.c.ordered_at))
                   .where(orders_t.c.customer_id == lost.c.customer_id, orders_t.c.ordered_at > lost.c.marked_on)
                   .scalar_subquery())
    first_reactivation = (sa.select(sa.func.min(later.c.marked_on))
                          .where(later.c.customer_id == lost.c.customer_id, later.c.kind == REACTIVATED,
                                 later.c.marked_on >= lost.c.marked_on)
                          .scalar_subquery())
    starts = (sa.select(lost.c.customer_id, lost.c.marked_on.label("lost_on"), lost.c.text.label("reason"),
                        first_order.label("order_on"), first_reactivation.label("reactivated_on"))
              .where(lost.c.kind == LOST))
    if customer_id is not None:
        starts = starts.where(lost.c.customer_id == customer_id)
    s = starts.subquery("manual_loss_starts")
    by_reactivation = sa.and_(s.c.reactivated_on.is_not(None),
                              sa.or_(s.c.order_on.is_(None), s.c.reactivated_on <= s.c.order_on))
    ending = marks_t.alias("ending")
    note = (sa.select(ending.c.text)
            .where(ending.c.customer_id == s.c.customer_id, ending.c.kind == REACTIVATED,
                   ending.c.marked_on == s.c.reactivated_on)
            .order_by(ending.c.id).limit(1).scalar_subquery())
    return sa.select(
        s.c.customer_id, s.c.lost_on, s.c.reason,
        sa.case((by_reactivation, s.c.reactivated_on), else_=s.c.order_on).label("ended_on"),
        sa.case((by_reactivation, sa.literal("REACTIVATED")), (s.c.order_on.is_not(None), sa.literal("ORDER")),
                else_=sa.null()).label("end_kind"),
        sa.case((by_reactivation, note), else_=sa.null()).label("reactivation_note"),
    )


def _episodes(conn: Connection, customer_id: int) -> list[Any]:
    q = manual_episodes_query(customer_id=customer_id).subquery()
    return conn.execute(sa.select(q).order_by(q.c.lost_on)).all()


def _open_on(episode: Any, day: date) -> bool:
    return episode.lost_on <= day and (episode.ended_on is None or day < episode.ended_on)


def _overlap(a: Any, b: Any) -> bool:
    """Two episodes share a day (an episode ended on its own start day holds none)."""
    def end(e: Any) -> date:
        return e.ended_on if e.ended_on is not None else date.max
    return a.lost_on < end(b) and b.lost_on < end(a) and a.lost_on < end(a) and b.lost_on < end(b)


# ---- the two writes ----


def mark_lost(engine: Engine, customer: CustomerRef, on: date, reason: Optional[str], *,
              by: Optional[str] = None) -> MarkWritten:
    """Mark the customer lost from `on` for `reason` (the rules are in the module docstring)."""
    reason_text = _text(reason, "reason", required=True)
    _check_arguments(on, by)
    with es.writer_transaction(engine) as conn:
        row = _customer(conn, customer)
        _not_before_created(row, on)
        same_day = _mark_on(conn, row.id, LOST, on)
        if same_day is not None:
            if same_day.text == reason_text:
                return MarkWritten(same_day, row, False)
            raise MarkConflict(f"customer '{row.external_id}' was already marked lost on {on} with another reason: "
                               f"{same_day.text!r}; a mark is kept as it was made",
                               lost_on=on, reason=same_day.text)
        mark_id = _insert(conn, row.id, LOST, on, reason_text, by)
        # the new episode is checked against the others as the loss history will read them (one definition);
        # a conflict raises here and the transaction rolls the insert back
        episodes = _episodes(conn, row.id)
        new = next(e for e in episodes if e.lost_on == on)
        if new.ended_on == on:
            raise MarkConflict(f"customer '{row.external_id}' was reactivated on {on}: a loss marked that day would "
                               f"end the day it starts; mark it lost on a later day")
        for other in episodes:
            if other is new or not _overlap(other, new):
                continue
            if other.lost_on < on:
                raise MarkConflict(f"customer '{row.external_id}' is already marked lost since {other.lost_on} "
                                   f"({other.reason!r}) and not reactivated by {on}; reactivate it first",
                                   lost_on=other.lost_on, reason=other.reason)
            raise MarkConflict(f"customer '{row.external_id}' is marked lost from {other.lost_on} "
                               f"({other.reason!r}); a loss from {on} would run into it (no order or reactivation "
                               f"in between)", lost_on=other.lost_on, reason=other.reason)
        stored = _mark(conn, mark_id)
        _refresh_loss_history(conn, row.id)
    return MarkWritten(stored, row, True)


def reactivate(engine: Engine, customer: CustomerRef, on: date, note: Optional[str] = None, *,
               by: Optional[str] = None) -> MarkWritten:
    """End the customer's manual loss open on `on` (the rules are in the module docstring)."""
    note_text = _text(note, "note", required=False)
    _check_arguments(on, by)
    with es.writer_transaction(engine) as conn:
        row = _customer(conn, customer)
        _not_before_created(row, on)
        same_day = _mark_on(conn, row.id, REACTIVATED, on)
        if same_day is not None:
            if same_day.text == note_text:
                return MarkWritten(same_day, row, False)
            raise MarkConflict(f"customer '{row.external_id}' was already reactivated on {on} with another note: "
                               f"{same_day.text!r}; a mark is kept as it was made")
        episodes = _episodes(conn, row.id)
        if not any(_open_on(e, on) for e in episodes):
            raise NotLost(f"customer '{row.external_id}' is not marked lost on {on}{_why_not_lost(episodes, on)}",
                          customer_external_id=row.external_id, on=on)
        stored = _mark(conn, _insert(conn, row.id, REACTIVATED, on, note_text, by))
        _refresh_loss_history(conn, row.id)
    return MarkWritten(stored, row, True)


def _refresh_loss_history(conn: Connection, customer_id: int) -> None:
    """The stored loss history follows the mark in the same transaction (domain.loss_store)."""
    from domain import live, loss_store

    rules = live.active_rules(conn)
    if rules is not None:
        loss_store.refresh(conn, rules[1], [customer_id])


def _why_not_lost(episodes: list[Any], on: date) -> str:
    before = [e for e in episodes if e.lost_on <= on]
    if before:
        last = before[-1]
        how = "by an order" if last.end_kind == "ORDER" else "by a reactivation"
        return f": its manual loss from {last.lost_on} ended on {last.ended_on} {how}"
    if episodes:
        return f": it is marked lost from {episodes[0].lost_on}, after that day"
    return ": it has no lost mark"


# ---- checks and rows ----


def _text(value: Optional[str], name: str, *, required: bool) -> Optional[str]:
    text = (value or "").strip()
    if not text:
        if required:
            raise BadInput([FieldProblem((name,), f"'{name}' is required and cannot be blank")])
        return None
    if len(text) > MAX_TEXT:
        raise BadInput([FieldProblem((name,), f"'{name}' is {len(text)} characters long; at most {MAX_TEXT}")])
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        raise BadInput([FieldProblem((name,), f"'{name}' cannot contain NUL characters")])
    return text


def _check_arguments(on: Any, by: Optional[str]) -> None:
    if not isinstance(on, date) or isinstance(on, datetime):
        raise BadInput([FieldProblem(("on",), f"'on' must be a date, got {on!r}")])
    if not FIRST_DAY <= on <= LAST_DAY:
        raise BadInput([FieldProblem(("on",), f"'on' must be between {FIRST_DAY} and {LAST_DAY}, got {on}")])
    if by is not None and len(by) > MAX_BY:
        raise BadInput([FieldProblem(("by",), f"'by' is {len(by)} characters long; at most {MAX_BY}")])


def _customer(conn: Connection, customer: CustomerRef) -> Any:
    key = customers_t.c.id if isinstance(customer, int) else customers_t.c.external_id
    row = conn.execute(sa.select(customers_t).where(key == customer)).first()
    if row is None:
        raise CustomerNotFound(f"no customer has the id {customer!r}")
    return row


def _not_before_created(customer: Any, on: date) -> None:
    if on < customer.created_at:
        raise BadInput([FieldProblem(("on",), f"'on' ({on}) is before customer '{customer.external_id}' was "
                                              f"created ({customer.created_at})")])


def _mark_on(conn: Connection, customer_id: int, kind: str, on: date) -> Any:
    return conn.execute(sa.select(marks_t).where(marks_t.c.customer_id == customer_id, marks_t.c.kind == kind,
                                                 marks_t.c.marked_on == on)
                        .order_by(marks_t.c.id).limit(1)).first()


def _insert(conn: Connection, customer_id: int, kind: str, on: date, text: Optional[str],
            by: Optional[str]) -> int:
    return conn.execute(marks_t.insert().values(customer_id=customer_id, kind=kind, marked_on=on, text=text,
                                                recorded_at=utcnow(), recorded_by=by)
                        .returning(marks_t.c.id)).scalar_one()


def _mark(conn: Connection, mark_id: int) -> Any:
    return conn.execute(sa.select(marks_t).where(marks_t.c.id == mark_id)).one()
