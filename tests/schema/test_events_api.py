"""Tier changes: paged history, and a subscription that resumes from a cursor without losing or repeating events."""
from datetime import date, timedelta

import pytest
from starlette.testclient import TestClient

from domain.evaluation import run_batch
from domain.settings import DEFAULT_RULES, Settings
from rules.compiler import compile_rules, load_rules_file
from server import create_app

AS_OF = date(2024, 6, 30)
BIG_SMALL = """tier big if count(order) >= 3
tier small otherwise
status active if count(order, 12m) >= 1
status gone otherwise
"""
SUB = """subscription($after: String) { tierChanges(after: $after, kinds: ["tier"]) {
  cursor kind oldValue newValue customerExternalId } }"""


@pytest.fixture
def app_client(graph_engine, empty_db_url):
    run_batch(graph_engine, load_rules_file(DEFAULT_RULES), AS_OF)
    run_batch(graph_engine, compile_rules(BIG_SMALL), AS_OF)  # every customer changes tier: 45 tier changes
    settings = Settings(database_url=empty_db_url, event_poll_seconds=0.05)
    with TestClient(create_app(settings, engine=graph_engine)) as http:
        yield http


def history(http, **variables):
    q = """query($first: Int, $after: String, $kinds: [String!]) { tierChanges(first: $first, after: $after,
        kinds: $kinds) { endCursor hasMore events { cursor kind oldValue newValue customerExternalId } } }"""
    body = http.post("/graphql", json={"query": q, "variables": variables}).json()
    assert "errors" not in body, body
    return body["data"]["tierChanges"]


def all_tier_events(http):
    events, after = [], None
    while True:
        page = history(http, first=20, after=after, kinds=["tier"])
        events += page["events"]
        if not page["hasMore"]:
            return events
        after = page["endCursor"]


def receive(ws, count):
    got = []
    while len(got) < count:
        message = ws.receive_json()
        assert message["type"] == "next", message
        got.append(message["payload"]["data"]["tierChanges"])
    return got


def subscribe(http, after):
    ws = http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
    ws.__enter__()
    ws.send_json({"type": "connection_init"})
    assert ws.receive_json()["type"] == "connection_ack"
    ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUB, "variables": {"after": after}}})
    return ws


def test_history_pages_in_order(app_client):
    events = all_tier_events(app_client)
    assert len(events) == 45
    assert {e["newValue"] for e in events} == {"big", "small"}
    assert len({e["cursor"] for e in events}) == 45


def test_subscription_resumes_after_a_disconnect(app_client, graph_engine):
    events = all_tier_events(app_client)
    ws = subscribe(app_client, events[4]["cursor"])
    first = receive(ws, 3)
    ws.__exit__(None, None, None)  # the client drops the connection
    assert [e["cursor"] for e in first] == [e["cursor"] for e in events[5:8]]
    ws = subscribe(app_client, first[-1]["cursor"])
    rest = receive(ws, 45 - 8)
    assert [e["cursor"] for e in rest] == [e["cursor"] for e in events[8:]]
    # a new evaluation while subscribed: its changes arrive live, after everything replayed
    run_batch(graph_engine, load_rules_file(DEFAULT_RULES), AS_OF)
    live = receive(ws, 45)
    assert {e["oldValue"] for e in live} <= {"big", "small"}
    assert live[0]["cursor"] not in {e["cursor"] for e in events}
    ws.__exit__(None, None, None)


def test_bad_cursor_and_kind_are_clear_errors(app_client):
    q = '{ tierChanges(after: "bogus") { hasMore } }'
    body = app_client.post("/graphql", json={"query": q}).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR"
    q = '{ tierChanges(kinds: ["mood"]) { hasMore } }'
    body = app_client.post("/graphql", json={"query": q}).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_ARGUMENT"


def test_api_token_guards_queries_and_subscriptions(graph_engine, empty_db_url):
    from starlette.websockets import WebSocketDisconnect

    settings = Settings(database_url=empty_db_url, api_token="read-token", admin_token="admin-token",
                        event_poll_seconds=0.05, webhooks=False)
    with TestClient(create_app(settings, engine=graph_engine)) as http:
        q = {"query": "{ customers(first: 1) { totalCount } }"}
        missing = http.post("/graphql", json=q)
        assert missing.status_code == 401 and missing.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        wrong = http.post("/graphql", json=q, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and wrong.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        for token in ("read-token", "admin-token"):
            ok = http.post("/graphql", json=q, headers={"Authorization": f"Bearer {token}"})
            assert ok.json()["data"]["customers"]["totalCount"] == 45
        assert http.get("/graphql", headers={"accept": "text/html"}).status_code == 200  # GraphiQL page
        assert http.get("/healthz").status_code == 200
        with http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {}})
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4403
        with http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"Authorization": "Bearer read-token"}})
            assert ws.receive_json()["type"] == "connection_ack"


FILTERED = """query($after: String, $kinds: [String!], $newValues: [String!], $oldValues: [String!], $customer: String,
  $effectiveFrom: Date, $effectiveTo: Date) {
  tierChanges(first: 100, after: $after, kinds: $kinds, newValues: $newValues, oldValues: $oldValues,
              customer: $customer, effectiveFrom: $effectiveFrom, effectiveTo: $effectiveTo) {
    hasMore events { cursor kind oldValue newValue customerExternalId customerId effectiveOn exact ruleLine ruleText
                     ruleSetVersion metrics recordedAt
                     cause { kind recordKind recordExternalId ruleSetVersion } } } }"""


def filtered(http, **variables):
    body = http.post("/graphql", json={"query": FILTERED, "variables": variables}).json()
    assert "errors" not in body, body
    page = body["data"]["tierChanges"]
    assert not page["hasMore"]
    return page["events"]


def test_history_filters_agree_with_the_whole_log(app_client):
    everything = filtered(app_client)
    assert {e["kind"] for e in everything} >= {"tier", "status"}
    for e in everything:  # every event carries why and since when
        assert e["cause"]["kind"] in {"NEW_DATA", "TIME", "RULES", "CUTOFFS", "MANUAL"}
        assert e["effectiveOn"] is not None and e["recordedAt"] is not None and e["exact"] is not None
    tier = [e for e in everything if e["kind"] == "tier"]
    assert all(e["ruleLine"] is not None and e["ruleText"] for e in tier)

    def expect(pred, **variables):
        want = [e["cursor"] for e in everything if pred(e)]
        assert want, variables  # each filter is checked on a non-empty answer
        assert [e["cursor"] for e in filtered(app_client, **variables)] == want

    expect(lambda e: e["newValue"] == "big", newValues=["big"])
    expect(lambda e: e["kind"] == "status" and e["newValue"] in ("gone", "lost"), kinds=["status"],
           newValues=["gone", "lost"])
    expect(lambda e: e["oldValue"] == "maintain", oldValues=["maintain"])
    one = everything[0]
    expect(lambda e: e["customerExternalId"] == one["customerExternalId"], customer=one["customerExternalId"])
    expect(lambda e: e["customerExternalId"] == one["customerExternalId"], customer=one["customerId"])
    days = sorted({e["effectiveOn"] for e in everything})
    assert len(days) >= 2  # the range filters below cut the log somewhere inside
    expect(lambda e: e["effectiveOn"] >= days[-1], effectiveFrom=days[-1])
    expect(lambda e: e["effectiveOn"] <= days[0], effectiveTo=days[0])
    expect(lambda e: days[0] < e["effectiveOn"] <= days[-1], effectiveFrom=str(
        date.fromisoformat(days[0]) + timedelta(days=1)), effectiveTo=days[-1])


@pytest.mark.parametrize("variables, code", [
    ({"newValues": []}, "BAD_ARGUMENT"),
    ({"kinds": ["mood"]}, "BAD_ARGUMENT"),
    ({"effectiveFrom": "2024-06-30", "effectiveTo": "2024-01-01"}, "BAD_ARGUMENT"),
    ({"effectiveFrom": "0001-01-01"}, "BAD_ARGUMENT"),
    ({"customer": "no-such-customer"}, "NOT_FOUND"),
])
def test_bad_filters_are_clear_errors(app_client, variables, code):
    body = app_client.post("/graphql", json={"query": FILTERED, "variables": variables}).json()
    assert body["errors"][0]["extensions"]["code"] == code, body


def test_subscription_replays_with_its_filter(app_client):
    everything = filtered(app_client)
    after = everything[0]["cursor"]
    want = [e["cursor"] for e in everything[1:] if e["newValue"] == "small"]
    ws = app_client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
    ws.__enter__()
    ws.send_json({"type": "connection_init"})
    assert ws.receive_json()["type"] == "connection_ack"
    query = 'subscription($after: String) { tierChanges(after: $after, newValues: ["small"]) { cursor newValue } }'
    ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"after": after}}})
    got = receive(ws, len(want))
    ws.__exit__(None, None, None)
    assert [e["cursor"] for e in got] == want and {e["newValue"] for e in got} == {"small"}


def test_a_subscription_with_a_bad_filter_gets_a_typed_error(app_client):
    ws = app_client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
    ws.__enter__()
    ws.send_json({"type": "connection_init"})
    assert ws.receive_json()["type"] == "connection_ack"
    for n, args in enumerate(['effectiveFrom: "0001-01-01"', 'effectiveTo: "9999-12-31"', 'kinds: ["mood"]',
                              'customer: "no-such-customer"']):
        query = "subscription { tierChanges(%s) { cursor } }" % args
        ws.send_json({"id": str(n), "type": "subscribe", "payload": {"query": query}})
        message = ws.receive_json()
        assert message["type"] == "next" and message["payload"]["data"] is None, message
        code = message["payload"]["errors"][0]["extensions"]["code"]
        assert code == ("NOT_FOUND" if "customer" in args else "BAD_ARGUMENT"), message
        assert ws.receive_json()["type"] == "complete"
    ws.__exit__(None, None, None)
