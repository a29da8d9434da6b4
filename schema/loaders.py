"""Per-request DataLoaders: every nested list is fetched for all parents of a level in one statement.

The database driver is synchronous, so each batch runs in a worker thread and never blocks the event loop.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Hashable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from starlette.concurrency import run_in_threadpool
from strawberry.dataloader import DataLoader

from schema.pagination import KEY_TYPES

from domain.models import (Complaint, Customer, CustomerEvaluation, CustomerScore, Delivery, Interaction, Order,
                           OrderLine, Product, SalesRep, ValueRun)


@dataclass(frozen=True)
class ChildList:
    """How to list one kind of child record under its parent, newest first."""

    table: sa.Table
    parent_column: str
    order_by: tuple[str, ...]  # columns, descending, ending with the primary key so the order is total


CHILD_LISTS = {
    "orders": ChildList(Order.__table__, "customer_id", ("ordered_at", "id")),
    "complaints": ChildList(Complaint.__table__, "customer_id", ("opened_at", "id")),
    "deliveries": ChildList(Delivery.__table__, "customer_id", ("promised_at", "id")),
    "interactions": ChildList(Interaction.__table__, "customer_id", ("occurred_at", "id")),
    "subsidiaries": ChildList(Customer.__table__, "parent_id", ("id",)),
    "referrals": ChildList(Customer.__table__, "referred_by_id", ("id",)),
}
# their cursors hold the order columns: dates travel as ISO text, ids as numbers
KEY_TYPES.update({name: tuple(date if isinstance(spec.table.c[c].type, sa.Date) else int for c in spec.order_by)
                  for name, spec in CHILD_LISTS.items()})


def _typed(column: sa.Column, value: Any) -> Any:
    """Cursor keys travel as JSON; dates come back as ISO text and must be dates again for the driver."""
    if isinstance(column.type, sa.Date) and isinstance(value, str):
        return date.fromisoformat(value)
    return value


class Loaders:
    def __init__(self, engine: Engine, rules: Callable[[], Any] | None = None):
        self.engine = engine
        self._rules = rules
        self.evaluation_by_customer = self._by_key(CustomerEvaluation.__table__,
                                                   CustomerEvaluation.__table__.c.customer_id)
        self.explanations = DataLoader(self._explain)
        self.score_by_customer = self._by_key(CustomerScore.__table__, CustomerScore.__table__.c.customer_id)
        self.value_run_by_id = self._by_key(ValueRun.__table__, ValueRun.__table__.c.id)
        self.loss_by_customer = DataLoader(self._losses)
        self.rule_version_by_run = DataLoader(self._rule_versions)
        self.value_as_of = DataLoader(self._values_as_of)
        customers = Customer.__table__
        self.customer_by_id = self._by_key(customers, customers.c.id)
        self.customer_by_external_id = self._by_key(customers, customers.c.external_id)
        self.rep_by_id = self._by_key(SalesRep.__table__, SalesRep.__table__.c.id)
        self.product_by_id = self._by_key(Product.__table__, Product.__table__.c.id)
        self.lines_by_order = self._grouped(OrderLine.__table__, OrderLine.__table__.c.order_id,
                                            OrderLine.__table__.c.line_no)
        self.deliveries_by_order = self._grouped(Delivery.__table__, Delivery.__table__.c.order_id,
                                                 Delivery.__table__.c.id)
        self.child_pages = {name: DataLoader(self._page_loader(spec)) for name, spec in CHILD_LISTS.items()}
        self.child_counts = {name: DataLoader(self._count_loader(spec)) for name, spec in CHILD_LISTS.items()}

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(fn, *args, **kwargs)

    async def data_today(self) -> date:
        """The data's "now" (domain.data_date.data_today), read off the loop once per request."""
        if getattr(self, "_data_today", None) is None:  # one shared task: concurrent fields wait for one query
            from domain.data_date import data_today

            self._data_today = asyncio.ensure_future(self.run(data_today, self.engine))
        return await self._data_today

    def _select(self, stmt: sa.Select) -> list[Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(stmt))

    def _by_key(self, table: sa.Table, column: sa.Column) -> DataLoader:
        async def load(keys: Sequence[Hashable]) -> list[Row | None]:
            rows = await self.run(self._select, sa.select(table).where(column.in_(list(keys))))
            found = {row._mapping[column.name]: row for row in rows}
            return [found.get(k) for k in keys]

        return DataLoader(load)

    def _grouped(self, table: sa.Table, column: sa.Column, order: sa.Column) -> DataLoader:
        async def load(keys: Sequence[int]) -> list[list[Row]]:
            rows = await self.run(self._select, sa.select(table).where(column.in_(list(keys))).order_by(column, order))
            groups: dict[int, list[Row]] = defaultdict(list)
            for row in rows:
                groups[row._mapping[column.name]].append(row)
            return [groups.get(k, []) for k in keys]

        return DataLoader(load)

    def _page_loader(self, spec: ChildList):
        """Keys are (parent_id, first, after_key); keys sharing (first, after_key) are fetched in one statement."""
        table = spec.table
        parent = table.c[spec.parent_column]
        order_cols = [table.c[c] for c in spec.order_by]

        def fetch(parent_ids: list[int], limit: int, after: tuple | None) -> list[Row]:
            rank = sa.func.row_number().over(partition_by=parent, order_by=[c.desc() for c in order_cols])
            inner = sa.select(table, rank.label("_rank")).where(parent.in_(parent_ids))
            if after is not None:
                bounds = [sa.literal(_typed(c, v), type_=c.type) for c, v in zip(order_cols, after)]
                inner = inner.where(sa.tuple_(*order_cols) < sa.tuple_(*bounds))
            sub = inner.subquery()
            return self._select(sa.select(sub).where(sub.c._rank <= limit).order_by(sub.c[spec.parent_column], sub.c._rank))

        async def load(keys: Sequence[tuple[int, int, tuple | None]]) -> list[list[Row]]:
            by_args: dict[tuple, list[int]] = defaultdict(list)
            for parent_id, first, after in keys:
                by_args[(first, after)].append(parent_id)
            results: dict[tuple, list[Row]] = {}
            for (first, after), parent_ids in by_args.items():
                rows = await self.run(fetch, parent_ids, first + 1, after)
                grouped: dict[int, list[Row]] = defaultdict(list)
                for row in rows:
                    grouped[row._mapping[spec.parent_column]].append(row)
                for pid in parent_ids:
                    results[(pid, first, after)] = grouped.get(pid, [])
            return [results[k] for k in keys]

        return load

    async def _values_as_of(self, keys: Sequence[tuple[int, date]]) -> list[Any]:
        from schema.value import values_now

        return await self.run(values_now, self.engine, list(keys))

    async def _rule_versions(self, run_ids: Sequence[int]) -> list[Any]:
        from domain.models import EvaluationRun, RuleSet

        runs, sets = EvaluationRun.__table__, RuleSet.__table__
        rows = await self.run(self._select, sa.select(runs.c.id, sets.c.version)
                              .select_from(runs.join(sets, sets.c.id == runs.c.rule_set_id))
                              .where(runs.c.id.in_(list(run_ids))))
        found = {r[0]: r[1] for r in rows}
        return [found.get(r) for r in run_ids]

    async def _losses(self, customer_ids: Sequence[int]) -> list[Any]:
        from domain.loss import loss_episodes

        found = {e.customer_id: e for e in await self.run(loss_episodes, self.engine, customer_ids=list(customer_ids))}
        return [found.get(c) for c in customer_ids]

    async def _explain(self, customer_ids: Sequence[int]) -> list[Any]:
        """Explanations for a batch of customers as of their stored evaluation: records loaded in one go."""
        return await self.run(self._explain_sync, list(customer_ids))

    def _explain_sync(self, customer_ids: list[int]) -> list[Any]:
        from domain.evaluation import cutoffs_for
        from domain.records import load_all_records
        from rules.explain import explain

        rules = self._rules() if self._rules else None
        table = CustomerEvaluation.__table__
        stored = {r.customer_id: r for r in self._select(sa.select(table).where(table.c.customer_id.in_(customer_ids)))}
        records: dict[int, Any] = {}
        for as_of in {r.as_of for r in stored.values()}:  # only what was known on each evaluation date
            records.update(load_all_records(self.engine, [c for c, r in stored.items() if r.as_of == as_of], as_of))
        cutoffs: dict[date, dict] = {}
        out = []
        for cid in customer_ids:
            row = stored.get(cid)
            if row is None or cid not in records or rules is None:
                out.append(None)
                continue
            if row.as_of not in cutoffs:
                cutoffs[row.as_of] = cutoffs_for(self.engine, rules, row.as_of)
            out.append(explain(rules, records[cid], row.as_of, cutoffs[row.as_of]))
        return out

    def _count_loader(self, spec: ChildList):
        parent = spec.table.c[spec.parent_column]

        async def load(keys: Sequence[int]) -> list[int]:
            rows = await self.run(self._select, sa.select(parent, sa.func.count()).where(parent.in_(list(keys))).group_by(parent))
            counts = dict((r[0], r[1]) for r in rows)
            return [counts.get(k, 0) for k in keys]

        return load
