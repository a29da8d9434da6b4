"""`tiergraph import DIR`: validate every row of every file, then write everything in one transaction.

Idempotent by external id: a row equal to the stored record changes nothing, a different one updates it.
Only the columns a file has are written: a column absent from the file leaves the stored value alone.
Any bad row rejects the whole import, so the database is never half-imported.
An import is a write like any other: the customers it changes are re-evaluated in its transaction (domain.live).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Container, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import import_rows as rows_
from domain import live
from domain.writes import order_totals
from domain.evaluation_state import Cause, writer_transaction
from domain.import_rows import FILES, CsvFile, ImportFailed, RowProblem
from domain.models import (Complaint, Customer, CustomerEvaluation, Delivery, Interaction, Invoice, Opportunity, Order,
                           OrderLine, Product, SalesRep, Survey)

Progress = Callable[[str, int, int], None]  # (step, done, total)
CHUNK = 5000


@dataclass
class TableCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    tables: dict[str, TableCounts] = field(default_factory=dict)
    skipped: list[RowProblem] = field(default_factory=list)  # bad rows left out (only with skip_bad_rows)
    ignored: list[str] = field(default_factory=list)  # "file: column" for header names Tiergraph does not read
    reevaluated: int = 0  # customers re-evaluated in the import's transaction (domain.live)

    @property
    def changed(self) -> int:
        return sum(c.inserted + c.updated for c in self.tables.values())

    def summary(self) -> str:
        return ", ".join(f"{name}: +{c.inserted} ~{c.updated} ={c.unchanged}" for name, c in self.tables.items())


def read_directory(directory: Path, progress: Progress | None = None, problems: list[RowProblem] | None = None,
                   ignored: list[str] | None = None) -> dict[str, list[Any]]:
    """Parse every known CSV in `directory`. Bad rows raise ImportFailed listing all of them, or, when a
    `problems` list is given, are left out and appended to it. Columns not read are appended to `ignored`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ImportFailed([RowProblem(str(directory), 0, "is not a directory")])
    if not (directory / "customers.csv").exists():
        raise ImportFailed([RowProblem("customers.csv", 0, f"not found in {directory}")])
    parsed: dict[str, list[Any]] = {}
    collect = problems is not None
    problems = problems if collect else []
    names = [n for n in FILES if (directory / n).exists()]
    for i, name in enumerate(names):
        kind = FILES[name]
        reader = CsvFile(directory / name, kind.key, kind.reads)
        parsed[name] = reader.parse(kind.build)
        problems += reader.problems
        if ignored is not None:
            ignored += [f"{name}: {column}" for column in reader.ignored]
        if collect and reader.unreadable:  # a bad header, encoding or CSV structure: the file can't be used
            raise ImportFailed(reader.problems)
        if progress:
            progress("read", i + 1, len(names))
    if problems and not collect:
        raise ImportFailed(problems)
    return parsed


def import_directory(engine: Engine, directory: Path, progress: Progress | None = None, *,
                     skip_bad_rows: bool = False) -> ImportReport:
    """All or nothing by default; with skip_bad_rows the good rows are imported and the bad ones reported
    (a row that depends on a bad one, such as the orders of a rejected customer, is left out too)."""
    read_problems: list[RowProblem] | None = [] if skip_bad_rows else None
    ignored: list[str] = []
    parsed = read_directory(directory, progress, read_problems, ignored)
    # one writer transaction: any problem below rolls back everything, the re-evaluation included
    with writer_transaction(engine) as conn:
        writer = _Writer(conn, parsed, progress, skip_bad_rows)
        report = writer.run()
        report.reevaluated = _reevaluate(conn, writer)
    report.ignored = ignored
    report.skipped = sorted((read_problems or []) + report.skipped, key=lambda p: (p.file, p.line))
    return report


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    if isinstance(b, str) and isinstance(a, date):  # SQLite may hand dates back as text in raw selects
        return a.isoformat() == b
    return a == b


class _Writer:
    def __init__(self, conn: Connection, parsed: dict[str, list[Any]], progress: Progress | None,
                 skip_bad_rows: bool = False):
        self.conn = conn
        self.parsed = parsed
        self.progress = progress
        self.skip_bad_rows = skip_bad_rows
        self.problems: list[RowProblem] = []
        self.report = ImportReport()
        self.changed: dict[str, set[str]] = defaultdict(set)  # table -> keys of the records inserted or updated
        self.relinked: set[int] = set()  # customers whose parent / referrer changed, with the old ones
        self.left: set[int] = set()  # customers a survey, deal or invoice was moved away from
        self.recategorised: set[int] = set()  # products whose category changed: rules over order lines read it

    # ---- generic upsert by natural key ----

    def upsert(self, table: sa.Table, key: str, records: list[dict[str, Any]], label: str,
               supplied: Container[str]) -> dict[str, int]:
        """Insert new records whole; on stored ones update only the `supplied` columns (those the file has), and
        only when they changed. Returns key -> id for the whole table."""
        counts = self.report.tables.setdefault(label, TableCounts())
        if self.blocked:  # a bad row was found: the import will be rejected, write nothing more
            return self.ids(table, key)
        columns = [c for c in (records[0].keys() if records else []) if c != key and c in supplied]
        existing = {
            row[0]: row for row in self.conn.execute(sa.select(table.c[key], table.c.id, *[table.c[c] for c in columns]))
        }
        inserts, updates = [], []
        for rec in records:
            old = existing.get(rec[key])
            if old is None:
                inserts.append(rec)
            elif all(_same(rec[c], old[i + 2]) for i, c in enumerate(columns)):
                counts.unchanged += 1
                continue
            else:
                updates.append({"_id": old[1], **{f"v_{c}": rec[c] for c in columns}})
            self.changed[label].add(rec[key])
        for chunk in _chunks(inserts):
            self.conn.execute(sa.insert(table), chunk)
        if updates:
            stmt = sa.update(table).where(table.c.id == sa.bindparam("_id")).values(
                {c: sa.bindparam(f"v_{c}") for c in columns})
            for chunk in _chunks(updates):
                self.conn.execute(stmt, chunk)
        counts.inserted += len(inserts)
        counts.updated += len(updates)
        return self.ids(table, key)

    def ids(self, table: sa.Table, key: str) -> dict[str, int]:
        return dict(self.conn.execute(sa.select(table.c[key], table.c.id)).all())

    def problem(self, file: str, line: int, reason: str) -> None:
        self.problems.append(RowProblem(file, line, reason))

    @property
    def blocked(self) -> bool:
        """True once a problem means the whole import will be rejected (never when skipping bad rows)."""
        return bool(self.problems) and not self.skip_bad_rows

    def step(self, name: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(name, done, total)

    # ---- the import, in dependency order ----

    def run(self) -> ImportReport:
        steps = [self.reps, self.products, self.customers, self.orders, self.complaints, self.deliveries,
                 self.interactions, self.surveys, self.opportunities, self.invoices]
        for i, step in enumerate(steps):
            step()
            if self.blocked:
                raise ImportFailed(sorted(self.problems, key=lambda p: (p.file, p.line)))
            self.step("write", i + 1, len(steps))
        self.report.skipped = sorted(self.problems, key=lambda p: (p.file, p.line))
        return self.report

    def reps(self) -> None:
        file = "reps.csv"
        rows = self._creatable(self._unique(self.parsed.get(file, []), file, "external_id"), file, "external_id",
                               self.ids(SalesRep.__table__, "external_id"))
        self.rep_ids = self.upsert(SalesRep.__table__, "external_id", [
            {"external_id": r.external_id, "name": r.name, "email": r.email, "region": r.region} for r in rows
        ], "sales_reps", _supplied(rows, {"name": "name", "email": "email", "region": "region"}))

    def products(self) -> None:
        file = "products.csv"
        rows = self._creatable(self._unique(self.parsed.get(file, []), file, "sku"), file, "sku",
                               self.ids(Product.__table__, "sku"))
        records = [{"sku": r.sku, "name": r.name, "unit_cost": r.unit_cost, "seasonal": r.seasonal,
                    "category": r.category} for r in rows]
        if file not in self.parsed:
            # Without a product list, order lines define the products they name.
            skus = sorted({line.sku for line in self.parsed.get("orders.csv", [])})
            known = self.ids(Product.__table__, "sku")
            records = [{"sku": s, "name": s, "unit_cost": None, "seasonal": False} for s in skus if s not in known]
            self.report.tables.setdefault("products", TableCounts())
            if records:
                self.conn.execute(sa.insert(Product.__table__), records)
                self.report.tables["products"].inserted += len(records)
            self.product_ids = self.ids(Product.__table__, "sku")
        else:
            supplied = _supplied(rows, {"name": "name", "unit_cost": "unit_cost", "seasonal": "seasonal",
                                        "category": "category"})
            table = Product.__table__
            categories = dict(self.conn.execute(sa.select(table.c.sku, table.c.category)).all())
            self.product_ids = self.upsert(table, "sku", records, "products", supplied)
            if "category" in supplied and not self.blocked:
                self.recategorised = {self.product_ids[r["sku"]] for r in records
                                      if r["sku"] in categories and categories[r["sku"]] != r["category"]}
        self.product_cost = dict(self.conn.execute(sa.select(Product.__table__.c.sku, Product.__table__.c.unit_cost)).all())

    def customers(self) -> None:
        file = "customers.csv"
        table = Customer.__table__
        stored = {r.external_id: r for r in self.conn.execute(
            sa.select(table.c.external_id, table.c.created_at, table.c.attributes))}
        rows: list[rows_.CustomerRow] = self._creatable(
            self._unique(self.parsed[file], file, "external_id"), file, "external_id", stored)
        first_order: dict[str, date] = {}
        for line in self.parsed.get("orders.csv", []):
            if line.customer not in first_order or line.ordered_at < first_order[line.customer]:
                first_order[line.customer] = line.ordered_at
        records, kept = [], []
        for r in rows:
            if r.owner_rep and r.owner_rep not in self.rep_ids:
                self.problem(file, r.line, f"unknown owner rep '{r.owner_rep}'")
                continue
            kept.append(r)
            old = stored.get(r.external_id)
            # created_at is never cleared: an empty cell keeps the stored date (or takes the first order's)
            created = r.created_at or (old and old.created_at) or first_order.get(r.external_id) or date.today()
            # attributes merge: an attr.* cell sets its attribute, an empty one removes it, others stay
            attributes = dict(old.attributes or {}) if old else {}
            for name, value in r.attributes.items():
                if value is None:
                    attributes.pop(name, None)
                else:
                    attributes[name] = value
            records.append({
                "external_id": r.external_id, "name": r.name, "region": r.region, "industry": r.industry,
                "size": r.size, "owner_rep_id": self.rep_ids.get(r.owner_rep) if r.owner_rep else None,
                "seasonal": r.seasonal, "blocked_from": r.blocked_from, "created_at": created,
                "attributes": attributes, "payment_terms_days": r.payment_terms_days, "credit_grade": r.credit_grade,
                "credit_limit": r.credit_limit, "consent": r.consent, "consent_at": r.consent_at,
            })
        if self.blocked:
            return
        self.customer_ids = self.upsert(table, "external_id", records, "customers", _supplied(kept, {
            "name": "name", "region": "region", "industry": "industry", "size": "size",
            "owner_rep_id": "owner_rep_external_id", "seasonal": "seasonal", "blocked_from": "blocked_from",
            "created_at": "created_at", "attributes": ATTRIBUTES, "payment_terms_days": "payment_terms_days",
            "credit_grade": "credit_grade", "credit_limit": "credit_limit", "consent": "consent",
            "consent_at": "consent_at"}))
        self._link_customers(kept)

    def _link_customers(self, rows: list[rows_.CustomerRow]) -> None:
        """Parent and referrer links, set after every customer has an id (files may list children first)."""
        table = Customer.__table__
        current = {r[0]: (r[1], r[2]) for r in self.conn.execute(
            sa.select(table.c.id, table.c.parent_id, table.c.referred_by_id))}
        parents = {cid: p for cid, (p, _) in current.items()}
        updates = []
        for r in rows:
            cid = self.customer_ids[r.external_id]
            links: dict[str, int | None] = {}
            for n, (column, ref, source) in enumerate((("parent_id", r.parent, "parent_external_id"),
                                                       ("referred_by_id", r.referred_by, "referred_by_external_id"))):
                if source not in r.present:
                    links[column] = current[cid][n]  # a link column absent from the file keeps the stored link
                elif ref is None:
                    links[column] = None
                elif ref == r.external_id:
                    self.problem("customers.csv", r.line, f"customer '{ref}' cannot be its own {column[:-3].replace('_', ' ')}")
                    links[column] = None  # kept only when bad rows are skipped: the link is left out
                elif ref not in self.customer_ids:
                    self.problem("customers.csv", r.line, f"unknown customer '{ref}' in {source}")
                    links[column] = None
                else:
                    links[column] = self.customer_ids[ref]
            parents[cid] = links["parent_id"]
            if (links["parent_id"], links["referred_by_id"]) != current[cid]:
                updates.append({"_id": cid, "v_parent": links["parent_id"], "v_ref": links["referred_by_id"]})
                self.relinked |= {x for x in (cid, *current[cid]) if x is not None}
        by_id = {self.customer_ids[r.external_id]: r for r in rows}
        cyclic = {cid for cid in by_id if _in_cycle(cid, parents)}
        for cid in cyclic:
            self.problem("customers.csv", by_id[cid].line, "parent_external_id makes a cycle in the company hierarchy")
        updates = [u for u in updates if u["_id"] not in cyclic]
        if updates and not self.blocked:
            stmt = sa.update(table).where(table.c.id == sa.bindparam("_id")).values(
                parent_id=sa.bindparam("v_parent"), referred_by_id=sa.bindparam("v_ref"))
            for chunk in _chunks(updates):
                self.conn.execute(stmt, chunk)
        self.report.tables["customer links"] = TableCounts(updated=len(updates) if not self.blocked else 0)

    def orders(self) -> None:
        lines: list[rows_.OrderLineRow] = self.parsed.get("orders.csv", [])
        if not lines:
            self.order_ids = self.ids(Order.__table__, "external_id")
            self.order_customer = {}
            return
        grouped: dict[str, list[rows_.OrderLineRow]] = defaultdict(list)
        for line in lines:
            grouped[line.order].append(line)
        before = self.ids(Order.__table__, "external_id")
        stored = self._stored_lines([before[e] for e in grouped if e in before])
        # without a unit_cost column a line that is still the same product keeps its stored cost
        keep_costs = "unit_cost" not in lines[0].present
        orders, order_lines = [], {}
        for ext, group in grouped.items():
            head = group[0]
            before_order = len(self.problems)
            for line in group:
                if line.customer not in self.customer_ids:
                    self.problem("orders.csv", line.line, f"unknown customer '{line.customer}'")
                elif line.customer != head.customer or line.ordered_at != head.ordered_at:
                    self.problem("orders.csv", line.line, f"order '{ext}' has lines with different customers or dates "
                                 f"(first seen on line {head.line})")
                if line.sku not in self.product_ids:
                    self.problem("orders.csv", line.line, f"unknown sku '{line.sku}' (not in products.csv)")
            if len(self.problems) > before_order or self.blocked:
                continue  # an order with a bad line is left out whole
            old = stored.get(before.get(ext), [])
            costs = []
            for n, line in enumerate(group):
                if line.unit_cost is not None:
                    costs.append(line.unit_cost)
                elif keep_costs and n < len(old) and old[n][1] == self.product_ids[line.sku]:
                    costs.append(old[n][4])
                else:
                    costs.append(self.product_cost.get(line.sku))
            orders.append({
                "external_id": ext, "customer_id": self.customer_ids[head.customer], "ordered_at": head.ordered_at,
                **order_totals([(line.quantity, line.unit_price, c) for line, c in zip(group, costs)]),
            })
            order_lines[ext] = [
                (n + 1, self.product_ids[l.sku], l.quantity, l.unit_price, c, l.is_return)
                for n, (l, c) in enumerate(zip(group, costs))
            ]
        if self.blocked:
            return
        self.order_ids = self.upsert(Order.__table__, "external_id", orders, "orders", set(orders[0]) if orders else ())
        self._write_lines(order_lines, stored, {o["external_id"]: o["customer_id"] for o in orders})
        self.step("write order lines", 1, 1)

    def _stored_lines(self, order_ids: list[int]) -> dict[int, list[tuple]]:
        """order id -> its lines as (line_no, product_id, quantity, unit_price, unit_cost, is_return)."""
        table = OrderLine.__table__
        stored: dict[int, list[tuple]] = defaultdict(list)
        for chunk in _chunks(order_ids):
            for r in self.conn.execute(sa.select(table.c.order_id, table.c.line_no, table.c.product_id, table.c.quantity,
                                                 table.c.unit_price, table.c.unit_cost, table.c.is_return)
                                       .where(table.c.order_id.in_(chunk)).order_by(table.c.order_id, table.c.line_no)):
                stored[r[0]].append(tuple(r[1:]))
        return stored

    def _write_lines(self, order_lines: dict[str, list[tuple]], stored: dict[int, list[tuple]],
                     customer_of: dict[str, int]) -> None:
        """Replace the lines of orders whose lines differ from what is stored; leave the others alone."""
        table = OrderLine.__table__
        replace, inserts = [], []
        for ext, new in order_lines.items():
            oid = self.order_ids[ext]
            old = stored.get(oid)
            if old is not None and len(old) == len(new) and all(all(_same(a, b) for a, b in zip(x, y)) for x, y in zip(new, old)):
                continue
            if old is not None:
                replace.append(oid)
            self.changed["orders"].add(ext)
            inserts += [{"order_id": oid, "customer_id": customer_of[ext], "line_no": n, "product_id": p,
                         "quantity": q, "unit_price": up, "unit_cost": uc, "is_return": ret}
                        for n, p, q, up, uc, ret in new]
        for chunk in _chunks(replace):
            self.conn.execute(sa.delete(table).where(table.c.order_id.in_(chunk)))
        for chunk in _chunks(inserts):
            self.conn.execute(sa.insert(table), chunk)

    def complaints(self) -> None:
        file = "complaints.csv"
        table = Complaint.__table__
        stored = {r.external_id: r for r in self.conn.execute(sa.select(
            table.c.external_id, table.c.customer_id, table.c.order_id, table.c.opened_at, table.c.resolved_at))}
        rows = self._creatable(self._unique(self.parsed.get(file, []), file, "external_id"), file, "external_id",
                               stored)
        records = []
        owners = self._order_owners({r.order for r in rows if r.order})
        for r in rows:
            before_row = len(self.problems)
            old = stored.get(r.external_id)
            # a column absent from the file keeps the stored value; the checks below see the merged record
            cid = self._customer(r.customer, file, r.line) if "customer_external_id" in r.present else old.customer_id
            oid = old.order_id if old is not None and "order_external_id" not in r.present else None
            if r.order:
                owner = owners.get(r.order)
                if owner is None:
                    self.problem(file, r.line, f"unknown order '{r.order}'")
                elif cid is not None and owner[1] != cid:
                    self.problem(file, r.line, f"order '{r.order}' belongs to another customer")
                else:
                    oid = owner[0]
            elif oid is not None and cid is not None and self._order_customer(oid) != cid:
                self.problem(file, r.line, "the complaint's stored order belongs to another customer")
            opened = r.opened_at if "opened_at" in r.present else old.opened_at
            resolved = r.resolved_at if "resolved_at" in r.present else (old.resolved_at if old else None)
            if opened is not None and resolved is not None and resolved < opened:
                self.problem(file, r.line, f"'resolved_at' {resolved} is before 'opened_at' {opened}")
            if len(self.problems) > before_row:
                continue
            records.append({"external_id": r.external_id, "customer_id": cid, "order_id": oid,
                            "opened_at": opened, "due_at": r.due_at, "resolved_at": resolved,
                            "category": r.category, "cost": r.cost})
        if not self.blocked and file in self.parsed:
            self.upsert(table, "external_id", records, "complaints", _supplied(rows, {
                "customer_id": "customer_external_id", "order_id": "order_external_id", "opened_at": "opened_at",
                "due_at": "due_at", "resolved_at": "resolved_at", "category": "category", "cost": "cost"}))

    def deliveries(self) -> None:
        file = "deliveries.csv"
        table = Delivery.__table__
        stored = {r.external_id: r for r in self.conn.execute(
            sa.select(table.c.external_id, table.c.order_id, table.c.customer_id))}
        rows = self._creatable(self._unique(self.parsed.get(file, []), file, "external_id"), file, "external_id",
                               stored)
        owners = self._order_owners({r.order for r in rows if r.order})
        records = []
        for r in rows:
            if "order_external_id" in r.present:
                owner = owners.get(r.order)
                if owner is None:
                    self.problem(file, r.line, f"unknown order '{r.order}'")
                    continue
            else:
                owner = (stored[r.external_id].order_id, stored[r.external_id].customer_id)
            records.append({"external_id": r.external_id, "order_id": owner[0], "customer_id": owner[1],
                            "promised_at": r.promised_at, "delivered_at": r.delivered_at,
                            "delay_reason": r.delay_reason, "cost": r.cost})
        if not self.blocked and file in self.parsed:
            self.upsert(table, "external_id", records, "deliveries", _supplied(rows, {
                "order_id": "order_external_id", "customer_id": "order_external_id", "promised_at": "promised_at",
                "delivered_at": "delivered_at", "delay_reason": "delay_reason", "cost": "cost"}))

    def interactions(self) -> None:
        file = "interactions.csv"
        table = Interaction.__table__
        known = self.ids(table, "external_id")
        rows = self._creatable(self._unique(self.parsed.get(file, []), file, "external_id"), file, "external_id",
                               known)
        records = []
        for r in rows:
            before_row = len(self.problems)
            cid = self._customer(r.customer, file, r.line) if "customer_external_id" in r.present else None
            if r.rep and r.rep not in self.rep_ids:
                self.problem(file, r.line, f"unknown rep '{r.rep}'")
            if len(self.problems) > before_row:
                continue
            records.append({"external_id": r.external_id, "customer_id": cid,
                            "rep_id": self.rep_ids.get(r.rep) if r.rep else None, "occurred_at": r.occurred_at,
                            "kind": r.kind, "cost": r.cost, "note": r.note})
        if not self.blocked and file in self.parsed:
            self.upsert(table, "external_id", records, "interactions", _supplied(rows, {
                "customer_id": "customer_external_id", "rep_id": "rep_external_id", "occurred_at": "occurred_at",
                "kind": "kind", "cost": "cost", "note": "note"}))

    def surveys(self) -> None:
        file = "surveys.csv"
        table = Survey.__table__
        stored = {r.external_id: r for r in self.conn.execute(
            sa.select(table.c.external_id, table.c.customer_id, table.c.kind, table.c.score))}
        rows: list[rows_.SurveyRow] = self._creatable(
            self._unique(self.parsed.get(file, []), file, "external_id"), file, "external_id", stored)
        records = []
        for r in rows:
            before_row = len(self.problems)
            old = stored.get(r.external_id)
            cid = self._owner(r, old, file)
            kind, score = self._merged(r, old, "kind"), self._merged(r, old, "score")
            self._check(file, r.line, rows_.score_problem(kind, score))  # a new score on a stored kind, too
            if len(self.problems) > before_row:
                continue
            records.append({"external_id": r.external_id, "customer_id": cid, "answered_at": r.answered_at,
                            "kind": kind, "score": score, "channel": r.channel, "comment": r.comment})
        if not self.blocked and file in self.parsed:
            self.upsert(table, "external_id", records, "surveys", _supplied(rows, {
                "customer_id": "customer_external_id", "answered_at": "answered_at", "kind": "kind", "score": "score",
                "channel": "channel", "comment": "comment"}))

    def opportunities(self) -> None:
        file = "opportunities.csv"
        table = Opportunity.__table__
        stored = {r.external_id: r for r in self.conn.execute(sa.select(
            table.c.external_id, table.c.customer_id, table.c.opened_at, table.c.closed_at, table.c.outcome))}
        rows: list[rows_.OpportunityRow] = self._creatable(
            self._unique(self.parsed.get(file, []), file, "external_id"), file, "external_id", stored)
        records = []
        for r in rows:
            before_row = len(self.problems)
            old = stored.get(r.external_id)
            cid = self._owner(r, old, file)
            if r.owner_rep and r.owner_rep not in self.rep_ids:
                self.problem(file, r.line, f"unknown owner rep '{r.owner_rep}'")
            opened, closed = self._merged(r, old, "opened_at"), self._merged(r, old, "closed_at")
            outcome = self._merged(r, old, "outcome")
            self._check(file, r.line, rows_.not_before("closed_at", closed, "opened_at", opened),
                        rows_.outcome_problem(closed, outcome))
            if len(self.problems) > before_row:
                continue
            records.append({"external_id": r.external_id, "customer_id": cid,
                            "owner_rep_id": self.rep_ids.get(r.owner_rep) if r.owner_rep else None,
                            "opened_at": opened, "stage": r.stage, "amount": r.amount, "probability": r.probability,
                            "expected_close_on": r.expected_close_on, "closed_at": closed, "outcome": outcome})
        if not self.blocked and file in self.parsed:
            self.upsert(table, "external_id", records, "opportunities", _supplied(rows, {
                "customer_id": "customer_external_id", "owner_rep_id": "owner_rep_external_id",
                "opened_at": "opened_at", "stage": "stage", "amount": "amount", "probability": "probability",
                "expected_close_on": "expected_close_on", "closed_at": "closed_at", "outcome": "outcome"}))

    def invoices(self) -> None:
        file = "invoices.csv"
        table = Invoice.__table__
        stored = {r.external_id: r for r in self.conn.execute(sa.select(
            table.c.external_id, table.c.customer_id, table.c.issued_at, table.c.due_at, table.c.paid_at))}
        rows: list[rows_.InvoiceRow] = self._creatable(
            self._unique(self.parsed.get(file, []), file, "external_id"), file, "external_id", stored)
        # the customers step has run: a customer's terms may come from this very import
        terms = dict(self.conn.execute(sa.select(Customer.__table__.c.id, Customer.__table__.c.payment_terms_days))
                     .all()) if rows else {}
        records = []
        for r in rows:
            before_row = len(self.problems)
            old = stored.get(r.external_id)
            cid = self._owner(r, old, file)
            issued, paid = self._merged(r, old, "issued_at"), self._merged(r, old, "paid_at")
            # a due date is never cleared: an empty cell keeps the stored one, a new invoice gets the terms'
            due = r.due_at or (old.due_at if old is not None else None)
            if due is None and cid is not None:
                due = rows_.default_due(issued, terms.get(cid))
            self._check(file, r.line, rows_.not_before("due_at", due, "issued_at", issued),
                        rows_.not_before("paid_at", paid, "issued_at", issued))
            if len(self.problems) > before_row:
                continue
            records.append({"external_id": r.external_id, "customer_id": cid, "issued_at": issued, "due_at": due,
                            "amount": r.amount, "paid_at": paid})
        if not self.blocked and file in self.parsed:
            self.upsert(table, "external_id", records, "invoices", _supplied(rows, {
                "customer_id": "customer_external_id", "issued_at": "issued_at", "due_at": "due_at",
                "amount": "amount", "paid_at": "paid_at"}))

    # ---- helpers ----

    def _owner(self, r: Any, old: Any, file: str) -> int | None:
        """The customer of a survey, deal or invoice row: the file's, else the stored one. A record moved to
        another customer leaves its old customer to be re-evaluated too."""
        if "customer_external_id" not in r.present:
            return old.customer_id
        cid = self._customer(r.customer, file, r.line)
        if old is not None and cid is not None and old.customer_id != cid:
            self.left.add(old.customer_id)
        return cid

    @staticmethod
    def _merged(r: Any, old: Any, column: str) -> Any:
        """The row's value when the file has the column, else the stored record's (None for a new record)."""
        if column in r.present:
            return getattr(r, column)
        return getattr(old, column) if old is not None else None

    def _check(self, file: str, line: int, *reasons: str | None) -> None:
        """The first of `reasons` that is not None is the row's problem."""
        reason = next((r for r in reasons if r), None)
        if reason:
            self.problem(file, line, reason)

    def _creatable(self, rows: list[Any], file: str, key: str, stored: Container[str]) -> list[Any]:
        """The rows whose record is stored, or that carry every column needed to create one."""
        kept = []
        for r in rows:
            missing = [c for c in FILES[file].create if c not in r.present]
            if missing and getattr(r, key) not in stored:
                self.problem(file, r.line, f"'{getattr(r, key)}' is new, and a new record needs the column(s) "
                                           f"{', '.join(missing)}, which the file does not have")
            else:
                kept.append(r)
        return kept

    def _order_customer(self, order_id: int) -> int | None:
        return self.conn.execute(sa.select(Order.__table__.c.customer_id).where(Order.__table__.c.id == order_id)).scalar()

    def _customer(self, external_id: str, file: str, line: int) -> int | None:
        cid = self.customer_ids.get(external_id)
        if cid is None:
            self.problem(file, line, f"unknown customer '{external_id}'")
        return cid

    def _order_owners(self, externals: set[str]) -> dict[str, tuple[int, int]]:
        table = Order.__table__
        owners: dict[str, tuple[int, int]] = {}
        for chunk in _chunks(sorted(externals)):
            for ext, oid, cid in self.conn.execute(
                    sa.select(table.c.external_id, table.c.id, table.c.customer_id).where(table.c.external_id.in_(chunk))):
                owners[ext] = (oid, cid)
        return owners

    def _unique(self, rows: list[Any], file: str, key: str) -> list[Any]:
        """The rows with a first-seen key; every later duplicate is a problem (and left out)."""
        seen: dict[str, int] = {}
        kept = []
        for r in rows:
            value = getattr(r, key)
            if value in seen:
                self.problem(file, r.line, f"duplicate {key} '{value}' (first on line {seen[value]})")
            else:
                seen[value] = r.line
                kept.append(r)
        return kept


# the record tables whose changes touch a customer: (label, table, the dates that say when it happened)
_TOUCHING = (("orders", Order.__table__, ("ordered_at",)),
             ("complaints", Complaint.__table__, ("opened_at", "resolved_at")),
             ("deliveries", Delivery.__table__, ("promised_at", "delivered_at")),
             ("interactions", Interaction.__table__, ("occurred_at",)),
             ("surveys", Survey.__table__, ("answered_at",)),
             ("opportunities", Opportunity.__table__, ("opened_at", "closed_at")),
             ("invoices", Invoice.__table__, ("issued_at", "paid_at")))


def _reevaluate(conn: Connection, writer: _Writer) -> int:
    """Re-evaluate the customers the import changed, as a write through the API does (domain.live), in the
    import's transaction; as of the data's now, or the latest date of a changed record when later. A base that
    was never evaluated is left to its first `tiergraph evaluate` (there is no "now" to evaluate on yet)."""
    if conn.execute(sa.select(CustomerEvaluation.__table__.c.customer_id).limit(1)).first() is None:
        return 0
    touched = {writer.customer_ids[e] for e in writer.changed.get("customers", ()) if e in writer.customer_ids}
    touched |= writer.relinked | writer.left
    lines = OrderLine.__table__
    for chunk in _chunks(sorted(writer.recategorised)):  # rules over order lines read the product's category
        touched |= set(conn.execute(sa.select(lines.c.customer_id).where(lines.c.product_id.in_(chunk))
                                    .distinct()).scalars())
    latest: list[date] = []
    for label, table, dates in _TOUCHING:
        for chunk in _chunks(sorted(writer.changed.get(label, ()))):
            rows = conn.execute(sa.select(table.c.customer_id, *(sa.func.max(table.c[d]) for d in dates))
                                .where(table.c.external_id.in_(chunk)).group_by(table.c.customer_id)).all()
            touched |= {r[0] for r in rows}
            latest += [d for r in rows for d in r[1:] if d is not None]
    if not touched:
        return 0
    as_of = live.live_as_of(conn, max(latest) if latest else None)
    live.reevaluate(conn, touched, as_of, Cause("NEW_DATA", "import", None))
    return len(touched)


ATTRIBUTES = "attr."  # the source of the attributes column: every attr.* column of the file


def _supplied(rows: list[Any], sources: dict[str, str]) -> set[str]:
    """The table columns a file supplies: `sources` maps each column to the CSV column it is read from."""
    present = rows[0].present if rows else frozenset()
    has_attributes = any(c.startswith(ATTRIBUTES) for c in present)
    return {column for column, source in sources.items()
            if (has_attributes if source == ATTRIBUTES else source in present)}


def _in_cycle(start: int, parents: dict[int, int | None]) -> bool:
    seen = {start}
    node = parents.get(start)
    while node is not None:
        if node in seen:
            return node == start
        seen.add(node)
        node = parents.get(node)
    return False
