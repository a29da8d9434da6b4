"""A customer's surveys, opportunities and invoices over GraphQL: the stored fields, and the flags and derived values
of domain.record_flags on a day (asOf, default the data's now), so the API and the rule language agree."""
from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Optional

import strawberry
from sqlalchemy.engine import Row
from strawberry.types import Info

from domain.record_flags import RECORD_VALUES, record_flag
from schema.context import ctx

if TYPE_CHECKING:
    from schema.customers import SalesRep

AS_OF = "On asOf (default: the data's now, the latest evaluation date)"


async def flag_day(info: Info, as_of: Optional[date]) -> date:
    """The day a record flag is seen on: the one asked for, else the data's now (domain.data_date)."""
    return as_of if as_of is not None else await ctx(info).loaders.data_today()


@strawberry.type(description="One NPS (0-10) or CSAT (1-5) answer.")
class Survey:
    external_id: str
    answered_at: date
    kind: str = strawberry.field(description="nps or csat.")
    score: float
    channel: Optional[str]
    comment: Optional[str]

    @strawberry.field(description="NPS below 7, CSAT below 3.")
    def detractor(self) -> bool:
        return record_flag("survey", "detractor").python(self, date.min)

    @strawberry.field(description="NPS 7 up to 9, CSAT 3 up to 4.")
    def passive(self) -> bool:
        return record_flag("survey", "passive").python(self, date.min)

    @strawberry.field(description="NPS 9 and above, CSAT 4 and above.")
    def promoter(self) -> bool:
        return record_flag("survey", "promoter").python(self, date.min)

    @classmethod
    def from_row(cls, row: Row) -> "Survey":
        m = row._mapping
        return cls(external_id=m["external_id"], answered_at=m["answered_at"], kind=m["kind"], score=m["score"],
                   channel=m["channel"], comment=m["comment"])


@strawberry.type(description="A deal in the pipeline: open until closed, then won or lost.")
class Opportunity:
    external_id: str
    opened_at: date
    stage: str
    amount: float
    probability: float = strawberry.field(description="0 to 1.")
    expected_close_on: Optional[date]
    closed_at: Optional[date]
    outcome: Optional[str] = strawberry.field(description="won or lost once closed.")
    owner_rep_id: strawberry.Private[Optional[int]]

    @strawberry.field(description="amount x probability.")
    def weighted_amount(self) -> float:
        return RECORD_VALUES[("opportunity", "weighted_amount")].python(self, date.min)

    @strawberry.field(description=f"{AS_OF}: not closed by then.")
    async def open(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("opportunity", "open").python(self, await flag_day(info, as_of))

    @strawberry.field(description=f"{AS_OF}: closed by then, won.")
    async def won(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("opportunity", "won").python(self, await flag_day(info, as_of))

    @strawberry.field(description=f"{AS_OF}: closed by then, lost.")
    async def lost(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("opportunity", "lost").python(self, await flag_day(info, as_of))

    @strawberry.field(description=f"{AS_OF}: still open and its expected close date has passed.")
    async def stalled(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("opportunity", "stalled").python(self, await flag_day(info, as_of))

    @strawberry.field(description="The rep who owns the deal.")
    async def owner(self, info: Info) -> Optional[Annotated["SalesRep", strawberry.lazy("schema.customers")]]:
        from schema.customers import SalesRep

        if self.owner_rep_id is None:
            return None
        row = await ctx(info).loaders.rep_by_id.load(self.owner_rep_id)
        return SalesRep.from_row(row) if row else None

    @classmethod
    def from_row(cls, row: Row) -> "Opportunity":
        m = row._mapping
        return cls(external_id=m["external_id"], opened_at=m["opened_at"], stage=m["stage"], amount=m["amount"],
                   probability=m["probability"], expected_close_on=m["expected_close_on"], closed_at=m["closed_at"],
                   outcome=m["outcome"], owner_rep_id=m["owner_rep_id"])


@strawberry.type(description="An invoice and its payment (paid in full on paidAt).")
class Invoice:
    external_id: str
    issued_at: date
    due_at: date
    amount: float
    paid_at: Optional[date]

    @strawberry.field(description=f"{AS_OF}: paid by then.")
    async def paid(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("invoice", "paid").python(self, await flag_day(info, as_of))

    @strawberry.field(description=f"{AS_OF}: not paid by then.")
    async def open(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("invoice", "open").python(self, await flag_day(info, as_of))

    @strawberry.field(description=f"{AS_OF}: not paid by then and due before it.")
    async def overdue(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("invoice", "overdue").python(self, await flag_day(info, as_of))

    @strawberry.field(description=f"{AS_OF}: paid by then, after its due date.")
    async def paid_late(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("invoice", "paid_late").python(self, await flag_day(info, as_of))

    @strawberry.field(description=f"{AS_OF}: days from the due date to the payment (paid by then) or to asOf (not "
                                  "paid), never below 0.")
    async def days_late(self, info: Info, as_of: Optional[date] = None) -> float:
        return RECORD_VALUES[("invoice", "days_late")].python(self, await flag_day(info, as_of))

    @strawberry.field(description=f"{AS_OF}: the amount when not paid by then, else 0.")
    async def outstanding(self, info: Info, as_of: Optional[date] = None) -> float:
        return RECORD_VALUES[("invoice", "outstanding")].python(self, await flag_day(info, as_of))

    @classmethod
    def from_row(cls, row: Row) -> "Invoice":
        m = row._mapping
        return cls(external_id=m["external_id"], issued_at=m["issued_at"], due_at=m["due_at"], amount=m["amount"],
                   paid_at=m["paid_at"])


# ---------- what the records say together (domain.record_summaries) ----------

@strawberry.type(description="Survey answers in a window ending on the data's now.")
class Satisfaction:
    window: str
    answers: int = strawberry.field(description="Answers in the window, NPS and CSAT.")
    detractors: int = strawberry.field(description="Answers in the window flagged detractor (NPS or CSAT).")
    promoters: int = strawberry.field(description="Answers in the window flagged promoter (NPS or CSAT).")
    latest_score: Optional[float] = strawberry.field(description="The latest answer in the window; null: none.")
    latest_kind: Optional[str]
    latest_answered_at: Optional[date]
    average_nps_score: Optional[float] = strawberry.field(description="Mean score of the NPS answers (0-10).")
    average_csat_score: Optional[float] = strawberry.field(description="Mean score of the CSAT answers (1-5).")
    nps: Optional[float] = strawberry.field(description="Promoters % - detractors % of the NPS answers in the "
                                                        "window, -100 to 100; null without NPS answers.")


@strawberry.type(description="Deals on the data's now.")
class Pipeline:
    open_count: int
    open_amount: float
    weighted_amount: float = strawberry.field(description="Sum of amount x probability of the open deals.")
    stalled_count: int = strawberry.field(description="Open deals whose expected close date has passed.")
    won_amount_12m: float = strawberry.field(description="Amount of the deals won (closed) in the 12 months "
                                                         "ending on the data's now, by their closing date.")


@strawberry.type(description="Payment terms, credit and invoices on the data's now.")
class Payment:
    terms_days: Optional[int] = strawberry.field(description="Days from invoice to due date the customer was given.")
    credit_grade: Optional[str]
    credit_limit: Optional[float]
    outstanding: float = strawberry.field(description="Invoices not paid yet, their amounts.")
    overdue_count: int = strawberry.field(description="Invoices not paid and past their due date.")
    overdue_amount: float
    credit_utilisation: Optional[float] = strawberry.field(description="outstanding / creditLimit; null without a "
                                                                       "(positive) credit limit.")
    invoices: strawberry.Private[list]
    day: strawberry.Private[date]

    @strawberry.field(description="Mean days late of the invoices issued in the window (ending on the data's now) "
                                  "and paid by then, on time counting 0: `avg(invoice.days_late where paid, 12m)` "
                                  "in rules. Null when there are none.")
    def average_days_late(self, window: str = "12m") -> Optional[float]:
        from domain.record_summaries import average_days_late
        from rules.windows import bounds
        from schema.dates import checked_window

        return average_days_late(self.invoices, bounds(checked_window(window), self.day))
