"""What the customers did: orders with lines and returns, deliveries, complaints and rep interactions.

Orders come from a Poisson draw per customer and calendar month (rate = habit x growth x season x whether the
customer was active that month), so every behaviour is one array expression and the whole period is drawn at
once. Costly accounts are calibrated last: their service cost is set against their own 12-month margin so the
demo reliably contains accounts that cost more than they earn.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from . import catalog as cat
from .profiles import BLOCKED, CHURNER, COSTLY, NONE, PROSPECT, SEASONAL, Customers


@dataclass
class Products:
    sku: list[str]
    name: list[str]
    industry: np.ndarray  # industry number, or NONE for everyone's products
    price: np.ndarray
    cost: np.ndarray  # NaN = unknown
    months: list[tuple[int, ...]]  # season months, () = all year

    @property
    def seasonal(self) -> np.ndarray:
        return np.asarray([bool(m) for m in self.months])


@dataclass
class Orders:
    """One row per order (`day`, `customer`, `is_return`) and per line (`order`, `product`, ...)."""

    day: np.ndarray
    customer: np.ndarray
    is_return: np.ndarray
    line_order: np.ndarray
    line_product: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray
    unit_cost: np.ndarray  # NaN = empty in the file


@dataclass
class Events:
    """Complaints, deliveries or interactions: a bag of equally long columns."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.cols.values())))


def make_products(rng: np.random.Generator) -> Products:
    n = len(cat.PRODUCTS)
    low = np.asarray([p[2][0] for p in cat.PRODUCTS], dtype=float)
    high = np.asarray([p[2][1] for p in cat.PRODUCTS], dtype=float)
    price = np.round(low + (high - low) * rng.random(n), 0) - 0.1  # shelf prices such as 129.90
    cost = np.round(price * rng.uniform(0.5, 0.8, n), 2)
    for i, p in enumerate(cat.PRODUCTS):
        if p[0] in cat.UNKNOWN_COST_PRODUCTS:
            cost[i] = np.nan
    industry = np.asarray([cat.INDUSTRIES.index(p[1]) if p[1] else NONE for p in cat.PRODUCTS])
    return Products([f"SKU-{i + 1:03d}" for i in range(n)], [p[0] for p in cat.PRODUCTS], industry, price, cost,
                    [tuple(p[3]) for p in cat.PRODUCTS])


def month_cells(start: date, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First day, last day (offsets from start) and calendar month of every month touching the period."""
    first = np.datetime64(start, "D")
    last = first + days
    months = np.arange(first.astype("datetime64[M]"), last.astype("datetime64[M]") + 1)
    lo = np.maximum((months.astype("datetime64[D]") - first).astype(np.int64), 0)
    hi = np.minimum(((months + 1).astype("datetime64[D]") - first).astype(np.int64) - 1, days)
    return lo, hi, months.astype(np.int64) % 12 + 1


def make_orders(rng: np.random.Generator, c: Customers, p: Products, start: date, days: int) -> Orders:
    lo, hi, month = month_cells(start, days)
    # Active days of every customer in every month.
    a = np.maximum(lo[None, :], c.active_from[:, None])
    b = np.minimum(hi[None, :], c.active_to[:, None])
    active = np.maximum(b - a + 1, 0).astype(float)
    active[c.profile == PROSPECT] = 0.0

    rate = active * (c.orders_per_year / 365.0)[:, None]
    # Seasonal buyers: the whole year's orders fall into their 2-3 months.
    seasonal = np.flatnonzero(c.profile == SEASONAL)
    in_season = np.zeros((len(seasonal), len(month)), dtype=bool)
    season_start = np.zeros_like(in_season)
    for row, i in enumerate(seasonal):
        in_season[row] = np.isin(month, p.months[c.season_product[i]])
        season_start[row] = month == p.months[c.season_product[i]][0]
    season_days = np.asarray([sum(_month_len(m) for m in p.months[c.season_product[i]]) for i in seasonal])
    rate[seasonal] = np.where(in_season, active[seasonal] * (c.orders_per_year[seasonal] / season_days)[:, None], 0)
    # Growers: the order rate rises linearly over their last `ramp_days`.
    mid = (a + b) / 2.0
    ramp = np.clip((mid - (days - c.ramp_days)[:, None]) / np.maximum(c.ramp_days, 1)[:, None], 0, 1)
    rate *= 1.0 + c.growth[:, None] * ramp

    counts = rng.poisson(rate)
    # A seasonal buyer comes back every season: at least one order in the first month of each season.
    sub = counts[seasonal]
    sub[season_start & (active[seasonal] >= 10) & (sub == 0)] = 1
    counts[seasonal] = sub
    # Only prospects have no orders: a customer the draw left empty buys once, in their likeliest month.
    empty = np.flatnonzero((counts.sum(axis=1) == 0) & (rate.sum(axis=1) > 0))
    counts[empty, rate[empty].argmax(axis=1)] = 1
    cust, cell = np.nonzero(counts)
    reps = counts[cust, cell]
    cust, cell = np.repeat(cust, reps), np.repeat(cell, reps)
    a_o, b_o = a[cust, cell], b[cust, cell]
    day = a_o + np.floor(rng.random(len(cust)) * (b_o - a_o + 1)).astype(np.int64)
    order_sort = np.lexsort((cust, day))
    day, cust = day[order_sort], cust[order_sort]
    n_orders = len(day)

    # Order value: the customer's usual basket, noisy, larger for growers late in the period.
    basket = c.annual_revenue / c.orders_per_year
    grow = np.clip((day - (days - c.ramp_days[cust])) / np.maximum(c.ramp_days[cust], 1), 0, 1)
    value = basket[cust] * rng.lognormal(-0.08, 0.4, n_orders) * (1 + c.basket_growth[cust] * grow)

    # Lines: 1-4 per order, products by industry, seasonal products only in their season.
    cum = np.cumsum(np.asarray(cat.LINES_P), axis=1)[c.size[cust]]
    n_lines = 1 + (rng.random(n_orders)[:, None] > cum[:, :3]).sum(axis=1)
    line_order = np.repeat(np.arange(n_orders), n_lines)
    share = rng.gamma(1.5, 1.0, len(line_order))
    share /= np.bincount(line_order, share)[line_order]
    line_value = value[line_order] * share
    line_cust = cust[line_order]
    line_month = (np.datetime64(start, "D") + day[line_order]).astype("datetime64[M]").astype(np.int64) % 12 + 1
    product = _choose_products(rng, p, c.industry[line_cust], line_month)
    buyer = c.season_product[line_cust] != NONE
    take_season = buyer & (rng.random(len(product)) < 0.5)
    product[take_season] = c.season_product[line_cust][take_season]

    # One line per product in an order: merge repeats.
    key = line_order * len(p.sku) + product
    key, inverse = np.unique(key, return_inverse=True)
    line_value = np.bincount(inverse, line_value)
    line_order, product = key // len(p.sku), key % len(p.sku)
    line_cust, line_day = cust[line_order], day[line_order]

    years_in = line_day / 365.0
    price = np.round(p.price[product] * np.asarray(cat.SIZE_DISCOUNT)[c.size[line_cust]]
                     * (1 + 0.03 * years_in) * rng.uniform(0.98, 1.02, len(product)), 2)
    unit_cost = np.round(p.cost[product] * (1 + 0.03 * years_in) * rng.uniform(0.97, 1.03, len(product)), 2)
    unit_cost[rng.random(len(product)) < 0.015] = np.nan  # cost not captured: the product's cost applies
    quantity = np.maximum(1, np.round(line_value / price)).astype(np.int64)

    return _with_returns(rng, c, Orders(day, cust, np.zeros(n_orders, dtype=bool), line_order, product,
                                        quantity, price, unit_cost))


def _month_len(month: int) -> int:
    return (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]


def _choose_products(rng: np.random.Generator, p: Products, industry: np.ndarray, month: np.ndarray) -> np.ndarray:
    n_products = len(p.sku)
    weight = np.where(p.industry[None, :] == np.arange(len(cat.INDUSTRIES))[:, None], 6.0, 0.25)
    weight[:, p.industry == NONE] = 1.5
    weight[:, np.isnan(p.cost)] *= 0.2  # services sold without a known cost are the exception
    product = np.empty(len(industry), dtype=np.int64)
    plain = weight * ~p.seasonal[None, :]
    for k in range(len(cat.INDUSTRIES)):
        rows = np.flatnonzero(industry == k)
        product[rows] = rng.choice(n_products, len(rows), p=weight[k] / weight[k].sum())
        # A seasonal product ordered out of its season becomes an ordinary one.
        wrong = rows[[bool(p.months[q]) and m not in p.months[q] for q, m in zip(product[rows], month[rows])]]
        product[wrong] = rng.choice(n_products, len(wrong), p=plain[k] / plain[k].sum())
    return product


def _with_returns(rng: np.random.Generator, c: Customers, o: Orders) -> Orders:
    """About 2% of lines come back later as a one-line return order (negative quantity, same sku and price).

    Seasonal buyers return nothing, so all their activity stays inside their months.
    """
    pick = (rng.random(len(o.line_order)) < 0.02) & (c.profile[o.customer[o.line_order]] != SEASONAL)
    src = np.flatnonzero(pick)
    cust = o.customer[o.line_order[src]]
    day = o.day[o.line_order[src]] + rng.integers(3, 31, len(src))
    keep = day <= c.active_to[cust]  # never after the customer stopped (or the period ended)
    src, cust, day = src[keep], cust[keep], day[keep]
    qty = -np.maximum(1, np.floor(o.quantity[src] * rng.uniform(0.1, 1.0, len(src)))).astype(np.int64)

    n_old = len(o.day)
    all_day = np.concatenate([o.day, day])
    all_cust = np.concatenate([o.customer, cust])
    all_ret = np.concatenate([o.is_return, np.ones(len(src), dtype=bool)])
    line_order = np.concatenate([o.line_order, n_old + np.arange(len(src))])
    product = np.concatenate([o.line_product, o.line_product[src]])
    quantity = np.concatenate([o.quantity, qty])
    price = np.concatenate([o.unit_price, o.unit_price[src]])
    cost = np.concatenate([o.unit_cost, o.unit_cost[src]])

    order_sort = np.lexsort((all_ret, all_cust, all_day))  # new order numbers run by date
    rank = np.empty_like(order_sort)
    rank[order_sort] = np.arange(len(order_sort))
    line_order = rank[line_order]
    line_sort = np.lexsort((product, line_order))
    return Orders(all_day[order_sort], all_cust[order_sort], all_ret[order_sort], line_order[line_sort],
                  product[line_sort], quantity[line_sort], price[line_sort], cost[line_sort])


def order_margins(o: Orders, p: Products) -> tuple[np.ndarray, np.ndarray]:
    """Amount and margin per order as the importer will see them (margin NaN when any cost is unknown)."""
    cost = np.where(np.isnan(o.unit_cost), p.cost[o.line_product], o.unit_cost)
    n = len(o.day)
    amount = np.bincount(o.line_order, o.quantity * o.unit_price, minlength=n)
    margin = np.bincount(o.line_order, o.quantity * (o.unit_price - cost), minlength=n)
    unknown = np.bincount(o.line_order, np.isnan(cost), minlength=n) > 0
    margin[unknown] = np.nan
    return amount, margin


def make_deliveries(rng: np.random.Generator, c: Customers, o: Orders, days: int) -> Events:
    """Most orders ship; promised 3-10 days out, mostly on time; costly accounts are often late."""
    costly = c.profile[o.customer] == COSTLY
    ships = ~o.is_return & ((rng.random(len(o.day)) < 0.93) | costly)
    order = np.flatnonzero(ships)
    n = len(order)
    costly = costly[order]
    promised = o.day[order] + rng.integers(3, 11, n)
    late = rng.random(n) < np.where(costly, 0.45, 0.06)
    delay = np.where(late, 1 + rng.geometric(0.25, n), -rng.integers(0, 3, n))
    delivered = np.maximum(promised + delay, o.day[order] + 1).astype(float)
    lost = rng.random(n) < 0.012  # never arrived: late once the promise has passed
    delivered[lost] = np.nan
    delivered[delivered > days] = np.nan  # still on the way
    overdue = lost & (promised < days) & (rng.random(n) < 0.6)  # the carrier gave a reason for some
    reason = np.where(late | overdue, rng.integers(0, len(cat.DELAY_REASONS), n), NONE)
    cost = np.where(rng.random(n) < 0.6, np.round(6 + rng.lognormal(2.8, 0.6, n), 2), np.nan)
    return Events({"order": order, "promised": promised, "delivered": delivered, "reason": reason, "cost": cost})


def make_complaints(rng: np.random.Generator, c: Customers, o: Orders, days: int) -> Events:
    """Rare complaints on ordinary orders, many on costly accounts, and fresh open bursts for at-risk ones."""
    costly_order = c.profile[o.customer] == COSTLY
    p_order = np.where(costly_order, 0.35, 0.015)
    linked = np.flatnonzero(~o.is_return & (rng.random(len(o.day)) < p_order))
    opened_l = o.day[linked] + rng.integers(2, 26, len(linked))
    keep = opened_l <= days
    linked, opened_l = linked[keep], opened_l[keep]
    cust_l = o.customer[linked]
    cat_l = rng.choice([0, 1, 4], len(linked))  # quality, delivery, damaged

    # Costly accounts also complain about billing and service, independent of orders.
    costly = np.flatnonzero(c.profile == COSTLY)
    span = np.maximum(c.active_to[costly] - c.active_from[costly], 1)
    k = rng.poisson(4.0 * span / 365.0)
    cust_u = np.repeat(costly, k)
    opened_u = c.active_from[cust_u] + np.floor(rng.random(len(cust_u)) * np.repeat(span, k)).astype(np.int64)
    cat_u = rng.choice([2, 3], len(cust_u))

    # At risk: 2-3 complaints opened in the last 30 days, all still open.
    risky = np.flatnonzero(c.at_risk)
    k = rng.integers(2, 4, len(risky))
    cust_r = np.repeat(risky, k)
    opened_r = days - rng.integers(0, 30, len(cust_r))
    cat_r = rng.choice(len(cat.COMPLAINT_CATEGORIES), len(cust_r))

    cust = np.concatenate([cust_l, cust_u, cust_r])
    opened = np.concatenate([opened_l, opened_u, opened_r])
    order = np.concatenate([linked, np.full(len(cust_u) + len(cust_r), NONE)])
    category = np.concatenate([cat_l, cat_u, cat_r])
    n = len(cust)
    is_costly = c.profile[cust] == COSTLY
    due = opened + rng.choice([7, 14, 30], n)
    resolved = (opened + np.ceil(rng.lognormal(np.log(6), 0.9, n) * np.where(is_costly, 2, 1))).astype(float)
    neglected = rng.random(n) < np.where(is_costly, 0.2, 0.04)
    resolved[neglected | (resolved > days)] = np.nan
    resolved[len(cust_l) + len(cust_u):] = np.nan
    cost = np.where(rng.random(n) < 0.15, 0.0, np.round(rng.lognormal(np.log(60), 0.8, n), 2))
    sort = np.lexsort((cust, opened))
    return Events({"customer": cust[sort], "opened": opened[sort], "order": order[sort], "due": due[sort],
                   "resolved": resolved[sort], "category": category[sort], "cost": cost[sort]})


def make_interactions(rng: np.random.Generator, c: Customers, o: Orders, days: int) -> Events:
    """Calls, emails and visits by the owner rep while the customer is active; win-back calls after churn."""
    costly = c.profile == COSTLY
    begin = np.maximum(c.created, 0)
    end = np.where(np.isin(c.profile, (CHURNER, BLOCKED)), c.active_to, days)
    span = np.maximum(end - begin, 0)
    per_year = np.asarray(cat.SIZE_INTERACTIONS)[c.size] * np.where(costly, 4.0, 1.0)
    per_year[c.profile == PROSPECT] = 3.0
    k = rng.poisson(per_year * span / 365.0)
    cust = np.repeat(np.arange(c.n), k)
    day = begin[cust] + np.floor(rng.random(len(cust)) * (span[cust] + 1)).astype(np.int64)
    visit_p = np.asarray([0.08, 0.15, 0.25, 0.3])[c.size[cust]] + np.where(costly[cust], 0.15, 0.0)
    u = rng.random(len(cust))
    kind = np.where(u < visit_p, 2, np.where(u < visit_p + 0.45, 0, 1))  # visit / call / email
    cost = np.choose(kind, [rng.uniform(6, 25, len(cust)), rng.uniform(1, 3, len(cust)),
                            rng.uniform(120, 450, len(cust))]).round(2)

    # Win-back: half of the churners hear from their rep after their last order.
    last = np.full(c.n, NONE)
    np.maximum.at(last, o.customer, o.day)
    lapsed = np.flatnonzero((c.profile == CHURNER) & (last != NONE) & (days - last >= 45))
    lapsed = lapsed[rng.random(len(lapsed)) < 0.5]
    kw = rng.integers(1, 4, len(lapsed))
    cust_w = np.repeat(lapsed, kw)
    first = last[cust_w] + 30
    day_w = first + np.floor(rng.random(len(cust_w)) * (days - first + 1)).astype(np.int64)
    cost_w = rng.uniform(20, 150, len(cust_w)).round(2)

    cust = np.concatenate([cust, cust_w])
    day = np.concatenate([day, day_w])
    kind = np.concatenate([kind, np.full(len(cust_w), 3)])  # 3 = win_back
    cost = np.concatenate([cost, cost_w])
    sort = np.lexsort((kind, cust, day))
    return Events({"customer": cust[sort], "day": day[sort], "kind": kind[sort], "cost": cost[sort]})


def calibrate_costly(rng: np.random.Generator, c: Customers, o: Orders, p: Products, complaints: Events,
                     interactions: Events, days: int) -> None:
    """Set each costly account's 12-month service cost to 0.35-1.7x its 12-month margin.

    The cost is spread over the account's complaints (60%) and interactions (40%) of the last 330 days, in
    proportion to what each already cost, so visits stay dearer than emails.
    """
    _, margin = order_margins(o, p)
    recent = o.day > days - 365
    margin_12m = np.bincount(o.customer[recent], np.nan_to_num(margin[recent]), minlength=c.n)
    ratio = rng.uniform(0.35, 1.7, c.n)
    target = np.where((c.profile == COSTLY) & (margin_12m > 0), ratio * margin_12m, 0.0)

    def chosen(events: Events, day_col: str) -> np.ndarray:
        return (target[events.cols["customer"]] > 0) & (events.cols[day_col] > days - 330)

    sel_c, sel_i = chosen(complaints, "opened"), chosen(interactions, "day")
    has_c = np.bincount(complaints.cols["customer"], sel_c, minlength=c.n) > 0
    has_i = np.bincount(interactions.cols["customer"], sel_i, minlength=c.n) > 0
    share_c = np.where(has_i, 0.6, 1.0)  # all of it on one kind when the account lacks the other
    share_i = np.where(has_c, 0.4, 1.0)
    for events, sel, share in ((complaints, sel_c, share_c), (interactions, sel_i, share_i)):
        cust, cost = events.cols["customer"], events.cols["cost"]
        weight = np.where(sel, cost + 10.0, 0.0)
        total = np.bincount(cust, weight, minlength=c.n)
        scale = np.divide(share * target, total, out=np.zeros(c.n), where=total > 0)
        cost[sel] = np.round(weight[sel] * scale[cust[sel]], 2)
