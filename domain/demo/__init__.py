"""A seeded, realistic B2B customer base written as Tiergraph import CSVs (see README.md, "Import formats").

The demo exists so the engine has something lively to rank on day one: it ends on `until` (today by default)
and contains every pattern the rules look for (long tail and whales, seasonal buyers, churners with win-back
attempts, fast growers, accounts that cost more than they earn, fresh complaint bursts, blocked accounts,
prospects, company groups and referrals; survey answers, sales pipeline, invoices paid on time, late or not at
all). Same seed + same `until` + same size -> byte-identical files.

The surveys, opportunities, invoices and the account columns (terms, credit, consent) are drawn from child seed
streams of their own, so adding them left every earlier file exactly as it was.

    from domain.demo import generate_demo
    summary = generate_demo(Path("demo-data"), customers=5000)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from . import catalog as cat
from .account import make_accounts, make_invoices
from .activity import calibrate_costly, make_complaints, make_deliveries, make_interactions, make_orders, \
    make_products, order_margins
from .pipeline import make_opportunities, stage_names
from .profiles import NONE, PROFILE_NAMES, make_customers, make_reps
from .surveys import CSAT, comment_texts, make_surveys
from .writer import dates, flags, money, pick, write_csv

__all__ = ["DemoSummary", "generate_demo"]


@dataclass(frozen=True)
class DemoSummary:
    """Row counts of the files written, the period covered, and how many customers each archetype got."""

    out_dir: Path
    start: date
    until: date
    reps: int
    customers: int
    products: int
    orders: int
    order_lines: int
    return_lines: int
    complaints: int
    deliveries: int
    interactions: int
    surveys: int
    opportunities: int
    invoices: int
    profiles: dict[str, int] = field(default_factory=dict)


def _years_before(until: date, years: int) -> date:
    try:
        return until.replace(year=until.year - years)
    except ValueError:  # 29 February
        return until.replace(year=until.year - years, day=28)


def generate_demo(out_dir: Path, *, seed: int = 7, customers: int = 5000, until: date | None = None,
                  years: int = 3) -> DemoSummary:
    """Write reps, customers, products, orders, complaints, deliveries, interactions, surveys, opportunities and
    invoices CSVs into out_dir."""
    if customers < 1 or years < 1:
        raise ValueError("customers and years must be at least 1")
    until = until or date.today()
    start = _years_before(until, years)
    days = (until - start).days
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    reps = make_reps(rng)
    products = make_products(rng)
    seasonal_products = np.flatnonzero(products.seasonal)
    c = make_customers(rng, customers, days, reps, seasonal_products, products.industry)
    orders = make_orders(rng, c, products, start, days)
    deliveries = make_deliveries(rng, c, orders, days)
    complaints = make_complaints(rng, c, orders, days)
    interactions = make_interactions(rng, c, orders, days)
    calibrate_costly(rng, c, orders, products, complaints, interactions, days)

    # Child streams: one per later addition, so none of them moves the draws above or each other.
    child = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,))) for k in range(1, 5)]
    first_order = np.full(c.n, np.iinfo(np.int64).max)
    np.minimum.at(first_order, orders.customer, orders.day)
    created = np.minimum(c.created, first_order)
    accounts = make_accounts(child[0], c, created, days)
    delivery_customer = orders.customer[deliveries.cols["order"]]
    surveys = make_surveys(child[1], c, complaints, deliveries, delivery_customer, days)
    opportunities = make_opportunities(child[2], c, days)
    invoices = make_invoices(child[3], c, accounts, orders, order_margins(orders, products)[0], days)

    cust_ids = [f"C{i + 1:05d}" for i in range(c.n)]
    order_ids = [f"SO-{i + 1:07d}" for i in range(len(orders.day))]

    write_csv(out_dir / "reps.csv", {
        "external_id": reps.external_id, "name": reps.name, "email": reps.email,
        "region": pick(cat.REGIONS, reps.region)})

    write_csv(out_dir / "customers.csv", {
        "external_id": cust_ids, "name": c.name,
        "region": pick(cat.REGIONS, c.region), "industry": pick(cat.INDUSTRIES, c.industry),
        "size": pick(cat.SIZES, c.size), "owner_rep_external_id": pick(reps.external_id, c.owner),
        "seasonal": flags(c.seasonal_flag),
        "blocked_from": dates(start, np.where(c.blocked == NONE, np.nan, c.blocked)),
        "created_at": dates(start, created),
        "parent_external_id": pick(cust_ids, c.parent), "referred_by_external_id": pick(cust_ids, c.referrer),
        "attr.segment": ["b2g" if g else "b2b" for g in c.b2g.tolist()],
        "attr.loyalty_member": flags(c.loyalty),
        "payment_terms_days": [str(t) for t in accounts.terms.tolist()],
        "credit_grade": pick(cat.CREDIT_GRADES, accounts.grade), "credit_limit": money(accounts.credit_limit),
        "consent": flags(accounts.consent), "consent_at": dates(start, accounts.consent_at)})

    write_csv(out_dir / "products.csv", {
        "sku": products.sku, "name": products.name, "unit_cost": money(products.cost),
        "seasonal": flags(products.seasonal), "category": [cat.product_category(name) for name in products.name]})

    lo = orders.line_order
    write_csv(out_dir / "orders.csv", {
        "order_external_id": pick(order_ids, lo), "customer_external_id": pick(cust_ids, orders.customer[lo]),
        "ordered_at": dates(start, orders.day[lo]), "sku": pick(products.sku, orders.line_product),
        "quantity": [str(q) for q in orders.quantity.tolist()], "unit_price": money(orders.unit_price),
        "unit_cost": money(orders.unit_cost), "is_return": flags(orders.is_return[lo])})

    d = deliveries.cols
    write_csv(out_dir / "deliveries.csv", {
        "external_id": [f"DL-{i + 1:07d}" for i in range(len(deliveries))],
        "order_external_id": pick(order_ids, d["order"]), "promised_at": dates(start, d["promised"]),
        "delivered_at": dates(start, d["delivered"]), "delay_reason": pick(cat.DELAY_REASONS, d["reason"]),
        "cost": money(d["cost"])})

    k = complaints.cols
    write_csv(out_dir / "complaints.csv", {
        "external_id": [f"CP-{i + 1:06d}" for i in range(len(complaints))],
        "customer_external_id": pick(cust_ids, k["customer"]), "order_external_id": pick(order_ids, k["order"]),
        "opened_at": dates(start, k["opened"]), "due_at": dates(start, k["due"]),
        "resolved_at": dates(start, k["resolved"]), "category": pick(cat.COMPLAINT_CATEGORIES, k["category"]),
        "cost": money(k["cost"])})

    it = interactions.cols
    kinds = (*cat.INTERACTION_KINDS, "win_back")
    notes = ("", "", "account review on site", "win-back offer")
    write_csv(out_dir / "interactions.csv", {
        "external_id": [f"IN-{i + 1:07d}" for i in range(len(interactions))],
        "customer_external_id": pick(cust_ids, it["customer"]), "occurred_at": dates(start, it["day"]),
        "kind": pick(kinds, it["kind"]), "rep_external_id": pick(reps.external_id, c.owner[it["customer"]]),
        "cost": money(it["cost"]), "note": pick(notes, it["kind"])})

    sv = surveys.cols
    write_csv(out_dir / "surveys.csv", {
        "external_id": [f"SV-{i + 1:06d}" for i in range(len(surveys))],
        "customer_external_id": pick(cust_ids, sv["customer"]), "answered_at": dates(start, sv["day"]),
        "kind": ["csat" if k == CSAT else "nps" for k in sv["kind"].tolist()],
        "score": [str(int(s)) for s in sv["score"].tolist()],
        "channel": pick(cat.SURVEY_CHANNELS, sv["channel"]), "comment": pick(comment_texts(), sv["comment"])})

    op = opportunities.cols
    write_csv(out_dir / "opportunities.csv", {
        "external_id": [f"OP-{i + 1:06d}" for i in range(len(opportunities))],
        "customer_external_id": pick(cust_ids, op["customer"]), "opened_at": dates(start, op["opened"]),
        "stage": stage_names(op["state"], op["stage"]), "amount": money(op["amount"]),
        "probability": [f"{p:.2f}" for p in op["probability"].tolist()],
        "expected_close_on": dates(start, op["expected"]), "owner_rep_external_id": pick(reps.external_id, op["owner"]),
        "closed_at": dates(start, op["closed"]), "outcome": pick(("won", "lost"), op["state"], none=2)})

    iv = invoices.cols
    write_csv(out_dir / "invoices.csv", {
        "external_id": [f"INV-{i + 1:07d}" for i in range(len(invoices))],
        "customer_external_id": pick(cust_ids, iv["customer"]), "issued_at": dates(start, iv["issued"]),
        "due_at": dates(start, iv["due"]), "amount": money(iv["amount"]), "paid_at": dates(start, iv["paid"])})

    return DemoSummary(
        out_dir=out_dir, start=start, until=until, reps=len(reps.external_id), customers=c.n,
        products=len(products.sku), orders=len(orders.day), order_lines=len(orders.line_order),
        return_lines=int(orders.is_return[lo].sum()), complaints=len(complaints), deliveries=len(deliveries),
        interactions=len(interactions), surveys=len(surveys), opportunities=len(opportunities),
        invoices=len(invoices),
        profiles={name: int((c.profile == code).sum()) for code, name in enumerate(PROFILE_NAMES)})
