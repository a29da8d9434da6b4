"""Privacy law's two requests about one customer: export what is held about it, and erase what identifies it.

`PERSONAL_FIELDS` is the one declaration of every column holding personal data and what erasing makes of it;
`NOT_PERSONAL` says why each other text / JSON column is not personal (tests/domain/test_privacy.py fails on a column
in neither, so a new column must be classified). Numbers, dates and flags are never personal here: once the name,
the ids and the free text are gone they describe no one, and they are what tiers, scores and loss history are
computed from.

- `export_customer(engine, customer)`: the customer's row and every row of every table with a `customer_id`
  column (found from the metadata, so a new table is exported without a change here), with the products its order
  lines name; plus an audit row (action "export", the row counts) in the same transaction.
- `erase_customer(engine, customer, by)`: in one writer transaction, every personal field of the customer becomes
  an anonymous value (name "Erased customer <id>", external id "erased-<id>", attributes {}, free text NULL), its
  copies elsewhere too (the loss history's reasons, the change log's cause id), `erased_at` is set, and an audit
  row (action "erase", counts only) is written. Nothing is re-evaluated: the stored tier, status, scores and loss
  history stay as they were. Erasing an erased customer changes nothing (`changed` False, no audit row).

The customer is its row id (int) or its external id (str). docs/privacy.md says the same for users.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Optional, Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from domain import evaluation_state as es
from domain.faults import crash_point
from domain.models import Customer, PrivacyAudit, Product, utcnow
from domain.writes import BadInput, FieldProblem

__all__ = ["Personal", "PERSONAL_FIELDS", "NOT_PERSONAL", "CustomerNotFound", "ErasedIdTaken", "Erased", "customer_tables",
           "export_customer", "erase_customer"]

customers_t = Customer.__table__
audit_t = PrivacyAudit.__table__
products_t = Product.__table__

CustomerRef = Union[str, int]  # the customer's external id, or its row id
EXPORT, ERASE = "export", "erase"
MAX_BY = 200


def _null(_customer_id: int) -> Any:
    return None


def _erased_name(customer_id: int) -> str:
    return f"Erased customer {customer_id}"


def _erased_external_id(customer_id: int) -> str:
    return f"erased-{customer_id}"


def _no_attributes(_customer_id: int) -> dict:
    return {}


@dataclass(frozen=True)
class Personal:
    """A personal column: why it is personal, and the anonymous value erasing writes (from the customer's row id).

    `copy_of`: the column holds a copy of this customers column, in rows of any customer (erased where it equals
    the erased customer's value); `only_when`: (column, value) the rows must also have."""

    why: str
    erased_as: Callable[[int], Any] = _null
    copy_of: Optional[str] = None
    only_when: Optional[tuple[str, str]] = None


PERSONAL_FIELDS: dict[str, dict[str, Personal]] = {
    "customers": {
        "name": Personal("names the person (or the company, which may be a sole trader)", _erased_name),
        "external_id": Personal("the id in the CRM: links back to the person there", _erased_external_id),
        "attributes": Personal("custom attributes can hold anything: e-mail, phone, birthday", _no_attributes),
    },
    "interactions": {"note": Personal("free text about a call or visit with the person")},
    "surveys": {"comment": Personal("free text the person wrote")},
    "loss_marks": {"text": Personal("free text: why the person was lost, or how it came back")},
    "loss_episodes": {
        "reason": Personal("a copy of a lost mark's text (loss_marks.text)"),
        "reactivation_note": Personal("a copy of a reactivation mark's text (loss_marks.text)"),
    },
    "tier_changes": {
        # a customer write re-evaluates its parent and referrer too, so the copy can sit on their changes
        "cause_record_external_id": Personal("the customer's CRM id, copied when a write of the customer caused a "
                                             "change", _erased_external_id, copy_of="external_id",
                                             only_when=("cause_record_kind", "customer")),
    },
}

_RECORD_ID = ("the business's own number of the record, not the person's: kept for the books and so a later import "
              "of the same record updates it instead of adding it again")
_CATEGORY = "a value from a short list shared by many customers; read by rules and statistics"
_DERIVED = "derived by the rules or the value models from numbers and dates; names no one"
_STAFF = "who on the staff did it: not the customer's data"

NOT_PERSONAL: dict[str, dict[str, str]] = {
    "customers": {"region": _CATEGORY, "industry": _CATEGORY, "size": _CATEGORY,
                  "credit_grade": _CATEGORY + " (a grade such as A..E)"},
    "orders": {"external_id": _RECORD_ID},
    "complaints": {"external_id": _RECORD_ID, "category": _CATEGORY},
    "deliveries": {"external_id": _RECORD_ID, "delay_reason": _CATEGORY + " (carrier delay, customs, ...)"},
    "interactions": {"external_id": _RECORD_ID, "kind": _CATEGORY},
    "surveys": {"external_id": _RECORD_ID, "kind": _CATEGORY, "channel": _CATEGORY},
    "opportunities": {"external_id": _RECORD_ID, "stage": _CATEGORY, "outcome": _CATEGORY},
    "invoices": {"external_id": _RECORD_ID},
    "customer_evaluations": {"tier": _DERIVED, "status": _DERIVED, "tags": _DERIVED, "metrics": _DERIVED},
    "customer_scores": {"rfm_cell": _DERIVED},
    "tier_changes": {"kind": _CATEGORY, "old_value": _DERIVED, "new_value": _DERIVED, "cause": _CATEGORY,
                     "cause_record_kind": _CATEGORY, "rule_text": "a line of the rule text, written by the business",
                     "metrics": _DERIVED},
    "loss_marks": {"kind": _CATEGORY, "recorded_by": _STAFF},
    "loss_episodes": {"how": _CATEGORY, "end_kind": _CATEGORY},
    "privacy_audit": {"action": _CATEGORY, "done_by": _STAFF, "detail": "row and value counts only"},
    # tables without customer_id: nothing in them is about one customer
    "sales_reps": {name: "an employee, not a customer: outside a customer's export and erasure"
                   for name in ("external_id", "name", "email", "region")},
    "products": {"sku": "the catalogue", "name": "the catalogue", "category": "the catalogue"},
    "rule_sets": {"name": "the rules", "source": "the rules", "checksum": "the rules", "published_by": _STAFF},
    "evaluation_runs": {"rules_checksum": "the rules", "cutoffs": "rank cut-offs over the whole base"},
    "value_runs": {"model": "the model's name", "fit": "the fitted model's parameters over the whole base"},
    "loss_history_state": {"rules_checksum": "the rules"},
    "jobs": {"kind": _CATEGORY, "state": _CATEGORY, "slot": _CATEGORY, "requested_by": _STAFF,
             "error": "why a whole-base run failed"},
    # webhook payloads are built from tier_changes and customers when sent (domain.webhooks), never stored
    "webhook_endpoints": {"url": "an integrator's endpoint", "secret": "an integrator's secret",
                          "kinds": _CATEGORY, "last_error": "the endpoint's last HTTP error"},
}


class CustomerNotFound(LookupError):
    """No customer has the given id; nothing was written."""


class ErasedIdTaken(Exception):
    """Another customer already has the external id erasure would give (`erased-<n>`); nothing was written."""


@dataclass(frozen=True)
class Erased:
    customer: Any  # the customer's row as it is now (anonymised)
    changed: bool  # False: the customer was already erased; nothing was written
    erased_at: datetime
    erased: dict[str, int] = field(default_factory=dict)  # "table.column" -> values replaced
    kept: dict[str, int] = field(default_factory=dict)  # table -> the customer's rows kept, anonymised


def customer_tables() -> list[sa.Table]:
    """Every table holding rows of one customer (a `customer_id` column), by name: read from the metadata, so a new
    table is exported and counted without a change here."""
    return sorted((t for t in SQLModel.metadata.tables.values() if "customer_id" in t.c), key=lambda t: t.name)


# ---- export ----


def export_customer(engine: Engine, customer: CustomerRef, *, by: Optional[str] = None) -> dict[str, Any]:
    """Everything held about the customer, JSON-ready (dates ISO, datetimes ISO in UTC); the audit row with the
    row counts is written in the same transaction, so no export goes unrecorded."""
    _check_by(by)
    with es.writer_transaction(engine) as conn:  # one consistent snapshot: no writer changes it meanwhile
        row = _customer(conn, customer)
        records = {t.name: [_json_row(r) for r in conn.execute(
            sa.select(t).where(t.c.customer_id == row.id).order_by(*_order(t)))] for t in customer_tables()}
        product_ids = sorted({line["product_id"] for line in records.get("order_lines", [])})
        products = [_json_row(r) for r in conn.execute(
            sa.select(products_t).where(products_t.c.id.in_(product_ids)).order_by(products_t.c.id))]
        counts = {"customers": 1, **{name: len(rows) for name, rows in records.items()}}
        _audit(conn, row.id, EXPORT, by, {"rows": counts})
    return {"customer": _json_row(row), "records": records, "products": products,
            "exported_at": _json_value(utcnow())}


def _order(t: sa.Table) -> list[sa.Column]:
    return list(t.primary_key.columns) or [t.c.customer_id]


def _json_row(row: Any) -> dict[str, Any]:
    return {k: _json_value(v) for k, v in row._mapping.items()}


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).isoformat()  # stored as UTC without an offset
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


# ---- erase ----


def erase_customer(engine: Engine, customer: CustomerRef, by: str) -> Erased:
    """Replace the customer's personal fields (and their copies) with anonymous values, keep every record, write
    the audit row; one writer transaction. Already erased: a no-op with `changed` False."""
    _check_by(by, required=True)
    with es.writer_transaction(engine) as conn:
        row = _customer(conn, customer)
        if row.erased_at is not None:
            return Erased(row, False, _utc(row.erased_at))
        anonymous_id = _erased_external_id(row.id)
        if conn.execute(sa.select(customers_t.c.id).where(customers_t.c.external_id == anonymous_id)).first():
            raise ErasedIdTaken(f"another customer already has the external id {anonymous_id!r} that erasing "
                                f"customer {row.external_id!r} would give it; rename that one first")
        erased = {f"{table}.{column}": _erase_column(conn, table, column, personal, row)
                  for table, columns in PERSONAL_FIELDS.items() for column, personal in columns.items()}
        now = utcnow()
        conn.execute(customers_t.update().where(customers_t.c.id == row.id).values(erased_at=now))
        kept = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)
                                     .where(t.c.customer_id == row.id)).scalar_one()
                for t in customer_tables() if t is not audit_t}
        _audit(conn, row.id, ERASE, by, {"erased": erased, "kept": kept})
        anonymous = _customer(conn, row.id)
        crash_point("write:before_commit")  # like every write: a process killed here has erased nothing
    return Erased(anonymous, True, now, erased, kept)


def _erase_column(conn: Connection, table: str, column: str, personal: Personal, customer: Any) -> int:
    """How many values were replaced."""
    t = SQLModel.metadata.tables[table]
    if personal.copy_of is not None:
        where = [t.c[column] == customer._mapping[personal.copy_of]]
    else:
        where = [(t.c.id if t is customers_t else t.c.customer_id) == customer.id, t.c[column].is_not(None)]
    if personal.only_when is not None:
        where.append(t.c[personal.only_when[0]] == personal.only_when[1])
    return conn.execute(t.update().where(*where).values({column: personal.erased_as(customer.id)})).rowcount


# ---- shared ----


def _customer(conn: Connection, customer: CustomerRef) -> Any:
    key = customers_t.c.id if isinstance(customer, int) else customers_t.c.external_id
    row = conn.execute(sa.select(customers_t).where(key == customer)).first()
    if row is None:
        raise CustomerNotFound(f"no customer has the id {customer!r}")
    return row


def _check_by(by: Optional[str], *, required: bool = False) -> None:
    if required and not (by or "").strip():
        raise BadInput([FieldProblem(("by",), "'by' is required: the audit record says who erased the customer")])
    if by is not None and len(by) > MAX_BY:
        raise BadInput([FieldProblem(("by",), f"'by' is {len(by)} characters long; at most {MAX_BY}")])


def _audit(conn: Connection, customer_id: int, action: str, by: Optional[str], detail: dict[str, Any]) -> None:
    conn.execute(audit_t.insert().values(customer_id=customer_id, action=action, done_at=utcnow(), done_by=by,
                                         detail=detail))


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
