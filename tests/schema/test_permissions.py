"""Every root field declares who may call it; with the admin token set, anonymous callers get no admin field.

The fields come from walking the built schema, so a new field without a declared role fails here, and a new
admin field is covered by the anonymous-caller test without editing it.
"""
from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from domain.settings import Settings
from schema_walk import ROOTS, call_of, graphql_schema, walk
from server import create_app

TOKEN = "s3cret-token"
ADMIN_FIELDS = {"Query.ruleSet", "Query.ruleSetHistory", "Query.previewRules", "Query.job", "Query.jobs",
                "Query.webhooks", "Mutation.publishRules", "Mutation.rollbackRules", "Mutation.registerWebhook",
                "Mutation.removeWebhook",
                # writing data (issue 8): admin until roles exist
                "Mutation.upsertCustomer", "Mutation.recordOrder", "Mutation.recordComplaint",
                "Mutation.resolveComplaint", "Mutation.recordDelivery", "Mutation.recordInteraction",
                # marking losses by hand (issue 9)
                "Mutation.markCustomerLost", "Mutation.reactivateCustomer",
                # comparing rule set versions (issue 10)
                "Query.ruleSetDiff",
                # a customer's personal data: export and erasure (issue 11)
                "Query.exportCustomer", "Mutation.eraseCustomer",
                # writing surveys, deals and invoices (issue 11)
                "Mutation.recordSurvey", "Mutation.recordOpportunity", "Mutation.recordInvoice",
                "Mutation.payInvoice", "Mutation.upsertProduct"}


def test_every_root_field_declares_its_role(capsys):
    table = list(walk(graphql_schema()))
    width = max(len(f"{t}.{f}") for t, f, _, _ in table)
    print("\n".join(f"{t}.{f}".ljust(width) + f"  {role}" for t, f, _, role in table))
    undeclared = [f"{t}.{f}" for t, f, _, role in table if t in ROOTS and role not in ("public", "admin")]
    assert undeclared == [], f"root fields without a declared role (permission_classes=[Public] or [IsAdmin]): " \
                             f"{undeclared}"
    admin = {f"{t}.{f}" for t, f, _, role in table if t in ROOTS and role == "admin"}
    assert admin == ADMIN_FIELDS  # the rule set workflow, jobs and webhooks; a change here is a decision
    # what only admins reach: the job and webhook types, and the rule set versions
    admin_only = {t for t, f, _, role in table if t not in ROOTS and role.startswith("admin")}
    assert {"Job", "WebhookEndpoint", "RuleSetVersion", "PublishResult"} <= admin_only
    assert "Customer" not in admin_only


def admin_calls() -> list[tuple[str, str]]:
    return [(f"{t}.{f}", call_of(t, f, field)) for t, f, field, role in walk(graphql_schema())
            if t in ROOTS and role == "admin"]


@pytest.fixture
def http(graph_engine, empty_db_url):
    app = create_app(Settings(database_url=empty_db_url, admin_token=TOKEN, webhooks=False), engine=graph_engine)
    with TestClient(app) as client:
        yield client


def _versions(engine):
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text("select version, is_active from rule_sets order by version")).all()


@pytest.mark.parametrize("token, code", [(None, "UNAUTHENTICATED"), ("wrong", "FORBIDDEN")])
def test_admin_fields_refuse_callers_without_the_admin_token(http, graph_engine, token, code):
    calls = admin_calls()
    assert {name for name, _ in calls} == ADMIN_FIELDS
    before = _versions(graph_engine)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for name, document in calls:
        body = http.post("/graphql", json={"query": document}, headers=headers).json()
        assert body.get("data") is None or all(v is None for v in body["data"].values()), (name, body)
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], (name, document, body)
    assert _versions(graph_engine) == before


def test_admin_fields_answer_the_admin(http):
    """The same calls with the token pass the permission check (they may still fail on their sample values)."""
    for name, document in admin_calls():
        body = http.post("/graphql", json={"query": document}, headers={"Authorization": f"Bearer {TOKEN}"}).json()
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        assert not codes & {"UNAUTHENTICATED", "FORBIDDEN"}, (name, body)


def test_admin_fields_are_off_without_a_configured_admin_token(client):
    for name, document in admin_calls():
        body = client(document)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], (name, body)
        assert "TIERGRAPH_ADMIN_TOKEN" in body["errors"][0]["message"]
