"""SQLModel tables: the customer graph, what customers bought and cost, and evaluation results.

Every table that belongs to a customer carries `customer_id`, so batch queries group and join on customer id
only and the schema can be distributed by customer (Citus) without cross-shard joins.
Money is stored as double precision: Tiergraph is an analytics engine, not a ledger, and both back ends
must compute the same sums the same way.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SalesRep(SQLModel, table=True):
    __tablename__ = "sales_reps"
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    name: str = Field(max_length=200)
    email: Optional[str] = Field(default=None, max_length=200)
    region: Optional[str] = Field(default=None, max_length=100)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    name: str = Field(max_length=300)
    region: Optional[str] = Field(default=None, max_length=100, index=True)
    industry: Optional[str] = Field(default=None, max_length=100)
    size: Optional[str] = Field(default=None, max_length=50)
    owner_rep_id: Optional[int] = Field(default=None, foreign_key="sales_reps.id", index=True)
    seasonal: bool = Field(default=False)
    # The business itself stopped trading with this customer from this date on.
    blocked_from: Optional[date] = Field(default=None)
    created_at: date
    # Company hierarchy: value rolls up through parent accounts.
    parent_id: Optional[int] = Field(default=None, foreign_key="customers.id", index=True)
    # Who brought this customer in: counted as indirect value of the referrer.
    referred_by_id: Optional[int] = Field(default=None, foreign_key="customers.id", index=True)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Payment behaviour: the terms the customer was given (days from invoice to due date), its credit grade and
    # the most it may owe at once (utilisation = outstanding invoices / credit_limit).
    payment_terms_days: Optional[int] = None
    credit_grade: Optional[str] = Field(default=None, max_length=20)
    credit_limit: Optional[float] = None
    # Privacy: whether the customer consented to being contacted, and when that was given or withdrawn.
    consent: bool = Field(default=False)
    consent_at: Optional[date] = None
    # Set by eraseCustomer: personal fields were removed; the records stay, anonymised (domain.privacy).
    erased_at: Optional[datetime] = None


class Product(SQLModel, table=True):
    __tablename__ = "products"
    id: Optional[int] = Field(default=None, primary_key=True)
    sku: str = Field(unique=True, index=True, max_length=100)
    name: str = Field(max_length=300)
    unit_cost: Optional[float] = Field(default=None)
    seasonal: bool = Field(default=False)
    category: Optional[str] = Field(default=None, max_length=100, index=True)


class Order(SQLModel, table=True):
    """An order with its totals kept beside it, so value queries never need to read the lines."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_date", "customer_id", "ordered_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    customer_id: int = Field(foreign_key="customers.id")
    ordered_at: date = Field(index=True)
    amount: float = 0.0
    # NULL when any line's cost is unknown: the margin is then unknown, not equal to the amount.
    cost_of_goods: Optional[float] = None
    margin: Optional[float] = None
    line_count: int = 0


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no", name="uq_order_lines_order_line"),
        Index("ix_order_lines_customer", "customer_id"),
        Index("ix_order_lines_product", "product_id"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id")
    customer_id: int = Field(foreign_key="customers.id")
    line_no: int
    product_id: int = Field(foreign_key="products.id")
    quantity: float
    unit_price: float
    unit_cost: Optional[float] = None
    is_return: bool = False


class Complaint(SQLModel, table=True):
    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_customer_opened", "customer_id", "opened_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    customer_id: int = Field(foreign_key="customers.id")
    order_id: Optional[int] = Field(default=None, foreign_key="orders.id")
    opened_at: date
    due_at: Optional[date] = None
    resolved_at: Optional[date] = None
    category: Optional[str] = Field(default=None, max_length=100)
    cost: float = 0.0


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_customer_promised", "customer_id", "promised_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    order_id: int = Field(foreign_key="orders.id", index=True)
    customer_id: int = Field(foreign_key="customers.id")
    promised_at: date
    delivered_at: Optional[date] = None
    delay_reason: Optional[str] = Field(default=None, max_length=200)
    cost: Optional[float] = None


class Interaction(SQLModel, table=True):
    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_customer_date", "customer_id", "occurred_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    customer_id: int = Field(foreign_key="customers.id")
    rep_id: Optional[int] = Field(default=None, foreign_key="sales_reps.id", index=True)
    occurred_at: date
    kind: str = Field(max_length=50)  # call / visit / email / win_back / ...
    cost: float = 0.0
    note: Optional[str] = None


class Survey(SQLModel, table=True):
    """One NPS (0-10) or CSAT (1-5) answer; promoter / detractor are record flags (domain.record_flags)."""

    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_customer_answered", "customer_id", "answered_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    customer_id: int = Field(foreign_key="customers.id")
    answered_at: date
    kind: str = Field(max_length=10)  # "nps" / "csat"
    score: float
    channel: Optional[str] = Field(default=None, max_length=50)
    comment: Optional[str] = None


class Opportunity(SQLModel, table=True):
    """A deal in the pipeline; open until closed_at, then won or lost (outcome)."""

    __tablename__ = "opportunities"
    __table_args__ = (Index("ix_opportunities_customer_opened", "customer_id", "opened_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    customer_id: int = Field(foreign_key="customers.id")
    owner_rep_id: Optional[int] = Field(default=None, foreign_key="sales_reps.id", index=True)
    opened_at: date
    stage: str = Field(max_length=50)
    amount: float = 0.0
    probability: float = 0.0  # 0 to 1
    expected_close_on: Optional[date] = None
    closed_at: Optional[date] = None
    outcome: Optional[str] = Field(default=None, max_length=10)  # "won" / "lost" once closed


class Invoice(SQLModel, table=True):
    """An invoice and its payment: paid in full on paid_at (NULL: not paid)."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_customer_issued", "customer_id", "issued_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True, max_length=100)
    customer_id: int = Field(foreign_key="customers.id")
    issued_at: date
    due_at: date
    amount: float = 0.0
    paid_at: Optional[date] = None


class PrivacyAudit(SQLModel, table=True):
    """What was done under privacy law (export, erase), by whom and when; kept after an erase. It names the
    customer by internal id only, so it holds nothing personal itself."""

    __tablename__ = "privacy_audit"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(index=True)
    action: str = Field(max_length=20)  # "export" / "erase"
    done_at: datetime = Field(default_factory=utcnow)
    done_by: Optional[str] = Field(default=None, max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RuleSet(SQLModel, table=True):
    """A published version of the rule text; the newest active one drives evaluation."""

    __tablename__ = "rule_sets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_rule_sets_name_version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, default="default")
    version: int
    source: str
    checksum: str = Field(max_length=64)
    published_at: datetime = Field(default_factory=utcnow)
    published_by: Optional[str] = Field(default=None, max_length=200)
    is_active: bool = Field(default=False, index=True)


class EvaluationRun(SQLModel, table=True):
    """One batch evaluation; rank cut-offs are kept so the per-customer path can reuse them."""

    __tablename__ = "evaluation_runs"
    id: Optional[int] = Field(default=None, primary_key=True)
    rule_set_id: Optional[int] = Field(default=None, foreign_key="rule_sets.id", index=True)
    rules_checksum: str = Field(max_length=64)
    as_of: date = Field(index=True)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None
    customer_count: int = 0
    # rank rule key -> cut-off value, e.g. {"top:profit_12m:20%": 1234.5}
    cutoffs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CustomerEvaluation(SQLModel, table=True):
    """Each customer's current tier, status, tags and metric values; a row is rewritten only when its result
    changes (domain.evaluation_state.apply_states), so `as_of` / `run_id` say which evaluation last changed it."""

    __tablename__ = "customer_evaluations"
    customer_id: int = Field(foreign_key="customers.id", primary_key=True)
    # the batch run that wrote the row; a live evaluation keeps the run whose cut-offs it used (NULL: none yet)
    run_id: Optional[int] = Field(default=None, foreign_key="evaluation_runs.id", index=True)
    as_of: date
    tier: Optional[str] = Field(default=None, max_length=100, index=True)
    tier_line: Optional[int] = None
    status: Optional[str] = Field(default=None, max_length=100, index=True)
    status_line: Optional[int] = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # the earliest day the result changes with no new data (NULL: never); the tick re-evaluates who is due
    next_change_on: Optional[date] = Field(default=None, index=True)
    # the effective date of the change that set the current tier / status (the same however many runs saw it)
    tier_since: Optional[date] = None
    status_since: Optional[date] = None


def _as_of_of_row(context) -> date:
    """A change inserted without an effective date (by hand, in a bench) is dated by its evaluation, inexactly."""
    return context.get_current_parameters()["as_of"]


class TierChange(SQLModel, table=True):
    """Append-only log of tier, status and tag changes; never updated, never deleted.

    Rows are appended only inside domain.evaluation_state.writer_transaction (writers take turns), so ids are
    assigned in commit order and a reader paging by "id > last seen" never skips one."""

    __tablename__ = "tier_changes"
    __table_args__ = (Index("ix_tier_changes_customer", "customer_id", "id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    run_id: Optional[int] = Field(default=None, foreign_key="evaluation_runs.id")
    as_of: date  # the evaluation date that saw the change
    kind: str = Field(max_length=20)  # "tier", "status" or "tag" (tag: old_value = removed, new_value = added)
    old_value: Optional[str] = Field(default=None, max_length=100)
    new_value: Optional[str] = Field(default=None, max_length=100)
    changed_at: datetime = Field(default_factory=utcnow)  # recordedAt: when the change was committed
    # the day the customer's data first satisfied the deciding rule; exact=False: the evaluation date instead
    effective_on: date = Field(sa_column_kwargs={"default": _as_of_of_row})
    exact: bool = False
    cause: str = Field(default="MANUAL", max_length=20)  # NEW_DATA / TIME / RULES / CUTOFFS / MANUAL
    cause_record_kind: Optional[str] = Field(default=None, max_length=20)
    cause_record_external_id: Optional[str] = Field(default=None, max_length=100)
    cause_rule_set_version: Optional[int] = None
    rule_line: Optional[int] = None
    rule_text: Optional[str] = Field(default=None, max_length=2000)
    rule_set_version: Optional[int] = None
    metrics: Optional[dict[str, Any]] = Field(default=None, sa_column=Column(JSON, nullable=True))


class CustomerScore(SQLModel, table=True):
    """Value scores of one customer as of a date, replaced whole by a value batch run.

    Read by the rule language's built-in metrics (rfm_r, clv, p_alive, ...) and by GraphQL `Customer.value`.
    Unknown stays NULL (e.g. margin when costs are unknown, growth when the earlier window had no revenue).
    """

    __tablename__ = "customer_scores"
    customer_id: int = Field(foreign_key="customers.id", primary_key=True)
    run_id: int = Field(foreign_key="value_runs.id", index=True)
    as_of: date
    recency_days: Optional[float] = None  # days since the last order; NULL when never ordered
    frequency: int = 0  # distinct order days in the RFM window
    monetary: Optional[float] = None  # revenue (or margin, per settings) in the RFM window
    rfm_r: Optional[int] = None
    rfm_f: Optional[int] = None
    rfm_m: Optional[int] = None
    rfm_cell: Optional[str] = Field(default=None, max_length=5)
    revenue_12m: float = 0.0
    margin_12m: Optional[float] = None
    service_cost_12m: float = 0.0
    profit_12m: Optional[float] = None
    growth_90d: Optional[float] = None
    growth_yoy: Optional[float] = None
    growth_ytd: Optional[float] = None  # this year so far vs the same days of last year
    # the lifetime model's inputs (weeks; same-day orders count once), kept so any horizon can be predicted
    repeat_purchases: Optional[float] = None
    recency_weeks: Optional[float] = None
    age_weeks: Optional[float] = None
    p_alive: Optional[float] = None
    expected_orders_90d: Optional[float] = None
    expected_spend: Optional[float] = None
    clv: Optional[float] = None
    seasonal_auto: bool = False
    usual_gap_days: Optional[float] = None
    referred_revenue_12m: float = 0.0
    referred_profit_12m: Optional[float] = None
    group_revenue_12m: float = 0.0
    group_profit_12m: Optional[float] = None


class ValueRun(SQLModel, table=True):
    """One value batch run: the fitted lifetime-value models with their standard errors and holdout check."""

    __tablename__ = "value_runs"
    id: Optional[int] = Field(default=None, primary_key=True)
    as_of: date = Field(index=True)
    model: str = Field(max_length=20)  # bgnbd / mbgnbd
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None
    customer_count: int = 0
    # params, standard errors, log-likelihood, holdout check, fit seconds
    fit: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WebhookEndpoint(SQLModel, table=True):
    """An integrator's URL that receives tier / status changes, signed with its own secret.

    `delivered_through` is the last change id the endpoint acknowledged (2xx): delivery is at least once, in
    order, and resumes from there after failures and restarts.
    """

    __tablename__ = "webhook_endpoints"
    id: Optional[int] = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)
    kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = Field(default=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_through: int = 0
    failures: int = 0
    next_attempt_at: Optional[datetime] = None
    last_error: Optional[str] = Field(default=None, max_length=500)


class Job(SQLModel, table=True):
    """Long work started through the API (publish, rollback: a whole-base evaluation), run off the request.

    `slot` is "evaluation" while the job is queued or running and NULL after: its unique index lets one
    evaluation job run at a time, across every server process sharing the database.
    """

    __tablename__ = "jobs"
    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # publish / rollback
    state: str = Field(max_length=20, index=True)  # queued / running / succeeded / failed
    slot: Optional[str] = Field(default=None, max_length=20, unique=True, index=True)
    rule_set_id: Optional[int] = Field(default=None, foreign_key="rule_sets.id")
    as_of: date
    requested_by: Optional[str] = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    done: int = 0
    total: Optional[int] = None
    evaluated_customers: Optional[int] = None
    error: Optional[str] = Field(default=None, max_length=2000)


class LossMark(SQLModel, table=True):
    """A manual loss mark: an admin said the customer was lost on a day (why, in `text`), or reactivated it.

    A lost mark starts a MANUAL loss episode that ends at the customer's next order after that day or the next
    reactivation mark on or after it, whichever comes first (domain.loss_marks.manual_episodes_query).
    """

    __tablename__ = "loss_marks"
    __table_args__ = (Index("ix_loss_marks_customer_marked_on", "customer_id", "marked_on"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    kind: str = Field(max_length=20)  # "lost" / "reactivated"
    marked_on: date
    text: Optional[str] = Field(default=None, max_length=2000)  # a lost mark's reason; a reactivation's note
    recorded_at: datetime = Field(default_factory=utcnow)
    recorded_by: Optional[str] = Field(default=None, max_length=200)


class StoredLossEpisode(SQLModel, table=True):
    """The loss history kept ready (domain.loss_store): the rows domain.loss_history derives, for all history and
    every loss date the data already implies, so reports of any period read it instead of deriving it again."""

    __tablename__ = "loss_episodes"
    __table_args__ = (Index("ix_loss_episodes_customer_lost_on", "customer_id", "lost_on"),
                      Index("ix_loss_episodes_lost_on", "lost_on"))
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    lost_on: date
    how: str = Field(max_length=10)
    rule_line: Optional[int] = None
    reason: Optional[str] = Field(default=None, max_length=2000)
    reactivated_on: Optional[date] = None
    end_kind: Optional[str] = Field(default=None, max_length=20)
    reactivation_note: Optional[str] = Field(default=None, max_length=2000)
    last_order_at: Optional[date] = None
    at_risk_on: Optional[date] = None


class LossHistoryState(SQLModel, table=True):
    """What the stored loss history was built from (one row): the status rules' checksum and the evaluation and
    value runs in force then. Another run or other rules make it stale until the next rebuild."""

    __tablename__ = "loss_history_state"
    id: int = Field(default=1, primary_key=True)
    rules_checksum: str = Field(max_length=64)
    evaluation_run_id: Optional[int] = None
    value_run_id: Optional[int] = None
    built_at: datetime = Field(default_factory=utcnow)
