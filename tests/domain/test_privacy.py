"""Export and erasure of one customer (domain.privacy), on an evaluated demo base, SQLite and PostgreSQL.

The export must hold every row the database has about the customer; after the erasure no personal value of it may
be left in any text or JSON column of any table, while every evaluation, score and loss episode count stays as it
was, a fresh batch agrees, and every other customer's rows are untouched. The classification test fails when a
text or JSON column is added without saying whether it is personal."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from domain import loss_marks, loss_store, privacy, writes
from domain.demo import generate_demo
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.loss_history import EPISODE_COLUMNS, LossRules, episodes
from domain.models import (Customer, CustomerEvaluation, CustomerScore, LossHistoryState, Order, PrivacyAudit,
                           StoredLossEpisode, TierChange)
from domain.rulesets import publish
from domain.settings import DEFAULT_RULES
from domain.value.batch import run_value_batch
from domain.writes import BadInput
from rules.compiler import compile_rules

UNTIL = date(2025, 11, 20)
NAME = "Jane Quintessa Roe"
ATTRIBUTES = {"email": "jane.roe@privacy.example", "phone": "+44 7700 900123", "segment": "b2b"}
COMMENT = "Delivery driver Jim was rude to me at my flat"
NOTE = "Jane says her husband handles the orders now"
REASON = "Jane moved to Lisbon, buys from a rival"
REACTIVATION = "Jane is back, new flat in Porto"
customers_t, evals_t, changes_t = Customer.__table__, CustomerEvaluation.__table__, TierChange.__table__
orders_t = Order.__table__
episodes_t, audit_t = StoredLossEpisode.__table__, PrivacyAudit.__table__


# ---- the declaration ----


def _text_columns(table: sa.Table) -> list[str]:
    """Columns holding text or JSON; sqlmodel's AutoString is a TypeDecorator over String, not a String."""
    return [c.name for c in table.c if isinstance(getattr(c.type, "impl_instance", c.type), (sa.String, sa.JSON))]


def test_every_text_and_json_column_is_declared_personal_or_not():
    """A new text / JSON column anywhere fails here until it is put in PERSONAL_FIELDS or NOT_PERSONAL (with a
    reason): erasure and the docs then know about it."""
    unclassified, both = [], []
    for table in SQLModel.metadata.tables.values():
        for column in _text_columns(table):
            personal = column in privacy.PERSONAL_FIELDS.get(table.name, {})
            not_personal = column in privacy.NOT_PERSONAL.get(table.name, {})
            if personal and not_personal:
                both.append(f"{table.name}.{column}")
            elif not personal and not not_personal:
                unclassified.append(f"{table.name}.{column}")
    assert not unclassified, f"classify these in domain/privacy.py (and docs/privacy.md): {unclassified}"
    assert not both, f"declared personal and not personal at once: {both}"


def test_the_declaration_names_real_columns_of_customer_rows():
    tables = SQLModel.metadata.tables
    for table, columns in {**privacy.PERSONAL_FIELDS, **privacy.NOT_PERSONAL}.items():
        assert table in tables, table
        for column, why in columns.items():
            assert column in tables[table].c, f"{table}.{column}"
            assert (why.why if isinstance(why, privacy.Personal) else why).strip()
    for table, columns in privacy.PERSONAL_FIELDS.items():
        # erasure finds the rows by customer_id (customers: by id), or by the value copied
        assert table == "customers" or "customer_id" in tables[table].c, table
        for p in columns.values():
            assert p.copy_of is None or p.copy_of in customers_t.c
            assert p.only_when is None or p.only_when[0] in tables[table].c


def test_rows_of_a_customer_are_found_by_customer_id_only():
    """Export and erasure find a customer's rows by a `customer_id` column: any other reference to a customer would
    be missed, so only the customer hierarchy itself (parent, referrer) may point at customers otherwise."""
    others = [f"{t.name}.{fk.parent.name}" for t in SQLModel.metadata.tables.values() for fk in t.foreign_keys
              if fk.column.table is customers_t and fk.parent.name != "customer_id"]
    assert sorted(others) == ["customers.parent_id", "customers.referred_by_id"]
    assert {t.name for t in privacy.customer_tables()} >= {"orders", "order_lines", "surveys", "invoices",
                                                           "opportunities", "loss_episodes", "privacy_audit"}


# ---- an evaluated demo base with one customer holding every kind of record ----


def _count(conn, table: sa.Table, *where) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()


def _pick(conn) -> tuple[int, str]:
    """An active customer with orders, complaints, deliveries and interactions (a parent too, when one has)."""
    has = [sa.exists().where(t.c.customer_id == customers_t.c.id) for t in
           (SQLModel.metadata.tables[n] for n in ("orders", "complaints", "deliveries", "interactions"))]
    q = (sa.select(customers_t.c.id, customers_t.c.external_id)
         .join(evals_t, evals_t.c.customer_id == customers_t.c.id)
         .where(evals_t.c.status == "active", customers_t.c.blocked_from.is_(None), *has)
         .order_by(customers_t.c.parent_id.is_(None), customers_t.c.id).limit(1))
    return tuple(conn.execute(q).one())


@pytest.fixture
def base(engine, tmp_path):
    """200 demo customers, imported, value-scored and evaluated, the loss history stored; the chosen customer gets
    personal data in every field that can hold it and records of every kind, through the writers, and a change
    logged because of a write of the customer itself."""
    generate_demo(tmp_path, seed=5, customers=200, until=UNTIL)
    import_directory(engine, tmp_path)
    run_value_batch(engine, UNTIL)
    publish(engine, DEFAULT_RULES.read_text(), by="test", as_of=UNTIL)
    ruleset = compile_rules(DEFAULT_RULES.read_text())
    with engine.connect() as conn:
        cid, ext = _pick(conn)
        days = conn.execute(sa.select(orders_t.c.ordered_at).where(orders_t.c.customer_id == cid).distinct()
                            .order_by(orders_t.c.ordered_at)).scalars().all()
    # a manual loss between two orders, reactivated by hand before the second: an episode of its own
    lost_on = next(a for a, b in zip(days, days[1:]) if (b - a).days >= 4) + timedelta(days=1)
    writes.upsert_customer(engine, {"external_id": ext, "name": NAME, "attributes": ATTRIBUTES, "consent": True,
                                    "consent_at": date(2024, 5, 1), "credit_grade": "B", "payment_terms_days": 30})
    writes.record_survey(engine, {"external_id": "SV-P1", "customer_external_id": ext, "answered_at": UNTIL,
                                  "kind": "nps", "score": 3, "channel": "email", "comment": COMMENT})
    writes.record_opportunity(engine, {"external_id": "OP-P1", "customer_external_id": ext, "opened_at": UNTIL,
                                       "stage": "proposal", "amount": 900, "probability": 0.4})
    writes.record_invoice(engine, {"external_id": "IV-P1", "customer_external_id": ext, "issued_at": UNTIL,
                                   "amount": 900})
    writes.record_interaction(engine, {"external_id": "IN-P1", "customer_external_id": ext, "occurred_at": UNTIL,
                                       "kind": "call", "cost": 0, "note": NOTE})
    # blocking is a write of the customer: the status change it causes logs the customer's external id as cause
    writes.upsert_customer(engine, {"external_id": ext, "blocked_from": UNTIL - timedelta(days=3)})
    run_batch(engine, ruleset, UNTIL)  # the stored results are a batch's, as after `tiergraph evaluate`
    with engine.begin() as conn:
        # a customer write re-evaluates its parent and referrer too, and a change of theirs names the write as its
        # cause; the shipped rules read no roll-up, so one such change is logged here as apply_states writes it
        other = conn.execute(sa.select(evals_t).where(evals_t.c.customer_id != cid)
                             .order_by(evals_t.c.customer_id).limit(1)).one()
        conn.execute(changes_t.insert().values(
            customer_id=other.customer_id, as_of=UNTIL, kind="tag", old_value=None, new_value="hot",
            effective_on=UNTIL, cause="NEW_DATA", cause_record_kind="customer", cause_record_external_id=ext))
    loss_store.prepared(engine, ruleset)
    loss_marks.mark_lost(engine, ext, lost_on, REASON, by="ops")
    loss_marks.reactivate(engine, ext, lost_on + timedelta(days=1), REACTIVATION, by="ops")
    with engine.connect() as conn:
        assert loss_store.is_current(conn, ruleset.source)
        assert _count(conn, changes_t, changes_t.c.customer_id == cid, changes_t.c.cause_record_kind == "customer",
                      changes_t.c.cause_record_external_id == ext) >= 1  # logged by the write itself
        assert _count(conn, episodes_t, episodes_t.c.customer_id == cid, episodes_t.c.reason == REASON,
                      episodes_t.c.reactivation_note == REACTIVATION) == 1  # the copies erasure must reach
    return engine, ruleset, cid, ext


def _personal_values(ext: str) -> list[str]:
    return [NAME, ext, ATTRIBUTES["email"], ATTRIBUTES["phone"], COMMENT, NOTE, REASON, REACTIVATION]


def _found(engine, values: list[str]) -> list[str]:
    """Where any of the values is still stored: every text and JSON column of every table, as whole words."""
    patterns = {v: re.compile(rf"(?<!\w){re.escape(v)}(?!\w)") for v in values}
    found = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.tables.values():
            columns = _text_columns(table)
            if not columns:
                continue
            for row in conn.execute(sa.select(*(table.c[c] for c in columns))):
                for column, value in zip(columns, row):
                    text = value if isinstance(value, str) else json.dumps(value)
                    found += [f"{table.name}.{column}: {v!r}" for v, p in patterns.items() if p.search(text or "")]
    return found


def _rows(engine, table: sa.Table, *where) -> list[tuple]:
    with engine.connect() as conn:
        return sorted((tuple(r) for r in conn.execute(sa.select(table).where(*where))), key=repr)


def _audits(engine, *where) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(audit_t).where(*where).order_by(audit_t.c.id)).all()


def _others(engine, cid: int) -> dict[str, list[tuple]]:
    """Every row of every table that is not the erased customer's (nor its audit)."""
    out = {}
    for table in SQLModel.metadata.tables.values():
        key = table.c.id if table is customers_t else table.c.get("customer_id")
        out[table.name] = _rows(engine, table, *([] if key is None else [key != cid]))
    return out


def _counts(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {kind: sorted(conn.execute(sa.select(evals_t.c[kind], sa.func.count()).group_by(evals_t.c[kind]))
                             .all(), key=repr)
                for kind in ("tier", "status")}


def _history(engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted((tuple(r) for r in conn.execute(sa.select(*(episodes_t.c[c] for c in EPISODE_COLUMNS)))),
                      key=repr)


def _results(engine) -> dict[int, tuple]:
    with engine.connect() as conn:
        return {r.customer_id: (r.tier, r.status, sorted(r.tags)) for r in conn.execute(sa.select(evals_t))}


def test_export_holds_everything_and_erasure_leaves_no_personal_value(base):
    engine, ruleset, cid, ext = base
    personal = _personal_values(ext)
    with engine.connect() as conn:
        counts = {t.name: _count(conn, t, t.c.customer_id == cid) for t in privacy.customer_tables()}
    for name in ("orders", "order_lines", "complaints", "deliveries", "interactions", "surveys", "opportunities",
                 "invoices", "customer_evaluations", "customer_scores", "tier_changes", "loss_marks",
                 "loss_episodes"):
        assert counts[name] > 0, name  # the customer has records of every kind

    exported = privacy.export_customer(engine, ext, by="dpo@shop.example")
    text = json.dumps(exported, allow_nan=False)
    assert [v for v in personal if v not in text] == []
    assert exported["customer"]["consent_at"] == "2024-05-01"
    assert exported["customer"]["attributes"].items() >= ATTRIBUTES.items()
    assert {name: len(rows) for name, rows in exported["records"].items()} == counts
    assert [r["comment"] for r in exported["records"]["surveys"] if r["external_id"] == "SV-P1"] == [COMMENT]
    assert {p["id"] for p in exported["products"]} == \
        {line["product_id"] for line in exported["records"]["order_lines"]}
    (audit,) = _audits(engine, audit_t.c.customer_id == cid)
    assert (audit.action, audit.done_by) == ("export", "dpo@shop.example")
    assert audit.detail == {"rows": {"customers": 1, **counts}}

    tiers_before, results_before, history_before = _counts(engine), _results(engine), _history(engine)
    evaluations_before, scores_before = _rows(engine, evals_t), _rows(engine, CustomerScore.__table__)
    others_before = _others(engine, cid)
    copies = _rows(engine, changes_t, changes_t.c.cause_record_external_id == ext)
    with engine.connect() as conn:
        texts = {f"{table}.{column}": _count(conn, SQLModel.metadata.tables[table],
                                             SQLModel.metadata.tables[table].c.customer_id == cid,
                                             SQLModel.metadata.tables[table].c[column].is_not(None))
                 for table, column in (("surveys", "comment"), ("interactions", "note"), ("loss_marks", "text"),
                                       ("loss_episodes", "reason"), ("loss_episodes", "reactivation_note"))}

    done = privacy.erase_customer(engine, ext, "dpo@shop.example")

    assert done.changed and done.customer.id == cid
    assert (done.customer.name, done.customer.external_id, done.customer.attributes) == \
        (f"Erased customer {cid}", f"erased-{cid}", {})
    assert done.customer.erased_at is not None
    assert (done.customer.consent_at, done.customer.credit_grade) == (date(2024, 5, 1), "B")  # not personal: kept
    assert _found(engine, personal) == []
    assert done.erased == {"customers.name": 1, "customers.external_id": 1, "customers.attributes": 1, **texts,
                           "tier_changes.cause_record_external_id": len(copies)}
    assert texts["loss_marks.text"] == 2 and len(copies) >= 1
    assert done.kept == {k: v for k, v in counts.items() if k != "privacy_audit"}
    with engine.connect() as conn:  # every record kept
        assert {t.name: _count(conn, t, t.c.customer_id == cid) for t in privacy.customer_tables()} == \
            {**counts, "privacy_audit": 2}

    # nothing was evaluated again: the same tiers, statuses, evaluations, scores and loss history (its text aside)
    assert _counts(engine) == tiers_before
    assert _rows(engine, evals_t) == evaluations_before
    assert _rows(engine, CustomerScore.__table__) == scores_before
    anonymous = sorted((tuple(None if c in ("reason", "reactivation_note") and r[0] == cid else v
                              for c, v in zip(EPISODE_COLUMNS, r)) for r in history_before), key=repr)
    assert _history(engine) == anonymous != history_before
    with engine.connect() as conn:  # the stored history is still what the (erased) records derive
        assert loss_store.is_current(conn, ruleset.source)
        derived = LossRules.of(ruleset)
        read = [sorted(map(tuple, conn.execute(sa.select(episodes(rules, date(1900, 1, 1), UNTIL)))), key=repr)
                for rules in (derived, replace(derived, stored=True))]
    assert read[0] == read[1]

    # every other customer's rows are as they were, but for the copies of the erased external id
    expected = dict(others_before)
    at = list(changes_t.c.keys()).index("cause_record_external_id")
    expected["tier_changes"] = sorted((r[:at] + (f"erased-{cid}",) + r[at + 1:] if r[at] == ext else r
                                       for r in others_before["tier_changes"]), key=repr)
    assert _others(engine, cid) == expected

    # the audit: both actions, by whom, and nothing personal (the scan above read privacy_audit too)
    actions = sorted((r.action, r.done_by) for r in _audits(engine, audit_t.c.customer_id == cid))
    assert actions == [("erase", "dpo@shop.example"), ("export", "dpo@shop.example")]
    assert [v for v in personal if v in json.dumps(privacy.export_customer(engine, cid, by="dpo"))] == []

    # a fresh batch over the anonymised base gives every customer the same result and logs no change; the
    # loss history rebuilt from the erased marks is the one stored
    with engine.connect() as conn:
        changes = _count(conn, changes_t)
    run_batch(engine, ruleset, UNTIL)
    assert _results(engine) == results_before
    with engine.begin() as conn:
        assert _count(conn, changes_t) == changes
        conn.execute(LossHistoryState.__table__.delete())  # stale: the next report rebuilds it whole
    loss_store.prepared(engine, ruleset)
    assert _history(engine) == anonymous


def test_erasing_again_changes_nothing_and_the_old_id_is_gone(engine):
    with engine.begin() as conn:
        conn.execute(customers_t.insert().values(external_id="K1", name="Kim Example", created_at=date(2024, 1, 1),
                                                 attributes={"email": "kim@example.test"}))
    with pytest.raises(BadInput):
        privacy.erase_customer(engine, "K1", "  ")  # the audit must say who
    with pytest.raises(privacy.CustomerNotFound):
        privacy.erase_customer(engine, "nobody", "dpo")
    with pytest.raises(privacy.CustomerNotFound):
        privacy.export_customer(engine, "nobody")
    first = privacy.erase_customer(engine, "K1", "dpo")
    assert first.changed and first.customer.external_id.startswith("erased-")
    with pytest.raises(privacy.CustomerNotFound):  # its external id is gone with it
        privacy.erase_customer(engine, "K1", "dpo")
    again = privacy.erase_customer(engine, first.customer.external_id, "someone else")
    assert (again.changed, again.erased, again.kept) == (False, {}, {})
    assert again.erased_at.replace(tzinfo=None) == first.erased_at.replace(tzinfo=None)
    assert again.customer == first.customer
    assert [r.action for r in _audits(engine)] == ["erase"]  # a no-op writes no audit row
    with engine.begin() as conn:  # a customer that happens to have the id erasure would give another one
        taken = conn.execute(customers_t.insert().values(external_id="K3", name="Kit", created_at=date(2024, 1, 1),
                                                         attributes={}).returning(customers_t.c.id)).scalar_one()
        conn.execute(customers_t.insert().values(external_id=f"erased-{taken}", name="Ed", created_at=date(2024, 1, 1),
                                                 attributes={}))
    with pytest.raises(privacy.ErasedIdTaken):
        privacy.erase_customer(engine, "K3", "dpo")
    assert [r.action for r in _audits(engine)] == ["erase"] and _found(engine, ["Kit"]) == ["customers.name: 'Kit'"]
    assert _found(engine, ["Kim Example", "kim@example.test", "K1"]) == []


def test_the_commands_export_and_erase(engine, empty_db_url, monkeypatch, capsys):
    from cli import main

    with engine.begin() as conn:
        conn.execute(customers_t.insert().values(external_id="K2", name="Kai Example", created_at=date(2024, 1, 1),
                                                 attributes={"phone": "+1 555 0100"}))
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    assert main(["privacy", "export", "K2"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["customer"]["name"] == "Kai Example" and exported["records"]["orders"] == []
    with pytest.raises(SystemExit):  # --by is required: the audit says who erased
        main(["privacy", "erase", "K2"])
    assert main(["privacy", "erase", "K2", "--by", "dpo"]) == 0
    assert "erased-" in capsys.readouterr().out
    assert main(["privacy", "erase", "K2", "--by", "dpo"]) == 1  # the old id is gone
    assert [(r.action, r.done_by) for r in _audits(engine)] == [("export", "cli"), ("erase", "dpo")]
    assert _found(engine, ["Kai Example", "+1 555 0100", "K2"]) == []
