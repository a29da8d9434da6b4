"""Section 5: writers take turns, so a reader paging the change log by cursor sees every event exactly once, in
commit order, while 4 writers append concurrently (SQLite and PostgreSQL).

Without the turn-taking (domain.evaluation_state.writer_transaction's lock), PostgreSQL hands out change ids
before commit: a writer holding id 7 commits after another writer's id 8 became visible, a reader that has seen 8
never asks for 7, and the event is skipped for ever.
"""
from __future__ import annotations

import random
import threading
import time
from datetime import date

import sqlalchemy as sa

from domain.evaluation_state import Cause, NewState, apply_states, writer_transaction
from domain.events import changes_after
from domain.models import Customer, CustomerEvaluation, TierChange

AS_OF = date(2025, 6, 30)
CUSTOMERS = 20
WRITERS = 4
REPETITIONS = 100
EVENTS_PER_TRANSACTION = 3


def _state(cid: int, tier: str) -> NewState:
    return NewState(customer_id=cid, as_of=AS_OF, tier=tier, tier_line=None, status="active", status_line=None,
                    tags=[], metrics={}, next_change_on=None, effective={})


def _seed(engine) -> list[int]:
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [
            {"external_id": f"C{i}", "name": f"c{i}", "created_at": date(2024, 1, 1), "seasonal": False,
             "attributes": {}} for i in range(CUSTOMERS)])
        ids = [r[0] for r in conn.execute(sa.select(Customer.__table__.c.id))]
    with writer_transaction(engine) as conn:  # a first evaluation is a starting state, not a change
        assert apply_states(conn, [_state(c, "a") for c in ids], Cause("TIME"), rule_set_version=None,
                            rules_source=None) == 0
    return ids


def _write_once(engine, ids: list[int], rng: random.Random, committed: list[list[int]], lock: threading.Lock):
    evals = CustomerEvaluation.__table__
    with writer_transaction(engine) as conn:
        picked = rng.sample(ids, EVENTS_PER_TRANSACTION)
        tiers = {r.customer_id: r.tier for r in conn.execute(
            sa.select(evals.c.customer_id, evals.c.tier).where(evals.c.customer_id.in_(picked)))}
        states = [_state(c, "b" if tiers[c] == "a" else "a") for c in picked]
        assert apply_states(conn, states, Cause("MANUAL"), rule_set_version=None, rules_source=None) == len(picked)
        changes = TierChange.__table__
        mine = [r[0] for r in conn.execute(sa.select(changes.c.id).order_by(changes.c.id.desc()).limit(len(picked)))]
        time.sleep(rng.random() * 0.002)  # hold the ids a moment before committing: the window a reader could skip
    with lock:
        committed.append(sorted(mine))


def test_reader_sees_every_event_once_in_commit_order(engine):
    ids = _seed(engine)
    committed: list[list[int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()
    seen: list[int] = []

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for _ in range(REPETITIONS):
                _write_once(engine, ids, rng, committed, lock)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def reader() -> None:
        cursor = 0
        try:
            while True:
                done = not writing.is_set()  # read once more after the writers finished: the last page
                page = changes_after(engine, cursor, limit=5)
                seen.extend(e.id for e in page)
                if page:
                    cursor = page[-1].id
                elif done:
                    return
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    read = threading.Thread(target=reader)
    read.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writing.clear()
    read.join()
    assert not errors, errors
    with engine.connect() as conn:
        logged = [r[0] for r in conn.execute(sa.select(TierChange.__table__.c.id).order_by(TierChange.__table__.c.id))]
    assert len(logged) == WRITERS * REPETITIONS * EVENTS_PER_TRANSACTION
    assert seen == logged  # every event exactly once, in id order: none skipped, none repeated
    # commit order: each transaction's ids are contiguous and transactions never interleave
    assert sorted(i for tx in committed for i in tx) == logged
    for tx in committed:
        assert tx == list(range(tx[0], tx[0] + len(tx)))
