"""exportCustomer / eraseCustomer through GraphQL: admin only (UNAUTHENTICATED, FORBIDDEN, nothing written or
recorded otherwise), the export as JSON, the erasure's answer, NOT_FOUND and BAD_ID typed; the examples of
docs/privacy.md run as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient
from strawberry import relay

from domain import privacy
from domain.models import Customer, Interaction, PrivacyAudit
from domain.settings import Settings
from server import create_app
from tests.schema.conftest import GraphQLClient

TOKEN = "admin-t"
EXPORT = "query($id: ID!) { exportCustomer(id: $id) }"
ERASE = """mutation($id: ID!) { eraseCustomer(id: $id) {
    changed erasedAt customer { id externalId name attributes } erased { field values } kept { table rows } } }"""
DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"
customers_t, audit_t = Customer.__table__, PrivacyAudit.__table__


def gid(external_id: str, type_name: str = "Customer") -> str:
    return str(relay.GlobalID(type_name, external_id))


def _app(engine, url: str, token: str | None = TOKEN):
    return create_app(Settings(database_url=url, admin_token=token, webhooks=False), engine=engine)


@pytest.fixture
def admin(graph_engine, empty_db_url):
    with TestClient(_app(graph_engine, empty_db_url), headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield GraphQLClient(http)


def _error(body: dict) -> dict:
    assert not any((body.get("data") or {}).values()), body
    (error,) = body["errors"]
    assert error["message"] != "Internal server error.", error
    return error["extensions"]


def _audits(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(audit_t.c.customer_id, audit_t.c.action, audit_t.c.done_by)
                                               .order_by(audit_t.c.id))]


def _customer(engine, external_id: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(customers_t).where(customers_t.c.external_id == external_id)).first()


def test_an_admin_exports_and_erases_a_customer(admin, graph_engine):
    row = _customer(graph_engine, "C007")
    exported = admin.data(EXPORT, id=gid("C007"))["exportCustomer"]
    assert exported["customer"]["external_id"] == "C007" and exported["customer"]["name"] == "Customer 7"
    with graph_engine.connect() as conn:
        for table in privacy.customer_tables():
            count = conn.execute(sa.select(sa.func.count()).select_from(table)
                                 .where(table.c.customer_id == row.id)).scalar_one()
            # the export's own audit row is written after the rows were read
            assert len(exported["records"][table.name]) == count - (table is audit_t), table.name
    assert exported["records"]["orders"] and exported["records"]["interactions"][0]["note"] == "call"
    assert _audits(graph_engine) == [(row.id, "export", "admin")]

    done = admin.data(ERASE, id=gid("C007"))["eraseCustomer"]
    erased_id = f"erased-{row.id}"
    assert done["changed"] is True
    assert done["customer"] == {"id": gid(erased_id), "externalId": erased_id, "name": f"Erased customer {row.id}",
                                "attributes": {}}
    erased = {e["field"]: e["values"] for e in done["erased"]}
    assert erased["customers.name"] == 1 and erased["interactions.note"] == 1
    kept = {k["table"]: k["rows"] for k in done["kept"]}
    assert kept["orders"] == len(exported["records"]["orders"]) > 0
    with graph_engine.connect() as conn:
        assert conn.execute(sa.select(Interaction.__table__.c.note)
                            .where(Interaction.__table__.c.customer_id == row.id)).scalars().all() == [None]
    assert _customer(graph_engine, "C007") is None

    again = admin.data(ERASE, id=gid(erased_id))["eraseCustomer"]
    assert again["changed"] is False and again["erasedAt"] == done["erasedAt"] and again["erased"] == []
    assert _error(admin(ERASE, id=gid("C007")))["code"] == "NOT_FOUND"  # its external id is gone with it
    assert _audits(graph_engine) == [(row.id, "export", "admin"), (row.id, "erase", "admin")]


@pytest.mark.parametrize("query", [EXPORT, ERASE], ids=["export", "erase"])
def test_unknown_customers_and_foreign_ids_are_typed_errors(admin, graph_engine, query):
    assert _error(admin(query, id=gid("NOPE")))["code"] == "NOT_FOUND"
    assert _error(admin(query, id=gid("C007", "RuleSet")))["code"] == "BAD_ID"
    assert _error(admin(query, id="C007"))["code"] == "BAD_ID"
    assert _audits(graph_engine) == []


def test_an_anonymous_id_already_taken_is_a_conflict(admin, graph_engine):
    row = _customer(graph_engine, "C007")
    with graph_engine.begin() as conn:
        conn.execute(customers_t.insert().values(external_id=f"erased-{row.id}", name="Ed", created_at=row.created_at,
                                                 attributes={}))
    assert _error(admin(ERASE, id=gid("C007")))["code"] == "CONFLICT"
    assert _customer(graph_engine, "C007").name == "Customer 7" and _audits(graph_engine) == []


@pytest.mark.parametrize("query", [EXPORT, ERASE], ids=["export", "erase"])
@pytest.mark.parametrize("server_token, header, code", [
    (TOKEN, None, "UNAUTHENTICATED"),
    (TOKEN, "Bearer wrong", "FORBIDDEN"),
    (None, f"Bearer {TOKEN}", "FORBIDDEN"),  # admin calls are off on a server without an admin token
], ids=["no-token", "wrong-token", "admin-off"])
def test_only_an_admin_may_export_or_erase(graph_engine, empty_db_url, query, server_token, header, code):
    headers = {"Authorization": header} if header else {}
    with TestClient(_app(graph_engine, empty_db_url, server_token), headers=headers) as http:
        body = GraphQLClient(http)(query, id=gid("C007"))
    assert _error(body)["code"] == code
    assert _audits(graph_engine) == []
    assert _customer(graph_engine, "C007").name == "Customer 7"


def test_the_examples_of_the_privacy_docs_run(admin, graph_engine):
    examples = re.findall(r"```graphql\n(.*?)```", DOC.read_text(), re.S)
    assert [re.search(r"(query|mutation) (\w+)", e).group(2) for e in examples] == ["ExportCustomer",
                                                                                    "EraseCustomer"]
    for example in examples:
        admin.data(example, id=gid("C008"))
    assert _customer(graph_engine, "C008") is None
    assert [a[1] for a in _audits(graph_engine)] == ["export", "erase"]
