"""Customer value over GraphQL: per-customer scores, the value pyramid per tier, ARPU, top customers."""
from __future__ import annotations

import enum
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Optional

import numpy as np
import strawberry
from sqlalchemy.engine import Row
from strawberry.relay import GlobalID
from strawberry.scalars import JSON
from strawberry.types import Info

from domain.value import bgnbd, mbgnbd
from domain.value import runs as value_runs
from domain.value.reports import arpu_by_tier, top_customers, value_summary, value_summary_as_of
from schema.dates import checked_date
from schema.permissions import Public
from schema.context import ctx
from schema.errors import UserError
from schema.movement import evaluated_day

if TYPE_CHECKING:
    from schema.customers import Customer

EXPECTATION = {"bgnbd": bgnbd.conditional_expected_purchases, "mbgnbd": mbgnbd.conditional_expected_purchases}
MAX_TOP = 100


@strawberry.type
class Rfm:
    r: Optional[int]
    f: Optional[int]
    m: Optional[int]
    cell: Optional[str] = strawberry.field(description="e.g. 5-4-5; null when the customer never ordered.")
    recency_days: Optional[float]
    frequency: int
    monetary: Optional[float]


@strawberry.enum(description="Whether the lifetime model (P(alive), expected orders, spend, CLV) was available.")
class ModelStatus(enum.Enum):
    FITTED = value_runs.FITTED
    NOT_FITTED = value_runs.NOT_FITTED
    NO_RUN = value_runs.NO_RUN


@strawberry.type(description="Value scores from the last value run (`tiergraph evaluate`), as of `asOf`.")
class CustomerValue:
    as_of: date
    revenue_12m: float
    margin_12m: Optional[float] = strawberry.field(description="Revenue minus cost of goods; null when unknown.")
    service_cost_12m: float = strawberry.field(description="Interactions, complaint handling and delivery cost.")
    profit_12m: Optional[float] = strawberry.field(description="Margin minus cost to serve.")
    growth: Optional[float] = strawberry.field(description="Revenue of the last 90 days vs the 90 before, minus 1.")
    growth_yoy: Optional[float] = strawberry.field(description="Revenue of the last 12 months vs the 12 before, "
                                                               "minus 1.")
    growth_ytd: Optional[float] = strawberry.field(description="Revenue this year so far vs the same days of last "
                                                               "year, minus 1.")
    rfm: Rfm
    clv: Optional[float] = strawberry.field(description="Discounted 12-month lifetime value.")
    p_alive: Optional[float] = strawberry.field(description="Probability the customer is still active.")
    expected_spend: Optional[float]
    seasonal_auto: bool = strawberry.field(description="Orders over 2+ years concentrate in a few calendar months.")
    usual_gap_days: Optional[float] = strawberry.field(description="Median days between order days.")
    referred_revenue_12m: Optional[float] = strawberry.field(
        description="Revenue of the customers it referred (null when asked as of a date other than the value run's).")
    referred_profit_12m: Optional[float]
    group_revenue_12m: Optional[float] = strawberry.field(
        description="Revenue of this account and its whole hierarchy below (null likewise).")
    group_profit_12m: Optional[float]
    run_id: strawberry.Private[Optional[int]]  # the value run whose lifetime model these scores use
    inputs: strawberry.Private[tuple]

    async def _model(self, info: Info) -> tuple[str, Optional[str]]:
        run = await ctx(info).loaders.value_run_by_id.load(self.run_id) if self.run_id is not None else None
        return value_runs.model_status(run, self.as_of, self.inputs[0] is not None)

    @strawberry.field(description="FITTED when a lifetime model fitted as of `asOf` or earlier was applied.")
    async def model_status(self, info: Info) -> ModelStatus:
        return ModelStatus((await self._model(info))[0])

    @strawberry.field(description="Why clv / pAlive / expectedSpend are null (no value run, no model fitted and "
                                  "why, no order yet, ...); null when they are known.")
    async def model_unavailable_reason(self, info: Info) -> Optional[str]:
        return (await self._model(info))[1]

    @strawberry.field(description="True when profit after cost to serve is below zero.")
    def negative_value(self) -> bool:
        return self.profit_12m is not None and self.profit_12m < 0

    @strawberry.field(description="Expected orders (order days) in the next `days` days, from the fitted model.")
    async def expected_orders(self, info: Info, days: int = 90) -> Optional[float]:
        if not 1 <= days <= 3650:
            raise UserError("BAD_ARGUMENT", f"'days' must be between 1 and 3650, got {days}")
        run = await ctx(info).loaders.value_run_by_id.load(self.run_id) if self.run_id is not None else None
        x, t_x, big_t = self.inputs
        purchases = (run.fit or {}).get("purchases") if run is not None else None
        if purchases is None or x is None:
            return None
        params = [purchases[k] for k in ("r", "alpha", "a", "b")]
        unit = (run.fit or {}).get("unit_days", 7)
        value = EXPECTATION[purchases.get("model", "bgnbd")](params, days / unit, np.array([x]), np.array([t_x]),
                                                               np.array([big_t]))
        return float(np.asarray(value).ravel()[0])

    @classmethod
    def from_row(cls, row: Row) -> "CustomerValue":
        m = row._mapping
        return cls(
            as_of=m["as_of"], revenue_12m=m["revenue_12m"], margin_12m=m["margin_12m"],
            service_cost_12m=m["service_cost_12m"], profit_12m=m["profit_12m"], growth=m["growth_90d"],
            growth_yoy=m["growth_yoy"], growth_ytd=m["growth_ytd"],
            rfm=Rfm(r=m["rfm_r"], f=m["rfm_f"], m=m["rfm_m"], cell=m["rfm_cell"], recency_days=m["recency_days"],
                    frequency=m["frequency"], monetary=m["monetary"]),
            clv=m["clv"], p_alive=m["p_alive"], expected_spend=m["expected_spend"],
            seasonal_auto=bool(m["seasonal_auto"]), usual_gap_days=m["usual_gap_days"],
            referred_revenue_12m=m["referred_revenue_12m"], referred_profit_12m=m["referred_profit_12m"],
            group_revenue_12m=m["group_revenue_12m"], group_profit_12m=m["group_profit_12m"], run_id=m["run_id"],
            inputs=(m["repeat_purchases"], m["recency_weeks"], m["age_weeks"]),
        )


    @classmethod
    def from_one(cls, v, run_id: Optional[int]) -> "CustomerValue":
        """Scores computed for one customer as of any date: RFM quintiles and indirect value need the whole base
        and stay null."""
        return cls(
            as_of=v.as_of, revenue_12m=v.revenue_12m, margin_12m=v.margin_12m, service_cost_12m=v.service_cost_12m,
            profit_12m=v.profit_12m, growth=v.growth_90d, growth_yoy=v.growth_yoy, growth_ytd=v.growth_ytd,
            rfm=Rfm(r=None, f=None, m=None, cell=None, recency_days=v.recency_days, frequency=v.frequency,
                    monetary=v.monetary),
            clv=v.clv, p_alive=v.p_alive, expected_spend=v.expected_spend, seasonal_auto=v.seasonal_auto,
            usual_gap_days=v.usual_gap_days, referred_revenue_12m=None, referred_profit_12m=None,
            group_revenue_12m=None, group_profit_12m=None, run_id=run_id,
            inputs=(v.repeat_purchases, v.recency_weeks, v.age_weeks),
        )


async def customer_value(info: Info, customer_id: int, as_of: Optional[date]) -> Optional[CustomerValue]:
    """The stored scores of the last value run; for another `as_of`, this customer's scores computed now."""
    c = ctx(info)
    as_of = checked_date(as_of)
    row = await c.loaders.score_by_customer.load(customer_id)
    if as_of is None or (row is not None and row.as_of == as_of):
        return CustomerValue.from_row(row) if row is not None else None
    return await c.loaders.value_as_of.load((customer_id, as_of))


def values_now(engine, keys: list[tuple[int, date]]) -> list[CustomerValue]:
    """Scores for (customer, as_of) pairs computed on the spot. Per date asked (one per query, as a rule), the
    records known on it load in one go and the lifetime model is the one fitted as of it or earlier."""
    from domain.records import load_all_records
    from domain.value.one_customer import VALUE_SOURCES, value_as_of

    found: dict[tuple[int, date], CustomerValue] = {}
    for as_of in sorted({d for _, d in keys}):
        ids = sorted({cid for cid, d in keys if d == as_of})
        run = value_runs.model_run_on(engine, as_of)
        fit, run_id = (run.fit, run.id) if run is not None else (None, None)
        records = load_all_records(engine, ids, as_of, VALUE_SOURCES)
        for cid in ids:
            found[(cid, as_of)] = CustomerValue.from_one(value_as_of(records[cid], as_of, fit), run_id)
    return [found[k] for k in keys]


@strawberry.type(description="One tier's customers, revenue and profit (12 months) and their shares of the base.")
class TierValue:
    tier: Optional[str] = strawberry.field(description="null: customers with scores but no evaluated tier.")
    customers: int
    share_of_customers: Optional[float]
    revenue: float
    profit: Optional[float]
    share_of_profit: Optional[float] = strawberry.field(description="null when total profit is not positive.")
    as_of: Optional[date]


@strawberry.type(description="One month's revenue per customer of one tier, with the tiers in force that month.")
class TierArpu:
    month: date
    last_day: date = strawberry.field(description="Last day counted: the month's end, or asOf for the current "
                                                  "month.")
    tier: Optional[str] = strawberry.field(description="The tier in force on lastDay; null: no tier then "
                                                       "(not yet evaluated, or no evaluation in force).")
    evaluation_as_of: Optional[date] = strawberry.field(description="as_of of the evaluation in force on lastDay "
                                                                    "(whose tiers are used); null when none was.")
    customers: int
    revenue: float
    arpu: Optional[float]
    as_of: date = strawberry.field(description="The date the months end at: the one asked, else the latest "
                                               "evaluation's as_of.")


@strawberry.enum
class TopBy(enum.Enum):
    GROWTH = "growth"
    REVENUE = "revenue"
    PROFIT = "profit"
    NEGATIVE_VALUE = strawberry.enum_value("negative_value", description="Customers whose profit (margin minus "
                                                                         "cost to serve) in the period is below "
                                                                         "zero, the most negative first.")


@strawberry.type(description="A customer with its figures for the period asked.")
class TopCustomer:
    id: strawberry.ID = strawberry.field(description="The customer's global id.")
    external_id: str
    name: str
    region: Optional[str]
    revenue: float
    previous_revenue: float = strawberry.field(description="Revenue in the same-length period just before.")
    growth: Optional[float]
    profit: Optional[float]
    from_: date = strawberry.field(name="from", description="First day of the period (the one asked, else 90 days "
                                                            "to `to`).")
    to: date = strawberry.field(description="Last day of the period: the one asked, else the latest evaluation's "
                                            "as_of.")
    row_id: strawberry.Private[int]

    @strawberry.field
    async def customer(self, info: Info) -> Optional[Annotated["Customer", strawberry.lazy("schema.customers")]]:
        from schema.customers import Customer

        row = await ctx(info).loaders.customer_by_id.load(self.row_id)
        return Customer.from_row(row) if row else None


@strawberry.type(description="The fitted lifetime-value model: parameters, standard errors, holdout check.")
class ValueModel:
    as_of: date
    model: str
    customers: int
    status: ModelStatus = strawberry.field(description="FITTED, or NOT_FITTED with the reason.")
    reason: Optional[str] = strawberry.field(description="Why no model was fitted (too few repeat buyers, ...).")
    notes: list[str] = strawberry.field(description="Warnings about the fit (convergence, parameters at the edge "
                                                    "of the search range, spend model, ...).")
    fit: JSON


def _tier_value(t, as_of) -> TierValue:
    return TierValue(tier=t.tier, customers=t.customers, share_of_customers=t.customer_share, revenue=t.revenue,
                     profit=t.profit, share_of_profit=t.profit_share, as_of=as_of)


@strawberry.type
class ValueQueries:
    @strawberry.field(description="Per tier, in rule order: customers, share of customers, revenue, profit and share "
                                  "of profit -- the customer pyramid beside the (often inverted) profit pyramid.",
                      permission_classes=[Public])
    async def value_summary(self, info: Info, include_total: bool = False,
                            as_of: Annotated[Optional[date], strawberry.argument(
                                description="A past day (from the first evaluation to the data's today): the "
                                            "tiers in force then, and revenue / profit of the 12 months up to it "
                                            "computed as the value batch computes them. Default: the stored "
                                            "scores and tiers.")] = None) -> list[TierValue]:
        c = ctx(info)
        if as_of is None:
            s = await c.loaders.run(value_summary, c.engine)
        else:
            s = await c.loaders.run(value_summary_as_of, c.engine, await evaluated_day(info, as_of))
        rows = [_tier_value(t, s.as_of) for t in s.tiers]
        return rows + [_tier_value(s.total, s.as_of)] if include_total else rows

    @strawberry.field(description="Average revenue per customer per calendar month and tier.",
                      permission_classes=[Public])
    async def arpu(self, info: Info, months: int = 12, as_of: Optional[date] = None,
                   include_current_month: Annotated[bool, strawberry.argument(
                       description="Also the incomplete month of asOf, up to asOf.")] = False) -> list[TierArpu]:
        if not 1 <= months <= 120:
            raise UserError("BAD_ARGUMENT", f"'months' must be between 1 and 120, got {months}")
        c = ctx(info)
        day = checked_date(as_of) or await c.loaders.data_today()
        rows = await c.loaders.run(arpu_by_tier, c.engine, months, day, include_current_month=include_current_month)
        return [TierArpu(month=r.month, last_day=r.end, tier=r.tier, evaluation_as_of=r.evaluation_as_of,
                         customers=r.customers, revenue=r.revenue, arpu=r.arpu, as_of=day) for r in rows]

    @strawberry.field(description="Largest, most profitable and fastest-growing customers in a period, by region "
                                  "and product; or (NEGATIVE_VALUE) those that cost more than they earned there.",
                      permission_classes=[Public])
    async def top_customers(self, info: Info, by: TopBy = TopBy.REVENUE, region: Optional[str] = None,
                            product: Annotated[Optional[str], strawberry.argument(description="A sku.")] = None,
                            from_: Annotated[Optional[date], strawberry.argument(name="from")] = None,
                            to: Optional[date] = None, first: int = 20) -> list[TopCustomer]:
        if not 1 <= first <= MAX_TOP:
            raise UserError("BAD_ARGUMENT", f"'first' must be between 1 and {MAX_TOP}, got {first}")
        end = checked_date(to, "to") or await ctx(info).loaders.data_today()
        start = checked_date(from_, "from") or end - timedelta(days=89)
        if end < start:
            raise UserError("BAD_ARGUMENT", f"'to' ({end}) is before 'from' ({start})")
        c = ctx(info)
        rows = await c.loaders.run(top_customers, c.engine, by.value, region, product, start=start, end=end,
                                   first=first)
        return [TopCustomer(id=strawberry.ID(str(GlobalID("Customer", r.external_id))), external_id=r.external_id,
                            name=r.name, region=r.region, revenue=r.revenue, previous_revenue=r.previous_revenue,
                            growth=r.growth, profit=r.profit, from_=start, to=end, row_id=r.customer_id)
                for r in rows]

    @strawberry.field(description="The lifetime-value model of the last value run, so users can judge its fit.",
                      permission_classes=[Public])
    async def value_model(self, info: Info) -> Optional[ValueModel]:
        c = ctx(info)
        run = await c.loaders.run(value_runs.latest_value_run, c.engine)
        if run is None:
            return None
        fit = run.fit or {}
        fitted = fit.get("status") == "fitted"
        return ValueModel(as_of=run.as_of, model=run.model, customers=run.customer_count,
                          status=ModelStatus.FITTED if fitted else ModelStatus.NOT_FITTED,
                          reason=None if fitted else fit.get("reason"), notes=[str(n) for n in fit.get("notes", [])],
                          fit=fit)
