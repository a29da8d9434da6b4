"""Client mistakes over the whole API get a typed error with a code, never "Internal server error." (defect 9).

Three kinds of requests: a table of hand-made mistakes (ids, variables, bodies, a subscription over POST), the
calendar's edge dates in every date argument found by walking the schema, and generated forged cursors for
every paginated list.
"""
from __future__ import annotations

import base64
import json
from datetime import date

import pytest
from graphql import GraphQLNonNull, get_named_type
from hypothesis import HealthCheck, given, settings, strategies as st
from starlette.testclient import TestClient

from domain.db import make_engine, migrate
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.settings import DEFAULT_RULES, Settings
from rules.compiler import load_rules_file
from schema_walk import ROOTS, Variable, call_of, graphql_schema, walk
from server import create_app
from tests_support import GRAPH_FIXTURE

TOKEN = "t0ken"
EDGE_DATES = (date(1, 1, 1), date(9999, 12, 31))
MASKED = "Internal server error."


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def http(request, tmp_path_factory):
    """One evaluated base per module and database: these requests only read (or are refused)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('client_errors') / 'api.db'}"
    else:
        url = request.getfixturevalue("pg_server").new_database()
    engine = make_engine(url)
    migrate(engine)
    import_directory(engine, GRAPH_FIXTURE)
    run_batch(engine, load_rules_file(DEFAULT_RULES), date(2024, 6, 30))
    app = create_app(Settings(database_url=url, admin_token=TOKEN, webhooks=False), engine=engine)
    with TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client
    engine.dispose()


def typed_errors(response) -> list[str]:
    """The codes of the errors in a response; fails on a masked error, a plain-text body or an error without one."""
    assert MASKED not in response.text, response.text
    assert response.status_code in (200, 400), (response.status_code, response.text)
    body = response.json()
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
    assert None not in codes, body
    return codes


def post(http, query: str, **variables):
    return http.post("/graphql", json={"query": query, "variables": variables})


def cursor(kind: str, key) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, key]).encode()).decode().rstrip("=")


ONE_CUSTOMER = '{ customerByExternalId(externalId: "C004") { %s } }'
HAND_MADE = [
    # bad ids
    ({"query": '{ node(id: "xx") { id } }'}, "BAD_ID"),
    ({"query": '{ node(id: "T3JkZXI6MQ==") { id } }'}, "BAD_ID"),  # a GlobalID of a type that is no Node
    ({"query": '{ node(id: "Q3VzdG9tZXI6bm9wZQ==") { id } }'}, "NOT_FOUND"),
    ({"query": '{ customer(id: "!!") { name } }'}, "BAD_ID"),
    # variables of the wrong type
    ({"query": "query($n: Int) { customers(first: $n) { totalCount } }", "variables": {"n": "abc"}}, "BAD_VARIABLE"),
    ({"query": "query($n: Int) { customers(first: $n) { totalCount } }", "variables": {"n": 2**40}}, "BAD_VARIABLE"),
    ({"query": "query($d: Date) { customers(asOf: $d) { totalCount } }", "variables": {"d": "31/12/2024"}},
     "BAD_VARIABLE"),
    ({"query": "query($d: Date!) { arpu(asOf: $d) { month } }", "variables": {}}, "BAD_VARIABLE"),
    ({"query": "query($i: Int!) { job(id: $i) { id } }", "variables": {"i": 1.5}}, "BAD_VARIABLE"),
    # forged cursors that still decode
    ({"query": '{ customers(after: "%s") { totalCount } }' % cursor("customers", [10**30])}, "BAD_CURSOR"),
    ({"query": '{ customers(after: "%s") { totalCount } }' % cursor("customers", [2**70])}, "BAD_CURSOR"),
    ({"query": '{ customers(after: "%s") { totalCount } }' % cursor("customers", [1, 2])}, "BAD_CURSOR"),
    ({"query": '{ lostCustomers(after: "%s") { totalCount } }' % cursor("lost_customers", ["x", 1])}, "BAD_CURSOR"),
    ({"query": ONE_CUSTOMER % 'orders(after: "%s") { totalCount }' % cursor("orders", ["2024-13-01", 1])},
     "BAD_CURSOR"),
    ({"query": '{ tierChanges(after: "%s") { hasMore } }' % cursor("tier_changes", [2**62])}, "BAD_CURSOR"),
    ({"query": '{ jobs(after: "%s") { totalCount } }' % cursor("customers", [1])}, "BAD_CURSOR"),
    # a subscription sent over POST, and bodies that are not a GraphQL request object
    ({"query": "subscription { tierChanges { cursor } }"}, "BAD_REQUEST"),
    ({"query": "subscription Live { tierChanges { cursor } }", "operationName": "Live"}, "BAD_REQUEST"),
    ("x", "BAD_REQUEST"),
    (None, "BAD_REQUEST"),
    (5, "BAD_REQUEST"),
    ([], "BAD_REQUEST"),
    ({"query": 123}, "BAD_REQUEST"),
    ({"query": "{ customers { totalCount } }", "variables": "x"}, "BAD_REQUEST"),
    # the query text itself
    ({"query": "{ customers { nope } }"}, "BAD_QUERY"),
    ({"query": "{ customers( }"}, "BAD_QUERY"),
    ({"query": '{ customers(asOf: "not a date") { totalCount } }'}, "BAD_QUERY"),
    # arguments out of range
    ({"query": "{ customers(first: -1) { totalCount } }"}, "BAD_ARGUMENT"),
    ({"query": "{ arpu(months: 0) { month } }"}, "BAD_ARGUMENT"),
]


@pytest.mark.parametrize("body, code", HAND_MADE, ids=[str(i) for i in range(len(HAND_MADE))])
def test_hand_made_mistakes_get_a_code(http, body, code):
    assert typed_errors(http.post("/graphql", json=body)) == [code]


def test_a_body_that_is_not_json(http):
    response = http.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    assert typed_errors(response) == ["BAD_REQUEST"]


def date_calls() -> list[tuple[str, str, str]]:
    """(field, argument, document) for every Date argument of a root field or of a customer's field."""
    schema = graphql_schema()
    calls = []
    for type_name, name, field, _role in walk(schema):
        for arg_name, arg in field.args.items():
            if get_named_type(arg.type).name != "Date":
                continue
            if type_name == "Subscription":  # runs over a websocket, not HTTP: test_events_api checks its dates
                continue
            for edge in EDGE_DATES:
                if type_name in ROOTS:
                    calls.append((f"{type_name}.{name}", arg_name, call_of(type_name, name, field, **{arg_name: edge})))
                elif type_name == "Customer":
                    inner = call_of("query", name, field, **{arg_name: edge})[len("query { "):-2]
                    calls.append((f"Customer.{name}", arg_name, ONE_CUSTOMER % inner))
    return calls


DATE_CALLS = date_calls()


def test_every_date_argument_is_covered():
    fields = {f for f, _, _ in DATE_CALLS}
    assert {"Query.customers", "Query.previewRules", "Query.arpu", "Query.topCustomers", "Mutation.publishRules",
            "Mutation.rollbackRules", "Customer.value"} <= fields


@pytest.mark.parametrize("field, argument, document", DATE_CALLS, ids=[f"{f}({a})" for f, a, _ in DATE_CALLS])
def test_dates_at_the_calendars_edges_are_bad_arguments(http, field, argument, document):
    # a `where` condition makes customers(asOf) compute windows from the date
    if field == "Query.customers":
        document = document.replace("customers(", 'customers(where: "count(order, 12m) > 0", ')
    assert typed_errors(http.post("/graphql", json={"query": document})) == ["BAD_ARGUMENT"], document


def int_variable_calls() -> list[tuple[str, str]]:
    """A variable of the wrong type for every Int argument of every root field."""
    calls = []
    for type_name, name, field, _role in walk(graphql_schema()):
        if type_name not in ("Query", "Mutation"):
            continue
        for arg_name, arg in field.args.items():
            if get_named_type(arg.type).name == "Int":
                decl = "Int!" if isinstance(arg.type, GraphQLNonNull) else "Int"
                call = call_of(type_name, name, field, **{arg_name: Variable("$v")})
                head, rest = call.split(" ", 1)
                calls.append((f"{type_name}.{name}({arg_name})", f"{head}($v: {decl}) {rest}"))
    return calls


INT_CALLS = int_variable_calls()


@pytest.mark.parametrize("field, document", INT_CALLS, ids=[f for f, _ in INT_CALLS])
def test_variables_of_the_wrong_type(http, field, document):
    for wrong in ("abc", 2**40, 1.5, [1], {"a": 1}):
        response = http.post("/graphql", json={"query": document, "variables": {"v": wrong}})
        assert typed_errors(response) == ["BAD_VARIABLE"], (document, wrong)


LISTS = {  # cursor kind -> a document paging that list with $after
    "customers": "query($after: String) { customers(first: 2, after: $after) { totalCount } }",
    "lost_customers": "query($after: String) { lostCustomers(first: 2, after: $after) { totalCount } }",
    "tier_changes": "query($after: String) { tierChanges(first: 2, after: $after) { hasMore } }",
    "jobs": "query($after: String) { jobs(first: 2, after: $after) { totalCount } }",
    **{kind: ONE_CUSTOMER.replace("{ customerByExternalId", "query($after: String) { customerByExternalId")
       % f"{field}(first: 2, after: $after) {{ totalCount }}"
       for kind, field in (("orders", "orders"), ("complaints", "complaints"), ("deliveries", "deliveries"),
                           ("interactions", "interactions"), ("subsidiaries", "subsidiaries"),
                           ("referrals", "referrals"))},
}
JSON_PARTS = st.one_of(st.integers(), st.integers(min_value=2**31 - 3, max_value=2**80), st.floats(),
                       st.text(max_size=12), st.dates().map(str), st.booleans(), st.none(),
                       st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                           max_size=2))
FORGED = st.one_of(
    st.tuples(st.sampled_from(sorted(LISTS)), st.lists(JSON_PARTS, max_size=3)).map(lambda t: cursor(*t)),
    st.tuples(st.sampled_from(sorted(LISTS)), JSON_PARTS).map(lambda t: cursor(*t)),
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(LISTS)), after=FORGED)
def test_forged_cursors(http, kind, after):
    codes = typed_errors(http.post("/graphql", json={"query": LISTS[kind], "variables": {"after": after}}))
    assert set(codes) <= {"BAD_CURSOR"}  # a forged cursor that happens to be well formed simply pages
