"""Per-request DataLoaders: every nested list is fetched for all parents of a level in one statement.

The reads themselves live in domain/ (domain.lookups and the report modules); this module only batches the keys of
one GraphQL level and runs each read in a worker thread, so the event loop never waits on the database.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date
from functools import partial
from typing import Any, Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from starlette.concurrency import run_in_threadpool
from strawberry.dataloader import DataLoader

from domain import lookups
from domain.lookups import CHILD_LISTS, ChildList
from domain.models import (Customer, CustomerEvaluation, CustomerScore, Delivery, Invoice, Opportunity, OrderLine,
                           Product, SalesRep, Survey, ValueRun)
from schema.pagination import KEY_TYPES

# child-list cursors hold the order columns: dates travel as ISO text, ids as numbers
KEY_TYPES.update({name: tuple(date if isinstance(spec.table.c[c].type, sa.Date) else int for c in spec.order_by)
                  for name, spec in CHILD_LISTS.items()})


class Loaders:
    def __init__(self, engine: Engine, rules: Callable[[], Any] | None = None):
        self.engine = engine
        self._rules = rules
        self.evaluation_by_customer = self._by_key(CustomerEvaluation.__table__, "customer_id")
        self.explanations = DataLoader(self._explain)
        self.score_by_customer = self._by_key(CustomerScore.__table__, "customer_id")
        self.value_run_by_id = self._by_key(ValueRun.__table__, "id")
        self.loss_by_customer = DataLoader(self._losses)
        self.loss_history_by_customer = DataLoader(partial(self._losses, history=True))
        self.loss_details = DataLoader(self._loss_details)
        self.loss_win_back = DataLoader(self._loss_win_back, cache_key_fn=lambda e: e.key)
        self.rule_version_by_run = DataLoader(partial(self._batch, lookups.rule_versions_of_runs))
        self.value_as_of = DataLoader(self._values_as_of)
        self.monthly_revenue = DataLoader(self._monthly_revenue)
        self.customer_by_id = self._by_key(Customer.__table__, "id")
        self.customer_by_external_id = self._by_key(Customer.__table__, "external_id")
        self.rep_by_id = self._by_key(SalesRep.__table__, "id")
        self.product_by_id = self._by_key(Product.__table__, "id")
        self.lines_by_order = self._grouped(OrderLine.__table__, "order_id", "line_no")
        self.deliveries_by_order = self._grouped(Delivery.__table__, "order_id", "id")
        self.surveys_by_customer = self._grouped(Survey.__table__, "customer_id", "id")
        self.opportunities_by_customer = self._grouped(Opportunity.__table__, "customer_id", "id")
        self.invoices_by_customer = self._grouped(Invoice.__table__, "customer_id", "id")
        self.first_order_by_customer = DataLoader(self._first_orders)
        self.spend_by_category = DataLoader(partial(self._spend, "category"))
        self.spend_by_product = DataLoader(partial(self._spend, "product"))
        self.child_pages = {name: DataLoader(self._page_loader(spec)) for name, spec in CHILD_LISTS.items()}
        self.child_counts = {name: DataLoader(partial(self._batch, partial(_child_counts, spec=spec)))
                             for name, spec in CHILD_LISTS.items()}

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(fn, *args, **kwargs)

    async def _batch(self, read: Callable[..., list], keys: Sequence[Any]) -> list:
        return await self.run(read, self.engine, list(keys))

    async def data_today(self) -> date:
        """The data's "now" (domain.data_date.data_today), read off the loop once per request."""
        if getattr(self, "_data_today", None) is None:  # one shared task: concurrent fields wait for one query
            from domain.data_date import data_today

            self._data_today = asyncio.ensure_future(self.run(data_today, self.engine))
        return await self._data_today

    async def loss_rules(self) -> Any:
        """The active rules' LossRules for loss reports, reading the stored loss history when it is current
        (domain.loss_store.prepared, which rebuilds a stale one), once per request."""
        if getattr(self, "_loss_rules", None) is None:
            from domain.loss_store import prepared

            self._loss_rules = asyncio.ensure_future(self.run(prepared, self.engine, self._rules()))
        return await self._loss_rules

    def _by_key(self, table: sa.Table, column: str) -> DataLoader:
        return DataLoader(partial(self._batch, partial(_rows_by_key, table=table, column=column)))

    def _grouped(self, table: sa.Table, column: str, order: str) -> DataLoader:
        return DataLoader(partial(self._batch, partial(_rows_grouped, table=table, column=column, order=order)))

    def _page_loader(self, spec: ChildList):
        """Keys are (parent_id, first, after_key); keys sharing (first, after_key) are fetched in one statement."""

        async def load(keys: Sequence[tuple[int, int, tuple | None]]) -> list[list[Row]]:
            by_args: dict[tuple, list[int]] = defaultdict(list)
            for parent_id, first, after in keys:
                by_args[(first, after)].append(parent_id)
            results: dict[tuple, list[Row]] = {}
            for (first, after), parent_ids in by_args.items():
                grouped = await self.run(lookups.child_pages, self.engine, spec, parent_ids, first + 1, after)
                for pid in parent_ids:
                    results[(pid, first, after)] = grouped.get(pid, [])
            return [results[k] for k in keys]

        return load

    async def _values_as_of(self, keys: Sequence[tuple[int, date]]) -> list[Any]:
        from schema.value import values_now

        return await self.run(values_now, self.engine, list(keys))

    async def _monthly_revenue(self, keys: Sequence[tuple[int, int]]) -> list[Any]:
        """Keys are (customer id, months): one statement per distinct `months` (one per query, as a rule)."""
        from domain.value.reports import monthly_revenue

        today = await self.data_today()
        by_months: dict[int, list[int]] = defaultdict(list)
        for customer_id, months in keys:
            by_months[months].append(customer_id)
        found: dict[tuple[int, int], Any] = {}
        for months, ids in by_months.items():
            rows = await self.run(monthly_revenue, self.engine, ids, months, today)
            found.update({(cid, months): per_month for cid, per_month in rows.items()})
        return [found[k] for k in keys]

    async def _first_orders(self, customer_ids: Sequence[int]) -> list[Any]:
        """Each customer's first order on or before the data's today (None: none), one statement for the batch."""
        from domain.anniversaries import first_order_dates

        found = await self.run(first_order_dates, self.engine, list(customer_ids), await self.data_today())
        return [found.get(c) for c in customer_ids]

    async def _spend(self, by: str, keys: Sequence[tuple]) -> list[Any]:
        """Keys are (customer id, start, end) by category, (customer id, start, end, first) by product: one
        statement per distinct period (and `first`), one per query as a rule."""
        from domain import spend

        groups: dict[tuple, list[int]] = defaultdict(list)
        for customer_id, *args in keys:
            groups[tuple(args)].append(customer_id)
        found: dict[tuple, Any] = {}
        for args, ids in groups.items():
            read = spend.spend_by_category if by == "category" else spend.spend_by_product
            rows = await self.run(read, self.engine, ids, *args)
            found.update({(cid, *args): rows.get(cid, []) for cid in ids})
        return [found[k] for k in keys]

    async def _losses(self, customer_ids: Sequence[int], history: bool = False) -> list[Any]:
        """Each customer's loss episode open on the data's today (history: all its episodes up to today, the
        newest first), from the loss history of the active rules: one statement for the batch."""
        from domain.data_date import FIRST_DAY
        from domain.loss import lost_customers

        today = await self.data_today()
        rules = await self.loss_rules()
        found = await self.run(lost_customers, self.engine, rules, FIRST_DAY, today,
                               customer_ids=list(customer_ids))
        by_customer: dict[int, list[Any]] = defaultdict(list)
        for e in sorted(found, key=lambda e: e.lost_on, reverse=True):
            by_customer[e.customer_id].append(e)
        if history:
            return [by_customer.get(c, []) for c in customer_ids]
        return [next((e for e in by_customer.get(c, []) if e.reactivated_on is None or e.reactivated_on > today),
                     None) for c in customer_ids]

    async def _loss_win_back(self, page: Sequence[Any]) -> list[Any]:
        from domain.loss import episode_win_back

        found = await self.run(episode_win_back, self.engine, list(page))
        return [found.get(e.key) for e in page]

    async def _loss_details(self, keys: Sequence[tuple[int, date]]) -> list[Any]:
        from domain.loss import episode_details

        found = await self.run(episode_details, self.engine, list(keys))
        return [found[k] for k in keys]

    async def _explain(self, customer_ids: Sequence[int]) -> list[Any]:
        """Explanations for a batch of customers as of their stored evaluation: records loaded in one go."""
        from domain.evaluation import explain_stored

        rules = self._rules() if self._rules else None
        return await self.run(explain_stored, self.engine, rules, list(customer_ids))


def _rows_by_key(engine: Engine, keys: list, *, table: sa.Table, column: str) -> list[Row | None]:
    return lookups.rows_by_key(engine, table, column, keys)


def _rows_grouped(engine: Engine, keys: list, *, table: sa.Table, column: str, order: str) -> list[list[Row]]:
    return lookups.rows_grouped(engine, table, column, order, keys)


def _child_counts(engine: Engine, keys: list, *, spec: ChildList) -> list[int]:
    return lookups.child_counts(engine, spec, keys)
