"""Every name the rule language knows besides the metrics a file defines.

One registry so the checker, the error suggestions ("did you mean ...?") and the docs agree. Issues that add a
computed metric register it in BUILTINS (name -> type + one-line description); the back ends look the same
name up when evaluating nodes.Builtin / nodes.BoolMetric.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from domain.record_flags import flag_names

Type = Literal["NUM", "BOOL", "STR"]
NUM: Type = "NUM"
BOOL: Type = "BOOL"
STR: Type = "STR"


@dataclass(frozen=True)
class BuiltinInfo:
    type: Type
    description: str


BUILTINS: dict[str, BuiltinInfo] = {
    "rfm_r": BuiltinInfo(NUM, "RFM recency score, 1 (long ago) to 5 (recent)"),
    "rfm_f": BuiltinInfo(NUM, "RFM frequency score, 1 (rare) to 5 (frequent)"),
    "rfm_m": BuiltinInfo(NUM, "RFM monetary score, 1 (low spend) to 5 (high spend)"),
    "clv": BuiltinInfo(NUM, "expected customer lifetime value"),
    "p_alive": BuiltinInfo(NUM, "probability the customer is still active, 0 to 1"),
    "expected_orders_90d": BuiltinInfo(NUM, "expected number of orders in the next 90 days"),
    "usual_gap_days": BuiltinInfo(NUM, "the customer's usual number of days between orders"),
    "seasonal_auto": BuiltinInfo(BOOL, "orders follow a yearly pattern (detected from history)"),
    "referred_revenue_12m": BuiltinInfo(NUM, "revenue in the last 12 months of customers this one referred"),
    "group_revenue_12m": BuiltinInfo(NUM, "revenue in the last 12 months of this customer and its child accounts"),
    "referred_profit_12m": BuiltinInfo(NUM, "profit in the last 12 months of customers this one referred"),
    "group_profit_12m": BuiltinInfo(NUM, "profit in the last 12 months of this customer and its child accounts"),
    "expected_spend": BuiltinInfo(NUM, "expected revenue per future order (Gamma-Gamma)"),
    "growth_yoy": BuiltinInfo(NUM, "revenue of the last 12 months vs the 12 before, minus 1"),
    "recency_days": BuiltinInfo(NUM, "days since the last order (as scored for RFM)"),
    "growth_ytd": BuiltinInfo(NUM, "revenue this year so far vs the same days of last year, minus 1"),
}

# Built-in metrics are read from the value scores (table customer_scores) of the same evaluation date; a customer
# without scores for that date has them unknown. Names equal the column names.
SCORE_COLUMNS: tuple[str, ...] = ("rfm_r", "rfm_f", "rfm_m", "clv", "p_alive", "expected_orders_90d", "usual_gap_days",
                                  "seasonal_auto", "referred_revenue_12m", "group_revenue_12m", "referred_profit_12m",
                                  "group_profit_12m", "expected_spend", "growth_yoy", "recency_days", "growth_ytd")


def builtin_values(scores, as_of) -> dict:
    """The built-in metric values of one customer from its customer_scores row, if that row is as of `as_of`."""
    if scores is None or scores.as_of != as_of:
        return {}
    return {name: getattr(scores, name) for name in SCORE_COLUMNS}


def register(name: str, type_: Type, description: str) -> None:
    """Add a built-in metric; later code calls this (or edits BUILTINS) when it computes a new one."""
    if type_ not in (NUM, BOOL):
        raise ValueError(f"a built-in metric is NUM or BOOL, not {type_!r}")
    BUILTINS[name] = BuiltinInfo(type_, description)


# Columns of the customer usable in conditions (text); custom attributes are `attributes.<name>` / `attr.<name>`.
CUSTOMER_FIELDS: dict[str, Type] = {"region": STR, "industry": STR, "size": STR, "credit_grade": STR,
                                    "payment_terms_days": NUM, "credit_limit": NUM}
CUSTOMER_FLAGS: tuple[str, ...] = ("seasonal", "blocked", "consent")  # -> nodes.Flag, never unknown
ATTRIBUTE_PREFIXES: tuple[str, ...] = ("attributes", "attr")


@dataclass(frozen=True)
class SourceInfo:
    """A kind of record a customer has: its fields (usable in aggregates and `where`) and derived flags."""

    fields: dict[str, Type]
    flags: tuple[str, ...]


SOURCES: dict[str, SourceInfo] = {
    "order": SourceInfo({"amount": NUM, "margin": NUM, "cost_of_goods": NUM}, flag_names("order")),
    "complaint": SourceInfo({"cost": NUM, "category": STR}, flag_names("complaint")),
    "delivery": SourceInfo({"cost": NUM}, flag_names("delivery")),
    "interaction": SourceInfo({"cost": NUM, "kind": STR}, flag_names("interaction")),
    "survey": SourceInfo({"score": NUM, "kind": STR, "channel": STR}, flag_names("survey")),
    "opportunity": SourceInfo({"amount": NUM, "probability": NUM, "weighted_amount": NUM, "stage": STR},
                              flag_names("opportunity")),
    "invoice": SourceInfo({"amount": NUM, "outstanding": NUM, "days_late": NUM}, flag_names("invoice")),
    "order_line": SourceInfo({"amount": NUM, "margin": NUM, "cost": NUM, "quantity": NUM, "category": STR,
                              "product": STR}, ()),
}

AGGREGATES: tuple[str, ...] = ("sum", "count", "avg", "min", "max")



@lru_cache(maxsize=1)
def keywords() -> frozenset[str]:
    """The words of the rule language, read from the grammar's keyword terminals (rules/grammar.lark)."""
    from rules.parser import lark_parser

    return frozenset(t.pattern.value for t in lark_parser().terminals
                     if t.pattern.type == "str" and t.pattern.value.isalpha())


def reserved_reason(name: str) -> str | None:
    """Why `name` can't be a metric name, or None when it can."""
    if name in keywords():
        return f"'{name}' is a word of the rule language"
    if name in BUILTINS:
        return f"'{name}' is a built-in metric"
    if name in CUSTOMER_FIELDS or name in CUSTOMER_FLAGS or name in ATTRIBUTE_PREFIXES or name == "customer":
        return f"'{name}' is a customer field"
    if name in SOURCES:
        return f"'{name}' is a record source"
    if name in AGGREGATES:
        return f"'{name}' is a function"
    return None
