"""The demo data set: every pattern it promises must be visible in the CSV files themselves.

The files are read back with the csv module only, and every metric is recomputed here from the rows, so these
tests say nothing about how the generator works inside, only what an importer (and a rule author) will see.
"""
from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from statistics import median

import pytest
import sqlalchemy as sa

from domain.demo import DemoSummary, generate_demo
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.records import load_all_records
from domain.settings import DEFAULT_RULES
from rules.compiler import compile_condition, load_rules_file
from rules.to_python import evaluate_condition

UNTIL = date(2025, 11, 20)
FILES = ("reps", "customers", "products", "orders", "complaints", "deliveries", "interactions", "surveys",
         "opportunities", "invoices")
REQUIRED = {  # README.md, "Import formats"
    "reps": {"external_id", "name"},
    "customers": {"external_id", "name"},
    "products": {"sku", "name"},
    "orders": {"order_external_id", "customer_external_id", "ordered_at", "sku", "quantity", "unit_price"},
    "complaints": {"external_id", "customer_external_id", "opened_at"},
    "deliveries": {"external_id", "order_external_id", "promised_at"},
    "interactions": {"external_id", "customer_external_id", "occurred_at", "kind"},
    "surveys": {"external_id", "customer_external_id", "answered_at", "kind", "score"},
    "opportunities": {"external_id", "customer_external_id", "opened_at", "stage", "amount", "probability"},
    "invoices": {"external_id", "customer_external_id", "issued_at", "amount"},
}


def d(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def true(text: str) -> bool:
    return text.lower() in {"true", "1", "yes"}


def year_before(day: date) -> date:
    """First day of the engine's 12-month window ending on `day` (rules.windows: calendar months)."""
    try:
        back = day.replace(year=day.year - 1)
    except ValueError:
        back = day.replace(year=day.year - 1, day=28)
    return back + timedelta(days=1)


@dataclass
class Demo:
    """The files of one run, plus per-order and per-customer facts derived from the rows."""

    summary: DemoSummary
    until: date
    rows: dict[str, list[dict[str, str]]]
    headers: dict[str, list[str]]
    order_customer: dict[str, str] = field(default_factory=dict)
    order_day: dict[str, date] = field(default_factory=dict)
    order_amount: dict[str, float] = field(default_factory=dict)
    order_margin: dict[str, float | None] = field(default_factory=dict)
    order_lines: dict[str, int] = field(default_factory=dict)
    customer_orders: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def customers(self) -> dict[str, dict[str, str]]:
        return {r["external_id"]: r for r in self.rows["customers"]}

    def revenue(self, first: date | None = None, last: date | None = None) -> Counter:
        last = last or self.until
        out: Counter = Counter()
        for o, amount in self.order_amount.items():
            day = self.order_day[o]
            if (first is None or day >= first) and day <= last:
                out[self.order_customer[o]] += amount
        return out

    def margin_12m(self) -> Counter:
        """Known margins only: an order with an unknown line cost has an unknown margin, not zero."""
        first = year_before(self.until)
        out: Counter = Counter()
        for o, m in self.order_margin.items():
            if m is not None and self.order_day[o] >= first:
                out[self.order_customer[o]] += m
        return out

    def service_cost_12m(self) -> Counter:
        first = year_before(self.until)
        out: Counter = Counter()
        for r in self.rows["complaints"]:
            if d(r["opened_at"]) >= first:
                out[r["customer_external_id"]] += float(r["cost"] or 0)
        for r in self.rows["interactions"]:
            if d(r["occurred_at"]) >= first:
                out[r["customer_external_id"]] += float(r["cost"] or 0)
        return out


def load(out: Path, summary: DemoSummary) -> Demo:
    rows, headers = {}, {}
    for name in FILES:
        with open(out / f"{name}.csv", newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows[name] = list(reader)
            headers[name] = list(reader.fieldnames or [])
    demo = Demo(summary, summary.until, rows, headers)
    product_cost = {p["sku"]: (float(p["unit_cost"]) if p["unit_cost"] else None) for p in rows["products"]}
    for line in rows["orders"]:
        o = line["order_external_id"]
        if o not in demo.order_day:
            demo.order_day[o] = d(line["ordered_at"])
            demo.order_customer[o] = line["customer_external_id"]
            demo.order_amount[o] = 0.0
            demo.order_margin[o] = 0.0
            demo.order_lines[o] = 0
            demo.customer_orders[line["customer_external_id"]].append(o)
        qty, price = float(line["quantity"]), float(line["unit_price"])
        cost = float(line["unit_cost"]) if line["unit_cost"] else product_cost[line["sku"]]
        demo.order_amount[o] += qty * price
        demo.order_lines[o] += 1
        if cost is None or demo.order_margin[o] is None:
            demo.order_margin[o] = None
        else:
            demo.order_margin[o] += qty * (price - cost)
    return demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    """The default size (5,000 customers x 3 years): the shares below are stated for it."""
    out = tmp_path_factory.mktemp("demo")
    return load(out, generate_demo(out, until=UNTIL))


# ---------- files, reps and the customer base ----------


def test_files_have_the_import_columns_and_the_summary_counts_them(demo):
    for name in FILES:
        assert REQUIRED[name] <= set(demo.headers[name]), name
    s = demo.summary
    assert (s.reps, s.customers, s.products) == tuple(len(demo.rows[n]) for n in ("reps", "customers", "products"))
    assert s.order_lines == len(demo.rows["orders"]) and s.orders == len(demo.order_day)
    assert s.return_lines == sum(true(r["is_return"]) for r in demo.rows["orders"])
    counted = ("complaints", "deliveries", "interactions", "surveys", "opportunities", "invoices")
    assert tuple(getattr(s, n) for n in counted) == tuple(len(demo.rows[n]) for n in counted)
    assert all(len(demo.rows[n]) > 0 for n in FILES)
    assert sum(s.profiles.values()) == s.customers
    for name, key in (("reps", "external_id"), ("customers", "external_id"), ("products", "sku"),
                      ("complaints", "external_id"), ("deliveries", "external_id"), ("interactions", "external_id"),
                      ("surveys", "external_id"), ("opportunities", "external_id"), ("invoices", "external_id")):
        keys = [r[key] for r in demo.rows[name]]
        assert len(keys) == len(set(keys)), f"{name}.{key} must be unique"


def test_reps_cover_the_regions_and_own_customers_of_their_region(demo):
    reps = {r["external_id"]: r for r in demo.rows["reps"]}
    assert 35 <= len(reps) <= 45
    assert {r["region"] for r in reps.values()} == {"north", "south", "east", "west", "central"}
    owned = Counter()
    for c in demo.rows["customers"]:
        rep = reps[c["owner_rep_external_id"]]
        assert rep["region"] == c["region"]
        owned[rep["external_id"]] += 1
    assert set(owned) == set(reps)


def test_customers_use_the_vocabularies_and_custom_attributes(demo):
    cs = demo.rows["customers"]
    assert len(cs) == 5000
    assert {c["region"] for c in cs} == {"north", "south", "east", "west", "central"}
    assert {c["industry"] for c in cs} == {"retail", "hvac", "manufacturing", "logistics", "healthcare",
                                           "construction", "food", "software"}
    sizes = Counter(c["size"] for c in cs)
    assert set(sizes) == {"small", "medium", "large", "enterprise"}
    assert sizes["small"] > sizes["medium"] > sizes["large"] > sizes["enterprise"] > 0
    segments = Counter(c["attr.segment"] for c in cs)
    assert set(segments) == {"b2b", "b2g"} and segments["b2b"] > segments["b2g"] > 0
    assert {c["attr.loyalty_member"] for c in cs} == {"true", "false"}
    for c in cs:
        assert c["name"] and d(c["created_at"]) <= demo.until


# ---------- revenue shape, products and orders ----------


def test_revenue_is_concentrated_in_a_few_accounts(demo):
    revenue = demo.revenue()
    values = sorted((revenue.get(c, 0.0) for c in demo.customers), reverse=True)
    top = sum(values[: len(values) // 5]) / sum(values)
    assert 0.70 <= top <= 0.85
    assert values[0] > 50 * median(v for v in values if v > 0)  # a few whales over a long tail


def test_order_volume_fits_the_default_size(demo):
    # B2B accounts order several times a year; the default base stays quick to import (about 180k lines)
    assert 120_000 <= len(demo.rows["orders"]) <= 240_000


def test_products_have_prices_costs_some_unknown_and_some_seasonal(demo):
    products = demo.rows["products"]
    assert 45 <= len(products) <= 55
    unknown = {p["sku"] for p in products if not p["unit_cost"]}
    assert 1 <= len(unknown) <= 5
    assert 2 <= sum(true(p["seasonal"]) for p in products) <= 8
    lines = demo.rows["orders"]
    for line in lines:
        price = float(line["unit_price"])
        assert price > 0
        if line["unit_cost"]:
            assert 0 < float(line["unit_cost"]) < price
    empty = [line for line in lines if not line["unit_cost"]]
    assert any(line["sku"] in unknown for line in empty)  # margin unknown
    assert any(line["sku"] not in unknown for line in empty)  # product cost fills in
    unknown_orders = sum(m is None for m in demo.order_margin.values())
    assert 0 < unknown_orders < 0.15 * len(demo.order_margin)


def test_seasonal_products_sell_only_in_their_season(demo):
    seasonal = {p["sku"] for p in demo.rows["products"] if true(p["seasonal"])}
    months = defaultdict(set)
    for line in demo.rows["orders"]:
        if line["sku"] in seasonal and not true(line["is_return"]):
            months[line["sku"]].add(d(line["ordered_at"]).month)
    assert months and all(len(m) <= 3 for m in months.values())


def test_orders_are_consistent(demo):
    skus = {p["sku"] for p in demo.rows["products"]}
    customers = demo.customers
    first_day = demo.until.replace(year=demo.until.year - 3)
    assert demo.summary.start == first_day
    by_order = defaultdict(set)
    for line in demo.rows["orders"]:
        o = line["order_external_id"]
        by_order[o].add((line["customer_external_id"], line["ordered_at"]))
        assert line["sku"] in skus and line["customer_external_id"] in customers
        qty = float(line["quantity"])
        assert (qty < 0) == true(line["is_return"]) and qty != 0
        assert first_day <= d(line["ordered_at"]) <= demo.until
    assert all(len(v) == 1 for v in by_order.values()), "a line's customer and date equal its order's"
    assert set(Counter(demo.order_lines.values())) == {1, 2, 3, 4}
    returns = sum(true(line["is_return"]) for line in demo.rows["orders"])
    assert 0.005 * len(demo.rows["orders"]) <= returns <= 0.05 * len(demo.rows["orders"])
    first_order = {c: min(demo.order_day[o] for o in os) for c, os in demo.customer_orders.items()}
    for c, row in customers.items():
        if c in first_order:
            assert d(row["created_at"]) <= first_order[c]


def test_returns_reference_skus_the_customer_bought_before(demo):
    bought: dict[tuple[str, str], date] = {}
    for line in demo.rows["orders"]:
        if not true(line["is_return"]):
            key = (line["customer_external_id"], line["sku"])
            bought[key] = min(bought.get(key, date.max), d(line["ordered_at"]))
    for line in demo.rows["orders"]:
        if true(line["is_return"]):
            first = bought.get((line["customer_external_id"], line["sku"]))
            assert first is not None and first < d(line["ordered_at"])


# ---------- archetypes ----------


def _seasonal(demo: Demo) -> set[str]:
    """A detector's view: >= 6 orders over >= 2 years, all inside at most 3 calendar months."""
    found = set()
    for c, orders in demo.customer_orders.items():
        days = [demo.order_day[o] for o in orders]
        if len(days) >= 6 and len({x.year for x in days}) >= 2 and len({x.month for x in days}) <= 3:
            found.add(c)
    return found


def test_seasonal_buyers_order_in_two_or_three_fixed_months(demo):
    customers = demo.customers
    detected = _seasonal(demo)
    flagged = {c for c, row in customers.items() if true(row["seasonal"])}
    assert 0.05 * len(customers) <= len(detected) <= 0.12 * len(customers)
    for c in flagged:  # every flagged customer orders in at most 3 calendar months, year after year
        days = [demo.order_day[o] for o in demo.customer_orders[c]]
        assert len({x.month for x in days}) <= 3 and len({x.year for x in days}) >= 2
    assert len(flagged & detected) >= 0.9 * len(flagged)
    unflagged = detected - flagged
    assert 1 <= len(unflagged) <= 0.4 * len(detected)  # something left for the seasonality detector


def _stopped(demo: Demo) -> dict[str, int]:
    """Non-seasonal customers with >= 4 order days, silent for >= 45 days and > 4x their median gap.

    Maps each to the days since their last order.
    """
    out = {}
    seasonal = _seasonal(demo)
    for c, orders in demo.customer_orders.items():
        days = sorted({demo.order_day[o] for o in orders})
        if len(days) < 4 or c in seasonal:
            continue
        gap = median((b - a).days for a, b in zip(days, days[1:]))
        silent = (demo.until - days[-1]).days
        if silent >= 45 and silent > 4 * gap:
            out[c] = silent
    return out


def test_churners_stop_buying_at_different_times(demo):
    n = len(demo.rows["customers"])
    blocked = {c for c, row in demo.customers.items() if row["blocked_from"]}
    churned = {c: s for c, s in _stopped(demo).items() if c not in blocked}
    assert 0.10 * n <= len(churned) <= 0.25 * n
    assert sum(s > 400 for s in churned.values()) >= 0.03 * n
    assert sum(90 <= s <= 400 for s in churned.values()) >= 0.04 * n
    assert sum(45 <= s < 90 for s in churned.values()) >= 0.01 * n


def test_win_back_calls_come_from_the_owner_after_the_last_order(demo):
    customers = demo.customers
    stopped = _stopped(demo)
    last = {c: max(demo.order_day[o] for o in os) for c, os in demo.customer_orders.items()}
    win_back = [r for r in demo.rows["interactions"] if r["kind"] == "win_back"]
    targets = {r["customer_external_id"] for r in win_back}
    for r in win_back:
        c = r["customer_external_id"]
        assert r["rep_external_id"] == customers[c]["owner_rep_external_id"]
        assert d(r["occurred_at"]) > last[c]
    assert len(targets & set(stopped)) >= 0.3 * len(stopped)
    assert len(set(stopped) - targets) > 0  # not every churner got a call


def test_fast_growers(demo):
    until = demo.until
    last90 = demo.revenue(until - timedelta(days=89))
    prev90 = demo.revenue(until - timedelta(days=179), until - timedelta(days=90))
    last180 = demo.revenue(until - timedelta(days=179))
    prev180 = demo.revenue(until - timedelta(days=359), until - timedelta(days=180))
    revenue_12m = demo.revenue(year_before(until))
    growers = {c for c in last90 if prev90[c] > 0 and last90[c] > 1.3 * prev90[c] and last180[c] >= 1.8 * prev180[c]}
    n = len(demo.rows["customers"])
    assert 0.03 * n <= len(growers) <= 0.10 * n
    assert sum(revenue_12m[c] > 10_000 for c in growers) >= 0.025 * n


def test_costly_customers_and_negative_value_accounts(demo):
    margin, service = demo.margin_12m(), demo.service_cost_12m()
    revenue_12m = demo.revenue(year_before(demo.until))
    complaints = Counter(r["customer_external_id"] for r in demo.rows["complaints"])
    n = len(demo.rows["customers"])
    many = {c for c, k in complaints.items() if k >= 10}
    assert 0.03 * n <= len(many) <= 0.08 * n
    heavy = {c for c in margin if margin[c] > 0 and service[c] > 0.5 * margin[c]}
    negative = {c for c in margin if margin[c] - service[c] < 0}
    assert len(heavy) >= 0.02 * n and len(negative) >= 0.01 * n
    big = sorted(revenue_12m.values(), reverse=True)[n // 5]  # top-20% revenue line
    assert sum(revenue_12m[c] >= big for c in negative) >= 10  # negative-value customers with high revenue
    # Their deliveries are late far more often than everyone's.
    late = _late_deliveries(demo)
    total = Counter(demo.order_customer[r["order_external_id"]] for r in demo.rows["deliveries"])
    late_by = Counter(demo.order_customer[o] for o in late)
    share = lambda cs: sum(late_by[c] for c in cs) / max(1, sum(total[c] for c in cs))  # noqa: E731
    assert share(many) > 3 * share(set(total) - many)


def test_complaints_open_overdue_and_with_costs(demo):
    rows = demo.rows["complaints"]
    orders = set(demo.order_day)
    open_ = [r for r in rows if not r["resolved_at"]]
    overdue = [r for r in open_ if d(r["due_at"]) < demo.until]
    assert open_ and overdue and len(open_) < 0.5 * len(rows)
    assert sum(float(r["cost"] or 0) > 0 for r in rows) > 0.5 * len(rows)
    for r in rows:
        opened = d(r["opened_at"])
        assert opened <= demo.until and d(r["due_at"]) > opened
        if r["resolved_at"]:
            assert opened <= d(r["resolved_at"]) <= demo.until
        if r["order_external_id"]:
            assert r["order_external_id"] in orders
            assert demo.order_customer[r["order_external_id"]] == r["customer_external_id"]
            assert demo.order_day[r["order_external_id"]] <= opened


def test_at_risk_customers_have_fresh_open_complaints(demo):
    recent = demo.until - timedelta(days=29)
    fresh = Counter(r["customer_external_id"] for r in demo.rows["complaints"]
                    if not r["resolved_at"] and d(r["opened_at"]) >= recent)
    at_risk = [c for c, k in fresh.items() if k >= 2]
    assert len(at_risk) >= 0.01 * len(demo.rows["customers"])


def test_blocked_customers_stop_at_their_block_date(demo):
    blocked = {c: d(r["blocked_from"]) for c, r in demo.customers.items() if r["blocked_from"]}
    n = len(demo.rows["customers"])
    assert 0.005 * n <= len(blocked) <= 0.02 * n
    for c, day in blocked.items():
        assert day < demo.until
        assert all(demo.order_day[o] < day for o in demo.customer_orders.get(c, []))


def test_prospects_have_no_orders(demo):
    prospects = set(demo.customers) - set(demo.customer_orders)
    n = len(demo.rows["customers"])
    assert 0.02 * n <= len(prospects) <= 0.05 * n


def test_company_hierarchies(demo):
    rows = demo.rows["customers"]
    position = {r["external_id"]: i for i, r in enumerate(rows)}
    parent = {r["external_id"]: r["parent_external_id"] for r in rows if r["parent_external_id"]}
    for child, head in parent.items():
        assert position[head] < position[child], "parents come before their children"
    roots: Counter = Counter()
    for child in parent:
        seen, node = {child}, child
        while node in parent:
            node = parent[node]
            assert node not in seen, "cycle"
            seen.add(node)
        roots[node] += 1
    assert 45 <= len(roots) <= 75
    assert all(1 <= k <= 5 for k in roots.values())  # groups of 2-6 accounts
    assert any(parent.get(p) for p in parent.values())  # some three-level groups
    sizes = demo.customers
    assert all(sizes[r]["size"] in {"large", "enterprise"} for r in roots)


def test_referrals(demo):
    customers = demo.customers
    rows = demo.rows["customers"]
    position = {r["external_id"]: i for i, r in enumerate(rows)}
    referred = {r["external_id"]: r["referred_by_external_id"] for r in rows if r["referred_by_external_id"]}
    assert 0.07 * len(rows) <= len(referred) <= 0.13 * len(rows)
    for c, by in referred.items():
        assert by != c and position[by] < position[c]
        assert d(customers[by]["created_at"]) <= d(customers[c]["created_at"])
    small_brought_big = [c for c, by in referred.items()
                         if customers[by]["size"] == "small" and customers[c]["size"] in {"large", "enterprise"}]
    assert len(small_brought_big) >= 3


# ---------- deliveries and interactions ----------


def _late_deliveries(demo: Demo) -> set[str]:
    late = set()
    for r in demo.rows["deliveries"]:
        promised, delivered = d(r["promised_at"]), d(r["delivered_at"])
        if (delivered and delivered > promised) or (not delivered and promised < demo.until):
            late.add(r["order_external_id"])
    return late


def test_deliveries(demo):
    rows = demo.rows["deliveries"]
    returns = {line["order_external_id"] for line in demo.rows["orders"] if true(line["is_return"])}
    shipped = [r["order_external_id"] for r in rows]
    assert len(shipped) == len(set(shipped)) and not set(shipped) & returns
    assert len(rows) >= 0.85 * (len(demo.order_day) - len(returns))
    late, undelivered, with_reason = 0, 0, 0
    for r in rows:
        ordered = demo.order_day[r["order_external_id"]]
        promised, delivered = d(r["promised_at"]), d(r["delivered_at"])
        assert 3 <= (promised - ordered).days <= 10
        if delivered:
            assert ordered < delivered <= demo.until
            if delivered > promised:
                late += 1
                with_reason += bool(r["delay_reason"])
        elif promised < demo.until:
            undelivered += 1
    assert 0.05 * len(rows) <= late <= 0.2 * len(rows) and with_reason == late
    assert 0 < undelivered < 0.03 * len(rows)
    costs = [float(r["cost"]) for r in rows if r["cost"]]
    assert 0.3 * len(rows) < len(costs) < len(rows) and min(costs) > 0


def test_interactions_by_the_owner_rep_with_costs(demo):
    customers = demo.customers
    by_kind = defaultdict(list)
    for r in demo.rows["interactions"]:
        assert r["rep_external_id"] == customers[r["customer_external_id"]]["owner_rep_external_id"]
        assert d(r["occurred_at"]) <= demo.until
        by_kind[r["kind"]].append(float(r["cost"]))
    assert set(by_kind) == {"call", "email", "visit", "win_back"}
    assert median(by_kind["visit"]) > median(by_kind["call"]) > median(by_kind["email"]) > 0


# ---------- the whole customer: account columns, categories, surveys, pipeline, invoices ----------


def _profit_12m(demo: Demo) -> dict[str, float]:
    margin, service = demo.margin_12m(), demo.service_cost_12m()
    return {c: margin[c] - service[c] for c in set(margin) | set(service)}


def _top_profit(demo: Demo, share: float = 0.2) -> set[str]:
    profit = _profit_12m(demo)
    return set(sorted(profit, key=profit.get, reverse=True)[: int(share * len(profit))])


def test_customers_have_terms_credit_and_consent(demo):
    rows = demo.rows["customers"]
    terms = defaultdict(list)
    for r in rows:
        terms[r["size"]].append(int(r["payment_terms_days"]))
        assert r["credit_grade"] in {"A", "B", "C", "D"} and float(r["credit_limit"]) >= 1000
        if true(r["consent"]):
            assert d(r["created_at"]) <= d(r["consent_at"]) <= demo.until
        else:
            assert r["consent"] == "false" and not r["consent_at"]
    assert set().union(*map(set, terms.values())) == {14, 30, 45, 60}
    # bigger accounts get longer terms
    means = [sum(terms[size]) / len(terms[size]) for size in ("small", "medium", "large", "enterprise")]
    assert means == sorted(means) and means[0] < means[-1] - 20
    assert 0.75 * len(rows) <= sum(true(r["consent"]) for r in rows) <= 0.97 * len(rows)
    grades = Counter(r["credit_grade"] for r in rows)
    assert grades["A"] > grades["D"] > 0
    # the credit limit follows the business done: the top fifth by revenue has far higher limits than the rest
    revenue = demo.revenue()
    ranked = sorted(demo.customers, key=lambda c: revenue.get(c, 0.0), reverse=True)
    limit = {r["external_id"]: float(r["credit_limit"]) for r in rows}
    top, rest = ranked[: len(ranked) // 5], ranked[len(ranked) // 5:]
    assert median(limit[c] for c in top) > 4 * median(limit[c] for c in rest)


def test_products_have_categories_and_many_customers_buy_services(demo):
    category = {p["sku"]: p["category"] for p in demo.rows["products"]}
    assert set(category.values()) == {"goods", "parts", "service", "software"}
    first = year_before(demo.until)
    service: Counter = Counter()
    for line in demo.rows["orders"]:
        if category[line["sku"]] == "service" and d(line["ordered_at"]) >= first:
            service[line["customer_external_id"]] += float(line["quantity"]) * float(line["unit_price"])
    # sum(order_line.amount where category = "service", 12m) is above zero for many customers
    assert sum(v > 0 for v in service.values()) >= 0.25 * len(demo.rows["customers"])


def _detractor(r: dict[str, str]) -> bool:
    return float(r["score"]) < (7 if r["kind"] == "nps" else 3)


def test_surveys_answered_by_many_customers_on_both_scales(demo):
    rows = demo.rows["surveys"]
    customers = demo.customers
    for r in rows:
        score = float(r["score"])
        assert (0 <= score <= 10) if r["kind"] == "nps" else (r["kind"] == "csat" and 1 <= score <= 5)
        assert d(customers[r["customer_external_id"]]["created_at"]) <= d(r["answered_at"]) <= demo.until
        assert r["channel"] in {"email", "phone", "web"}
    kinds = Counter(r["kind"] for r in rows)
    assert 0.05 * len(rows) <= kinds["csat"] <= 0.25 * len(rows)
    answering = Counter(r["customer_external_id"] for r in rows)
    assert 0.3 * len(customers) <= len(answering) <= 0.8 * len(customers)
    assert median(answering.values()) >= 3  # a few times a year, over three years
    comments = [r["comment"] for r in rows if r["comment"]]
    assert 0.05 * len(rows) <= len(comments) <= 0.25 * len(rows)
    assert any("\n" in c for c in comments)  # a quoted line break, as exported by survey tools
    assert 0.1 * len(rows) <= sum(map(_detractor, rows)) <= 0.4 * len(rows)


def test_survey_scores_follow_the_customers_experience(demo):
    nps = [r for r in demo.rows["surveys"] if r["kind"] == "nps"]
    complaints = Counter(r["customer_external_id"] for r in demo.rows["complaints"])
    revenue = demo.revenue()

    def mean_score(customers: set[str]) -> float:
        scores = [float(r["score"]) for r in nps if r["customer_external_id"] in customers]
        assert len(scores) >= 50
        return sum(scores) / len(scores)

    everyone = set(demo.customers)
    calm = {c for c in everyone if complaints[c] == 0}
    troubled = {c for c in everyone if complaints[c] >= 10}
    whales = set(sorted(revenue, key=revenue.get, reverse=True)[: len(everyone) // 20]) & calm
    assert mean_score(troubled) < mean_score(calm) - 2
    assert mean_score(whales) > mean_score(everyone) + 0.5
    # customers who stopped buying were unhappier in their last answers than before
    stopped = set(_stopped(demo))
    last = {c: max(demo.order_day[o] for o in os) for c, os in demo.customer_orders.items()}
    late = [float(r["score"]) for r in nps if r["customer_external_id"] in stopped
            and d(r["answered_at"]) > last[r["customer_external_id"]] - timedelta(days=90)]
    early = [float(r["score"]) for r in nps if r["customer_external_id"] in stopped
             and d(r["answered_at"]) <= last[r["customer_external_id"]] - timedelta(days=180)]
    assert sum(late) / len(late) < sum(early) / len(early) - 0.5


def test_some_key_customers_are_recent_detractors(demo):
    recent = demo.until - timedelta(days=89)
    key = _top_profit(demo)
    unhappy = {r["customer_external_id"] for r in demo.rows["surveys"]
               if _detractor(r) and d(r["answered_at"]) >= recent and r["customer_external_id"] in key}
    assert 10 <= len(unhappy) <= 0.3 * len(key)


def test_opportunities_won_lost_open_and_stalled(demo):
    rows = demo.rows["opportunities"]
    customers = demo.customers
    reps = {r["external_id"]: r["region"] for r in demo.rows["reps"]}
    outcomes: Counter = Counter()
    stalled = []
    for r in rows:
        opened, closed = d(r["opened_at"]), d(r["closed_at"])
        probability, expected = float(r["probability"]), d(r["expected_close_on"])
        assert 0 <= probability <= 1 and float(r["amount"]) > 0 and opened <= demo.until
        assert expected > opened
        assert reps[r["owner_rep_external_id"]] == customers[r["customer_external_id"]]["region"]
        if closed:
            assert r["outcome"] in {"won", "lost"} and opened < closed <= demo.until
            assert probability == (1.0 if r["outcome"] == "won" else 0.0)
        else:
            assert not r["outcome"] and 0 < probability < 1
            if expected < demo.until:
                stalled.append(r)
        outcomes[r["outcome"] or "open"] += 1
    n = len(customers)
    assert outcomes["won"] > 0.1 * len(rows) and outcomes["lost"] > 0.1 * len(rows) and outcomes["open"] > 0
    assert 0.02 * n <= len(stalled) < outcomes["open"]
    owned = sum(r["owner_rep_external_id"] == customers[r["customer_external_id"]]["owner_rep_external_id"]
                for r in rows)
    assert 0.7 * len(rows) <= owned < len(rows)  # mostly the account's owner, sometimes a colleague


def test_prospects_have_large_open_deals(demo):
    prospects = set(demo.customers) - set(demo.customer_orders)
    pipeline: Counter = Counter()
    for r in demo.rows["opportunities"]:
        if r["customer_external_id"] in prospects:
            assert not r["closed_at"]
            pipeline[r["customer_external_id"]] += float(r["amount"]) * float(r["probability"])
    assert set(pipeline) == prospects
    assert sum(v > 20_000 for v in pipeline.values()) >= 0.5 * len(prospects)


def test_one_invoice_per_order_due_after_the_customers_terms(demo):
    customers = demo.customers
    returns = {line["order_external_id"] for line in demo.rows["orders"] if true(line["is_return"])}
    orders: Counter = Counter()
    for o, amount in demo.order_amount.items():
        if o not in returns:
            orders[(demo.order_customer[o], demo.order_day[o], round(amount, 2))] += 1
    invoices: Counter = Counter()
    for r in demo.rows["invoices"]:
        issued, due = d(r["issued_at"]), d(r["due_at"])
        assert (due - issued).days == int(customers[r["customer_external_id"]]["payment_terms_days"])
        if r["paid_at"]:
            assert issued <= d(r["paid_at"]) <= demo.until  # nothing paid after the end of the data
        invoices[(r["customer_external_id"], issued, float(r["amount"]))] += 1
    assert invoices == orders


def _days_late(demo: Demo) -> dict[str, list[int]]:
    """Per customer: days late of the invoices issued in the last 12 months and paid (0 when on time)."""
    first = year_before(demo.until)
    late = defaultdict(list)
    for r in demo.rows["invoices"]:
        if r["paid_at"] and d(r["issued_at"]) >= first:
            late[r["customer_external_id"]].append(max(0, (d(r["paid_at"]) - d(r["due_at"])).days))
    return late


def test_invoices_mostly_paid_on_time_some_late_some_overdue_at_the_end(demo):
    rows = demo.rows["invoices"]
    paid = [r for r in rows if r["paid_at"]]
    assert sum(d(r["paid_at"]) <= d(r["due_at"]) for r in paid) >= 0.7 * len(paid)
    n = len(demo.rows["customers"])
    late = _days_late(demo)
    assert 0.03 * n <= sum(sum(v) / len(v) > 15 for v in late.values()) <= 0.25 * n
    overdue = Counter(r["customer_external_id"] for r in rows if not r["paid_at"] and d(r["due_at"]) < demo.until)
    assert 0.01 * n <= sum(k >= 2 for k in overdue.values()) <= 0.15 * n
    # blocked accounts were blocked for not paying: their last invoices are still open
    blocked = {c for c, r in demo.customers.items() if r["blocked_from"]}
    assert len(blocked & set(overdue)) >= 0.8 * len(blocked)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small-demo")
    generate_demo(out, seed=7, customers=600, until=UNTIL)
    return out


def test_the_demo_imports_whole_and_the_default_tags_fire(engine, small_demo):
    report = import_directory(engine, small_demo)
    assert report.ignored == [] and report.skipped == []  # every column of every file is read
    assert {t: report.tables[t].inserted > 0 for t in ("surveys", "opportunities", "invoices")} == dict.fromkeys(
        ("surveys", "opportunities", "invoices"), True)
    rules = load_rules_file(DEFAULT_RULES)
    run_batch(engine, rules, UNTIL)
    with engine.connect() as conn:
        results = conn.execute(sa.text("SELECT tier, tags FROM customer_evaluations")).all()
    tagged: dict[str, list[str]] = defaultdict(list)
    for tier, tags in results:
        for tag in json.loads(tags) if isinstance(tags, str) else tags:
            tagged[tag].append(tier)
    for tag in ("unhappy_key", "slow_payer", "big_pipeline"):
        assert 0 < len(tagged[tag]) < 0.3 * len(results), tag
    assert set(tagged["unhappy_key"]) == {"key"}  # the key tier's own condition, and a detractor lately
    # the product categories arrive too: many customers bought services in the last 12 months
    services = compile_condition('sum(order_line.amount where category = "service", 12m) > 0')
    records = load_all_records(engine, as_of=UNTIL)
    bought = [evaluate_condition(services, rules, r, UNTIL) for r in records.values()]
    assert sum(b is True for b in bought) >= 0.25 * len(records)


# ---------- reproducibility ----------


def _bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / f"{name}.csv").read_bytes() for name in FILES}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    a = generate_demo(tmp_path / "a", seed=11, customers=1500, until=UNTIL)
    b = generate_demo(tmp_path / "b", seed=11, customers=1500, until=UNTIL)
    c = generate_demo(tmp_path / "c", seed=12, customers=1500, until=UNTIL)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert a.orders == b.orders and a.profiles == b.profiles
    first, other = _bytes(tmp_path / "a"), _bytes(tmp_path / "c")
    assert all(other[name] != first[name] for name in FILES)
    assert c.customers == a.customers


def test_until_defaults_to_today_and_bounds_the_data(tmp_path):
    summary = generate_demo(tmp_path, customers=300, years=2)
    today = date.today()
    assert summary.until == today
    with open(tmp_path / "orders.csv", newline="") as fh:
        days = [d(r["ordered_at"]) for r in csv.DictReader(fh)]
    assert max(days) <= today and (today - max(days)).days <= 7  # the demo is lively right up to today
    assert min(days) >= today.replace(year=today.year - 2) - timedelta(days=1)
