"""run_value_batch end to end, on SQLite and PostgreSQL: the literature's CDNOW fit from the SQL summary, the
value classes of the demo base, the run record, and all-or-nothing replacement of customer_scores."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from domain.demo import generate_demo
from domain.importer import import_directory
from domain.models import CustomerScore, ValueRun
from domain.value import batch as batch_mod
from domain.value.batch import run_value_batch

DEMO_UNTIL = date(2025, 11, 20)
scores_t = CustomerScore.__table__
runs_t = ValueRun.__table__


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("value_demo")
    generate_demo(out, seed=11, customers=800, until=DEMO_UNTIL)
    return out


def _scores(engine) -> dict[int, dict]:
    with engine.connect() as c:
        return {r["customer_id"]: dict(r) for r in c.execute(sa.select(scores_t)).mappings()}


def _runs(engine) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.select(runs_t).order_by(runs_t.c.id)).mappings()]


def test_cdnow_bgnbd_from_the_sql_summary_matches_the_literature(engine, cdnow_dir):
    import_directory(engine, cdnow_dir)
    run = run_value_batch(engine, date(1997, 9, 30))
    fit = run.fit
    assert fit["status"] == "fitted", fit["reason"]
    # the summary the SQL builds is Hardie's: 2,357 customers, 946 of them repeat buyers
    assert (fit["customers"], fit["repeat_buyers"]) == (2357, 946)
    p = fit["purchases"]
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == \
        (0.243, 4.414, 0.793, 2.426)
    assert p["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert all(p[f"se_{k}"] > 0 for k in ("r", "alpha", "a", "b"))
    # Gamma-Gamma on the same calibration period: Fader & Hardie (2013) p = 6.25, q = 3.74, v = 15.44
    g = fit["spend"]
    assert (round(g["p"], 2), round(g["q"], 2), round(g["v"], 2)) == (6.25, 3.74, 15.44)
    assert fit["holdout"]["status"] == "checked" and fit["holdout"]["actual"] > 0
    assert fit["fit_seconds"] > 0
    # the stored run is what was returned; the JSON is plain JSON (no NaN)
    (stored,) = _runs(engine)
    assert stored["fit"]["purchases"]["r"] == pytest.approx(p["r"])
    json.dumps(stored["fit"], allow_nan=False)
    s = _scores(engine)
    assert len(s) == 2357
    first = s[1]  # customer 0001: x = 2, t_x = 30.43, T = 38.86 weeks
    assert first["recency_days"] == (date(1997, 9, 30) - date(1997, 8, 2)).days
    assert 0 < first["p_alive"] <= 1 and first["clv"] > 0 and first["expected_orders_90d"] > 0
    one_timers = [v for v in s.values() if v["p_alive"] == 1.0]
    assert len(one_timers) >= 1411  # under BG/NBD every x = 0 customer is alive


def test_demo_base_shows_the_three_value_classes(engine, demo_dir):
    import_directory(engine, demo_dir)
    run = run_value_batch(engine, DEMO_UNTIL)
    assert run.fit["status"] == "fitted", run.fit["reason"]
    s = _scores(engine)
    assert run.customer_count == len(s) > 700
    revenue = np.array([v["revenue_12m"] for v in s.values()])
    top_cut = np.quantile(revenue, 0.8)
    top = [v for v in s.values() if v["revenue_12m"] >= top_cut and v["revenue_12m"] > 0]
    fast = [v for v in s.values() if v["growth_90d"] is not None and v["growth_90d"] > 0.3
            and v["revenue_12m"] > 10000]
    negative = [v for v in s.values() if v["revenue_12m"] >= top_cut and v["profit_12m"] is not None
                and v["profit_12m"] < 0]
    assert len(top) >= 100
    # the stored RFM scores follow 1 + floor(5 * strictly-worse / N) over the customers who ever ordered
    known = [v for v in s.values() if v["recency_days"] is not None]
    for col, key, sign in (("rfm_m", "monetary", 1), ("rfm_f", "frequency", 1), ("rfm_r", "recency_days", -1)):
        vals = np.array([sign * v[key] for v in known])
        expect = 1 + (5 * np.searchsorted(np.sort(vals), vals, side="left")) // len(vals)
        assert [v[col] for v in known] == expect.tolist(), col
    assert len(fast) >= 5
    assert len(negative) >= 3
    # model columns: NULL exactly for customers who never ordered, probabilities in [0, 1]
    never = [v for v in s.values() if v["recency_days"] is None]
    assert never and all(v["p_alive"] is None and v["clv"] is None and v["rfm_r"] is None for v in never)
    ordered = [v for v in s.values() if v["recency_days"] is not None]
    assert all(v["p_alive"] is not None and 0 <= v["p_alive"] <= 1 for v in ordered)
    assert all(v["expected_orders_90d"] >= 0 for v in ordered)
    assert any(v["seasonal_auto"] for v in s.values()) and any(v["group_revenue_12m"] > v["revenue_12m"]
                                                            for v in s.values())
    assert any(v["referred_revenue_12m"] > 0 for v in s.values())
    h = run.fit["holdout"]
    assert h["status"] == "checked" and h["actual"] > 0 and abs(h["relative_error"]) < 0.5
    assert set(run.fit["timings"]) >= {"aggregate_sql", "model_fit", "scoring", "store", "total"}
    # MBG/NBD on the same base: a new run replaces every score
    run2 = run_value_batch(engine, DEMO_UNTIL, model="mbgnbd")
    s2 = _scores(engine)
    assert run2.fit["purchases"]["model"] == "mbgnbd" and {v["run_id"] for v in s2.values()} == {run2.id}
    assert any(v["p_alive"] < 1 for v in s2.values() if v["recency_days"] is not None)


def test_failure_mid_store_leaves_previous_scores_whole(engine, demo_dir, monkeypatch):
    import_directory(engine, demo_dir)
    first = run_value_batch(engine, date(2025, 6, 30))
    before = _scores(engine)
    assert before and {v["run_id"] for v in before.values()} == {first.id}
    monkeypatch.setattr(batch_mod, "CHUNK", 100)  # several chunks are written before the failure

    def fail_after_two_chunks(step, done, total):
        if step == "store" and done >= 200:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected failure"):
        run_value_batch(engine, DEMO_UNTIL, progress=fail_after_two_chunks)
    assert _scores(engine) == before
    assert [r["id"] for r in _runs(engine)] == [first.id]
    # a database error after every row was written (in the graph rollup) rolls back just the same
    monkeypatch.setattr(batch_mod, "ROLLUP_REFERRED_SQL", "UPDATE customer_scores SET no_such_column = 1")
    with pytest.raises(sa.exc.DBAPIError):
        run_value_batch(engine, DEMO_UNTIL)
    assert _scores(engine) == before
    assert [r["id"] for r in _runs(engine)] == [first.id]


def test_bad_arguments(engine):
    with pytest.raises(ValueError):
        run_value_batch(engine, DEMO_UNTIL, model="pareto")
    with pytest.raises(ValueError):
        run_value_batch(engine, DEMO_UNTIL, monetary="profit")
