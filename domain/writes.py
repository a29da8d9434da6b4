"""Writing one record through the API: validated like an import row, stored and re-evaluated in ONE transaction.

Each write runs inside `evaluation_state.writer_transaction`: the record, the touched customers' new scores and
evaluation (domain.live.reevaluate) and their change events commit together, or nothing does. Bad input raises
BadInput listing every field problem before anything is written; its per-column rules (what a valid date, number,
quantity or id is) are the import's (domain.import_rows), applied to the API's values.

Idempotency, by the client's external id (the retry rule of each write is in its docstring):
- the same external id with the same content is a no-op that returns the stored record (`changed` False);
- the same external id with different content is refused with WriteConflict naming what differs, except where
  a write is documented as an update (upsert_customer, resolve_complaint, a delivery's outcome, record_opportunity,
  an invoice's payment and pay_invoice).
Values are given as dicts of the import's column names; a key left out is "not given".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import evaluation_state as es
from domain import import_rows as rows_
from domain import live
from domain.faults import crash_point
from domain.models import (Complaint, Customer, Delivery, Interaction, Invoice, Opportunity, Order, OrderLine, Product,
                           SalesRep, Survey)

customers_t = Customer.__table__
orders_t = Order.__table__
lines_t = OrderLine.__table__
products_t = Product.__table__
complaints_t = Complaint.__table__
deliveries_t = Delivery.__table__
interactions_t = Interaction.__table__
reps_t = SalesRep.__table__
surveys_t = Survey.__table__
opportunities_t = Opportunity.__table__
invoices_t = Invoice.__table__

Path = tuple[Any, ...]  # an input field: ("ordered_at",), ("lines", 0, "quantity")


@dataclass(frozen=True)
class FieldProblem:
    path: Path
    reason: str


class BadInput(ValueError):
    """The input has problems; nothing was written. `problems` lists each with its field."""

    def __init__(self, problems: list[FieldProblem]):
        self.problems = problems
        super().__init__("; ".join(p.reason for p in problems))


class WriteConflict(Exception):
    """The external id is stored with other content; `differences` maps each field to (stored, given)."""

    def __init__(self, kind: str, external_id: str, differences: dict[str, tuple[Any, Any]]):
        self.kind, self.external_id, self.differences = kind, external_id, differences
        what = ", ".join(f"{k} (stored {s!r}, given {g!r})" for k, (s, g) in differences.items())
        super().__init__(f"{kind} '{external_id}' is already stored with other content: {what}; "
                         f"use a new external id for a new {kind}")


@dataclass
class Written:
    kind: str  # order / complaint / delivery / interaction / survey / opportunity / invoice / customer
    record: Any  # the stored row
    customer_id: int
    changed: bool  # False: an identical retry, nothing was written
    states: list[es.NewState] = field(default_factory=list)


Rules = Optional[tuple[Any, Any]]  # (active version, compiled rules) when the caller has them


# ---- validation: the import's per-column rules on the API's values ----


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parse(file: str, build: Callable[[rows_.Row], Any], values: dict[str, Any],
           path: Callable[[Optional[str]], Path]) -> tuple[Any, list[FieldProblem]]:
    """(the typed row, []) or (None, problems): lengths and line breaks, then the file's row builder."""
    row = rows_.Row({c: _text(v) for c, v in values.items()}, 0, frozenset(values))
    problems = [FieldProblem(path(c), reason) for c, v in row.values.items()
                if (reason := rows_._field_problem(c, v, rows_.max_length(file, c), 1 << 30))]
    if problems:
        return None, problems
    try:
        return build(row), []
    except rows_.BadValue as exc:
        return None, [FieldProblem(path(exc.column), str(exc))]


def _plain(column: Optional[str]) -> Path:
    return (column,) if column else ()


def _required(values: dict[str, Any], columns: tuple[str, ...], path: Callable[[Optional[str]], Path] = _plain
              ) -> list[FieldProblem]:
    return [FieldProblem(path(c), f"'{c}' is required") for c in columns if values.get(c) in (None, "")]


def _check(problems: list[FieldProblem]) -> None:
    if problems:
        seen: dict[Path, FieldProblem] = {}
        for p in problems:
            seen.setdefault(p.path, p)
        raise BadInput(list(seen.values()))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    return a == b


def _differences(stored: Any, given: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    m = stored._mapping
    return {k: (m[k], v) for k, v in given.items() if not _same(m[k], v)}


def _id_of(conn: Connection, table: sa.Table, key: str, value: str, path: Path, what: str) -> int:
    found = conn.execute(sa.select(table.c.id).where(table.c[key] == value)).scalar()
    if found is None:
        raise BadInput([FieldProblem(path, f"unknown {what} '{value}'")])
    return found


def _row(conn: Connection, table: sa.Table, external_id: str) -> Any:
    return conn.execute(sa.select(table).where(table.c.external_id == external_id)).first()


def _reevaluate(conn: Connection, ids: set[int], kind: str, external_id: str, rules: Rules,
                *dates: Optional[date]) -> list[es.NewState]:
    states = live.reevaluate(conn, ids, live.live_as_of(conn, *dates), es.Cause("NEW_DATA", kind, external_id),
                             rules=rules)
    crash_point("write:before_commit")  # the last step inside the writer transaction of every write
    return states


# ---- orders ----


def order_totals(lines: list[tuple[float, float, Optional[float]]]) -> dict[str, Any]:
    """amount, cost of goods and margin of an order from its (quantity, unit price, unit cost) lines; the cost and
    margin are unknown (None) when any line's cost is unknown."""
    amount = sum(q * p for q, p, _ in lines)
    cogs = None if any(c is None for _, _, c in lines) else sum(q * c for q, _, c in lines)
    return {"amount": round(amount, 6), "cost_of_goods": None if cogs is None else round(cogs, 6),
            "margin": None if cogs is None else round(amount - cogs, 6), "line_count": len(lines)}


_LINE_COLUMNS = ("sku", "quantity", "unit_price", "unit_cost", "is_return")


def record_order(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> Written:
    """Store an order with its lines (values: external_id, customer_external_id, ordered_at, lines: [{sku,
    quantity, unit_price, unit_cost?, is_return?}]). A line without unit_cost takes its product's cost; a sku not
    yet known defines the product (named by its sku, cost unknown), as an import without products.csv does.
    Retry: the same order again is a no-op; other content under the same external id is a CONFLICT (an order is
    a fact; correct it with a new external id, e.g. a return)."""
    head = {"order_external_id": values.get("external_id"), "customer_external_id": values.get("customer_external_id"),
            "ordered_at": values.get("ordered_at")}

    def head_path(c: Optional[str]) -> Path:
        return ({"order_external_id": ("external_id",)}.get(c) or _plain(c)) if c not in _LINE_COLUMNS else ()

    problems = _required(head, tuple(head), head_path)
    lines = values.get("lines") or []
    if not lines:
        problems.append(FieldProblem(("lines",), "an order needs at least one line"))
    parsed: list[rows_.OrderLineRow] = []
    for i, line in enumerate(lines):
        def path(c: Optional[str], i: int = i) -> Path:
            return ("lines", i, c) if c in _LINE_COLUMNS else head_path(c)
        given = {**head, **{c: line[c] for c in _LINE_COLUMNS if line.get(c) is not None}}
        given.setdefault("is_return", False)
        missing = _required(given, ("sku", "quantity", "unit_price"), path)
        row, bad = _parse("orders.csv", rows_.order_line_row, given, path) if not missing else (None, [])
        problems += missing + bad
        if row is not None:
            parsed.append(row)
    _check(problems)
    external_id = head["order_external_id"]
    with es.writer_transaction(engine) as conn:
        cid = _id_of(conn, customers_t, "external_id", head["customer_external_id"], ("customer_external_id",),
                     "customer")
        products = _products(conn, [line.sku for line in parsed])
        new_lines = [(n + 1, products[l.sku][0], l.quantity, l.unit_price,
                      l.unit_cost if l.unit_cost is not None else products[l.sku][1], l.is_return)
                     for n, l in enumerate(parsed)]
        ordered_at = parsed[0].ordered_at
        stored = _row(conn, orders_t, external_id)
        if stored is not None:
            old_lines = [tuple(r) for r in conn.execute(
                sa.select(lines_t.c.line_no, lines_t.c.product_id, lines_t.c.quantity, lines_t.c.unit_price,
                          lines_t.c.unit_cost, lines_t.c.is_return)
                .where(lines_t.c.order_id == stored.id).order_by(lines_t.c.line_no))]
            differences = _differences(stored, {"customer_id": cid, "ordered_at": ordered_at})
            if "customer_id" in differences:
                differences["customer_external_id"] = (_external_of(conn, stored.customer_id),
                                                       head["customer_external_id"])
                del differences["customer_id"]
            if len(old_lines) != len(new_lines) or not all(
                    all(_same(a, b) for a, b in zip(x, y)) for x, y in zip(old_lines, new_lines)):
                differences["lines"] = (_describe(conn, old_lines), _describe(conn, new_lines))
            if differences:
                raise WriteConflict("order", external_id, differences)
            return Written("order", stored, stored.customer_id, False)
        totals = order_totals([(q, p, c) for _, _, q, p, c, _ in new_lines])
        oid = conn.execute(orders_t.insert().values(external_id=external_id, customer_id=cid, ordered_at=ordered_at,
                                                    **totals).returning(orders_t.c.id)).scalar_one()
        conn.execute(lines_t.insert(), [{"order_id": oid, "customer_id": cid, "line_no": n, "product_id": p,
                                         "quantity": q, "unit_price": up, "unit_cost": uc, "is_return": ret}
                                        for n, p, q, up, uc, ret in new_lines])
        states = _reevaluate(conn, {cid}, "order", external_id, rules, ordered_at)
        written = Written("order", _row(conn, orders_t, external_id), cid, True, states)
    return written  # committed; writer_transaction has told the subscribers


def _products(conn: Connection, skus: list[str]) -> dict[str, tuple[int, Optional[float]]]:
    """sku -> (product id, unit cost); unknown skus become products named by their sku, cost unknown."""
    wanted = sorted(set(skus))
    known = {r.sku: (r.id, r.unit_cost) for r in conn.execute(
        sa.select(products_t.c.sku, products_t.c.id, products_t.c.unit_cost).where(products_t.c.sku.in_(wanted)))}
    for sku in wanted:
        if sku not in known:
            pid = conn.execute(products_t.insert().values(sku=sku, name=sku, unit_cost=None, seasonal=False)
                               .returning(products_t.c.id)).scalar_one()
            known[sku] = (pid, None)
    return known


def _describe(conn: Connection, lines: list[tuple]) -> list[dict[str, Any]]:
    skus = dict(conn.execute(sa.select(products_t.c.id, products_t.c.sku)
                             .where(products_t.c.id.in_(sorted({l[1] for l in lines})))).all())
    return [{"sku": skus.get(p), "quantity": q, "unit_price": up, "unit_cost": uc, "is_return": ret}
            for _, p, q, up, uc, ret in lines]


def _external_of(conn: Connection, customer_id: int) -> str:
    return conn.execute(sa.select(customers_t.c.external_id).where(customers_t.c.id == customer_id)).scalar_one()


# ---- complaints ----

_COMPLAINT_COLUMNS = ("external_id", "customer_external_id", "order_external_id", "opened_at", "due_at",
                      "resolved_at", "category", "cost")


def record_complaint(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> Written:
    """Store a complaint (values: external_id, customer_external_id, opened_at, order_external_id?, due_at?,
    resolved_at?, category?, cost?). Retry: the same complaint again is a no-op; other content under the same
    external id is a CONFLICT, except the resolution date, which resolve_complaint sets."""
    given = {c: values.get(c) for c in _COMPLAINT_COLUMNS}
    _check(_required(given, ("external_id", "customer_external_id", "opened_at")))
    row, problems = _parse("complaints.csv", rows_.complaint_row, given, _plain)
    _check(problems)
    with es.writer_transaction(engine) as conn:
        cid = _id_of(conn, customers_t, "external_id", row.customer, ("customer_external_id",), "customer")
        oid = _order_of(conn, row.order, cid) if row.order else None
        record = {"customer_id": cid, "order_id": oid, "opened_at": row.opened_at, "due_at": row.due_at,
                  "resolved_at": row.resolved_at, "category": row.category, "cost": row.cost}
        stored = _row(conn, complaints_t, row.external_id)
        if stored is not None:
            differences = _differences(stored, record)
            if stored.resolved_at is not None and row.resolved_at is None:
                differences.pop("resolved_at", None)  # a retry of the first report of a since-resolved complaint
            if differences:
                raise WriteConflict("complaint", row.external_id, differences)
            return Written("complaint", stored, cid, False)
        conn.execute(complaints_t.insert().values(external_id=row.external_id, **record))
        states = _reevaluate(conn, {cid}, "complaint", row.external_id, rules, row.opened_at, row.resolved_at)
        written = Written("complaint", _row(conn, complaints_t, row.external_id), cid, True, states)
    return written  # committed; writer_transaction has told the subscribers


def resolve_complaint(engine: Engine, external_id: str, resolved_on: date, *, rules: Rules = None) -> Written:
    """Set a complaint's resolution date. An update by design: resolving again on the same day is a no-op, on
    another day corrects the date. The date may not be before the complaint was opened."""
    _check(_required({"external_id": external_id, "resolved_at": resolved_on}, ("external_id", "resolved_at")))
    with es.writer_transaction(engine) as conn:
        stored = _row(conn, complaints_t, external_id)
        if stored is None:
            raise BadInput([FieldProblem(("external_id",), f"unknown complaint '{external_id}'")])
        _, problems = _parse("complaints.csv", rows_.complaint_row, {
            "external_id": external_id, "customer_external_id": "-", "opened_at": stored.opened_at,
            "resolved_at": resolved_on}, _plain)
        _check(problems)
        if stored.resolved_at == resolved_on:
            return Written("complaint", stored, stored.customer_id, False)
        conn.execute(complaints_t.update().where(complaints_t.c.id == stored.id).values(resolved_at=resolved_on))
        states = _reevaluate(conn, {stored.customer_id}, "complaint", external_id, rules, resolved_on)
        written = Written("complaint", _row(conn, complaints_t, external_id), stored.customer_id, True, states)
    return written  # committed; writer_transaction has told the subscribers


def _order_of(conn: Connection, order_external_id: str, customer_id: Optional[int]) -> int:
    found = conn.execute(sa.select(orders_t.c.id, orders_t.c.customer_id)
                         .where(orders_t.c.external_id == order_external_id)).first()
    if found is None:
        raise BadInput([FieldProblem(("order_external_id",), f"unknown order '{order_external_id}'")])
    if customer_id is not None and found.customer_id != customer_id:
        raise BadInput([FieldProblem(("order_external_id",),
                                     f"order '{order_external_id}' belongs to another customer")])
    return found.id


# ---- deliveries ----

_DELIVERY_FACTS = ("order_id", "promised_at")  # fixed once stored
_DELIVERY_OUTCOME = ("delivered_at", "delay_reason", "cost")  # may be reported later: an update


def record_delivery(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> Written:
    """Store a delivery (values: external_id, order_external_id, promised_at, delivered_at?, delay_reason?, cost?).
    Retry: the same delivery again is a no-op; another order or promised date under the same external id is a
    CONFLICT. The outcome (delivered_at, delay_reason, cost) is an update by design: record the delivery when it
    is promised, then again with the day it arrived; an outcome field left out keeps its stored value."""
    given = {c: values.get(c) for c in ("external_id", "order_external_id", "promised_at", *_DELIVERY_OUTCOME)}
    _check(_required(given, ("external_id", "order_external_id", "promised_at")))
    row, problems = _parse("deliveries.csv", rows_.delivery_row, given, _plain)
    _check(problems)
    with es.writer_transaction(engine) as conn:
        owner = conn.execute(sa.select(orders_t.c.id, orders_t.c.customer_id)
                             .where(orders_t.c.external_id == row.order)).first()
        if owner is None:
            raise BadInput([FieldProblem(("order_external_id",), f"unknown order '{row.order}'")])
        outcome = {c: getattr(row, c) for c in _DELIVERY_OUTCOME if values.get(c) is not None}
        stored = _row(conn, deliveries_t, row.external_id)
        if stored is not None:
            differences = _differences(stored, {"order_id": owner.id, "promised_at": row.promised_at})
            if "order_id" in differences:
                differences = {"order_external_id": (_order_external(conn, stored.order_id), row.order),
                               **{k: v for k, v in differences.items() if k != "order_id"}}
            if differences:
                raise WriteConflict("delivery", row.external_id, differences)
            if not _differences(stored, outcome):
                return Written("delivery", stored, stored.customer_id, False)
            conn.execute(deliveries_t.update().where(deliveries_t.c.id == stored.id).values(outcome))
        else:
            conn.execute(deliveries_t.insert().values(external_id=row.external_id, order_id=owner.id,
                                                      customer_id=owner.customer_id, promised_at=row.promised_at,
                                                      **outcome))
        states = _reevaluate(conn, {owner.customer_id}, "delivery", row.external_id, rules, row.promised_at,
                             row.delivered_at)
        written = Written("delivery", _row(conn, deliveries_t, row.external_id), owner.customer_id, True, states)
    return written  # committed; writer_transaction has told the subscribers


def _order_external(conn: Connection, order_id: int) -> str:
    return conn.execute(sa.select(orders_t.c.external_id).where(orders_t.c.id == order_id)).scalar_one()


# ---- interactions ----


def record_interaction(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> Written:
    """Store a call, visit, email or win-back attempt (values: external_id, customer_external_id, occurred_at,
    kind, rep_external_id?, cost?, note?). Retry: the same interaction again is a no-op; other content under the
    same external id is a CONFLICT."""
    given = {c: values.get(c) for c in ("external_id", "customer_external_id", "rep_external_id", "occurred_at",
                                         "kind", "cost", "note")}
    _check(_required(given, ("external_id", "customer_external_id", "occurred_at", "kind")))
    row, problems = _parse("interactions.csv", rows_.interaction_row, given, _plain)
    _check(problems)
    with es.writer_transaction(engine) as conn:
        cid = _id_of(conn, customers_t, "external_id", row.customer, ("customer_external_id",), "customer")
        rep = _id_of(conn, reps_t, "external_id", row.rep, ("rep_external_id",), "rep") if row.rep else None
        record = {"customer_id": cid, "rep_id": rep, "occurred_at": row.occurred_at, "kind": row.kind,
                  "cost": row.cost, "note": row.note}
        stored = _row(conn, interactions_t, row.external_id)
        if stored is not None:
            differences = _differences(stored, record)
            if differences:
                raise WriteConflict("interaction", row.external_id, differences)
            return Written("interaction", stored, cid, False)
        conn.execute(interactions_t.insert().values(external_id=row.external_id, **record))
        states = _reevaluate(conn, {cid}, "interaction", row.external_id, rules, row.occurred_at)
        written = Written("interaction", _row(conn, interactions_t, row.external_id), cid, True, states)
    return written  # committed; writer_transaction has told the subscribers


# ---- surveys ----

_SURVEY_COLUMNS = ("external_id", "customer_external_id", "answered_at", "kind", "score", "channel", "comment")


def record_survey(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> Written:
    """Store an NPS (score 0-10) or CSAT (1-5) answer (values: external_id, customer_external_id, answered_at,
    kind, score, channel?, comment?). Retry: the same answer again is a no-op; other content under the same
    external id is a CONFLICT (an answer is a fact)."""
    given = {c: values.get(c) for c in _SURVEY_COLUMNS}
    _check(_required(given, ("external_id", "customer_external_id", "answered_at", "kind", "score")))
    row, problems = _parse("surveys.csv", rows_.survey_row, given, _plain)
    _check(problems)
    with es.writer_transaction(engine) as conn:
        cid = _id_of(conn, customers_t, "external_id", row.customer, ("customer_external_id",), "customer")
        record = {"customer_id": cid, "answered_at": row.answered_at, "kind": row.kind, "score": row.score,
                  "channel": row.channel, "comment": row.comment}
        stored = _row(conn, surveys_t, row.external_id)
        if stored is not None:
            differences = _named(conn, _differences(stored, record))
            if differences:
                raise WriteConflict("survey", row.external_id, differences)
            return Written("survey", stored, cid, False)
        conn.execute(surveys_t.insert().values(external_id=row.external_id, **record))
        states = _reevaluate(conn, {cid}, "survey", row.external_id, rules, row.answered_at)
        written = Written("survey", _row(conn, surveys_t, row.external_id), cid, True, states)
    return written  # committed; writer_transaction has told the subscribers


def _named(conn: Connection, differences: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    """Differences in internal ids as the client's external ids (customer_id -> customer_external_id, ...)."""
    named = {}
    for key, (stored, given) in differences.items():
        table = {"customer_id": customers_t, "owner_rep_id": reps_t}.get(key)
        if table is None:
            named[key] = (stored, given)
            continue
        externals = dict(conn.execute(sa.select(table.c.id, table.c.external_id)
                                      .where(table.c.id.in_([x for x in (stored, given) if x is not None]))).all())
        named[key[:-3] + "_external_id"] = (externals.get(stored), externals.get(given))
    return named


# ---- opportunities ----

_DEAL_FACTS = ("external_id", "customer_external_id", "opened_at", "stage", "amount", "probability")
_DEAL_STATE = ("expected_close_on", "owner_rep_external_id", "closed_at", "outcome")  # optional


def record_opportunity(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> Written:
    """Store a deal or its new state (values: external_id, customer_external_id, opened_at, stage, amount,
    probability, expected_close_on?, owner_rep_external_id?, closed_at?, outcome?). An upsert by design: a deal
    moves through stages and closes, so the same external id with other content UPDATES it (the last write wins:
    send the deal's current state). An optional key left out keeps its stored value, one given as None clears it;
    outcome (won / lost) is required exactly when the deal is closed. Another customer under the same external id
    is a CONFLICT: a deal does not move between customers. The same state again is a no-op."""
    given = {c: values.get(c) for c in _DEAL_FACTS}
    given |= {c: values[c] for c in _DEAL_STATE if c in values}
    _check(_required(given, _DEAL_FACTS))
    row, problems = _parse("opportunities.csv", rows_.opportunity_row, given, _plain)
    _check(problems)
    with es.writer_transaction(engine) as conn:
        cid = _id_of(conn, customers_t, "external_id", row.customer, ("customer_external_id",), "customer")
        stored = _row(conn, opportunities_t, row.external_id)
        record: dict[str, Any] = {"customer_id": cid, "opened_at": row.opened_at, "stage": row.stage,
                                  "amount": row.amount, "probability": row.probability}
        for column in ("expected_close_on", "closed_at", "outcome"):
            if column in given or stored is None:
                record[column] = getattr(row, column)
        if "owner_rep_external_id" in given or stored is None:
            record["owner_rep_id"] = _id_of(conn, reps_t, "external_id", row.owner_rep, ("owner_rep_external_id",),
                                            "rep") if row.owner_rep else None
        if stored is not None and stored.customer_id != cid:
            raise WriteConflict("opportunity", row.external_id,
                                _named(conn, {"customer_id": (stored.customer_id, cid)}))
        # the new state with the stored one: closing a deal without its outcome is refused here too
        merged = {**(dict(stored._mapping) if stored is not None else {}), **record}
        reason = (rows_.not_before("closed_at", merged["closed_at"], "opened_at", merged["opened_at"])
                  or rows_.outcome_problem(merged["closed_at"], merged["outcome"]))
        if reason:
            raise BadInput([FieldProblem((rows_.BadValue(reason).column,), reason)])
        if stored is not None:
            record = {k: v for k, v in record.items() if not _same(stored._mapping[k], v)}
            if not record:
                return Written("opportunity", stored, cid, False)
            conn.execute(opportunities_t.update().where(opportunities_t.c.id == stored.id).values(record))
        else:
            conn.execute(opportunities_t.insert().values(external_id=row.external_id, **record))
        states = _reevaluate(conn, {cid}, "opportunity", row.external_id, rules, merged["opened_at"],
                             merged["closed_at"])
        written = Written("opportunity", _row(conn, opportunities_t, row.external_id), cid, True, states)
    return written  # committed; writer_transaction has told the subscribers


# ---- invoices ----

_INVOICE_COLUMNS = ("external_id", "customer_external_id", "issued_at", "due_at", "amount", "paid_at")


def record_invoice(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> Written:
    """Store an invoice (values: external_id, customer_external_id, issued_at, amount, due_at?, paid_at?). A new
    invoice without due_at is due its customer's payment_terms_days after issue (30 days when it has none).
    Retry: the same invoice again is a no-op; another customer, issue date, amount or due date under the same
    external id is a CONFLICT (due_at left out keeps the stored one). The payment is an update by design: record
    the invoice when issued, then again with paid_at (or use pay_invoice); paid_at left out keeps the stored
    payment."""
    given = {c: values.get(c) for c in _INVOICE_COLUMNS}
    _check(_required(given, ("external_id", "customer_external_id", "issued_at", "amount")))
    row, problems = _parse("invoices.csv", rows_.invoice_row, given, _plain)
    _check(problems)
    with es.writer_transaction(engine) as conn:
        cid = _id_of(conn, customers_t, "external_id", row.customer, ("customer_external_id",), "customer")
        facts: dict[str, Any] = {"customer_id": cid, "issued_at": row.issued_at, "amount": row.amount}
        if row.due_at is not None:
            facts["due_at"] = row.due_at
        payment = {"paid_at": row.paid_at} if row.paid_at is not None else {}
        stored = _row(conn, invoices_t, row.external_id)
        if stored is not None:
            differences = _named(conn, _differences(stored, facts))
            if differences:
                raise WriteConflict("invoice", row.external_id, differences)
            if not _differences(stored, payment):
                return Written("invoice", stored, cid, False)
            conn.execute(invoices_t.update().where(invoices_t.c.id == stored.id).values(payment))
        else:
            terms = conn.execute(sa.select(customers_t.c.payment_terms_days).where(customers_t.c.id == cid)).scalar()
            facts.setdefault("due_at", rows_.default_due(row.issued_at, terms))
            conn.execute(invoices_t.insert().values(external_id=row.external_id, **facts, **payment))
        states = _reevaluate(conn, {cid}, "invoice", row.external_id, rules, row.issued_at, row.paid_at)
        written = Written("invoice", _row(conn, invoices_t, row.external_id), cid, True, states)
    return written  # committed; writer_transaction has told the subscribers


def pay_invoice(engine: Engine, external_id: str, paid_on: date, *, rules: Rules = None) -> Written:
    """Record the day an invoice was paid in full. An update by design: paying again on the same day is a no-op,
    on another day corrects the date. The day may not be before the invoice was issued."""
    _check(_required({"external_id": external_id, "paid_at": paid_on}, ("external_id", "paid_at")))
    with es.writer_transaction(engine) as conn:
        stored = _row(conn, invoices_t, external_id)
        if stored is None:
            raise BadInput([FieldProblem(("external_id",), f"unknown invoice '{external_id}'")])
        _, problems = _parse("invoices.csv", rows_.invoice_row, {
            "external_id": external_id, "customer_external_id": "-", "issued_at": stored.issued_at,
            "amount": stored.amount, "paid_at": paid_on}, _plain)
        _check(problems)
        if stored.paid_at == paid_on:
            return Written("invoice", stored, stored.customer_id, False)
        conn.execute(invoices_t.update().where(invoices_t.c.id == stored.id).values(paid_at=paid_on))
        states = _reevaluate(conn, {stored.customer_id}, "invoice", external_id, rules, paid_on)
        written = Written("invoice", _row(conn, invoices_t, external_id), stored.customer_id, True, states)
    return written  # committed; writer_transaction has told the subscribers


# ---- customers ----

_CUSTOMER_COLUMNS = ("name", "region", "industry", "size", "owner_rep_external_id", "seasonal", "blocked_from",
                     "created_at", "parent_external_id", "referred_by_external_id", "payment_terms_days",
                     "credit_grade", "credit_limit", "consent", "consent_at")
_CUSTOMER_FIELDS = ("name", "region", "industry", "size", "seasonal", "blocked_from", "created_at",
                    "payment_terms_days", "credit_grade", "credit_limit", "consent", "consent_at")  # stored as given


def upsert_customer(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> Written:
    """Create a customer or change the fields given (values: external_id and any of name, region, industry,
    size, owner_rep_external_id, seasonal, blocked_from, created_at, parent_external_id,
    referred_by_external_id, payment_terms_days, credit_grade, credit_limit, consent, consent_at, attributes).
    An update by design: a key left out keeps its stored value, a key given as None clears it (name and
    created_at cannot be cleared; consent cleared is no consent); attributes merge, a None value removing
    that attribute. A new customer needs a name; its created_at defaults to the data's now. Giving the stored
    values again is a no-op."""
    external_id = values.get("external_id")
    given = {c: values[c] for c in _CUSTOMER_COLUMNS if c in values}
    attributes = values.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise BadInput([FieldProblem(("attributes",), "attributes must be an object of name: value")])
    problems = _required({"external_id": external_id}, ("external_id",))
    problems += [FieldProblem((c,), f"'{c}' cannot be cleared") for c in ("name", "created_at")
                 if c in given and given[c] is None]
    problems += [FieldProblem(("attributes", k), f"attribute value '{k}' must be text, a number or true/false")
                 for k, v in attributes.items() if isinstance(v, (dict, list))]
    _check(problems)
    row, problems = _parse("customers.csv", rows_.customer_row, {"external_id": external_id, "name": "-",
                                                                  **given}, _plain)
    _check(problems)
    with es.writer_transaction(engine) as conn:
        stored = _row(conn, customers_t, external_id)
        if stored is None and given.get("name") is None:
            raise BadInput([FieldProblem(("name",), "a new customer needs a name")])
        changes: dict[str, Any] = {c: getattr(row, c) for c in _CUSTOMER_FIELDS if c in given}
        if "owner_rep_external_id" in given:
            changes["owner_rep_id"] = _id_of(conn, reps_t, "external_id", row.owner_rep, ("owner_rep_external_id",),
                                             "rep") if row.owner_rep else None
        for column, ref, source in (("parent_id", row.parent, "parent_external_id"),
                                    ("referred_by_id", row.referred_by, "referred_by_external_id")):
            if source not in given:
                continue
            if ref == external_id:
                raise BadInput([FieldProblem((source,), f"a customer cannot be its own "
                                                        f"{column[:-3].replace('_', ' ')}")])
            changes[column] = _id_of(conn, customers_t, "external_id", ref, (source,), "customer") if ref else None
        merged = dict(stored.attributes or {}) if stored is not None else {}
        for k, v in attributes.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[str(k)] = v
        if attributes:
            changes["attributes"] = merged
        if stored is None:
            changes.setdefault("created_at", live.live_as_of(conn))
            changes.setdefault("attributes", merged)
            cid = conn.execute(customers_t.insert().values(external_id=external_id, **changes)
                               .returning(customers_t.c.id)).scalar_one()
            before: set[int] = set()
        else:
            cid = stored.id
            changes = {k: v for k, v in changes.items() if not _same(stored._mapping[k], v)}
            if not changes:
                return Written("customer", stored, cid, False)
            before = {x for x in (stored.parent_id, stored.referred_by_id) if x is not None}
        if "parent_id" in changes and changes["parent_id"] is not None and _makes_cycle(conn, cid, changes["parent_id"]):
            raise BadInput([FieldProblem(("parent_external_id",), "the parent makes a cycle in the company hierarchy")])
        if stored is not None:
            conn.execute(customers_t.update().where(customers_t.c.id == cid).values(changes))
        # the old parent / referrer lose this customer's revenue from their roll-ups: they are re-evaluated too
        states = _reevaluate(conn, {cid} | before, "customer", external_id, rules,
                             changes.get("created_at") if stored is None else None)
        written = Written("customer", _row(conn, customers_t, external_id), cid, True, states)
    return written  # committed; writer_transaction has told the subscribers


def _makes_cycle(conn: Connection, cid: int, parent: int) -> bool:
    node: Optional[int] = parent
    seen: set[int] = set()
    while node is not None and node not in seen:
        if node == cid:
            return True
        seen.add(node)
        node = conn.execute(sa.select(customers_t.c.parent_id).where(customers_t.c.id == node)).scalar()
    return False
