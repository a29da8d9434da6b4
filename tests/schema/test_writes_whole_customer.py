"""Writing surveys, deals, invoices and the customer's terms, credit and consent through GraphQL: each write stores
its record and re-evaluates the customer in one transaction, with the retry, conflict and field-error rules of the
other writes (domain.writes)."""
from datetime import date

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from domain.rulesets import publish
from domain.settings import DEFAULT_RULES, Settings
from server import create_app
from tests.schema.conftest import GraphQLClient

LATE = date(2024, 6, 30)
ADMIN, API = "admin-t", "api-t"
RULES = DEFAULT_RULES.read_text() + """
tag unhappy     if count(survey where detractor) >= 1
tag in_pipeline if count(opportunity where open) >= 1
tag late_payer  if count(invoice where overdue) >= 1
tag contactable if consent
"""
CUSTOMER = "customer { externalId tags { name } }"
SURVEY = """mutation($input: SurveyInput!) { recordSurvey(input: $input) { changed
    survey { externalId answeredAt kind score channel comment detractor promoter } %s } }""" % CUSTOMER
DEAL = """mutation($input: OpportunityInput!) { recordOpportunity(input: $input) { changed
    opportunity { externalId openedAt stage amount probability expectedCloseOn closedAt outcome weightedAmount
                  owner { externalId } } %s } }""" % CUSTOMER
INVOICE = """mutation($input: InvoiceInput!) { recordInvoice(input: $input) { changed
    invoice { externalId issuedAt dueAt amount paidAt overdue } %s } }""" % CUSTOMER
PAY = """mutation($id: String!, $on: Date!) { payInvoice(externalId: $id, paidOn: $on) { changed
    invoice { externalId paidAt overdue } %s } }""" % CUSTOMER
UPSERT = """mutation($input: CustomerInput!) { upsertCustomer(input: $input) { changed customer {
    externalId paymentTermsDays creditGrade creditLimit consent consentAt tags { name } } } }"""


@pytest.fixture
def admin(graph_engine, empty_db_url):
    """The graph evaluated on LATE with rules that read the new records, and a client with the admin token."""
    publish(graph_engine, RULES, as_of=LATE)
    app = create_app(Settings(database_url=empty_db_url, admin_token=ADMIN, api_token=API, webhooks=False),
                     engine=graph_engine)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        yield GraphQLClient(http)


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("surveys", "opportunities", "invoices", "customers", "tier_changes")}


def tags(result: dict) -> set[str]:
    return {t["name"] for t in result["customer"]["tags"]}


def error(body: dict) -> dict:
    assert body["data"] is None, body
    return body["errors"][0]["extensions"]


def tag_events(engine, external_id: str) -> list[tuple]:
    """The change events a write caused, by the record's external id."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT kind, old_value, new_value, cause, cause_record_kind FROM tier_changes "
            "WHERE cause_record_external_id = :e AND kind = 'tag' ORDER BY id"), {"e": external_id})]


def test_record_survey(admin, graph_engine):
    answer = {"externalId": "API-S1", "customerExternalId": "C001", "answeredAt": "2024-06-20", "kind": "NPS",
              "score": 3, "channel": "email", "comment": "slow\nand late"}
    done = admin.data(SURVEY, input=answer)["recordSurvey"]
    assert done["changed"] is True
    assert done["survey"] == {"externalId": "API-S1", "answeredAt": "2024-06-20", "kind": "nps", "score": 3.0,
                              "channel": "email", "comment": "slow\nand late", "detractor": True, "promoter": False}
    assert "unhappy" in tags(done)  # re-evaluated in the same transaction
    assert tag_events(graph_engine, "API-S1") == [("tag", None, "unhappy", "NEW_DATA", "survey")]

    before = counts(graph_engine)
    retry = admin.data(SURVEY, input=answer)["recordSurvey"]
    assert retry["changed"] is False and retry["survey"] == done["survey"]
    assert counts(graph_engine) == before

    conflict = error(admin(SURVEY, input={**answer, "score": 4, "customerExternalId": "C002"}))
    assert conflict["code"] == "CONFLICT"
    assert conflict["differences"] == {"score": {"stored": 3.0, "given": 4.0},
                                       "customerExternalId": {"stored": "C001", "given": "C002"}}
    for change, field, reason in [
        ({"kind": "ces"}, "input.kind", "must be nps or csat"),
        ({"score": 11}, "input.score", "outside the nps scale 0 .. 10"),
        ({"kind": "csat", "score": 0}, "input.score", "outside the csat scale 1 .. 5"),
        ({"answeredAt": "1800-01-01"}, "input.answeredAt", "outside"),
        ({"channel": "x" * 51}, "input.channel", "at most 50"),
        ({"externalId": "API-S2", "customerExternalId": "NOPE"}, "input.customerExternalId", "unknown customer"),
    ]:
        bad = error(admin(SURVEY, input={**answer, **change}))
        assert bad["code"] == "BAD_ARGUMENT" and bad["field"] == field and reason in bad["reason"], (change, bad)
    assert counts(graph_engine) == before


def test_record_opportunity_is_an_upsert_through_the_stages(admin, graph_engine):
    deal = {"externalId": "API-P1", "customerExternalId": "C003", "openedAt": "2024-06-01", "stage": "proposal",
            "amount": 10000, "probability": 0.3, "expectedCloseOn": "2024-08-01", "ownerRepExternalId": "r1"}
    made = admin.data(DEAL, input=deal)["recordOpportunity"]
    assert made["changed"] is True and "in_pipeline" in tags(made)
    assert made["opportunity"]["weightedAmount"] == pytest.approx(3000.0)
    assert made["opportunity"]["owner"] == {"externalId": "r1"} and made["opportunity"]["outcome"] is None
    assert admin.data(DEAL, input=deal)["recordOpportunity"]["changed"] is False  # the same state: a no-op

    # the deal moves on: the same external id with other content updates it; a field left out keeps its value
    before = counts(graph_engine)
    moved = admin.data(DEAL, input={**{k: v for k, v in deal.items() if k != "ownerRepExternalId"},
                                    "stage": "negotiation", "probability": 0.7, "expectedCloseOn": None})
    opportunity = moved["recordOpportunity"]["opportunity"]
    assert moved["recordOpportunity"]["changed"] is True
    assert (opportunity["stage"], opportunity["probability"], opportunity["expectedCloseOn"]) == (
        "negotiation", 0.7, None)  # null clears
    assert opportunity["owner"] == {"externalId": "r1"}  # left out: kept
    assert counts(graph_engine)["opportunities"] == before["opportunities"]

    # closing needs the outcome, also when only closedAt is sent for the stored open deal
    no_outcome = error(admin(DEAL, input={**deal, "closedAt": "2024-06-25"}))
    assert no_outcome["code"] == "BAD_ARGUMENT" and no_outcome["field"] == "input.outcome"
    open_with_outcome = error(admin(DEAL, input={**deal, "outcome": "won"}))
    assert open_with_outcome["field"] == "input.outcome" and "without 'closed_at'" in open_with_outcome["reason"]
    closed = admin.data(DEAL, input={**deal, "stage": "won", "probability": 1, "closedAt": "2024-06-25",
                                     "outcome": "Won"})["recordOpportunity"]
    assert closed["changed"] is True and "in_pipeline" not in tags(closed)
    assert (closed["opportunity"]["closedAt"], closed["opportunity"]["outcome"]) == ("2024-06-25", "won")
    assert [e[1:] for e in tag_events(graph_engine, "API-P1")] == [
        (None, "in_pipeline", "NEW_DATA", "opportunity"), ("in_pipeline", None, "NEW_DATA", "opportunity")]

    before = counts(graph_engine)
    conflict = error(admin(DEAL, input={**deal, "customerExternalId": "C004"}))
    assert conflict["code"] == "CONFLICT"
    assert conflict["differences"] == {"customerExternalId": {"stored": "C003", "given": "C004"}}
    for change, field, reason in [
        ({"probability": 1.5}, "input.probability", "outside 0 .. 1"),
        ({"amount": -1}, "input.amount", "must not be negative"),
        ({"stage": " "}, "input.stage", "'stage' is empty"),
        ({"closedAt": "2024-05-01", "outcome": "lost"}, "input.closedAt", "before 'opened_at'"),
        ({"closedAt": "2024-06-25", "outcome": "maybe"}, "input.outcome", "must be won or lost"),
        ({"externalId": "API-P2", "ownerRepExternalId": "zz"}, "input.ownerRepExternalId", "unknown rep"),
    ]:
        bad = error(admin(DEAL, input={**deal, **change}))
        assert bad["code"] == "BAD_ARGUMENT" and bad["field"] == field and reason in bad["reason"], (change, bad)
    assert counts(graph_engine) == before


def test_record_invoice_and_pay_it(admin, graph_engine):
    terms = admin.data(UPSERT, input={"externalId": "C005", "paymentTermsDays": 10})["upsertCustomer"]
    assert terms["customer"]["paymentTermsDays"] == 10
    invoice = {"externalId": "API-I1", "customerExternalId": "C005", "issuedAt": "2024-06-01", "amount": 250}
    made = admin.data(INVOICE, input=invoice)["recordInvoice"]
    assert made["changed"] is True
    assert made["invoice"] == {"externalId": "API-I1", "issuedAt": "2024-06-01", "dueAt": "2024-06-11",
                               "amount": 250.0, "paidAt": None, "overdue": True}  # due after C005's 10 days
    assert "late_payer" in tags(made)
    other = admin.data(INVOICE, input={**invoice, "externalId": "API-I2", "customerExternalId": "C006",
                                       "issuedAt": "2024-06-20"})["recordInvoice"]
    assert other["invoice"]["dueAt"] == "2024-07-20" and "late_payer" not in tags(other)  # no terms: 30 days

    before = counts(graph_engine)
    assert admin.data(INVOICE, input=invoice)["recordInvoice"]["changed"] is False
    assert admin.data(INVOICE, input={**invoice, "dueAt": "2024-06-11"})["recordInvoice"]["changed"] is False
    # the customer's terms changing since does not make a retry a conflict: the stored due date stands
    admin.data(UPSERT, input={"externalId": "C005", "paymentTermsDays": 45})
    assert admin.data(INVOICE, input=invoice)["recordInvoice"]["changed"] is False
    conflict = error(admin(INVOICE, input={**invoice, "amount": 260, "dueAt": "2024-06-30"}))
    assert conflict["code"] == "CONFLICT" and conflict["differences"] == {
        "amount": {"stored": 250.0, "given": 260.0}, "dueAt": {"stored": "2024-06-11", "given": "2024-06-30"}}
    for change, field, reason in [
        ({"paidAt": "2024-05-01"}, "input.paidAt", "'paid_at' 2024-05-01 is before 'issued_at' 2024-06-01"),
        ({"dueAt": "2024-05-01"}, "input.dueAt", "before 'issued_at'"),
        ({"amount": -5}, "input.amount", "must not be negative"),
        ({"externalId": "API-I3", "customerExternalId": "NOPE"}, "input.customerExternalId", "unknown customer"),
    ]:
        bad = error(admin(INVOICE, input={**invoice, **change}))
        assert bad["code"] == "BAD_ARGUMENT" and bad["field"] == field and reason in bad["reason"], (change, bad)
    assert {k: v for k, v in counts(graph_engine).items() if k != "tier_changes"} == {
        k: v for k, v in before.items() if k != "tier_changes"}

    # the payment: recording the invoice again with paidAt is an update, as is payInvoice
    paid = admin.data(INVOICE, input={**invoice, "paidAt": "2024-06-15"})["recordInvoice"]
    assert paid["changed"] is True and paid["invoice"]["paidAt"] == "2024-06-15"
    assert "late_payer" not in tags(paid) and paid["invoice"]["overdue"] is False
    assert admin.data(INVOICE, input=invoice)["recordInvoice"]["invoice"]["paidAt"] == "2024-06-15"  # kept
    assert admin.data(PAY, id="API-I1", on="2024-06-15")["payInvoice"]["changed"] is False
    corrected = admin.data(PAY, id="API-I1", on="2024-06-16")["payInvoice"]
    assert corrected["changed"] is True and corrected["invoice"]["paidAt"] == "2024-06-16"
    early = error(admin(PAY, id="API-I1", on="2024-05-31"))
    assert early["code"] == "BAD_ARGUMENT" and early["field"] == "paidOn" and "before" in early["reason"]
    unknown = error(admin(PAY, id="NOPE", on="2024-06-16"))
    assert unknown["code"] == "BAD_ARGUMENT" and unknown["field"] == "externalId"
    assert "unknown invoice 'NOPE'" in unknown["reason"]
    with graph_engine.connect() as conn:
        assert str(conn.execute(sa.text("SELECT paid_at FROM invoices WHERE external_id = 'API-I1'")).scalar_one()
                   )[:10] == "2024-06-16"


def test_upsert_customer_terms_credit_and_consent(admin, graph_engine):
    given = {"externalId": "C008", "paymentTermsDays": 14, "creditGrade": "B", "creditLimit": 5000,
             "consent": True, "consentAt": "2024-06-01"}
    done = admin.data(UPSERT, input=given)["upsertCustomer"]
    assert done["changed"] is True
    customer = done["customer"]
    assert {k: customer[k] for k in given} == {**given, "creditLimit": 5000.0}
    assert "contactable" in tags(done)
    assert admin.data(UPSERT, input=given)["upsertCustomer"]["changed"] is False

    withdrawn = admin.data(UPSERT, input={"externalId": "C008", "consent": False, "consentAt": "2024-06-20",
                                          "creditLimit": None})["upsertCustomer"]
    assert (withdrawn["customer"]["consent"], withdrawn["customer"]["consentAt"],
            withdrawn["customer"]["creditLimit"], withdrawn["customer"]["creditGrade"]) == (
        False, "2024-06-20", None, "B")  # null clears; left out keeps
    assert "contactable" not in tags(withdrawn)

    before = counts(graph_engine)
    for change, field, reason in [
        ({"paymentTermsDays": -1}, "input.paymentTermsDays", "whole number"),
        ({"paymentTermsDays": 4000}, "input.paymentTermsDays", "sane bound"),
        ({"creditLimit": -5}, "input.creditLimit", "must not be negative"),
        ({"creditGrade": "A" * 21}, "input.creditGrade", "at most 20"),
        ({"consentAt": "3001-01-01"}, "input.consentAt", "outside"),
    ]:
        bad = error(admin(UPSERT, input={"externalId": "C008", **change}))
        assert bad["code"] == "BAD_ARGUMENT" and bad["field"] == field and reason in bad["reason"], (change, bad)
    assert counts(graph_engine) == before


WRITES = [
    (SURVEY, {"input": {"externalId": "X", "customerExternalId": "C001", "answeredAt": "2024-06-20", "kind": "nps",
                        "score": 9}}),
    (DEAL, {"input": {"externalId": "X", "customerExternalId": "C001", "openedAt": "2024-06-20", "stage": "lead",
                      "amount": 1, "probability": 0.1}}),
    (INVOICE, {"input": {"externalId": "X", "customerExternalId": "C001", "issuedAt": "2024-06-20", "amount": 1}}),
    (PAY, {"id": "X", "on": "2024-06-21"}),
    (UPSERT, {"input": {"externalId": "C001", "creditLimit": 1}}),
]


def test_callers_without_the_admin_token_are_refused(admin, graph_engine):
    before = counts(graph_engine)
    for query, variables in WRITES:
        for token, code in (("", "UNAUTHENTICATED"), (API, "FORBIDDEN")):  # no token; the read-only API token
            response = admin.http.post("/graphql", json={"query": query, "variables": variables},
                                       headers={"Authorization": f"Bearer {token}" if token else ""})
            body = response.json()
            assert body["errors"][0]["extensions"]["code"] == code, (query, body)
    assert counts(graph_engine) == before
