"""Lost customers of any period: when, how, at what level, at what cost, and the evidence of why."""
from __future__ import annotations

import enum
from datetime import date
from typing import TYPE_CHECKING, Annotated, Optional

import strawberry
from strawberry.types import Info

from domain import loss
from domain.data_date import FIRST_DAY
from domain.loss_history import LossRules
from rules.to_sql_dated import DailyCondition
from schema.context import ctx
from schema.dates import checked_date
from schema.errors import UserError
from schema.pagination import Connection, build_connection, decode_cursor, page_size
from schema.permissions import Public

if TYPE_CHECKING:
    from schema.customers import Customer


@strawberry.enum(description="How a customer was lost.")
class LossHow(enum.Enum):
    BLOCKED = "BLOCKED"  # the business stopped trading with it (blocked_from)
    MANUAL = "MANUAL"    # marked lost by hand (markCustomerLost)
    RULE = "RULE"        # the active rule set's status rules made it `lost`


@strawberry.type(description="A complaint of the 12 months up to the loss, with its flags on the loss date.")
class LossComplaint:
    external_id: str
    opened_at: date
    category: Optional[str]
    overdue: bool
    open: bool


@strawberry.type(description="A delivery promised in the 12 months up to the loss, with its flag on the loss date.")
class LossDelivery:
    external_id: str
    promised_at: date
    delivered_at: Optional[date] = strawberry.field(description="Null when not delivered by the loss date.")
    late: bool
    delay_reason: Optional[str]


@strawberry.type
class CountByName:
    name: str
    count: int


@strawberry.type(description="Complaints of the 12 months up to the loss date, flags read on that day.")
class LossComplaints:
    count: int
    overdue: int
    open: int
    categories: list[CountByName]
    records: list[LossComplaint] = strawberry.field(description="The complaints behind the counts.")


@strawberry.type(description="Deliveries promised in the 12 months up to the loss date, flags read on that day.")
class LossDeliveries:
    count: int
    late: int
    late_rate: Optional[float] = strawberry.field(description="late / count; null without deliveries.")
    delay_reasons: list[CountByName] = strawberry.field(description="The stated reasons of the late ones.")
    records: list[LossDelivery]


@strawberry.type(description="A tier change effective in the 12 months before the loss.")
class LossTierChange:
    effective_on: date
    old_value: Optional[str]
    new_value: Optional[str]
    cause: str


def _counts(names: list[Optional[str]]) -> list[CountByName]:
    seen: dict[str, int] = {}
    for name in names:
        if name is not None:
            seen[name] = seen.get(name, 0) + 1
    return [CountByName(name=k, count=v) for k, v in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))]


@strawberry.type(description="Who tried to win the customer back: interactions from turning at risk (or the loss "
                             "date) to the loss, and after it until reactivation (or the data's today).")
class EpisodeWinBack:
    attempts_before: int
    attempts_before_by_owner: int
    attempts_after: int
    attempts_after_by_owner: int
    last_attempt_on: Optional[date]
    reactivated_within_90_days: bool = strawberry.field(description="Reactivated at most 90 days after an attempt.")


@strawberry.type(description="One loss episode: from the loss date to reactivation (the next order) or still open.")
class LossEpisode:
    lost_on: date = strawberry.field(description="The loss date: blocked_from, the manual mark's day, or the first "
                                                 "day the data known then satisfied the loss rule.")
    how: LossHow
    rule_line: Optional[int] = strawberry.field(description="RULE: the line of the status rule that made it lost.")
    rule_text: Optional[str] = strawberry.field(description="RULE: that rule as written.")
    reason: Optional[str] = strawberry.field(description="MANUAL: the reason given.")
    reactivated_on: Optional[date] = strawberry.field(description="The next order (or, for MANUAL, the "
                                                                  "reactivation if earlier); null: still lost.")
    reactivation_note: Optional[str]
    last_order_at: Optional[date] = strawberry.field(description="The last order on or before the loss date.")
    at_risk_on: Optional[date] = strawberry.field(description="RULE: the day the customer turned at_risk before "
                                                              "the loss; null when it never was.")
    tier_at_loss: Optional[str] = strawberry.field(description="The tier in force on the loss date, from the change "
                                                               "history (the rule set active then).")
    orders_before_loss: int
    first_time_buyer: bool = strawberry.field(description="Exactly one order before the loss.")
    revenue_lost: float = strawberry.field(description="Revenue of the 12 months up to the last order before the "
                                                       "loss: the yearly business that went away.")
    margin_lost: Optional[float] = strawberry.field(description="Margin of those orders; null when unknown.")
    orders_last_year: int
    row_id: strawberry.Private[int]
    counts: strawberry.Private[loss.LossEpisode]

    @strawberry.field
    async def customer(self, info: Info) -> Optional[Annotated["Customer", strawberry.lazy("schema.customers")]]:
        from schema.customers import Customer

        row = await ctx(info).loaders.customer_by_id.load(self.row_id)
        return Customer.from_row(row) if row else None

    async def _details(self, info: Info) -> loss.EpisodeDetails:
        return await ctx(info).loaders.loss_details.load((self.row_id, self.lost_on))

    @strawberry.field(description="Complaints of the 12 months up to the loss date, with their external ids.")
    async def complaints(self, info: Info) -> LossComplaints:
        d = await self._details(info)
        e = self.counts
        return LossComplaints(count=e.complaints, overdue=e.overdue_complaints, open=e.open_complaints,
                              categories=_counts([c["category"] for c in d.complaints]),
                              records=[LossComplaint(**c) for c in d.complaints])

    @strawberry.field(description="Deliveries promised in the 12 months up to the loss date.")
    async def deliveries(self, info: Info) -> LossDeliveries:
        d = await self._details(info)
        e = self.counts
        return LossDeliveries(count=e.deliveries, late=e.late_deliveries,
                              late_rate=e.late_deliveries / e.deliveries if e.deliveries else None,
                              delay_reasons=_counts([x["delay_reason"] for x in d.deliveries if x["late"]]),
                              records=[LossDelivery(**x) for x in d.deliveries])

    @strawberry.field(description="Tier changes effective in the 12 months before the loss, oldest first.")
    async def tier_changes_before(self, info: Info) -> list[LossTierChange]:
        d = await self._details(info)
        return [LossTierChange(**c) for c in d.tier_changes]

    @strawberry.field(description="Interactions by any rep and by the owner around the loss.")
    async def win_back(self, info: Info) -> EpisodeWinBack:
        w = await ctx(info).loaders.loss_win_back.load(self.counts)
        return EpisodeWinBack(attempts_before=w.attempts_before, attempts_before_by_owner=w.attempts_before_by_owner,
                              attempts_after=w.attempts_after, attempts_after_by_owner=w.attempts_after_by_owner,
                              last_attempt_on=w.last_attempt_on,
                              reactivated_within_90_days=w.reactivated_within_90_days)

    @classmethod
    def of(cls, e: loss.LossEpisode) -> "LossEpisode":
        return cls(lost_on=e.lost_on, how=LossHow(e.how), rule_line=e.rule_line, rule_text=e.rule_text,
                   reason=e.reason, reactivated_on=e.reactivated_on, reactivation_note=e.reactivation_note,
                   last_order_at=e.last_order_at, at_risk_on=e.at_risk_on, tier_at_loss=e.tier_at_loss,
                   orders_before_loss=e.orders_before_loss, first_time_buyer=e.orders_before_loss == 1,
                   revenue_lost=e.revenue_lost, margin_lost=e.margin_lost, orders_last_year=e.orders_last_year,
                   row_id=e.customer_id, counts=e)


@strawberry.type(description="Per tier at loss: the episodes of a period and what went with them.")
class LossByTier:
    tier_at_loss: Optional[str]
    customers: int = strawberry.field(description="Distinct customers (a customer lost twice counts once).")
    episodes: int
    revenue_lost: float
    margin_lost: Optional[float]
    blocked: int
    manual: int
    rule: int
    with_overdue_complaints: int
    with_late_deliveries: int
    reactivated: int


@strawberry.type(description="The period a loss report covers, after defaults and clamping.")
class LossPeriod:
    from_: date = strawberry.field(name="from")
    to: date = strawberry.field(description="At most the data's today: no loss is derived for days the data has "
                                            "not reached.")


async def loss_period(info: Info, start: Optional[date], end: Optional[date]) -> tuple[date, date]:
    """[from, to] of a loss report: both inclusive; `to` defaults to and is clamped at the data's today, `from`
    defaults to the first day of `to`'s month."""
    start, end = checked_date(start, "from"), checked_date(end, "to")
    today = await ctx(info).loaders.data_today()
    end = min(end or today, today)
    start = start or end.replace(day=1)
    if start > end:
        raise UserError("BAD_ARGUMENT", f"'from' ({start}) is after 'to' ({end}, the data's today at most)",
                        argument="from")
    return start, end


async def loss_rules(info: Info) -> LossRules:
    """The rules loss reports use: the stored loss history when it is current (domain.loss_store)."""
    return await ctx(info).loaders.loss_rules()


async def run_loss(info: Info, fn, *args, **kwargs):
    """A loss report off the event loop; a loss rule whose history cannot be derived is the admin's to fix."""
    try:
        return await ctx(info).loaders.run(fn, *args, **kwargs)
    except DailyCondition as exc:
        raise UserError("UNSUPPORTED_RULE", str(exc)) from None


FromArg = Annotated[Optional[date], strawberry.argument(name="from", description="First loss date (inclusive); "
                                                        "default: the first day of `to`'s month.")]
ToArg = Annotated[Optional[date], strawberry.argument(description="Last loss date (inclusive); default and at most "
                                                                   "the data's today.")]


@strawberry.type
class LossQueries:
    @strawberry.field(description="The loss episodes with a loss date in [from, to], the biggest revenue lost first "
                                  "(keyset-paginated); a customer lost twice in the period appears twice.",
                      permission_classes=[Public])
    async def lost_customers(self, info: Info, from_: FromArg = None, to: ToArg = None,
                             first: Optional[int] = None, after: Optional[str] = None,
                             how: Optional[LossHow] = None, tier_at_loss: Optional[str] = None,
                             region: Optional[str] = None,
                             owner: Annotated[Optional[str], strawberry.argument(
                                 description="The owner rep's external id.")] = None) -> Connection[LossEpisode]:
        start, end = await loss_period(info, from_, to)
        limit = page_size(first)
        key = decode_cursor("lost_customers", after)
        c = ctx(info)
        rules = await loss_rules(info)
        f = loss.LossFilter(how=how.value if how else None, tier_at_loss=tier_at_loss, region=region, owner=owner)
        after_key = (key[0], key[1], date.fromisoformat(key[2])) if key else None  # dates travel as ISO text
        rows, total = await run_loss(info, loss.lost_page, c.engine, rules, start, end, f, limit=limit + 1,
                                     after=after_key)
        pairs = [(LossEpisode.of(e), [e.revenue_lost, e.customer_id, e.lost_on]) for e in rows]
        return build_connection(pairs, kind="lost_customers", first=limit, total=total, after=after, as_of=end)

    @strawberry.field(description="Per tier at loss, the episodes of [from, to]: customers, revenue and margin lost, "
                                  "how they were lost, overdue complaints, late deliveries, reactivations.",
                      permission_classes=[Public])
    async def loss_summary(self, info: Info, from_: FromArg = None, to: ToArg = None) -> list[LossByTier]:
        start, end = await loss_period(info, from_, to)
        rows = await run_loss(info, loss.loss_summary, ctx(info).engine, await loss_rules(info), start, end)
        return [LossByTier(tier_at_loss=r.tier_at_loss, customers=r.customers, episodes=r.episodes,
                           revenue_lost=r.revenue_lost, margin_lost=r.margin_lost, blocked=r.blocked,
                           manual=r.manual, rule=r.rule, with_overdue_complaints=r.with_overdue_complaints,
                           with_late_deliveries=r.with_late_deliveries, reactivated=r.reactivated)
                for r in rows]


__all__ = ["LossEpisode", "LossQueries", "LossHow", "FIRST_DAY", "loss_period"]
