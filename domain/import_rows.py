"""Reading and validating the import CSVs into typed rows; nothing here touches the database.

Every problem is collected with its file, line and reason so the user sees all of them at once.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterator

TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f", ""}
MAX_REPORTED_PROBLEMS = 50


@dataclass(frozen=True)
class RowProblem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.reason}"


class ImportFailed(Exception):
    """The import was rejected; nothing was written. `problems` lists every bad row found."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:MAX_REPORTED_PROBLEMS])
        more = len(problems) - MAX_REPORTED_PROBLEMS
        extra = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"import rejected, nothing was written ({len(problems)} problem(s)):\n{shown}{extra}")


# Other spellings of a column seen in CRM exports -> the name Tiergraph reads, per file (headers are matched
# case-insensitively; a file's own canonical column always wins over an alias).
ALIASES: dict[str, dict[str, str]] = {
    "reps.csv": {"rep_id": "external_id", "id": "external_id"},
    "customers.csv": {"customer_id": "external_id", "id": "external_id", "owner_rep": "owner_rep_external_id",
                      "owner": "owner_rep_external_id", "account_owner": "owner_rep_external_id",
                      "parent": "parent_external_id", "parent_id": "parent_external_id",
                      "referred_by": "referred_by_external_id", "referrer": "referred_by_external_id",
                      "blocked_on": "blocked_from", "created": "created_at", "created_on": "created_at"},
    "products.csv": {"product_id": "sku", "cost": "unit_cost"},
    "orders.csv": {"order_id": "order_external_id", "customer_id": "customer_external_id",
                   "order_date": "ordered_at", "date": "ordered_at", "product_id": "sku", "qty": "quantity",
                   "price": "unit_price", "cost": "unit_cost", "return": "is_return"},
    "complaints.csv": {"complaint_id": "external_id", "customer_id": "customer_external_id",
                       "order_id": "order_external_id", "opened": "opened_at", "opened_on": "opened_at",
                       "due": "due_at", "resolved": "resolved_at"},
    "deliveries.csv": {"delivery_id": "external_id", "order_id": "order_external_id", "promised": "promised_at",
                       "delivered": "delivered_at", "actual_at": "delivered_at"},
    "interactions.csv": {"interaction_id": "external_id", "customer_id": "customer_external_id",
                         "rep_id": "rep_external_id", "rep": "rep_external_id", "date": "occurred_at",
                         "occurred": "occurred_at", "type": "kind"},
}


def _canonical(header: list[str], file: str) -> list[str]:
    """Lower-cased header with this file's aliases renamed, unless the canonical name is already there."""
    aliases = ALIASES.get(file, {})
    # custom attributes keep the case of their name: `attr.Segment` is read by rules as attributes.Segment
    lowered = ["attr." + h[5:] if h.lower().startswith("attr.") else h.lower() for h in header]
    present = set(lowered)
    out = []
    for h in lowered:
        target = aliases.get(h)
        if target and target not in present:
            out.append(target)
            present.add(target)
        else:
            out.append(h)
    return out


class _BadValue(ValueError):
    pass


@dataclass
class Row:
    """One CSV record with typed accessors that raise a readable reason."""

    values: dict[str, str]
    line: int

    def text(self, column: str, *, required: bool = False) -> str | None:
        raw = (self.values.get(column) or "").strip()
        if not raw:
            if required:
                raise _BadValue(f"'{column}' is empty")
            return None
        return raw

    def day(self, column: str, *, required: bool = False) -> date | None:
        raw = self.text(column, required=required)
        if raw is None:
            return None
        try:
            if len(raw) == 10:
                return datetime.strptime(raw, "%Y-%m-%d").date()
            if len(raw) > 10 and raw[10] in "T ":
                # exports often carry a time: the business day is the date as written (no time-zone shift)
                return datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
        except ValueError:
            pass
        raise _BadValue(f"'{column}' is not a date in YYYY-MM-DD form: {raw!r}")

    def number(self, column: str, *, required: bool = False) -> float | None:
        raw = self.text(column, required=required)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise _BadValue(f"'{column}' is not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise _BadValue(f"'{column}' is not a finite number: {raw!r}")
        return value

    def flag(self, column: str) -> bool:
        raw = (self.values.get(column) or "").strip().lower()
        if raw in TRUE_WORDS:
            return True
        if raw in FALSE_WORDS:
            return False
        raise _BadValue(f"'{column}' must be true or false, got {raw!r}")


@dataclass
class CsvFile:
    """Reads one CSV, checking the header for required columns before any row."""

    path: Path
    required: tuple[str, ...]
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def rows(self) -> Iterator[Row]:
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = _canonical([h.strip() for h in (reader.fieldnames or [])], self.name)
            missing = [c for c in self.required if c not in header]
            if missing:
                self.problems.append(RowProblem(self.name, 1, f"missing required column(s): {', '.join(missing)}"))
                return
            reader.fieldnames = header
            line = 1
            for values in reader:
                line = reader.line_num  # physical line where this record ends (quoted fields may span lines)
                if None in values:
                    self.problems.append(RowProblem(self.name, line, "more fields than the header has columns"))
                    continue
                yield Row(values, line)

    def parse(self, build: Callable[[Row], Any]) -> list[Any]:
        """Applies `build` to every row, turning its ValueErrors into problems for that line."""
        parsed = []
        for row in self.rows():
            try:
                parsed.append(build(row))
            except _BadValue as exc:
                self.problems.append(RowProblem(self.name, row.line, str(exc)))
        return parsed


# ---- typed rows, one per file ----


@dataclass
class RepRow:
    line: int
    external_id: str
    name: str
    email: str | None
    region: str | None


@dataclass
class CustomerRow:
    line: int
    external_id: str
    name: str
    region: str | None
    industry: str | None
    size: str | None
    owner_rep: str | None
    seasonal: bool
    blocked_from: date | None
    created_at: date | None
    parent: str | None
    referred_by: str | None
    attributes: dict[str, str]


@dataclass
class ProductRow:
    line: int
    sku: str
    name: str
    unit_cost: float | None
    seasonal: bool


@dataclass
class OrderLineRow:
    line: int
    order: str
    customer: str
    ordered_at: date
    sku: str
    quantity: float
    unit_price: float
    unit_cost: float | None
    is_return: bool


@dataclass
class ComplaintRow:
    line: int
    external_id: str
    customer: str
    order: str | None
    opened_at: date
    due_at: date | None
    resolved_at: date | None
    category: str | None
    cost: float


@dataclass
class DeliveryRow:
    line: int
    external_id: str
    order: str
    promised_at: date
    delivered_at: date | None
    delay_reason: str | None
    cost: float | None


@dataclass
class InteractionRow:
    line: int
    external_id: str
    customer: str
    rep: str | None
    occurred_at: date
    kind: str
    cost: float
    note: str | None


def rep_row(r: Row) -> RepRow:
    return RepRow(r.line, r.text("external_id", required=True), r.text("name", required=True),
                  r.text("email"), r.text("region"))


def customer_row(r: Row) -> CustomerRow:
    attributes = {k[5:]: v.strip() for k, v in r.values.items() if k.startswith("attr.") and v and v.strip()}
    return CustomerRow(
        r.line, r.text("external_id", required=True), r.text("name", required=True), r.text("region"),
        r.text("industry"), r.text("size"), r.text("owner_rep_external_id"), r.flag("seasonal"),
        r.day("blocked_from"), r.day("created_at"), r.text("parent_external_id"),
        r.text("referred_by_external_id"), attributes,
    )


def product_row(r: Row) -> ProductRow:
    cost = r.number("unit_cost")
    if cost is not None and cost < 0:
        raise _BadValue(f"'unit_cost' must not be negative: {cost}")
    return ProductRow(r.line, r.text("sku", required=True), r.text("name", required=True), cost, r.flag("seasonal"))


def order_line_row(r: Row) -> OrderLineRow:
    quantity = r.number("quantity", required=True)
    is_return = r.flag("is_return")
    if quantity < 0 and not is_return:
        raise _BadValue(f"negative quantity {quantity:g} on a line that is not a return (set is_return=true)")
    if quantity > 0 and is_return:
        raise _BadValue(f"a return line needs a negative quantity, got {quantity:g}")
    price = r.number("unit_price", required=True)
    if price < 0:
        raise _BadValue(f"'unit_price' must not be negative: {price:g}")
    cost = r.number("unit_cost")
    if cost is not None and cost < 0:
        raise _BadValue(f"'unit_cost' must not be negative: {cost:g}")
    return OrderLineRow(r.line, r.text("order_external_id", required=True),
                        r.text("customer_external_id", required=True), r.day("ordered_at", required=True),
                        r.text("sku", required=True), quantity, price, cost, is_return)


def complaint_row(r: Row) -> ComplaintRow:
    opened = r.day("opened_at", required=True)
    resolved = r.day("resolved_at")
    if resolved is not None and resolved < opened:
        raise _BadValue(f"'resolved_at' {resolved} is before 'opened_at' {opened}")
    cost = r.number("cost") or 0.0
    if cost < 0:
        raise _BadValue(f"'cost' must not be negative: {cost:g}")
    return ComplaintRow(r.line, r.text("external_id", required=True), r.text("customer_external_id", required=True),
                        r.text("order_external_id"), opened, r.day("due_at"), resolved, r.text("category"), cost)


def delivery_row(r: Row) -> DeliveryRow:
    cost = r.number("cost")
    if cost is not None and cost < 0:
        raise _BadValue(f"'cost' must not be negative: {cost:g}")
    return DeliveryRow(r.line, r.text("external_id", required=True), r.text("order_external_id", required=True),
                       r.day("promised_at", required=True), r.day("delivered_at"), r.text("delay_reason"), cost)


def interaction_row(r: Row) -> InteractionRow:
    cost = r.number("cost") or 0.0
    if cost < 0:
        raise _BadValue(f"'cost' must not be negative: {cost:g}")
    return InteractionRow(r.line, r.text("external_id", required=True), r.text("customer_external_id", required=True),
                          r.text("rep_external_id"), r.day("occurred_at", required=True), r.text("kind", required=True),
                          cost, r.text("note"))


# file name -> (required columns, row builder)
FILES: dict[str, tuple[tuple[str, ...], Callable[[Row], Any]]] = {
    "reps.csv": (("external_id", "name"), rep_row),
    "customers.csv": (("external_id", "name"), customer_row),
    "products.csv": (("sku", "name"), product_row),
    "orders.csv": (("order_external_id", "customer_external_id", "ordered_at", "sku", "quantity", "unit_price"),
                   order_line_row),
    "complaints.csv": (("external_id", "customer_external_id", "opened_at"), complaint_row),
    "deliveries.csv": (("external_id", "order_external_id", "promised_at"), delivery_row),
    "interactions.csv": (("external_id", "customer_external_id", "occurred_at", "kind"), interaction_row),
}
