"""Reading and validating the import CSVs into typed rows; nothing here touches the database.

Every problem is collected with its file, line and reason so the user sees all of them at once. A file is read
strictly: it must be UTF-8, every record on one line ending in a line break, every row as wide as the header,
and every value within the bounds below. Anything else is reported, never guessed at (a guess is how a stray
quote once swallowed 2,356 customers into one name).
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Container, Iterator

from domain.data_date import FIRST_DAY, LAST_DAY
from domain.models import (Complaint, Customer, Delivery, Interaction, Invoice, Opportunity, Order, Product, SalesRep,
                           Survey)

TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f", ""}
MAX_REPORTED_PROBLEMS = 50
# Sane bounds: beyond them a value is a typo or a corrupt file, and an amount built from it could overflow.
MAX_AMOUNT = 1e12  # money: prices, costs, and a line's quantity x price
MAX_QUANTITY = 1e9
MAX_TEXT = 10_000  # free text without a column length (notes, custom attributes)
MAX_TERMS_DAYS = 3650  # payment terms beyond ten years are a typo (and would not fit a date far ahead)
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MULTILINE_COLUMNS = {"note", "comment"}  # the free-text columns whose quoted value may hold a line break
SURVEY_SCALES = {"nps": (0.0, 10.0), "csat": (1.0, 5.0)}  # the scores each kind of survey answer may have
OUTCOMES = {"won": None, "lost": None}  # how a closed deal ended (a dict: its words in this order in messages)


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
# case-insensitively). Two columns that mean the same thing are an error: which one would be meant is a guess.
ALIASES: dict[str, dict[str, str]] = {
    "reps.csv": {"rep_id": "external_id", "id": "external_id"},
    "customers.csv": {"customer_id": "external_id", "id": "external_id", "owner_rep": "owner_rep_external_id",
                      "owner": "owner_rep_external_id", "account_owner": "owner_rep_external_id",
                      "parent": "parent_external_id", "parent_id": "parent_external_id",
                      "referred_by": "referred_by_external_id", "referrer": "referred_by_external_id",
                      "blocked_on": "blocked_from", "created": "created_at", "created_on": "created_at",
                      "payment_terms": "payment_terms_days", "terms_days": "payment_terms_days",
                      "credit_rating": "credit_grade", "consent_date": "consent_at", "consent_on": "consent_at"},
    "products.csv": {"product_id": "sku", "cost": "unit_cost", "product_category": "category"},
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
    "surveys.csv": {"survey_id": "external_id", "response_id": "external_id", "customer_id": "customer_external_id",
                    "date": "answered_at", "answered": "answered_at", "answered_on": "answered_at",
                    "responded_at": "answered_at", "submitted_at": "answered_at", "type": "kind",
                    "survey_type": "kind", "rating": "score", "source": "channel"},
    "opportunities.csv": {"opportunity_id": "external_id", "deal_id": "external_id",
                          "customer_id": "customer_external_id", "account_id": "customer_external_id",
                          "owner": "owner_rep_external_id", "owner_rep": "owner_rep_external_id",
                          "rep_id": "owner_rep_external_id", "rep": "owner_rep_external_id",
                          "opened": "opened_at", "opened_on": "opened_at", "created": "opened_at",
                          "created_at": "opened_at", "created_on": "opened_at", "deal_stage": "stage",
                          "value": "amount", "deal_value": "amount", "win_probability": "probability",
                          "close_date": "expected_close_on", "expected_close": "expected_close_on",
                          "expected_close_date": "expected_close_on", "closed": "closed_at",
                          "closed_on": "closed_at", "result": "outcome"},
    "invoices.csv": {"invoice_id": "external_id", "invoice_number": "external_id",
                     "customer_id": "customer_external_id", "date": "issued_at", "issued": "issued_at",
                     "issued_on": "issued_at", "invoice_date": "issued_at", "issue_date": "issued_at",
                     "due": "due_at", "due_on": "due_at", "due_date": "due_at", "paid": "paid_at",
                     "paid_on": "paid_at", "payment_date": "paid_at", "total": "amount"},
}


def _canonical(header: list[str], file: str) -> tuple[list[str], list[str]]:
    """The header with this file's aliases renamed, and a reason for each bad column (one repeating another)."""
    aliases = ALIASES.get(file, {})
    out: list[str] = []
    repeats: list[str] = []
    seen: dict[str, tuple[int, str]] = {}
    for position, raw in enumerate(header, start=1):
        name = raw.strip()
        # custom attributes keep the case of their name: `attr.Segment` is read by rules as attributes.Segment
        column = "attr." + name[5:] if name.lower().startswith("attr.") else aliases.get(name.lower(), name.lower())
        if column == "attr.":
            repeats.append(f"column {position} {name!r} has no attribute name after 'attr.'")
        elif column and column.lower() in seen:
            first_at, first = seen[column.lower()]
            same = f"repeats column {first_at}" if first == name else f"means the same as {first!r} (column {first_at})"
            repeats.append(f"column {position} {name!r} {same}")
        seen.setdefault(column.lower(), (position, name))
        out.append(column)
    return out, repeats


# The longest value each column may hold comes from the table declaration (one definition of each length).
_TABLE = {"reps.csv": SalesRep, "customers.csv": Customer, "products.csv": Product, "orders.csv": Order,
          "complaints.csv": Complaint, "deliveries.csv": Delivery, "interactions.csv": Interaction,
          "surveys.csv": Survey, "opportunities.csv": Opportunity, "invoices.csv": Invoice}
_REFERENCE = {"sku": (Product, "sku"), "order_external_id": (Order, "external_id"),
              "customer_external_id": (Customer, "external_id"), "parent_external_id": (Customer, "external_id"),
              "referred_by_external_id": (Customer, "external_id"),
              "owner_rep_external_id": (SalesRep, "external_id"), "rep_external_id": (SalesRep, "external_id")}


def max_length(file: str, column: str) -> int:
    model, name = _REFERENCE.get(column, (_TABLE.get(file), column))
    declared = model.__table__.c.get(name) if model is not None else None
    return getattr(getattr(declared, "type", None), "length", None) or MAX_TEXT


class _BadValue(ValueError):
    """A bad value; `column` is the column it is about (the write API reports it as the input field)."""

    def __init__(self, reason: str, column: str | None = None):
        super().__init__(reason)
        self.column = column or (reason.split("'")[1] if reason.startswith("'") else None)


BadValue = _BadValue  # for domain.writes, which validates API input with the same per-column rules


class _FileProblem(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line, self.reason = line, reason


def decode(data: bytes) -> str:
    """The file's text; anything but UTF-8 (a BOM is fine) is refused with the line of the first bad byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _FileProblem(1, "the file is UTF-16: save it as UTF-8 (\"CSV UTF-8\")")
    nul = data.find(b"\x00")
    if nul >= 0:
        head = data[:200]
        if head.count(b"\x00") * 4 >= len(head):
            raise _FileProblem(1, "the file looks like UTF-16 (NUL bytes between the letters): save it as UTF-8")
        raise _FileProblem(data.count(b"\n", 0, nul) + 1, "holds a NUL byte: the file is binary or corrupt")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _FileProblem(data.count(b"\n", 0, exc.start) + 1,
                           f"byte 0x{data[exc.start]:02X} is not UTF-8 (a Latin-1 or Windows-1252 file?): "
                           "save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


@dataclass
class Row:
    """One CSV record with typed accessors that raise a readable reason. `present` is the file's columns:
    a column absent from the file reads as None and changes nothing on import."""

    values: dict[str, str]
    line: int
    present: frozenset[str] = frozenset()

    def text(self, column: str, *, required: bool = False) -> str | None:
        raw = (self.values.get(column) or "").strip()
        if not raw:
            if required and column in self.values:
                raise _BadValue(f"'{column}' is empty")
            return None
        return raw

    def day(self, column: str, *, required: bool = False) -> date | None:
        raw = self.text(column, required=required)
        if raw is None:
            return None
        value = None
        try:
            if ISO_DAY.fullmatch(raw):
                value = date(int(raw[:4]), int(raw[5:7]), int(raw[8:]))
            elif ISO_DAY.fullmatch(raw[:10]) and raw[10:11] in ("T", " "):
                # exports often carry a time: the business day is the date as written (no time-zone shift)
                value = datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
        except ValueError:
            pass
        if value is None:
            raise _BadValue(f"'{column}' is not a date in YYYY-MM-DD form: {raw!r}")
        if not FIRST_DAY <= value <= LAST_DAY:
            raise _BadValue(f"'{column}' {raw} is outside {FIRST_DAY} .. {LAST_DAY}")
        return value

    def number(self, column: str, *, required: bool = False, bound: float = MAX_AMOUNT) -> float | None:
        raw = self.text(column, required=required)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise _BadValue(f"'{column}' is not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise _BadValue(f"'{column}' is not a finite number: {raw!r}")
        if abs(value) > bound:
            raise _BadValue(f"'{column}' is {raw}, beyond the sane bound of {bound:g}")
        return value

    def whole(self, column: str, *, bound: float, required: bool = False) -> int | None:
        """A whole number from 0 to `bound` (e.g. days); 30.0 is 30, 30.5 is refused."""
        value = self.number(column, required=required, bound=bound)
        if value is None:
            return None
        if value < 0 or value != int(value):
            raise _BadValue(f"'{column}' must be a whole number from 0, got {self.text(column)!r}")
        return int(value)

    def share(self, column: str, *, required: bool = False) -> float | None:
        """A share from 0 to 1, written as a fraction (0.4) or a percent (40%)."""
        raw = self.text(column, required=required)
        if raw is None:
            return None
        percent = raw.endswith("%")
        try:
            value = float(raw[:-1].strip() if percent else raw)
        except ValueError:
            raise _BadValue(f"'{column}' is not a number or a percent: {raw!r}") from None
        value = value / 100 if percent else value
        if not 0 <= value <= 1:  # NaN and the infinities fail this too
            raise _BadValue(f"'{column}' {raw} is outside 0 .. 1 (a fraction, or a percent such as 40%)")
        return value

    def word(self, column: str, allowed: Container[str], *, required: bool = False) -> str | None:
        """One of the `allowed` words, in any letter case; returned in lower case."""
        raw = self.text(column, required=required)
        if raw is None:
            return None
        if raw.lower() not in allowed:
            raise _BadValue(f"'{column}' must be {' or '.join(allowed)}, got {raw!r}")
        return raw.lower()

    def flag(self, column: str) -> bool:
        raw = (self.values.get(column) or "").strip().lower()
        if raw in TRUE_WORDS:
            return True
        if raw in FALSE_WORDS:
            return False
        raise _BadValue(f"'{column}' must be true or false, got {raw!r}")


@dataclass
class CsvFile:
    """Reads one CSV strictly, checking the header (required columns, no repeats) before any row."""

    path: Path
    required: tuple[str, ...]
    reads: Callable[[str], bool] = lambda column: True  # the columns this kind of file is read for
    problems: list[RowProblem] = field(default_factory=list)
    unreadable: bool = False  # the file as a whole is bad (encoding, header, CSV structure): no row is usable
    ignored: list[str] = field(default_factory=list)  # header names Tiergraph does not read (a typo shows here)

    @property
    def name(self) -> str:
        return self.path.name

    def problem(self, line: int, reason: str, *, whole_file: bool = False) -> None:
        self.problems.append(RowProblem(self.name, line, reason))
        self.unreadable = self.unreadable or whole_file

    def rows(self) -> Iterator[Row]:
        try:
            text = decode(self.path.read_bytes())
        except _FileProblem as exc:
            self.problem(exc.line, exc.reason, whole_file=True)
            return
        except OSError as exc:
            self.problem(0, f"cannot be read: {exc.strerror or exc}", whole_file=True)
            return
        # A cut file is told apart from a whole one only by its last line break (25.74 cut to 25.7 parses fine).
        last_line = 0 if text.endswith(("\n", "\r")) else len(io.StringIO(text, newline="").readlines())
        records = self._records(text, last_line)
        first = next(records, None)
        if first is None:
            if not self.problems:
                self.problem(1, "the file is empty: it needs a header row", whole_file=True)
            return
        header, repeats = _canonical(first[1], self.name)
        for reason in repeats:
            self.problem(1, reason, whole_file=True)
        missing = [c for c in self.required if c not in header]
        if missing:
            self.problem(1, f"missing required column(s): {', '.join(missing)}", whole_file=True)
        if repeats or missing:
            return
        self.ignored = [raw.strip() or f"column {n} (no name)"
                        for n, (raw, c) in enumerate(zip(first[1], header), start=1) if not self.reads(c)]
        present = frozenset(header)
        limits = [max_length(self.name, c) for c in header]
        for line, fields in records:
            if len(fields) != len(header):
                self.problem(line, f"has {len(fields)} field(s), the header has {len(header)} column(s)")
                continue
            reason = next((r for c, v, n in zip(header, fields, limits) if (r := _field_problem(c, v, n, len(header)))),
                          None)
            if reason:
                self.problem(line, reason)
                continue
            yield Row(dict(zip(header, fields)), line, present)

    def _records(self, text: str, last_line: int) -> Iterator[tuple[int, list[str]]]:
        """(line where the record starts, fields), skipping blank lines; a malformed or cut record ends the file."""
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = f" (the record starting here runs to line {reader.line_num})" if reader.line_num > start else ""
                reason = (f"a field is longer than {csv.field_size_limit():,} characters"
                          if "field limit" in str(exc) else f"not readable as CSV: {exc}")
                self.problem(start, f"{reason}{end}; a stray quote?", whole_file=True)
                return
            if reader.line_num == last_line:
                self.problem(start, "the last line does not end with a line break: the file may be cut short "
                                    "(if it is complete, end it with a line break)", whole_file=start == 1)
                return
            if fields:
                yield start, fields

    def parse(self, build: Callable[[Row], Any]) -> list[Any]:
        """Applies `build` to every row, turning its ValueErrors into problems for that line."""
        parsed = []
        for row in self.rows():
            try:
                parsed.append(build(row))
            except _BadValue as exc:
                self.problem(row.line, str(exc))
        return parsed


def _field_problem(column: str, value: str, limit: int, width: int) -> str | None:
    if len(value) > limit:
        return f"'{column}' is {len(value):,} characters long, at most {limit:,} are allowed (a stray quote?)"
    if "\n" in value or "\r" in value:
        if column not in MULTILINE_COLUMNS:
            return f"'{column}' holds a line break (a stray quote?)"
        # a note may span lines, but not lines that look like this file's rows: those were swallowed by a quote
        if any(part.count(",") >= width - 1 for part in value.splitlines()[1:]):
            return f"'{column}' runs over lines that look like rows of this file (a stray quote?)"
    return None


# ---- typed rows, one per file; `present` is the set of columns the file has ----


@dataclass
class RepRow:
    line: int
    external_id: str
    name: str | None
    email: str | None
    region: str | None
    present: frozenset[str] = frozenset()


@dataclass
class CustomerRow:
    line: int
    external_id: str
    name: str | None
    region: str | None
    industry: str | None
    size: str | None
    owner_rep: str | None
    seasonal: bool
    blocked_from: date | None
    created_at: date | None
    parent: str | None
    referred_by: str | None
    attributes: dict[str, str | None]  # every attr.* column of the file; None for an empty cell (removes it)
    payment_terms_days: int | None = None
    credit_grade: str | None = None
    credit_limit: float | None = None
    consent: bool = False
    consent_at: date | None = None
    present: frozenset[str] = frozenset()


@dataclass
class ProductRow:
    line: int
    sku: str
    name: str | None
    unit_cost: float | None
    seasonal: bool
    category: str | None = None
    present: frozenset[str] = frozenset()


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
    present: frozenset[str] = frozenset()


@dataclass
class ComplaintRow:
    line: int
    external_id: str
    customer: str | None
    order: str | None
    opened_at: date | None
    due_at: date | None
    resolved_at: date | None
    category: str | None
    cost: float
    present: frozenset[str] = frozenset()


@dataclass
class DeliveryRow:
    line: int
    external_id: str
    order: str | None
    promised_at: date | None
    delivered_at: date | None
    delay_reason: str | None
    cost: float | None
    present: frozenset[str] = frozenset()


@dataclass
class InteractionRow:
    line: int
    external_id: str
    customer: str | None
    rep: str | None
    occurred_at: date | None
    kind: str | None
    cost: float
    note: str | None
    present: frozenset[str] = frozenset()


@dataclass
class SurveyRow:
    line: int
    external_id: str
    customer: str | None
    answered_at: date | None
    kind: str | None
    score: float | None
    channel: str | None
    comment: str | None
    present: frozenset[str] = frozenset()


@dataclass
class OpportunityRow:
    line: int
    external_id: str
    customer: str | None
    owner_rep: str | None
    opened_at: date | None
    stage: str | None
    amount: float | None
    probability: float | None
    expected_close_on: date | None
    closed_at: date | None
    outcome: str | None
    present: frozenset[str] = frozenset()


@dataclass
class InvoiceRow:
    line: int
    external_id: str
    customer: str | None
    issued_at: date | None
    due_at: date | None  # None: the stored due date, or for a new invoice issued_at + the customer's terms
    amount: float | None
    paid_at: date | None
    present: frozenset[str] = frozenset()


def rep_row(r: Row) -> RepRow:
    return RepRow(r.line, r.text("external_id", required=True), r.text("name", required=True),
                  r.text("email"), r.text("region"), present=r.present)


def customer_row(r: Row) -> CustomerRow:
    attributes = {k[5:]: (v.strip() or None) for k, v in r.values.items() if k.startswith("attr.")}
    return CustomerRow(
        r.line, r.text("external_id", required=True), r.text("name", required=True), r.text("region"),
        r.text("industry"), r.text("size"), r.text("owner_rep_external_id"), r.flag("seasonal"),
        r.day("blocked_from"), r.day("created_at"), r.text("parent_external_id"),
        r.text("referred_by_external_id"), attributes,
        payment_terms_days=r.whole("payment_terms_days", bound=MAX_TERMS_DAYS), credit_grade=r.text("credit_grade"),
        credit_limit=_not_negative(r, "credit_limit"), consent=r.flag("consent"), consent_at=r.day("consent_at"),
        present=r.present,
    )


def product_row(r: Row) -> ProductRow:
    cost = r.number("unit_cost")
    if cost is not None and cost < 0:
        raise _BadValue(f"'unit_cost' must not be negative: {cost}")
    return ProductRow(r.line, r.text("sku", required=True), r.text("name", required=True), cost, r.flag("seasonal"),
                      r.text("category"), present=r.present)


def order_line_row(r: Row) -> OrderLineRow:
    quantity = r.number("quantity", required=True, bound=MAX_QUANTITY)
    is_return = r.flag("is_return")
    if quantity < 0 and not is_return:
        raise _BadValue(f"negative quantity {quantity:g} on a line that is not a return (set is_return=true)",
                        "quantity")
    if quantity > 0 and is_return:
        raise _BadValue(f"a return line needs a negative quantity, got {quantity:g}", "quantity")
    price = r.number("unit_price", required=True)
    if price < 0:
        raise _BadValue(f"'unit_price' must not be negative: {price:g}")
    cost = r.number("unit_cost")
    if cost is not None and cost < 0:
        raise _BadValue(f"'unit_cost' must not be negative: {cost:g}")
    if abs(quantity) * max(price, cost or 0.0) > MAX_AMOUNT:
        raise _BadValue(f"quantity {quantity:g} x {max(price, cost or 0.0):g} is beyond the sane bound of {MAX_AMOUNT:g}",
                        "quantity")
    return OrderLineRow(r.line, r.text("order_external_id", required=True),
                        r.text("customer_external_id", required=True), r.day("ordered_at", required=True),
                        r.text("sku", required=True), quantity, price, cost, is_return, present=r.present)


def complaint_row(r: Row) -> ComplaintRow:
    opened = r.day("opened_at", required=True)
    resolved = r.day("resolved_at")
    if resolved is not None and opened is not None and resolved < opened:
        raise _BadValue(f"'resolved_at' {resolved} is before 'opened_at' {opened}")
    cost = r.number("cost") or 0.0
    if cost < 0:
        raise _BadValue(f"'cost' must not be negative: {cost:g}")
    return ComplaintRow(r.line, r.text("external_id", required=True), r.text("customer_external_id", required=True),
                        r.text("order_external_id"), opened, r.day("due_at"), resolved, r.text("category"), cost,
                        present=r.present)


def delivery_row(r: Row) -> DeliveryRow:
    cost = r.number("cost")
    if cost is not None and cost < 0:
        raise _BadValue(f"'cost' must not be negative: {cost:g}")
    return DeliveryRow(r.line, r.text("external_id", required=True), r.text("order_external_id", required=True),
                       r.day("promised_at", required=True), r.day("delivered_at"), r.text("delay_reason"), cost,
                       present=r.present)


def interaction_row(r: Row) -> InteractionRow:
    cost = r.number("cost") or 0.0
    if cost < 0:
        raise _BadValue(f"'cost' must not be negative: {cost:g}")
    return InteractionRow(r.line, r.text("external_id", required=True), r.text("customer_external_id", required=True),
                          r.text("rep_external_id"), r.day("occurred_at", required=True), r.text("kind", required=True),
                          cost, r.text("note"), present=r.present)


def _not_negative(r: Row, column: str, *, required: bool = False) -> float | None:
    value = r.number(column, required=required)
    if value is not None and value < 0:
        raise _BadValue(f"'{column}' must not be negative: {value:g}")
    return value


DEFAULT_PAYMENT_TERMS_DAYS = 30  # an invoice's terms when its customer has none


def default_due(issued_at: date, payment_terms_days: int | None) -> date:
    """The due date of an invoice given without one: issued plus the customer's payment terms."""
    days = DEFAULT_PAYMENT_TERMS_DAYS if payment_terms_days is None else payment_terms_days
    return issued_at + timedelta(days=days)


def score_problem(kind: str, score: float) -> str | None:
    """Why a score does not fit its survey kind's scale, or None (the import checks stored kinds with it too)."""
    low, high = SURVEY_SCALES[kind]
    return None if low <= score <= high else f"'score' {score:g} is outside the {kind} scale {low:g} .. {high:g}"


def outcome_problem(closed_at: date | None, outcome: str | None) -> str | None:
    """A deal has an outcome exactly when it is closed."""
    if closed_at is not None and outcome is None:
        return f"'outcome' (won or lost) is required when 'closed_at' is given ({closed_at})"
    if closed_at is None and outcome is not None:
        return f"'outcome' {outcome} is given without 'closed_at': a deal has an outcome once it is closed"
    return None


def not_before(later: str, day: date | None, earlier: str, start: date | None) -> str | None:
    """`'paid_at' D is before 'issued_at' S`, or None when either is unknown or in order."""
    if day is not None and start is not None and day < start:
        return f"'{later}' {day} is before '{earlier}' {start}"
    return None


def _raise(*reasons: str | None) -> None:
    reason = next((r for r in reasons if r), None)
    if reason:
        raise _BadValue(reason)


def survey_row(r: Row) -> SurveyRow:
    kind = r.word("kind", SURVEY_SCALES, required=True)
    score = r.number("score", required=True)
    _raise(score_problem(kind, score) if kind is not None and score is not None else None)
    return SurveyRow(r.line, r.text("external_id", required=True), r.text("customer_external_id", required=True),
                     r.day("answered_at", required=True), kind, score, r.text("channel"), r.text("comment"),
                     present=r.present)


def opportunity_row(r: Row) -> OpportunityRow:
    opened, closed = r.day("opened_at", required=True), r.day("closed_at")
    outcome = r.word("outcome", OUTCOMES)
    # a file without one of the two columns is checked against the stored record on import
    both = "closed_at" in r.present and "outcome" in r.present
    _raise(not_before("closed_at", closed, "opened_at", opened), outcome_problem(closed, outcome) if both else None)
    return OpportunityRow(r.line, r.text("external_id", required=True), r.text("customer_external_id", required=True),
                          r.text("owner_rep_external_id"), opened, r.text("stage", required=True),
                          _not_negative(r, "amount", required=True), r.share("probability", required=True),
                          r.day("expected_close_on"), closed, outcome, present=r.present)


def invoice_row(r: Row) -> InvoiceRow:
    issued, due, paid = r.day("issued_at", required=True), r.day("due_at"), r.day("paid_at")
    _raise(not_before("due_at", due, "issued_at", issued), not_before("paid_at", paid, "issued_at", issued))
    return InvoiceRow(r.line, r.text("external_id", required=True), r.text("customer_external_id", required=True),
                      issued, due, _not_negative(r, "amount", required=True), paid, present=r.present)


@dataclass(frozen=True)
class FileKind:
    """`key`: columns every file of this kind must have. `create`: columns a row needs to create a record; a row
    for a stored record may leave them out of the file (they keep their stored values)."""

    key: tuple[str, ...]
    create: tuple[str, ...]
    optional: tuple[str, ...]
    build: Callable[[Row], Any]

    def reads(self, column: str) -> bool:
        return column in self.key or column in self.create or column in self.optional or (
            column.startswith("attr.") and "attr.*" in self.optional)


_ORDER_COLUMNS = ("order_external_id", "customer_external_id", "ordered_at", "sku", "quantity", "unit_price")
FILES: dict[str, FileKind] = {
    "reps.csv": FileKind(("external_id",), ("name",), ("email", "region"), rep_row),
    "customers.csv": FileKind(("external_id",), ("name",), (
        "region", "industry", "size", "owner_rep_external_id", "seasonal", "blocked_from", "created_at",
        "parent_external_id", "referred_by_external_id", "payment_terms_days", "credit_grade", "credit_limit",
        "consent", "consent_at", "attr.*"), customer_row),
    "products.csv": FileKind(("sku",), ("name",), ("unit_cost", "seasonal", "category"), product_row),
    # an order is the whole set of its lines, so every file of order lines has every line column
    "orders.csv": FileKind(_ORDER_COLUMNS, _ORDER_COLUMNS, ("unit_cost", "is_return"), order_line_row),
    "complaints.csv": FileKind(("external_id",), ("customer_external_id", "opened_at"), (
        "order_external_id", "due_at", "resolved_at", "category", "cost"), complaint_row),
    "deliveries.csv": FileKind(("external_id",), ("order_external_id", "promised_at"), (
        "delivered_at", "delay_reason", "cost"), delivery_row),
    "interactions.csv": FileKind(("external_id",), ("customer_external_id", "occurred_at", "kind"), (
        "rep_external_id", "cost", "note"), interaction_row),
    "surveys.csv": FileKind(("external_id",), ("customer_external_id", "answered_at", "kind", "score"), (
        "channel", "comment"), survey_row),
    "opportunities.csv": FileKind(("external_id",), (
        "customer_external_id", "opened_at", "stage", "amount", "probability"), (
        "expected_close_on", "owner_rep_external_id", "closed_at", "outcome"), opportunity_row),
    "invoices.csv": FileKind(("external_id",), ("customer_external_id", "issued_at", "amount"), (
        "due_at", "paid_at"), invoice_row),
}
