"""markCustomerLost / reactivateCustomer through GraphQL: admin only, the stored mark and the customer in the answer,
retries changing nothing, and each error typed (BAD_ID, BAD_ARGUMENT with field, NOT_FOUND, CONFLICT, NOT_LOST,
BUSY, UNAUTHENTICATED, FORBIDDEN), never a masked internal error."""
from __future__ import annotations

import functools
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient
from strawberry import relay

from domain import evaluation_state, loss_marks
from domain.models import LossMark
from domain.settings import Settings
from server import create_app
from tests.schema.conftest import GraphQLClient

TOKEN = "admin-t"
MARK = """mutation($id: ID!, $on: Date!, $reason: String!) { markCustomerLost(id: $id, on: $on, reason: $reason) {
    changed mark { id kind markedOn text recordedAt recordedBy } customer { id externalId } } }"""
REACTIVATE = """mutation($id: ID!, $on: Date!, $note: String) { reactivateCustomer(id: $id, on: $on, note: $note) {
    changed mark { id kind markedOn text recordedAt recordedBy } customer { externalId } } }"""


def gid(external_id: str, type_name: str = "Customer") -> str:
    return str(relay.GlobalID(type_name, external_id))


@pytest.fixture
def app(graph_engine, empty_db_url):
    return create_app(Settings(database_url=empty_db_url, admin_token=TOKEN, webhooks=False), engine=graph_engine)


@pytest.fixture
def admin(app):
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield GraphQLClient(http)


def _marks(engine) -> list[tuple]:
    t = LossMark.__table__
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(t.c.kind, t.c.marked_on, t.c.text, t.c.recorded_by)
                                               .order_by(t.c.id))]


def _error(body: dict) -> dict:
    assert body.get("data") in (None, {}) or not any((body.get("data") or {}).values()), body
    (error,) = body["errors"]
    assert error["message"] != "Internal server error.", error
    return {"message": error["message"], **error["extensions"]}


def test_an_admin_marks_a_customer_lost_and_reactivates_it(admin, graph_engine):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    done = admin.data(MARK, id=gid("C001"), on="2024-03-01", reason="moved to a competitor")["markCustomerLost"]
    assert done["changed"] is True
    assert done["customer"] == {"id": gid("C001"), "externalId": "C001"}
    mark = done["mark"]
    assert (mark["kind"], mark["markedOn"], mark["text"], mark["recordedBy"]) == \
        ("LOST", "2024-03-01", "moved to a competitor", "admin")
    assert before <= datetime.fromisoformat(mark["recordedAt"]) <= datetime.now(timezone.utc)

    retry = admin.data(MARK, id=gid("C001"), on="2024-03-01", reason="moved to a competitor")["markCustomerLost"]
    assert retry["changed"] is False and retry["mark"] == mark

    back = admin.data(REACTIVATE, id=gid("C001"), on="2024-04-02", note="won back")["reactivateCustomer"]
    assert back["changed"] is True
    assert (back["mark"]["kind"], back["mark"]["markedOn"], back["mark"]["text"]) == ("REACTIVATED", "2024-04-02",
                                                                                    "won back")
    again = admin.data(REACTIVATE, id=gid("C001"), on="2024-04-02", note="won back")["reactivateCustomer"]
    assert again["changed"] is False and again["mark"]["id"] == back["mark"]["id"]
    assert _marks(graph_engine) == [("lost", date(2024, 3, 1), "moved to a competitor", "admin"),
                                    ("reactivated", date(2024, 4, 2), "won back", "admin")]
    with graph_engine.connect() as conn:
        (episode,) = conn.execute(loss_marks.manual_episodes_query()).all()
    assert tuple(episode)[1:] == (date(2024, 3, 1), "moved to a competitor", date(2024, 4, 2), "REACTIVATED",
                                  "won back")


def test_the_note_is_optional(admin):
    admin.data(MARK, id=gid("C005"), on="2024-03-01", reason="no budget")
    back = admin.data(REACTIVATE, id=gid("C005"), on="2024-03-02")["reactivateCustomer"]
    assert back["changed"] is True and back["mark"]["text"] is None


@pytest.mark.parametrize("headers, code", [({"Authorization": ""}, "UNAUTHENTICATED"),
                                           ({"Authorization": "Bearer wrong"}, "FORBIDDEN")])
def test_only_an_admin_may_mark(app, graph_engine, headers, code):
    with TestClient(app, headers=headers) as http:
        client = GraphQLClient(http)
        for query, variables in ((MARK, {"reason": "r"}), (REACTIVATE, {"note": None})):
            body = client(query, id=gid("C001"), on="2024-03-01", **variables)
            assert _error(body)["code"] == code
    assert _marks(graph_engine) == []


def test_without_an_admin_token_configured_marking_is_off(graph_engine, empty_db_url):
    app = create_app(Settings(database_url=empty_db_url, webhooks=False), engine=graph_engine)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        body = GraphQLClient(http)(MARK, id=gid("C001"), on="2024-03-01", reason="r")
    assert _error(body)["code"] == "FORBIDDEN"
    assert _marks(graph_engine) == []


@pytest.mark.parametrize("id", ["C001", gid("C001", "Order"), "not base64!"])
def test_an_id_not_issued_for_a_customer_is_bad_id(admin, graph_engine, id):
    assert _error(admin(MARK, id=id, on="2024-03-01", reason="r"))["code"] == "BAD_ID"
    assert _error(admin(REACTIVATE, id=id, on="2024-03-01"))["code"] == "BAD_ID"
    assert _marks(graph_engine) == []


def test_an_unknown_customer_is_not_found(admin, graph_engine):
    error = _error(admin(MARK, id=gid("NOPE"), on="2024-03-01", reason="r"))
    assert error["code"] == "NOT_FOUND" and "'NOPE'" in error["message"]
    assert _error(admin(REACTIVATE, id=gid("NOPE"), on="2024-03-01"))["code"] == "NOT_FOUND"


@pytest.mark.parametrize("query, variables, field, reason", [
    (MARK, {"on": "2024-03-01", "reason": "  "}, "reason", "'reason' is required"),
    (MARK, {"on": "2024-03-01", "reason": "x" * 2001}, "reason", "at most 2000"),
    (MARK, {"on": "2024-03-01", "reason": "a\u0000b"}, "reason", "NUL"),
    (MARK, {"on": "1899-12-31", "reason": "r"}, "on", "between 1900-01-01 and 2999-12-31"),
    (MARK, {"on": "2023-12-31", "reason": "r"}, "on", "before customer 'C001' was created (2024-01-01)"),
    (REACTIVATE, {"on": "3000-01-01"}, "on", "between 1900-01-01 and 2999-12-31"),
    (REACTIVATE, {"on": "2024-03-01", "note": "n" * 2001}, "note", "at most 2000"),
])
def test_bad_arguments_name_their_field_and_write_nothing(admin, graph_engine, query, variables, field, reason):
    error = _error(admin(query, id=gid("C001"), **variables))
    assert (error["code"], error["field"]) == ("BAD_ARGUMENT", field)
    assert reason in error["reason"] and error["problems"] == [{"field": field, "reason": error["reason"]}]
    assert _marks(graph_engine) == []


def test_a_contradicting_mark_is_a_conflict(admin, graph_engine):
    admin.data(MARK, id=gid("C007"), on="2024-03-01", reason="no budget")
    same_day = _error(admin(MARK, id=gid("C007"), on="2024-03-01", reason="other"))
    assert (same_day["code"], same_day["lostOn"], same_day["reason"]) == ("CONFLICT", "2024-03-01", "no budget")
    still_open = _error(admin(MARK, id=gid("C007"), on="2024-05-01", reason="other"))
    assert still_open["code"] == "CONFLICT" and "already marked lost since 2024-03-01" in still_open["message"]
    admin.data(REACTIVATE, id=gid("C007"), on="2024-04-01", note="n")
    other_note = _error(admin(REACTIVATE, id=gid("C007"), on="2024-04-01", note="m"))
    assert other_note["code"] == "CONFLICT" and "another note" in other_note["message"]
    assert len(_marks(graph_engine)) == 2


def test_reactivating_a_customer_not_marked_lost_is_not_lost(admin, graph_engine):
    never = _error(admin(REACTIVATE, id=gid("C007"), on="2024-03-01", note="n"))
    assert never["code"] == "NOT_LOST" and (never["customerExternalId"], never["on"]) == ("C007", "2024-03-01")
    assert "customer 'C007' is not marked lost on 2024-03-01" in never["message"]
    admin.data(MARK, id=gid("C007"), on="2024-01-10", reason="quiet")  # its order of 2024-01-25 ends it
    ended = _error(admin(REACTIVATE, id=gid("C007"), on="2024-02-01"))
    assert ended["code"] == "NOT_LOST" and "ended on 2024-01-25 by an order" in ended["message"]
    assert len(_marks(graph_engine)) == 1


def test_a_writer_holding_its_turn_too_long_is_busy(admin, graph_engine, monkeypatch):
    monkeypatch.setattr(evaluation_state, "writer_transaction",
                        functools.partial(evaluation_state.writer_transaction, wait_seconds=0.3))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with evaluation_state.writer_transaction(graph_engine, wait_seconds=10):
            holding.set()
            release.wait(20)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert holding.wait(10)
        error = _error(admin(MARK, id=gid("C001"), on="2024-03-01", reason="r"))
        assert error["code"] == "BUSY" and "try again" in error["message"]
    finally:
        release.set()
        t.join()
    assert _marks(graph_engine) == []
    assert admin.data(MARK, id=gid("C001"), on="2024-03-01", reason="r")["markCustomerLost"]["changed"] is True
