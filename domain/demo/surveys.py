"""What the customers said: NPS answers (now and then CSAT) a few times a year, and after some complaints.

An answer reflects the customer's own experience: a mood per customer (whales a little happier, costly accounts
and churners less so, a churner's mood sinking over their last months) minus what went wrong in the 90 days
before answering (complaints, late deliveries), plus noise. So complaint bursts and late deliveries show up as
detractors, also among the key accounts.
"""
from __future__ import annotations

import numpy as np

from . import catalog as cat
from .activity import Events
from .profiles import BLOCKED, CHURNER, COSTLY, PROSPECT, Customers

NPS, CSAT = 0, 1
_STRIDE = 1 << 22  # more days than any period: customer * _STRIDE + day keeps each customer's days apart


def recent(cust: np.ndarray, day: np.ndarray, at_cust: np.ndarray, at_day: np.ndarray, window: int) -> np.ndarray:
    """For each (at_cust, at_day): how many (cust, day) events of that customer fall in the `window` days to it."""
    key = np.sort(cust.astype(np.int64) * _STRIDE + day.astype(np.int64))
    q = at_cust.astype(np.int64) * _STRIDE + at_day.astype(np.int64)
    return np.searchsorted(key, q, side="right") - np.searchsorted(key, q - window, side="right")


def make_surveys(rng: np.random.Generator, c: Customers, complaints: Events, deliveries: Events,
                 delivery_customer: np.ndarray, days: int) -> Events:
    asked = (c.profile != PROSPECT) & (rng.random(c.n) < np.asarray([0.4, 0.55, 0.7, 0.8])[c.size])
    begin = np.maximum(c.created, 0) + 30
    stopped = np.isin(c.profile, (CHURNER, BLOCKED))
    end = np.where(stopped, np.minimum(c.active_to + 60, days), days)
    span = np.maximum(end - begin, 0)
    k = rng.poisson(asked * rng.uniform(1.0, 4.0, c.n) * span / 365.0)
    cust_p = np.repeat(np.arange(c.n), k)
    day_p = begin[cust_p] + np.floor(rng.random(len(cust_p)) * (span[cust_p] + 1)).astype(np.int64)

    # A follow-up after some complaints, answered while it still stings.
    kc = complaints.cols
    follow = np.flatnonzero(rng.random(len(kc["customer"])) < 0.15)
    day_f = kc["opened"][follow] + rng.integers(3, 21, len(follow))
    keep = day_f <= days
    cust_f, day_f = kc["customer"][follow][keep], day_f[keep]

    cust = np.concatenate([cust_p, cust_f])
    day = np.concatenate([day_p, day_f])
    n = len(cust)
    whale = c.annual_revenue >= np.quantile(c.annual_revenue, 0.9)
    mood = 8.3 + rng.normal(0.0, 0.9, c.n) + 0.8 * whale - 1.5 * (c.profile == COSTLY) - 1.0 * stopped
    sinking = 3.0 * np.clip((day - (c.active_to[cust] - 180)) / 180.0, 0.0, 1.0) * stopped[cust]

    # What went wrong in the 90 days before answering: each complaint, and the share of deliveries that came late
    # (a share, so a whale with many deliveries is not unhappier for ordering more).
    d = deliveries.cols
    late = (d["delivered"] > d["promised"]) | (np.isnan(d["delivered"]) & (d["promised"] < days))
    complained = recent(kc["customer"], kc["opened"], cust, day, 90)
    shipped = recent(delivery_customer, d["promised"], cust, day, 90)
    late_share = recent(delivery_customer[late], d["promised"][late], cust, day, 90) / np.maximum(shipped, 1)
    latent = (mood[cust] - sinking - 1.0 * np.minimum(complained, 4) - 4.0 * late_share
              + rng.normal(0.0, 1.3, n))

    kind = np.where(rng.random(n) < 0.12, CSAT, NPS)
    score = np.where(kind == NPS, np.clip(np.round(latent), 0, 10), np.clip(np.floor(latent / 2 - 0.5), 1, 5))
    # band: 0 detractor, 1 passive, 2 promoter, on each scale's own thresholds (domain.record_flags)
    band = np.where(kind == NPS, (score >= 7).astype(int) + (score >= 9), (score >= 3).astype(int) + (score >= 4))
    channel = rng.choice(len(cat.SURVEY_CHANNELS), n, p=cat.SURVEY_CHANNEL_P)
    sizes = np.asarray([len(v) for v in cat.SURVEY_COMMENTS.values()])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    comment = np.where(rng.random(n) < 0.12, first[band] + np.floor(rng.random(n) * sizes[band]).astype(int), -1)
    sort = np.lexsort((cust, day))
    return Events({"customer": cust[sort], "day": day[sort], "kind": kind[sort], "score": score[sort],
                   "channel": channel[sort], "comment": comment[sort]})


def comment_texts() -> tuple[str, ...]:
    """All survey comments in one tuple, in the order the `comment` column indexes them."""
    return tuple(text for texts in cat.SURVEY_COMMENTS.values() for text in texts)
