"""Writing data through GraphQL: a write stores its record and re-evaluates the customer in one transaction."""
from datetime import date

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from domain.evaluation import run_batch
from domain.rulesets import ensure_active
from domain.settings import DEFAULT_RULES, Settings
from domain.value.batch import run_value_batch
from rules.compiler import load_rules_file
from server import create_app
from tests.schema.conftest import GraphQLClient

LATE = date(2024, 6, 30)
TOKEN = "admin-t"

CUSTOMER = """customer { externalId status { name line since } tier { name } evaluation { asOf explanation }
    loss { how } value { revenue12m asOf pAlive } }"""
RECORD_ORDER = """mutation($input: OrderInput!) { recordOrder(input: $input) { changed
    order { externalId orderedAt amount margin lines { lineNo quantity unitPrice unitCost product { sku } } }
    %s } }""" % CUSTOMER
ORDER = {"externalId": "API-O1", "customerExternalId": "C007", "orderedAt": LATE.isoformat(),
         "lines": [{"sku": "A", "quantity": 2, "unitPrice": 30}]}


@pytest.fixture
def admin(graph_engine, empty_db_url):
    """The graph evaluated on LATE (value scores and rules), and a client with the admin token."""
    ensure_active(graph_engine, DEFAULT_RULES)
    run_value_batch(graph_engine, LATE, min_repeat_buyers=1)
    run_batch(graph_engine, load_rules_file(DEFAULT_RULES), LATE)
    app = create_app(Settings(database_url=empty_db_url, admin_token=TOKEN, webhooks=False), engine=graph_engine)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield GraphQLClient(http)


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("orders", "order_lines", "products", "tier_changes", "complaints", "deliveries",
                          "interactions", "customers")}


def _changes(engine, external_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT kind, old_value, new_value, cause, cause_record_kind, rule_line, "
                                    "effective_on FROM tier_changes WHERE cause_record_external_id = :e "
                                    "ORDER BY id"), {"e": external_id}).all()


def test_an_order_for_a_lost_customer_makes_it_active_in_the_same_response(admin, graph_engine):
    before = admin.data("{ customerByExternalId(externalId: \"C007\") { status { name } loss { how } } }")
    assert before["customerByExternalId"]["status"]["name"] == "lost"
    assert before["customerByExternalId"]["loss"] is not None

    done = admin.data(RECORD_ORDER, input=ORDER)["recordOrder"]
    assert done["changed"] is True
    assert done["order"]["amount"] == pytest.approx(60.0) and done["order"]["margin"] == pytest.approx(52.0)
    assert done["order"]["lines"] == [{"lineNo": 1, "quantity": 2.0, "unitPrice": 30.0, "unitCost": 4.0,
                                       "product": {"sku": "A"}}]
    customer = done["customer"]
    assert customer["status"]["name"] == "active"
    # every field agrees: the stored evaluation, its explanation, the loss and the value scores
    assert customer["evaluation"]["asOf"] == LATE.isoformat()
    assert any("active" in line for line in customer["evaluation"]["explanation"]), customer["evaluation"]
    assert not any("lost" in line for line in customer["evaluation"]["explanation"] if line.startswith("status"))
    assert customer["loss"] is None
    assert customer["value"]["asOf"] == LATE.isoformat()
    assert customer["value"]["revenue12m"] >= 60.0
    again = admin.data("{ customerByExternalId(externalId: \"C007\") { status { name } loss { how } } }")
    assert again["customerByExternalId"] == {"status": {"name": "active"}, "loss": None}

    status = [c for c in _changes(graph_engine, "API-O1") if c.kind == "status"]
    assert len(status) == 1
    kind, old, new, cause, record_kind, line, effective_on = status[0]
    assert (old, new, cause, record_kind) == ("lost", "active", "NEW_DATA", "order")
    assert line == customer["status"]["line"]
    assert str(effective_on)[:10] == LATE.isoformat()
    assert customer["status"]["since"] == LATE.isoformat()  # the current status carries the change's effective date

    # an identical retry changes nothing: no new order, no new event
    counts = _counts(graph_engine)
    retry = admin.data(RECORD_ORDER, input=ORDER)["recordOrder"]
    assert retry["changed"] is False and retry["order"] == done["order"]
    assert retry["customer"]["status"]["name"] == "active"
    assert _counts(graph_engine) == counts

    # the same id with other content is refused, saying what differs
    body = admin(RECORD_ORDER, input={**ORDER, "lines": [{"sku": "A", "quantity": 3, "unitPrice": 30}]})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "CONFLICT"
    assert set(error["extensions"]["differences"]) == {"lines"}
    assert error["extensions"]["differences"]["lines"]["stored"][0]["quantity"] == 2.0
    assert _counts(graph_engine) == counts


@pytest.mark.parametrize("change, field, reason", [
    ({"lines": [{"sku": "A", "quantity": -1, "unitPrice": 30}]}, "input.lines[0].quantity", "not a return"),
    ({"lines": [{"sku": "A", "quantity": 1, "unitPrice": -5}]}, "input.lines[0].unitPrice", "negative"),
    ({"lines": [{"sku": "A", "quantity": 1, "unitPrice": 1e13}]}, "input.lines[0].unitPrice", "sane bound"),
    ({"lines": []}, "input.lines", "at least one line"),
    ({"orderedAt": "1800-01-01"}, "input.orderedAt", "outside"),
    ({"externalId": "x" * 101}, "input.externalId", "at most 100"),
    ({"customerExternalId": "NOPE", "lines": [{"sku": "NEW-SKU", "quantity": 1, "unitPrice": 1}]},
     "input.customerExternalId", "unknown customer"),
])
def test_bad_input_gets_field_errors_and_writes_nothing(admin, graph_engine, change, field, reason):
    counts = _counts(graph_engine)
    body = admin(RECORD_ORDER, input={**ORDER, **change})
    assert body["data"] is None
    ext = body["errors"][0]["extensions"]
    assert ext["code"] == "BAD_ARGUMENT"
    assert ext["field"] == field and reason in ext["reason"], ext
    assert {"field": field, "reason": ext["reason"]} in ext["problems"]
    assert _counts(graph_engine) == counts  # not even the unknown sku's product


def test_every_bad_line_is_reported_at_once(admin):
    body = admin(RECORD_ORDER, input={**ORDER, "lines": [{"sku": "A", "quantity": -1, "unitPrice": 1},
                                                         {"sku": "A", "quantity": 1, "unitPrice": 1},
                                                         {"sku": " ", "quantity": 1, "unitPrice": 1}]})
    fields = [p["field"] for p in body["errors"][0]["extensions"]["problems"]]
    assert fields == ["input.lines[0].quantity", "input.lines[2].sku"]


def test_anonymous_callers_are_refused(admin, graph_engine):
    counts = _counts(graph_engine)
    response = admin.http.post("/graphql", json={"query": RECORD_ORDER, "variables": {"input": ORDER}},
                               headers={"Authorization": ""})  # the same app, without the token
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert _counts(graph_engine) == counts


def test_complaint_resolution_delivery_and_interaction(admin, graph_engine):
    q = """mutation($input: ComplaintInput!) { recordComplaint(input: $input) { changed
        complaint { externalId openedAt resolvedAt cost } customer { externalId } } }"""
    complaint = {"externalId": "API-K1", "customerExternalId": "C001", "openedAt": "2024-06-20", "cost": 12.5}
    made = admin.data(q, input=complaint)["recordComplaint"]
    assert made["changed"] and made["complaint"]["resolvedAt"] is None and made["customer"]["externalId"] == "C001"
    assert admin.data(q, input=complaint)["recordComplaint"]["changed"] is False
    conflict = admin(q, input={**complaint, "cost": 13})["errors"][0]["extensions"]
    assert conflict["code"] == "CONFLICT" and conflict["differences"] == {"cost": {"stored": 12.5, "given": 13.0}}

    resolve = """mutation($id: String!, $on: Date!) { resolveComplaint(externalId: $id, resolvedOn: $on) {
        changed complaint { resolvedAt } } }"""
    assert admin.data(resolve, id="API-K1", on="2024-06-25")["resolveComplaint"] == {
        "changed": True, "complaint": {"resolvedAt": "2024-06-25"}}
    assert admin.data(resolve, id="API-K1", on="2024-06-25")["resolveComplaint"]["changed"] is False
    early = admin(resolve, id="API-K1", on="2024-06-01")["errors"][0]["extensions"]
    assert early["code"] == "BAD_ARGUMENT" and early["field"] == "resolvedOn" and "before" in early["reason"]
    unknown = admin(resolve, id="NOPE", on="2024-06-25")["errors"][0]["extensions"]
    assert unknown["code"] == "BAD_ARGUMENT" and unknown["field"] == "externalId"
    # a retry of the first report of a complaint resolved since is still the same complaint
    assert admin.data(q, input=complaint)["recordComplaint"]["changed"] is False

    d = """mutation($input: DeliveryInput!) { recordDelivery(input: $input) { changed
        delivery { externalId promisedAt deliveredAt delayReason } customer { externalId } } }"""
    promised = {"externalId": "API-D1", "orderExternalId": "O001-0", "promisedAt": "2024-06-25"}
    assert admin.data(d, input=promised)["recordDelivery"]["delivery"]["deliveredAt"] is None
    arrived = admin.data(d, input={**promised, "deliveredAt": "2024-06-28", "delayReason": "weather"})
    assert arrived["recordDelivery"]["changed"] is True
    assert arrived["recordDelivery"]["delivery"]["deliveredAt"] == "2024-06-28"
    assert admin.data(d, input=promised)["recordDelivery"]["changed"] is False  # the outcome stays
    moved = admin(d, input={**promised, "promisedAt": "2024-06-26"})["errors"][0]["extensions"]
    assert moved["code"] == "CONFLICT" and set(moved["differences"]) == {"promisedAt"}

    i = """mutation($input: InteractionInput!) { recordInteraction(input: $input) { changed
        interaction { externalId kind winBack rep { externalId } } } }"""
    call = {"externalId": "API-I1", "customerExternalId": "C007", "occurredAt": "2024-06-29", "kind": "win_back",
            "repExternalId": "r1", "cost": 5}
    assert admin.data(i, input=call)["recordInteraction"]["interaction"] == {
        "externalId": "API-I1", "kind": "win_back", "winBack": True, "rep": {"externalId": "r1"}}
    bad_rep = admin(i, input={**call, "externalId": "API-I2", "repExternalId": "zz"})["errors"][0]["extensions"]
    assert bad_rep["field"] == "input.repExternalId"


def test_upsert_customer_changes_only_the_fields_given_and_rolls_up(admin, graph_engine):
    q = """mutation($input: CustomerInput!) { upsertCustomer(input: $input) { changed customer {
        externalId name region industry attributes createdAt parent { externalId } status { name }
        value { groupRevenue12m } } } }"""
    changed = admin.data(q, input={"externalId": "C008", "region": "north", "attributes": {"tier_hint": "x"}})
    c = changed["upsertCustomer"]["customer"]
    assert (c["name"], c["region"], c["industry"]) == ("Customer 8", "north", "retail")
    assert c["attributes"] == {"segment": "b2b", "tier_hint": "x"}
    assert admin.data(q, input={"externalId": "C008", "region": "north"})["upsertCustomer"]["changed"] is False

    new = admin.data(q, input={"externalId": "API-C1", "name": "New One"})["upsertCustomer"]
    assert new["changed"] and new["customer"]["createdAt"] == LATE.isoformat()  # the data's now
    assert new["customer"]["status"] is not None  # evaluated at once
    missing = admin(q, input={"externalId": "API-C2"})["errors"][0]["extensions"]
    assert missing["code"] == "BAD_ARGUMENT" and missing["field"] == "input.name"

    # C008 moves under C001: C001's group revenue now holds C008's revenue
    def group_of(ext):
        return admin.data("{ customerByExternalId(externalId: \"%s\") { value { groupRevenue12m revenue12m } } }"
                          % ext)["customerByExternalId"]["value"]
    before, child = group_of("C001")["groupRevenue12m"], group_of("C008")["revenue12m"]
    moved = admin.data(q, input={"externalId": "C008", "parentExternalId": "C001"})["upsertCustomer"]
    assert moved["customer"]["parent"] == {"externalId": "C001"}
    assert group_of("C001")["groupRevenue12m"] == pytest.approx(before + child)
    cycle = admin(q, input={"externalId": "C001", "parentExternalId": "C008"})["errors"][0]["extensions"]
    assert cycle["field"] == "input.parentExternalId" and "cycle" in cycle["reason"]


def test_after_a_write_past_the_last_batch_the_explanation_agrees(admin):
    """The write moves the data's now past the last full run: the stored result and its explanation both use
    that run's rank cut-offs (here unknown: no customer had a known profit), never fresh ones."""
    later = date(2024, 7, 10).isoformat()
    customer = admin.data(RECORD_ORDER, input={**ORDER, "orderedAt": later})["recordOrder"]["customer"]
    assert customer["evaluation"]["asOf"] == later
    explained = customer["evaluation"]["explanation"]
    assert explained[0].startswith(f"tier {customer['tier']['name']} "), explained
    assert explained[1].startswith(f"status {customer['status']['name']} "), explained
