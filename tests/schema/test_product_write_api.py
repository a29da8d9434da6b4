"""upsertProduct (admin): a product created or changed through GraphQL, validated like products.csv; a category
change re-evaluates the product's buyers in the same transaction, because rules over order lines read it."""
import json
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
RULES = DEFAULT_RULES.read_text() + 'tag buys_service if sum(order_line.amount where category = "service") > 0\n'
UPSERT = """mutation($input: ProductInput!) { upsertProduct(input: $input) {
    changed reevaluated product { sku name unitCost seasonal category } } }"""


@pytest.fixture
def app(graph_engine, empty_db_url):
    publish(graph_engine, RULES, as_of=LATE)
    return create_app(Settings(database_url=empty_db_url, admin_token=ADMIN, api_token=API, webhooks=False),
                      engine=graph_engine)


@pytest.fixture
def admin(app):
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        yield GraphQLClient(http)


def tagged(engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT c.external_id, e.tags FROM customer_evaluations e "
                                    "JOIN customers c ON c.id = e.customer_id")).all()
    return {ext for ext, tags in rows if "buys_service" in (tags if isinstance(tags, list) else json.loads(tags))}


def buyers_of(engine, sku: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT DISTINCT c.external_id FROM order_lines l JOIN products p ON p.id = l.product_id "
            "JOIN customers c ON c.id = l.customer_id WHERE p.sku = :s"), {"s": sku}).scalars())


def test_a_category_change_re_evaluates_the_buyers(admin, graph_engine):
    assert tagged(graph_engine) == set()
    done = admin.data(UPSERT, input={"sku": "B", "category": "service"})["upsertProduct"]
    buyers = buyers_of(graph_engine, "B")
    assert done["changed"] is True and done["reevaluated"] == len(buyers) > 0
    assert done["product"] == {"sku": "B", "name": "Gadget", "unitCost": None, "seasonal": True, "category": "service"}
    assert tagged(graph_engine) == buyers  # in the same transaction: the stored evaluation already says so
    with graph_engine.connect() as conn:
        causes = set(conn.execute(sa.text("SELECT cause, cause_record_kind, cause_record_external_id FROM tier_changes "
                                          "WHERE new_value = 'buys_service'")).all())
    assert causes == {("NEW_DATA", "product", "B")}
    again = admin.data(UPSERT, input={"sku": "B", "category": "service"})["upsertProduct"]
    assert (again["changed"], again["reevaluated"]) == (False, 0)
    cleared = admin.data(UPSERT, input={"sku": "B", "category": None})["upsertProduct"]
    assert cleared["product"]["category"] is None and tagged(graph_engine) == set()


def test_a_new_product_and_a_cost_change_re_evaluate_nobody(admin, graph_engine):
    made = admin.data(UPSERT, input={"sku": "S1", "name": "Support plan", "unitCost": 5, "category": "service"})
    assert made["upsertProduct"] == {"changed": True, "reevaluated": 0, "product": {
        "sku": "S1", "name": "Support plan", "unitCost": 5.0, "seasonal": False, "category": "service"}}
    cost = admin.data(UPSERT, input={"sku": "A", "unitCost": 6})["upsertProduct"]
    assert (cost["changed"], cost["reevaluated"], cost["product"]["unitCost"]) == (True, 0, 6.0)


@pytest.mark.parametrize("given, field", [({"sku": "NEW"}, "input.name"), ({"sku": "A", "name": None}, "input.name"),
                                          ({"sku": "A", "unitCost": -1}, "input.unitCost"),
                                          ({"sku": "A", "category": "x" * 101}, "input.category")])
def test_bad_input_writes_nothing(admin, graph_engine, given, field):
    with graph_engine.connect() as conn:
        before = conn.execute(sa.text("SELECT sku, name, unit_cost, category FROM products ORDER BY sku")).all()
    body = admin(UPSERT, input=given)
    ext = body["errors"][0]["extensions"]
    assert (ext["code"], ext["field"]) == ("BAD_ARGUMENT", field), body
    with graph_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sku, name, unit_cost, category FROM products ORDER BY sku")).all() == before


def test_only_an_admin_writes_products(app, graph_engine):
    with TestClient(app, headers={"Authorization": f"Bearer {API}"}) as http:
        body = GraphQLClient(http)(UPSERT, input={"sku": "A", "category": "service"})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    with graph_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT category FROM products WHERE sku = 'A'")).scalar() is None
