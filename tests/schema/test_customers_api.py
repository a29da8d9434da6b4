"""The customer graph over GraphQL: pagination, ids, nested lists, batching, errors."""
from pathlib import Path

import sqlalchemy as sa

from schema import build_schema


class StatementCounter:
    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

PAGE = """
query($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id externalId name } }
  }
}"""


def test_committed_sdl_matches_the_code():
    committed = (Path(__file__).resolve().parents[2] / "schema.graphql").read_text(encoding="utf-8")
    assert build_schema().as_str() + "\n" == committed, "run `tiergraph schema -o schema.graphql` and commit it"


def test_keyset_pages_cover_every_customer_once(client):
    seen, after, pages = [], None, 0
    while True:
        conn = client.data(PAGE, first=10, after=after)["customers"]
        assert conn["totalCount"] == 45
        assert conn["pageInfo"]["hasPreviousPage"] == (after is not None)
        seen += [e["node"]["externalId"] for e in conn["edges"]]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert pages == 5
    assert seen == [f"C{i:03d}" for i in range(1, 46)]


def test_cursor_survives_inserts_before_it(client, graph_engine):
    first = client.data(PAGE, first=3)["customers"]
    cursor = first["pageInfo"]["endCursor"]
    with graph_engine.begin() as conn:  # an offset cursor would shift; a keyset cursor does not
        conn.execute(sa.text("delete from customer_evaluations"))
        conn.execute(sa.text("insert into customers (external_id, name, seasonal, created_at, attributes) "
                             "values ('ZZZ', 'New', false, '2024-01-01', '{}')"))
    nxt = client.data(PAGE, first=1, after=cursor)["customers"]
    assert nxt["edges"][0]["node"]["externalId"] == "C004"


def test_first_is_capped_with_a_clear_error(client):
    body = client(PAGE, first=101)
    assert body["errors"][0]["extensions"]["code"] == "BAD_ARGUMENT"
    assert "capped at 100" in body["errors"][0]["message"]


def test_forged_cursor_is_rejected(client):
    body = client(PAGE, first=5, after="not-a-cursor")
    assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR"


def test_ids_are_stable_and_resolve(client):
    node = client.data(PAGE, first=1)["customers"]["edges"][0]["node"]
    one = client.data("query($id: ID!) { customer(id: $id) { externalId name } }", id=node["id"])
    assert one["customer"] == {"externalId": "C001", "name": "Customer 1"}
    via_node = client.data("query($id: ID!) { node(id: $id) { ... on Customer { externalId } } }", id=node["id"])
    assert via_node["node"]["externalId"] == "C001"
    by_ext = client.data('{ customerByExternalId(externalId: "C001") { id } }')
    assert by_ext["customerByExternalId"]["id"] == node["id"]
    assert client.data('{ customerByExternalId(externalId: "nope") { id } }')["customerByExternalId"] is None
    bad = client('{ customer(id: "garbage!") { name } }')
    assert bad["errors"][0]["extensions"]["code"] == "BAD_ID"


def test_graph_relations(client):
    q = """{
      parent: customerByExternalId(externalId: "C001") {
        subsidiaries(first: 10) { totalCount edges { node { externalId parent { externalId } } } }
      }
      referrer: customerByExternalId(externalId: "C006") { referrer { externalId referrals { totalCount } } }
      rep: customerByExternalId(externalId: "C007") {
        owner { externalId }
        complaints { edges { node { open category } } }
        interactions { edges { node { kind rep { name } } } }
      }
    }"""
    data = client.data(q)
    subs = data["parent"]["subsidiaries"]
    assert subs["totalCount"] == 3
    assert sorted(e["node"]["externalId"] for e in subs["edges"]) == ["C002", "C003", "C004"]
    assert {e["node"]["parent"]["externalId"] for e in subs["edges"]} == {"C001"}
    assert data["referrer"]["referrer"] == {"externalId": "C005", "referrals": {"totalCount": 2}}
    assert data["rep"]["owner"]["externalId"] == "r1"
    assert data["rep"]["complaints"]["edges"][0]["node"] == {"open": True, "category": "billing"}
    assert data["rep"]["interactions"]["edges"][0]["node"] == {"kind": "win_back", "rep": {"name": "Ann"}}


def test_nested_orders_paginate_newest_first(client):
    q = """query($after: String) { customerByExternalId(externalId: "C004") {
      orders(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { externalId orderedAt amount margin lines { quantity product { sku } } } } } } }"""
    page1 = client.data(q)["customerByExternalId"]["orders"]
    assert page1["totalCount"] == 4
    assert [e["node"]["externalId"] for e in page1["edges"]] == ["O004-3", "O004-2"]
    assert page1["edges"][0]["node"]["margin"] is None  # product B has no cost
    assert page1["edges"][0]["node"]["amount"] == 4 * 10 + 25
    page2 = client.data(q, after=page1["pageInfo"]["endCursor"])["customerByExternalId"]["orders"]
    assert [e["node"]["externalId"] for e in page2["edges"]] == ["O004-1", "O004-0"]
    assert page2["pageInfo"]["hasNextPage"] is False


def test_customers_with_orders_in_a_bounded_number_of_statements(client, graph_engine):
    q = """query($first: Int) { customers(first: $first) { totalCount edges { node {
        externalId owner { name } parent { externalId }
        orders(first: 5) { totalCount edges { node { amount lines { quantity product { sku } } deliveries { late } } } }
        complaints { totalCount } } } } }"""
    counts = {}
    for first in (5, 20):
        counter = StatementCounter()
        sa.event.listen(graph_engine, "before_cursor_execute", counter)
        try:
            data = client.data(q, first=first)
        finally:
            sa.event.remove(graph_engine, "before_cursor_execute", counter)
        assert len(data["customers"]["edges"]) == first
        counts[first] = len([s for s in counter.statements if s.lstrip().upper().startswith("SELECT")])
    # one statement per level and kind, whatever the page size: no query per row
    assert counts[20] == counts[5]
    assert counts[20] <= 12, counts


def test_internal_errors_are_masked(client, graph_engine, monkeypatch):
    import schema.query as query_module

    def boom(*_args, **_kwargs):
        raise RuntimeError("secret connection string postgres://user:pw@host")

    monkeypatch.setattr(query_module, "list_customers", boom)
    body = client(PAGE, first=1)
    assert body["errors"][0]["message"] == "Internal server error."
    assert "secret" not in str(body)


def test_healthz_and_graphiql(client):
    assert client.http.get("/healthz").json()["status"] == "ok"
    page = client.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


def test_metrics_for_operators(client):
    client.data(PAGE, first=2)
    text = client.http.get("/metrics").text
    assert "tiergraph_customers 45.0" in text
    assert 'tiergraph_http_requests_total{method="POST",path="/graphql",status="200"}' in text


def test_too_deep_or_too_many_aliases_is_refused_clearly(client):
    deep = "{ customers(first: 1) { edges { node { " + "parent { " * 12 + "name" + " }" * 12 + " } } } }"
    body = client(deep)
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: customers(first: 1) {{ totalCount }}" for i in range(31)) + " }"
    assert "aliases" in client(aliases)["errors"][0]["message"]
