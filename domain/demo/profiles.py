"""Who the demo customers are: reps, accounts, archetypes, hierarchies, referrals and spending habits.

Everything is a column (numpy array indexed by customer number) so 5,000 or 50,000 customers cost the same
few vector operations. The customer number is also the file position, so a parent always gets a smaller
number than its children and a referrer a smaller one than the customer it brought in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import catalog as cat

# Archetypes: each customer has exactly one; the generators read behaviour from it.
REGULAR, PROSPECT, SEASONAL, CHURNER, GROWER, COSTLY, BLOCKED = range(7)
PROFILE_NAMES = ("regular", "prospect", "seasonal", "churner", "grower", "costly", "blocked")
NONE = -1


@dataclass
class Reps:
    external_id: list[str]
    name: list[str]
    email: list[str]
    region: np.ndarray  # index into catalog.REGIONS


@dataclass
class Customers:
    """Columns of the customer base; days are offsets from the first day of the period (may be < 0)."""

    n: int
    name: list[str]
    region: np.ndarray
    industry: np.ndarray
    size: np.ndarray
    owner: np.ndarray  # rep number
    profile: np.ndarray  # archetype code
    at_risk: np.ndarray  # bool: gets a burst of fresh open complaints
    seasonal_flag: np.ndarray  # bool: the `seasonal` column
    season_product: np.ndarray  # product number whose months a seasonal buyer orders in, else NONE
    created: np.ndarray
    active_from: np.ndarray  # first day orders may happen
    active_to: np.ndarray  # last day orders may happen
    blocked: np.ndarray  # blocked_from day, or NONE
    parent: np.ndarray
    referrer: np.ndarray
    annual_revenue: np.ndarray
    orders_per_year: np.ndarray  # for seasonal buyers: orders per season
    growth: np.ndarray  # growers: extra order rate at the end of the period, else 0
    basket_growth: np.ndarray  # growers: extra basket value at the end of the period, else 0
    ramp_days: np.ndarray  # growers: how long the growth has been going on
    b2g: np.ndarray
    loyalty: np.ndarray


def make_reps(rng: np.random.Generator) -> Reps:
    n = len(cat.REGIONS) * cat.REPS_PER_REGION
    first = rng.choice(len(cat.REP_FIRST), n)
    last = rng.choice(len(cat.REP_LAST), n)
    names = [f"{cat.REP_FIRST[f]} {cat.REP_LAST[l]}" for f, l in zip(first, last)]
    emails = [f"{cat.REP_FIRST[f].lower()}.{cat.REP_LAST[l].lower()}{i + 1}@demo.tiergraph.example"
              for i, (f, l) in enumerate(zip(first, last))]
    region = np.repeat(np.arange(len(cat.REGIONS)), cat.REPS_PER_REGION)
    return Reps([f"R{i + 1:03d}" for i in range(n)], names, emails, region)


def _pick(rng: np.random.Generator, free: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """k customers among the free ones, drawn without replacement in proportion to their weights."""
    candidates = np.flatnonzero(free)
    k = min(k, len(candidates))
    if k == 0:
        return candidates[:0]
    p = weights[candidates] / weights[candidates].sum()
    return np.sort(rng.choice(candidates, size=k, replace=False, p=p))


def make_customers(rng: np.random.Generator, n: int, days: int, reps: Reps, season_products: np.ndarray,
                   product_industry: np.ndarray) -> Customers:
    region = rng.choice(len(cat.REGIONS), n, p=[0.22, 0.18, 0.17, 0.2, 0.23])
    industry = rng.choice(len(cat.INDUSTRIES), n, p=[0.18, 0.12, 0.16, 0.12, 0.1, 0.13, 0.11, 0.08])
    size = rng.choice(len(cat.SIZES), n, p=cat.SIZE_SHARES)

    # Each rep owns customers of their own region; some reps have much bigger books than others.
    book = rng.lognormal(0.0, 0.5, len(reps.region))
    owner = np.empty(n, dtype=np.int64)
    for r in range(len(cat.REGIONS)):
        in_region = np.flatnonzero(region == r)
        region_reps = np.flatnonzero(reps.region == r)
        owner[in_region] = rng.choice(region_reps, len(in_region), p=book[region_reps] / book[region_reps].sum())

    parent = _hierarchies(rng, n, size)

    # Archetypes, drawn so the large accounts are more often costly and the small ones more often prospects.
    profile = np.full(n, REGULAR)
    plan = (  # profile, share, weight per size
        (COSTLY, 0.05, (0.1, 1.0, 2.5, 3.0)),
        (GROWER, 0.05, (0.4, 1.5, 1.2, 0.5)),
        (SEASONAL, 0.08, (1.0, 1.0, 0.5, 0.2)),
        (CHURNER, 0.15, (1.0, 1.0, 0.8, 0.5)),
        (BLOCKED, 0.01, (1.0, 1.0, 1.0, 1.0)),
        (PROSPECT, 0.03, (1.5, 1.0, 0.5, 0.3)),
    )
    for code, share, size_weight in plan:
        chosen = _pick(rng, profile == REGULAR, np.asarray(size_weight)[size], round(share * n))
        profile[chosen] = code

    seasonal = profile == SEASONAL
    season_product = np.full(n, NONE)
    for i in np.flatnonzero(seasonal):  # prefer a seasonal product of the buyer's own industry
        w = np.where(product_industry[season_products] == industry[i], 4.0, 1.0)
        season_product[i] = season_products[rng.choice(len(season_products), p=w / w.sum())]
    # Most seasonal buyers are flagged in the CRM; a few are not, for the seasonality detector to find.
    seasonal_flag = seasonal.copy()
    buyers = np.flatnonzero(seasonal)
    if len(buyers) >= 2:
        unflagged = rng.choice(buyers, max(1, round(0.15 * len(buyers))), replace=False)
        seasonal_flag[unflagged] = False

    created, active_from, active_to, blocked = _lifetimes(rng, n, days, profile)
    annual_revenue, orders_per_year = _spending(rng, size, profile)
    growth, basket_growth, ramp_days = np.zeros(n), np.zeros(n), np.zeros(n)
    grower = profile == GROWER
    k = int(grower.sum())
    growth[grower] = rng.uniform(2.5, 5.0, k)
    basket_growth[grower] = rng.uniform(0.5, 1.2, k)
    ramp_days[grower] = rng.uniform(110, 170, k)

    # Churners and costly accounts order often enough for the stop / the trouble to be visible.
    churner = profile == CHURNER
    gap = days - active_to
    floor = np.maximum(4.0 * 365 / np.maximum(gap, 1), 6 * 365 / np.maximum(active_to - active_from, 1))
    orders_per_year[churner] = np.clip(np.maximum(orders_per_year, floor), 1, 36)[churner]
    orders_per_year[grower] = np.maximum(orders_per_year[grower], rng.uniform(7, 12, k))
    costly = profile == COSTLY
    orders_per_year[costly] = np.maximum(orders_per_year[costly], rng.uniform(6, 12, int(costly.sum())))
    orders_per_year[seasonal] = rng.uniform(3, 7, int(seasonal.sum()))

    at_risk = np.zeros(n, dtype=bool)
    at_risk[_pick(rng, (profile == REGULAR) | (profile == GROWER), np.ones(n), round(0.02 * n))] = True

    b2g = rng.random(n) < np.where(np.isin(industry, (4, 5)), 0.3, 0.05)
    loyalty = rng.random(n) < np.asarray([0.2, 0.3, 0.4, 0.45])[size]
    referrer = _referrals(rng, n, size, profile, created)
    name = _names(rng, n, industry, parent)
    return Customers(n, name, region, industry, size, owner, profile, at_risk, seasonal_flag, season_product,
                     created, active_from, active_to, blocked, parent, referrer, annual_revenue, orders_per_year,
                     growth, basket_growth, ramp_days, b2g, loyalty)


def _hierarchies(rng: np.random.Generator, n: int, size: np.ndarray) -> np.ndarray:
    """About 60 groups per 5,000 accounts, 2-6 accounts each; the lowest number in a group is its head.

    Some bigger groups have a sub-holding (three levels). Heads are bumped to large or enterprise.
    """
    parent = np.full(n, NONE)
    groups = round(n * 0.012)
    sizes = rng.choice([2, 3, 4, 5, 6], groups, p=[0.3, 0.3, 0.2, 0.12, 0.08])
    if groups == 0 or sizes.sum() > n:
        return parent
    members = rng.permutation(n)[: sizes.sum()]
    start = 0
    for k in sizes:
        group = np.sort(members[start:start + k])
        start += k
        head, rest = group[0], group[1:]
        parent[rest] = head
        if k >= 4 and rng.random() < 0.35:  # rest[0] becomes a sub-holding of the later members
            parent[rest[1:][rng.random(k - 2) < 0.5]] = rest[0]
            size[rest[0]] = max(size[rest[0]], 1)
        if size[head] < 2:
            size[head] = 2 + int(rng.random() < 0.3)
    return parent


def _lifetimes(rng: np.random.Generator, n: int, days: int, profile: np.ndarray):
    """created / first possible order / last possible order / blocked day, per archetype."""
    created = -rng.integers(30, 3000, n)  # most accounts existed before the period
    active_from = np.zeros(n, dtype=np.int64)
    active_to = np.full(n, days, dtype=np.int64)
    blocked = np.full(n, NONE, dtype=np.int64)

    new = (rng.random(n) < 0.25) & (profile == REGULAR) & (days > 120)
    new |= (rng.random(n) < 0.2) & (profile == GROWER) & (days > 600)
    created[new] = rng.integers(0, max(1, days - 60), n)[new]
    created[new & (profile == GROWER)] = np.minimum(created, days - 420)[new & (profile == GROWER)]
    active_from[new] = created[new] + rng.integers(0, 21, n)[new]

    prospect = profile == PROSPECT
    created[prospect] = days - rng.integers(0, min(540, days + 1), n)[prospect]

    churner = profile == CHURNER
    bucket = rng.choice(3, n, p=[0.35, 0.5, 0.15])  # stopped long ago / 90-400 days / 45-90 days
    long_ok = days - 150 > 400
    gap = np.where(bucket == 0, rng.integers(401, max(402, min(800, days - 150)), n),
                   np.where(bucket == 1, rng.integers(90, min(400, max(91, days - 150)), n), rng.integers(45, 90, n)))
    if not long_ok:
        gap = np.where(bucket == 0, rng.integers(90, 400, n), gap)
    active_to[churner] = days - np.minimum(gap, max(45, days - 60))[churner]

    blocked_profile = profile == BLOCKED
    blocked[blocked_profile] = (days - rng.integers(20, max(21, min(500, days - 60)), n))[blocked_profile]
    active_to[blocked_profile] = (blocked - 1 - rng.integers(0, 30, n))[blocked_profile]
    return created, active_from, active_to, blocked


def _spending(rng: np.random.Generator, size: np.ndarray, profile: np.ndarray):
    """Yearly revenue and order frequency: lognormal per size, correlated, so a few accounts dominate."""
    n = len(size)
    z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
    revenue = np.asarray(cat.SIZE_REVENUE)[size] * np.exp(0.8 * z1)
    orders = np.asarray(cat.SIZE_ORDERS)[size] * np.exp(0.55 * (0.6 * z1 + 0.8 * z2))
    revenue[profile == GROWER] *= 1.3
    return revenue, np.clip(orders, 1.0, 52.0)


def _referrals(rng: np.random.Generator, n: int, size: np.ndarray, profile: np.ndarray,
               created: np.ndarray) -> np.ndarray:
    """~10% were referred by an earlier, older, non-prospect customer; a few small ones brought in big ones."""
    referrer = np.full(n, NONE)
    can_refer = profile != PROSPECT
    for i in np.flatnonzero(rng.random(n) < 0.095):
        if i == 0:
            continue
        for _ in range(12):
            j = int(rng.integers(0, i))
            if can_refer[j] and created[j] <= created[i]:
                referrer[i] = j
                break
    big = np.flatnonzero((size >= 2) & (referrer == NONE))
    small = can_refer & (size == 0)
    for i in rng.permutation(big)[: max(3, round(n * 0.002))]:
        options = np.flatnonzero(small[:i] & (created[:i] <= created[i]))
        if len(options):
            referrer[i] = rng.choice(options)
    return referrer


def _names(rng: np.random.Generator, n: int, industry: np.ndarray, parent: np.ndarray) -> list[str]:
    """`<Family> <Stem> <Industry word> <legal form>`; group members share their head's first words."""
    family = rng.choice(len(cat.REP_LAST), n)
    stem = rng.choice(len(cat.NAME_STEMS), n)
    word = rng.choice(4, n)
    legal = rng.choice(len(cat.LEGAL_FORMS), n)
    branch = rng.choice(len(cat.BRANCH_WORDS), n)
    names: list[str] = []
    for i in range(n):
        base = f"{cat.REP_LAST[family[i]]} {cat.NAME_STEMS[stem[i]]}"
        if parent[i] != NONE:
            head = parent[i]
            while parent[head] != NONE:
                head = parent[head]
            base = f"{cat.REP_LAST[family[head]]} {cat.NAME_STEMS[stem[head]]} {cat.BRANCH_WORDS[branch[i]]}"
        names.append(f"{base} {cat.INDUSTRY_WORDS[cat.INDUSTRIES[industry[i]]][word[i]]} "
                     f"{cat.LEGAL_FORMS[legal[i]]}")
    return names
