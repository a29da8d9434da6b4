"""The checked rule tree: what the parser + checker produce and both back ends consume.

Frozen dataclasses, one per node kind. Sugar is removed by the checker (percent literals become numbers,
`P% of X` becomes a multiplication, `a unless b` becomes `a and not b`), so the back ends handle only the
kinds below. Every node that came from text keeps its source position for explanations.

Typing: NUM nodes evaluate to a float or unknown (None); BOOL nodes to True / False / unknown (None);
STR nodes to a string or unknown. Empty sum / count are 0 (a sum whose values are all unknown is unknown); empty
avg / min / max are unknown. Walking the tree is generic (rules.tree): a field holding a node is visited.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

Unit = Literal["d", "w", "m", "y"]
Source = Literal["order", "complaint", "delivery", "interaction", "survey", "opportunity", "invoice", "order_line"]
AggFunc = Literal["sum", "count", "avg", "min", "max"]
ArithOp = Literal["+", "-", "*", "/"]
CompareOp = Literal["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True)
class Window:
    """`amount unit` ending on as_of, or ending `offset` before as_of (`90d before 90d`).

    Bounds are inclusive on both ends and computed in Python (rules.windows); SQL only sees dates.
    """

    amount: int
    unit: Unit
    offset: "Window | None" = None

    def key(self) -> str:
        own = f"{self.amount}{self.unit}"
        return own if self.offset is None else f"{own}_before_{self.offset.key()}"


# ---------- numeric / string expressions ----------


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class String:
    value: str


@dataclass(frozen=True)
class RecordField:
    """A field of one record inside an aggregate or a `where`: order.amount, complaint.cost, ..."""

    source: Source
    name: str


@dataclass(frozen=True)
class RecordFlag:
    """A derived boolean of one record inside `where`: complaint open / overdue, delivery late."""

    source: Source
    name: str


@dataclass(frozen=True)
class Aggregate:
    """sum(order.amount, 12m), count(complaint where open, 30d), count(order), avg(...), min, max."""

    func: AggFunc
    source: Source
    field: RecordField | None  # None only for count
    window: Window | None  # None: all records up to as_of
    where: "BoolExpr | None" = None


@dataclass(frozen=True)
class DaysSince:
    """`days since last order`: whole days from the latest record on or before as_of; unknown if none."""

    source: Source
    where: "BoolExpr | None" = None


@dataclass(frozen=True)
class DaysUntilAnniversary:
    """`days until anniversary`: days from as_of to the next anniversary of customer since (domain.anniversary)."""


@dataclass(frozen=True)
class MetricRef:
    name: str


@dataclass(frozen=True)
class Builtin:
    """A metric computed by Tiergraph itself (rfm_r, clv, p_alive, ...); see rules.builtins."""

    name: str


@dataclass(frozen=True)
class CustomerField:
    """A column of the customer (region, industry, size) or a custom attribute (attributes.<name>)."""

    name: str
    attribute: bool = False


@dataclass(frozen=True)
class Arith:
    op: ArithOp
    left: "NumExpr"
    right: "NumExpr"


@dataclass(frozen=True)
class Negate:
    operand: "NumExpr"


NumExpr = Union[Number, Aggregate, DaysSince, DaysUntilAnniversary, MetricRef, Builtin, Arith, Negate, RecordField, CustomerField]
StrExpr = Union[String, CustomerField, RecordField]

# ---------- boolean expressions ----------


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    left: "NumExpr | StrExpr"
    right: "NumExpr | StrExpr"


@dataclass(frozen=True)
class InList:
    operand: "NumExpr | StrExpr"
    values: tuple["Number | String", ...]


@dataclass(frozen=True)
class Rank:
    """`x in top 20%` / `in bottom 10%` / `in top 100`: over all evaluated customers with known x."""

    operand: "NumExpr"
    direction: Literal["top", "bottom"]
    amount: float
    percent: bool


@dataclass(frozen=True)
class NoRecord:
    """`no order 90d`: true when the customer has no such record in the window (also when it never had one)."""

    source: Source
    window: Window | None
    where: "BoolExpr | None" = None


@dataclass(frozen=True)
class Flag:
    """A customer flag that is never unknown: seasonal, blocked (blocked_from <= as_of), consent."""

    name: Literal["seasonal", "blocked", "consent"]


@dataclass(frozen=True)
class CustomerFor:
    """`customer for 5y`: customer since (domain.anniversary) is before the window ending on as_of starts."""

    window: Window


@dataclass(frozen=True)
class BoolMetric:
    """A boolean built-in metric (seasonal_auto, ...); unknown when not computed."""

    name: str


@dataclass(frozen=True)
class And:
    left: "BoolExpr"
    right: "BoolExpr"


@dataclass(frozen=True)
class Or:
    left: "BoolExpr"
    right: "BoolExpr"


@dataclass(frozen=True)
class Not:
    operand: "BoolExpr"


BoolExpr = Union[Compare, InList, Rank, NoRecord, Flag, CustomerFor, BoolMetric, RecordFlag, And, Or, Not]

# ---------- rule set ----------


@dataclass(frozen=True)
class Metric:
    name: str
    expr: NumExpr
    pos: Pos
    text: str


@dataclass(frozen=True)
class Rule:
    kind: Literal["tier", "status", "tag"]
    label: str
    condition: BoolExpr | None  # None: `otherwise`
    pos: Pos
    text: str  # the rule's source line, for explanations


@dataclass(frozen=True)
class RuleSet:
    """A checked rule set. `metrics` are in dependency order: each may use only those before it."""

    metrics: tuple[Metric, ...]
    tiers: tuple[Rule, ...]
    statuses: tuple[Rule, ...]
    tags: tuple[Rule, ...]
    source: str = ""
    warnings: tuple = field(default_factory=tuple)

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)
