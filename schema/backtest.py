"""Backtesting a loss condition over GraphQL: how many customers it would have declared lost in a past period and
how many of them ordered again soon after, one condition or several side by side."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Optional

import strawberry
from strawberry.types import Info

from domain.backtest import MAX_HORIZON_DAYS, Backtest, backtest
from rules.change_days import reads
from rules.compiler import compile_condition
from rules.errors import RuleErrors
from schema.context import ctx
from schema.errors import UserError
from schema.loss import loss_period
from schema.permissions import Public
from schema.rules import rule_error

MAX_CONDITIONS = 10

Condition = Annotated[str, strawberry.argument(
    description="A loss condition in the rule language, e.g. \"no order 90d unless seasonal_auto\"; it may use the "
                "active rule set's metrics.")]
From = Annotated[date, strawberry.argument(name="from", description="First loss date looked at.")]
To = Annotated[date, strawberry.argument(description="Last loss date looked at (both ends inclusive); a date "
                                                     "after the data's today means the data's today, and `from` "
                                                     "must not be after that.")]
HorizonDays = Annotated[int, strawberry.argument(
    description=f"How many days after the loss date an order still proves the loss false (1..{MAX_HORIZON_DAYS}).")]


@strawberry.type(description="What a loss condition would have declared in a past period, each loss judged with "
                             "the data known on its loss date, and how many of those customers ordered again.")
class LossRuleBacktest:
    condition: str = strawberry.field(description="The condition, as given.")
    from_: date = strawberry.field(name="from", description="First loss date looked at.")
    to: date = strawberry.field(description="Last loss date looked at: the `to` asked for, or the data's today when "
                                            "that is earlier (no loss is derived for days the data has not "
                                            "reached).")
    horizon_days: int
    declared: int = strawberry.field(description="Loss episodes the condition would have started with a loss date "
                                                 "in the period: per customer, at most one per gap between orders "
                                                 "(the first day of the gap the condition held).")
    ordered_again: int = strawberry.field(description="Of those, the customers who ordered within `horizonDays` "
                                                      "after the loss date: losses declared wrongly, or too early.")
    false_loss_rate: Optional[float] = strawberry.field(description="orderedAgain / declared; null when nothing was "
                                                                    "declared.")
    median_days_from_last_order: Optional[float] = strawberry.field(
        description="Median days from the last order to the loss date, over the declared customers who had "
                    "ordered (x.5 when the two middle values differ by an odd number); null when none had.")
    horizon_incomplete: int = strawberry.field(
        description="Of `declared`, the episodes whose horizon (loss date + horizonDays) runs past the data's "
                    "today: an order in the rest of their horizon cannot show in the data yet, so orderedAgain and "
                    "falseLossRate may still grow. 0: every horizon is over.")

    @classmethod
    def of(cls, condition: str, b: Backtest) -> "LossRuleBacktest":
        return cls(condition=condition, from_=b.start, to=b.end, horizon_days=b.horizon_days, declared=b.declared,
                   ordered_again=b.ordered_again, false_loss_rate=b.false_loss_rate,
                   median_days_from_last_order=b.median_days_from_last_order,
                   horizon_incomplete=b.horizon_incomplete)


def _horizon(horizon_days: int) -> None:
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise UserError("BAD_ARGUMENT", f"'horizonDays' must be between 1 and {MAX_HORIZON_DAYS}, got "
                                        f"{horizon_days}", argument="horizonDays")


def _compiled(info: Info, text: str, argument: str, index: Optional[int] = None) -> Any:
    """The condition checked against the active rule set: RULE_ERROR with line, column and caret, or BAD_ARGUMENT
    for a condition whose history cannot be derived (`days since`)."""
    where = "" if index is None else f" {index + 1}"
    ruleset = ctx(info).rules
    try:
        condition = compile_condition(text, ruleset)
    except RuleErrors as exc:
        error = rule_error(exc, f"invalid condition{where}")
        error.details.update(argument=argument, **({} if index is None else {"index": index}))
        raise error from None
    if reads(ruleset, [condition]).daily:
        raise UserError("BAD_ARGUMENT", f"condition{where}: `days since` changes every day, so its history is not "
                                        "kept: write the condition with a window instead, e.g. `no order 90d` for "
                                        "`days since last order > 89`", argument=argument,
                        **({} if index is None else {"index": index}))
    return condition


def _run_all(engine: Any, compiled: list[Any], ruleset: Any, start: date, end: date, horizon_days: int,
             today: date) -> list[Backtest]:
    return [backtest(engine, c, ruleset, start, end, horizon_days, today) for c in compiled]


@strawberry.type
class BacktestQueries:
    @strawberry.field(description="What a loss condition would have done: the customers it would have declared "
                                  "lost with loss dates in [from, to], and how many ordered again within "
                                  "horizonDays. Compare conditions with aliases or backtestLossRules.",
                      permission_classes=[Public])
    async def backtest_loss_rule(self, info: Info, condition: Condition, from_: From, to: To,
                                 horizon_days: HorizonDays) -> LossRuleBacktest:
        return (await _backtests(info, [condition], from_, to, horizon_days, "condition"))[0]

    @strawberry.field(description=f"backtestLossRule for several conditions side by side (at most "
                                  f"{MAX_CONDITIONS}), in the order given, over the same period and horizon.",
                      permission_classes=[Public])
    async def backtest_loss_rules(self, info: Info,
                                  conditions: Annotated[list[str], strawberry.argument(
                                      description=f"Loss conditions in the rule language (1..{MAX_CONDITIONS}).")],
                                  from_: From, to: To, horizon_days: HorizonDays) -> list[LossRuleBacktest]:
        if not 1 <= len(conditions) <= MAX_CONDITIONS:
            raise UserError("BAD_ARGUMENT", f"'conditions' takes 1 to {MAX_CONDITIONS} conditions, got "
                                            f"{len(conditions)}", argument="conditions")
        return await _backtests(info, conditions, from_, to, horizon_days, "conditions")


async def _backtests(info: Info, conditions: list[str], start: date, end: date, horizon_days: int,
                     argument: str) -> list[LossRuleBacktest]:
    # the period as every loss report takes it: checked dates, `to` clamped to the data's today, from <= to
    start, end = await loss_period(info, start, end)
    _horizon(horizon_days)
    c = ctx(info)
    many = argument == "conditions"
    compiled = [_compiled(info, text, argument, i if many else None) for i, text in enumerate(conditions)]
    today = await c.loaders.data_today()  # the same one loss_period clamped to (cached per request)
    found = await c.loaders.run(_run_all, c.engine, compiled, c.rules, start, end, horizon_days, today)
    return [LossRuleBacktest.of(text, b) for text, b in zip(conditions, found)]
