"""A seeded, realistic B2B customer base written as Tiergraph import CSVs (see README.md, "Import formats").

The demo exists so the engine has something lively to rank on day one: it ends on `until` (today by default)
and contains every pattern the rules look for (long tail and whales, seasonal buyers, churners with win-back
attempts, fast growers, accounts that cost more than they earn, fresh complaint bursts, blocked accounts,
prospects, company groups and referrals). Same seed + same `until` + same size -> byte-identical files.

    from domain.demo import generate_demo
    summary = generate_demo(Path("demo-data"), customers=5000)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from . import catalog as cat
from .activity import calibrate_costly, make_complaints, make_deliveries, make_interactions, make_orders, \
    make_products
from .profiles import NONE, PROFILE_NAMES, make_customers, make_reps
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
    profiles: dict[str, int] = field(default_factory=dict)


def _years_before(until: date, years: int) -> date:
    try:
        return until.replace(year=until.year - years)
    except ValueError:  # 29 February
        return until.replace(year=until.year - years, day=28)


def generate_demo(out_dir: Path, *, seed: int = 7, customers: int = 5000, until: date | None = None,
                  years: int = 3) -> DemoSummary:
    """Write reps, customers, products, orders, complaints, deliveries and interactions CSVs into out_dir."""
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

    cust_ids = [f"C{i + 1:05d}" for i in range(c.n)]
    order_ids = [f"SO-{i + 1:07d}" for i in range(len(orders.day))]

    write_csv(out_dir / "reps.csv", {
        "external_id": reps.external_id, "name": reps.name, "email": reps.email,
        "region": pick(cat.REGIONS, reps.region)})

    first_order = np.full(c.n, np.iinfo(np.int64).max)
    np.minimum.at(first_order, orders.customer, orders.day)
    created = np.minimum(c.created, first_order)
    write_csv(out_dir / "customers.csv", {
        "external_id": cust_ids, "name": c.name,
        "region": pick(cat.REGIONS, c.region), "industry": pick(cat.INDUSTRIES, c.industry),
        "size": pick(cat.SIZES, c.size), "owner_rep_external_id": pick(reps.external_id, c.owner),
        "seasonal": flags(c.seasonal_flag),
        "blocked_from": dates(start, np.where(c.blocked == NONE, np.nan, c.blocked)),
        "created_at": dates(start, created),
        "parent_external_id": pick(cust_ids, c.parent), "referred_by_external_id": pick(cust_ids, c.referrer),
        "attr.segment": ["b2g" if g else "b2b" for g in c.b2g.tolist()],
        "attr.loyalty_member": flags(c.loyalty)})

    write_csv(out_dir / "products.csv", {
        "sku": products.sku, "name": products.name, "unit_cost": money(products.cost),
        "seasonal": flags(products.seasonal)})

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

    return DemoSummary(
        out_dir=out_dir, start=start, until=until, reps=len(reps.external_id), customers=c.n,
        products=len(products.sku), orders=len(orders.day), order_lines=len(orders.line_order),
        return_lines=int(orders.is_return[lo].sum()), complaints=len(complaints), deliveries=len(deliveries),
        interactions=len(interactions),
        profiles={name: int((c.profile == code).sum()) for code, name in enumerate(PROFILE_NAMES)})
