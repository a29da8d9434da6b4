"""Storing evaluations (domain.evaluation_state): only changed rows are written, only real changes are logged
(tier, status, tags added / removed) with their cause, rule and effective date; `since` survives runs that change
nothing; writers take turns or are refused with WriterBusy."""
from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain import rulesets
from domain.evaluation import run_batch
from domain.evaluation_state import Cause, NewState, WriterBusy, apply_states, writer_transaction
from domain.importer import import_directory
from domain.models import CustomerEvaluation, TierChange
from domain.settings import DEFAULT_RULES
from rules.compiler import compile_rules, load_rules_file
from tests_support import GRAPH_FIXTURE

AS_OF = date(2024, 6, 30)
RANKED = ("tier top if sum(order.amount, 90d) in top 50%\ntier rest otherwise\n"
          "status active if count(order, 90d) >= 1\nstatus gone otherwise\n")
NO_TAGS = ("tier big if count(order) >= 3\ntier small otherwise\n"
           "status active if count(order, 12m) >= 1\nstatus gone otherwise\n")


@pytest.fixture
def base(engine):
    import_directory(engine, GRAPH_FIXTURE)
    return engine


def _rows(engine) -> dict[int, object]:
    with engine.connect() as conn:
        return {r.customer_id: r for r in conn.execute(sa.select(CustomerEvaluation.__table__))}


def _changes(engine, after: int = 0) -> list:
    t = TierChange.__table__
    with engine.connect() as conn:
        return conn.execute(sa.select(t).where(t.c.id > after).order_by(t.c.id)).all()


def test_a_second_run_with_nothing_changed_writes_nothing(base):
    rules = load_rules_file(DEFAULT_RULES)
    first = run_batch(base, rules, AS_OF)
    before = _rows(base)
    assert before and _changes(base) == []  # a first evaluation is the starting state, not a change
    second = run_batch(base, rules, AS_OF)
    after = _rows(base)
    assert second.id != first.id and _changes(base) == []
    assert {c: r.run_id for c, r in after.items()} == {c: first.id for c in before}  # no row was rewritten


def test_tags_are_logged_with_rule_cause_and_effective_date(base):
    run_batch(base, load_rules_file(DEFAULT_RULES), AS_OF)
    tagged = {c: r.tags for c, r in _rows(base).items() if r.tags}
    assert tagged
    run_batch(base, compile_rules(NO_TAGS), AS_OF)
    changes = _changes(base)
    removed = {(c.customer_id, c.old_value) for c in changes if c.kind == "tag"}
    assert removed == {(c, t) for c, tags in tagged.items() for t in tags}
    assert all(c.new_value is None for c in changes if c.kind == "tag")
    for c in changes:
        assert c.cause == "TIME" and c.effective_on <= c.as_of and c.changed_at is not None
    moves = [c for c in changes if c.kind in ("tier", "status")]
    assert moves and all(c.rule_line is not None and c.rule_text in NO_TAGS for c in moves)
    assert all(c.rule_text.startswith(f"{c.kind} {c.new_value}") for c in moves)


def test_a_change_decided_by_a_rank_is_cutoffs_others_time(base):
    rules = compile_rules(RANKED)
    run_batch(base, rules, AS_OF)
    since = {c: (r.tier, r.tier_since, r.status, r.status_since) for c, r in _rows(base).items()}
    later = AS_OF + timedelta(days=200)
    run_batch(base, rules, later)
    changes = _changes(base)
    assert {c.kind for c in changes} == {"tier", "status"}
    for c in changes:
        assert c.cause == ("CUTOFFS" if c.kind == "tier" else "TIME"), c
        if c.kind == "tier":  # a moved cut-off: the day cannot be derived
            assert (c.effective_on, c.exact) == (later, False)
        assert c.metrics == {}  # the rank reads no named metric of the rule set
    for cid, r in _rows(base).items():  # a value that did not change keeps its since
        tier, tier_since, status, status_since = since[cid]
        if r.tier == tier:
            assert r.tier_since == tier_since
        if r.status == status:
            assert r.status_since == status_since


def test_publish_is_caused_by_rules_and_rollback_redates_nothing(base):
    v1 = rulesets.ensure_active(base, DEFAULT_RULES)
    rulesets.apply(base, v1, AS_OF)
    before = {c: (r.tier, r.tier_since, r.status, r.status_since) for c, r in _rows(base).items()}
    v2, _ = rulesets.publish(base, NO_TAGS, as_of=AS_OF)
    published = _changes(base)
    assert published and all(c.cause == "RULES" and c.cause_rule_set_version == v2.version == c.rule_set_version
                             for c in published)
    rulesets.rollback(base, v1.version, as_of=AS_OF)
    rolled_back = _changes(base, published[-1].id)
    assert rolled_back and all(c.cause == "RULES" and c.cause_rule_set_version == v1.version for c in rolled_back)
    after = {c: (r.tier, r.tier_since, r.status, r.status_since) for c, r in _rows(base).items()}
    assert after == before


def test_apply_states_refuses_outside_a_writer_transaction(base):
    with base.begin() as conn:
        with pytest.raises(RuntimeError, match="writer_transaction"):
            apply_states(conn, [], Cause("TIME"), rule_set_version=None, rules_source=None)


def test_a_writer_waits_its_turn_or_is_refused_with_a_clear_message(base):
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_transaction(base):
            holding.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert holding.wait(10)
    try:
        with pytest.raises(WriterBusy, match="another writer .* try again"):
            with writer_transaction(base, wait_seconds=0.3):
                pass
    finally:
        release.set()
        t.join()
    with writer_transaction(base, wait_seconds=5) as conn:  # once the first ends, the next one goes
        assert conn.execute(sa.select(1)).scalar_one() == 1


def test_unknown_cause_is_refused():
    with pytest.raises(ValueError, match="cause must be one of"):
        Cause("WHIM")
    NewState(1, AS_OF, None, None, None, None, [], {}, None, {})
