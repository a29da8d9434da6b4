"""Why customers were lost and who tried to win them back, over GraphQL: lossReasons and winBack of a period."""
from __future__ import annotations

import enum
from datetime import date
from typing import TYPE_CHECKING, Annotated, Optional

import strawberry
from strawberry.types import Info

from domain import loss_reasons as reasons
from domain import win_back
from schema.context import ctx
from schema.loss import FromArg, ToArg, loss_period, loss_rules, run_loss
from schema.permissions import Public

if TYPE_CHECKING:
    from schema.customers import SalesRep


@strawberry.enum(description="What a loss reason looks at (docs/api.md, \"Loss reasons\").")
class LossReasonKind(enum.Enum):
    OVERDUE_COMPLAINTS = strawberry.enum_value(reasons.OVERDUE_COMPLAINTS, description="A complaint opened in the "
                                               "12 months up to the reference day, overdue on that day.")
    LATE_DELIVERIES = strawberry.enum_value(reasons.LATE_DELIVERIES, description="A delivery promised in those 12 "
                                            "months, late on the reference day.")
    DETRACTOR_ANSWERS = strawberry.enum_value(reasons.DETRACTOR_ANSWERS, description="A survey answered in those 12 "
                                              "months by a detractor (NPS below 7, CSAT below 3).")
    OVERDUE_INVOICES = strawberry.enum_value(reasons.OVERDUE_INVOICES, description="An invoice issued in those 12 "
                                             "months, unpaid and past due on the reference day.")
    COMPLAINT_CATEGORY = strawberry.enum_value(reasons.COMPLAINT_CATEGORY, description="A complaint of the category "
                                               "`value` opened in those 12 months, overdue or not.")
    DELAY_REASON = strawberry.enum_value(reasons.DELAY_REASON, description="A delivery late on the reference day "
                                         "with the delay reason `value`.")


@strawberry.type(description="One reason, as the share of lost and of retained customers who had it.")
class LossReason:
    reason: str = strawberry.field(description="In words, e.g. \"overdue complaints\", \"complaints about "
                                               "billing\".")
    kind: LossReasonKind
    value: Optional[str] = strawberry.field(description="The complaint category or delay reason; null for "
                                                        "the other kinds.")
    lost_share: Optional[float] = strawberry.field(description="lostCount / lostCustomers; null when nobody was "
                                                               "lost.")
    retained_share: Optional[float] = strawberry.field(description="retainedCount / retainedCustomers; null when "
                                                                   "nobody was retained.")
    lost_count: int
    retained_count: int
    ratio: Optional[float] = strawberry.field(description="lostShare / retainedShare; null when the retained share "
                                                          "is 0 or null.")
    summary: str = strawberry.field(description="E.g. \"lost customers had overdue complaints 3.1x as often as "
                                                "retained ones\".")

    @classmethod
    def of(cls, r: reasons.Reason) -> "LossReason":
        return cls(reason=r.reason, kind=LossReasonKind(r.kind), value=r.value, lost_share=r.lost_share,
                   retained_share=r.retained_share, lost_count=r.lost_count, retained_count=r.retained_count,
                   ratio=r.ratio, summary=r.summary)


@strawberry.type(description="Customers lost in [from, to] against customers retained over it: what each group had "
                             "in the 12 months before its reference day (the loss date; `to` for the retained).")
class LossReasons:
    from_: date = strawberry.field(name="from")
    to: date = strawberry.field(description="At most the data's today.")
    lost_customers: int = strawberry.field(description="Customers with a loss date in [from, to] (a customer lost "
                                                       "twice counts once).")
    retained_customers: int = strawberry.field(description="Customers who had ordered by `from`, were not lost on "
                                                           "it and were not lost in [from, to].")
    reasons: list[LossReason] = strawberry.field(description="Every reason found in either group, the highest "
                                                             "ratio first, null ratios last.")


@strawberry.type(description="The customers an owner rep lost in the period and the attempts to win them back.")
class RepWinBack:
    lost_customers: int
    with_attempt: int = strawberry.field(description="Lost customers with at least one interaction between turning "
                                                     "at risk (or the loss) and reactivation (or the data's today).")
    without_attempt: int
    reactivated_within_90_days_of_attempt: int = strawberry.field(
        description="Reactivated at most 90 days after an attempt.")
    attempts: int = strawberry.field(description="The interactions counted as attempts, by any rep.")
    rep_id: strawberry.Private[Optional[int]]

    @strawberry.field(description="The customers' owner rep; null for customers without an owner.")
    async def rep(self, info: Info) -> Optional[Annotated["SalesRep", strawberry.lazy("schema.customers")]]:
        from schema.customers import SalesRep

        if self.rep_id is None:
            return None
        row = await ctx(info).loaders.rep_by_id.load(self.rep_id)
        return SalesRep.from_row(row) if row else None


@strawberry.type(description="Win-back attempts for the customers lost in [from, to], per owner rep.")
class WinBack:
    from_: date = strawberry.field(name="from")
    to: date = strawberry.field(description="At most the data's today.")
    reps: list[RepWinBack] = strawberry.field(description="One row per owner rep with lost customers, the most "
                                                          "first; customers without an owner in one row, rep null.")


@strawberry.type
class LossReasonQueries:
    @strawberry.field(description="Why customers were lost in [from, to]: the share of lost and of retained "
                                  "customers with overdue complaints, late deliveries, each complaint category and "
                                  "delay reason, and the ratio.", permission_classes=[Public])
    async def loss_reasons(self, info: Info, from_: FromArg = None, to: ToArg = None) -> LossReasons:
        start, end = await loss_period(info, from_, to)
        found = await run_loss(info, reasons.loss_reasons, ctx(info).engine, await loss_rules(info), start, end)
        return LossReasons(from_=found.start, to=found.end, lost_customers=found.lost_customers,
                           retained_customers=found.retained_customers,
                           reasons=[LossReason.of(r) for r in found.reasons])

    @strawberry.field(description="Per owner rep, the customers lost in [from, to]: with and without a win-back "
                                  "attempt (any interaction), reactivated within 90 days after one, the attempts.",
                      permission_classes=[Public])
    async def win_back(self, info: Info, from_: FromArg = None, to: ToArg = None) -> WinBack:
        start, end = await loss_period(info, from_, to)
        today = await ctx(info).loaders.data_today()
        rows = await run_loss(info, win_back.win_back_by_rep, ctx(info).engine, await loss_rules(info), start, end, today)
        return WinBack(from_=start, to=end, reps=[
            RepWinBack(lost_customers=r.lost_customers, with_attempt=r.with_attempt, without_attempt=r.without_attempt,
                       reactivated_within_90_days_of_attempt=r.reactivated_within_90_days_of_attempt,
                       attempts=r.attempts, rep_id=r.rep_id) for r in rows])
