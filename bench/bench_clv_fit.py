"""Benchmark of the lifetime-value models on synthetic BG/NBD data.

    python bench/bench_clv_fit.py [--sizes 100000 1000000] [--seed 1]

For each size: generates orders from the BG/NBD process (vectorised), then times, in the same run,
  baselines: building the RFM summary from order lines, one evaluation of the BG/NBD log-likelihood and of its
             gradient (on the compressed and on the raw summary),
  fits:      BG/NBD, MBG/NBD, Gamma-Gamma (with the parameter estimates against the truth),
  scoring:   p_alive, expected purchases in 365 days, 12-month CLV,
and prints each time in seconds and as a multiple of one log-likelihood evaluation on the raw summary.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.value import bgnbd, clv, gamma_gamma, mbgnbd  # noqa: E402
from domain.value.bgnbd import compress_rows  # noqa: E402
from domain.value.summary import rfm_summary  # noqa: E402

TRUE_BG = (0.243, 4.414, 0.793, 2.426)  # the CDNOW estimates, weekly
TRUE_GG = (6.25, 3.74, 15.44)
CAL_DAYS = 273  # 39 weeks


def synthetic_orders(n: int, rng: np.random.Generator):
    """Order lines (customer id, day, amount) for n customers born uniformly over the first 91 days, purchasing
    per the BG/NBD process (in days) until day 272, spend per the Gamma-Gamma process. Vectorised: inter-purchase
    gaps are drawn for all customers at once, in rounds, until every customer has left or passed the end."""
    r, alpha, a, b = TRUE_BG
    p_gg, q_gg, v_gg = TRUE_GG
    birth = rng.integers(0, 91, n).astype(np.float64)
    lam = rng.gamma(r, 1.0 / alpha, n) / 7.0  # purchases per day
    p = rng.beta(a, b, n)
    nu = rng.gamma(q_gg, 1.0 / v_gg, n)
    cust = [np.arange(n)]
    when = [birth]
    active = np.arange(n)
    t = birth.copy()
    while active.size:
        gap = rng.exponential(1.0 / lam[active])
        t_new = t[active] + gap
        inside = t_new < CAL_DAYS
        active, t_new = active[inside], t_new[inside]
        cust.append(active)
        when.append(t_new)
        t[active] = t_new
        alive = rng.random(active.size) >= p[active]  # dropout coin after each repeat purchase
        active = active[alive]
    cid = np.concatenate(cust)
    day = np.floor(np.concatenate(when)).astype(np.int64) + np.datetime64("2024-01-01").astype(np.int64)
    amount = rng.gamma(p_gg, 1.0 / nu[cid])
    return cid, day, amount


def timed(fn, repeat: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t_gen, (cid, day, amount) = timed(lambda: synthetic_orders(n, rng))
    end = np.datetime64("2024-01-01") + np.timedelta64(CAL_DAYS - 1, "D")
    t_sum, s = timed(lambda: rfm_summary(cid, day, amount, calibration_end=end, unit_days=7))
    x, t_x, T, m = s.frequency, s.recency, s.T, s.monetary_value
    t_ll, _ = timed(lambda: bgnbd.log_likelihood(TRUE_BG, x, t_x, T), repeat=3)
    t_grad, _ = timed(lambda: bgnbd.log_likelihood_grad(TRUE_BG, x, t_x, T), repeat=3)
    t_comp, ((xc, txc, Tc), w) = timed(lambda: compress_rows(x.astype(float), t_x, T))
    t_gradc, _ = timed(lambda: bgnbd.log_likelihood_grad(TRUE_BG, xc, txc, Tc, w), repeat=3)

    t_bg, f_bg = timed(lambda: bgnbd.fit(x, t_x, T))
    t_mbg, f_mbg = timed(lambda: mbgnbd.fit(x, t_x, T))
    t_gg, f_gg = timed(lambda: gamma_gamma.fit(x, m))
    t_pa, _ = timed(lambda: f_bg.p_alive(x, t_x, T))
    t_ep, _ = timed(lambda: f_bg.expected_purchases(365 / 7, x, t_x, T))
    spend = f_gg.expected_average_profit(x, m)
    t_clv, _ = timed(lambda: clv.customer_lifetime_value(f_bg, spend, x, t_x, T, months=12,
                                                         monthly_discount_rate=0.01))
    t_all, _ = timed(lambda: clv.fit_value_models(s, "bgnbd"))

    print(f"\n== {n:,} customers, {cid.size:,} order lines, {int(x.sum()):,} repeat purchase days; "
          f"{xc.size:,} distinct (x, t_x, T) rows ==")
    print(f"(generating the orders took {t_gen:.2f} s; not part of any figure below)")
    unit = t_ll

    def line(label, secs):
        print(f"  {label:<46} {secs:9.3f} s  {secs / unit:9.1f} x LL")

    print("  baselines")
    line("RFM summary from order lines", t_sum)
    line("1 log-likelihood evaluation (raw summary)", t_ll)
    line("1 log-likelihood + gradient (raw summary)", t_grad)
    line("compress identical rows (once per fit)", t_comp)
    line("1 log-likelihood + gradient (compressed)", t_gradc)
    print("  fits (MLE + numerical-Hessian standard errors)")
    line("BG/NBD fit", t_bg)
    line("MBG/NBD fit", t_mbg)
    line("Gamma-Gamma fit", t_gg)
    print("  scoring, all customers")
    line("p_alive", t_pa)
    line("expected purchases in 365 days", t_ep)
    line("12-month discounted CLV (12 conditional expectations)", t_clv)
    line("fit_value_models end to end (both fits + scores)", t_all)
    print("  estimates (truth: BG/NBD r, alpha, a, b = %s; Gamma-Gamma p, q, v = %s)" % (TRUE_BG, TRUE_GG))
    for name, fit in (("BG/NBD", f_bg), ("MBG/NBD", f_mbg)):
        est = ", ".join(f"{v:.4f}±{e:.4f}" for v, e in zip(fit.params, fit.standard_errors))
        print(f"    {name:<8} {est}   LL {fit.log_likelihood:,.1f}")
    est = ", ".join(f"{v:.4f}±{e:.4f}" for v, e in zip(f_gg.params, f_gg.standard_errors))
    print(f"    {'GammaGamma':<8} {est}   (n = {f_gg.n_customers:,})")
    print("    (the generator rounds purchase times to whole days and merges same-day purchases, as real data does,"
          " so BG/NBD estimates are close to, not exactly, the truth)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    for n in args.sizes:
        run(n, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
