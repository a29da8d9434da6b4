"""Helpers shared by several test folders: fixture paths and the CDNOW sample."""
from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

GRAPH_FIXTURE = Path(__file__).resolve().parent.parent / "schema" / "data"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SHARED_DATA = Path(os.environ.get("TIERGRAPH_SHARED_DATA")
                   or Path(__file__).resolve().parents[3] / "shared" / "data")
CDNOW_DIR = SHARED_DATA / "cdnow"


def require_cdnow() -> Path:
    """The CDNOW directory; skipped on a laptop without ../shared, a failure in CI where it must be present."""
    if not (CDNOW_DIR / "orders.csv").exists():
        if IN_CI:
            pytest.fail(f"the CDNOW data is expected at {CDNOW_DIR} in CI")
        pytest.skip(f"CDNOW data not found at {CDNOW_DIR} (it lives in ../shared/data/cdnow)")
    return CDNOW_DIR


@lru_cache(maxsize=1)
def _read_cdnow(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, dates, amounts = [], [], []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            ids.append(row["customer_external_id"])
            dates.append(row["ordered_at"])
            amounts.append(float(row["quantity"]) * float(row["unit_price"]))
    return np.array(ids), np.array(dates), np.array(amounts)


def cdnow_orders() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CDNOW purchases as arrays (customer id, ISO date, amount), read once per test process."""
    return _read_cdnow(require_cdnow() / "orders.csv")


def demo_database(work: Path, *demo_args: str) -> str:
    """A SQLite URL of a demo base built by `tiergraph demo --no-serve <demo_args>` in `work` (the CLI as a user
    runs it)."""
    from cli import main

    url = f"sqlite:///{work / 'demo.db'}"
    old = os.getcwd()
    os.environ["DATABASE_URL"] = url
    try:
        os.chdir(work)
        assert main(["demo", "--no-serve", *demo_args]) == 0
    finally:
        os.chdir(old)
        del os.environ["DATABASE_URL"]
    return url


def imported_demo(url: str, work: Path, *, seed: int, customers: int) -> str:
    """`url` (e.g. a fresh PostgreSQL database) holding a generated demo base imported with `tiergraph import`,
    not yet evaluated."""
    from cli import main
    from domain.demo import generate_demo

    generate_demo(work / "data", seed=seed, customers=customers)
    os.environ["DATABASE_URL"] = url
    try:
        assert main(["import", str(work / "data")]) == 0
    finally:
        del os.environ["DATABASE_URL"]
    return url
