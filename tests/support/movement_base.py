"""A six-customer base with two evaluations, value scores and a customer added afterwards, every figure of which
the movement / as-of / monthly revenue API tests compute by hand.

Rules: tier big with >= 2 orders up to the day, else small; status active with an order in the last 30 days,
else quiet. R1 = 2024-02-29, R2 = 2024-04-15 (run twice: the data's today), value scores as of R2; then G is
created on R2 with an order that day (no evaluation, no scores).

    customer  created     orders (day amount margin)                        R1 tier/status  R2 tier/status
    A (1)     2024-01-01  01-10 100 40, 02-10 50 20, 02-20 5 ?              big active      big quiet
    B (2)     2024-01-01  01-20 30 10, 04-05 70 ?                           small quiet     big active
    C (3)     2024-01-01  02-25 20 5                                        small active    small quiet
    D (4)     2024-03-20  03-25 200 80, 04-10 10 2, 04-20 999 500 (future)  -               big active
    E (5)     2024-01-01  -                                                 small quiet     small quiet
    G (6)     2024-04-15  04-15 40 10                                       -               - (not evaluated)

Cost to serve: an interaction of C on 2024-02-01 (30), a complaint of B on 2024-03-10 (50).
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from starlette.testclient import TestClient

from domain.db import make_engine, migrate
from domain.evaluation import run_batch
from domain.models import Complaint, Customer, Interaction, Order
from domain.settings import Settings
from domain.value.batch import run_value_batch
from rules.compiler import compile_rules
from server import create_app

R1, R2 = date(2024, 2, 29), date(2024, 4, 15)
TOKEN = "page-token"
RULES = """tier big if count(order) >= 2
tier small otherwise
status active if count(order, 30d) >= 1
status quiet otherwise
"""
D = date.fromisoformat
CUSTOMERS = {"A": "2024-01-01", "B": "2024-01-01", "C": "2024-01-01", "D": "2024-03-20", "E": "2024-01-01"}
ORDERS = {"A": [("2024-01-10", 100.0, 40.0), ("2024-02-10", 50.0, 20.0), ("2024-02-20", 5.0, None)],
          "B": [("2024-01-20", 30.0, 10.0), ("2024-04-05", 70.0, None)],
          "C": [("2024-02-25", 20.0, 5.0)],
          "D": [("2024-03-25", 200.0, 80.0), ("2024-04-10", 10.0, 2.0), ("2024-04-20", 999.0, 500.0)]}
LATE = {"G": ("2024-04-15", [("2024-04-15", 40.0, 10.0)])}
IDS = {ext: i for i, ext in enumerate([*CUSTOMERS, *LATE], start=1)}


def _customers(rows: dict[str, str]) -> list[dict]:
    return [{"id": IDS[ext], "external_id": ext, "name": f"customer {ext}", "seasonal": False,
             "created_at": D(created), "attributes": {}} for ext, created in rows.items()]


def _orders(rows: dict[str, list]) -> list[dict]:
    return [{"external_id": f"O-{ext}-{day}", "customer_id": IDS[ext], "ordered_at": D(day), "amount": amount,
             "margin": margin, "line_count": 1} for ext, orders in rows.items() for day, amount, margin in orders]


def build(engine) -> None:
    with engine.begin() as c:
        c.execute(sa.insert(Customer.__table__), _customers(CUSTOMERS))
        c.execute(sa.insert(Order.__table__), _orders(ORDERS))
        c.execute(sa.insert(Interaction.__table__), [{"external_id": "I-C", "customer_id": IDS["C"],
                                                       "occurred_at": D("2024-02-01"), "kind": "call", "cost": 30.0}])
        c.execute(sa.insert(Complaint.__table__), [{"external_id": "K-B", "customer_id": IDS["B"],
                                                     "opened_at": D("2024-03-10"), "cost": 50.0}])
    rules = compile_rules(RULES)
    for day in (R1, R2, R2):
        run_batch(engine, rules, day)
    run_value_batch(engine, R2)
    with engine.begin() as c:
        c.execute(sa.insert(Customer.__table__), _customers({ext: created for ext, (created, _) in LATE.items()}))
        c.execute(sa.insert(Order.__table__), _orders({ext: orders for ext, (_, orders) in LATE.items()}))


class Api:
    def __init__(self, http: TestClient):
        self.http = http

    def raw(self, query: str, **variables) -> dict:
        return self.http.post("/graphql", json={"query": query, "variables": variables},
                              headers={"Authorization": f"Bearer {TOKEN}"}).json()

    def __call__(self, query: str, **variables) -> dict:
        body = self.raw(query, **variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def error(self, query: str, **variables) -> dict:
        body = self.raw(query, **variables)
        assert body.get("errors"), body
        (error,) = body["errors"]
        return error


def served_base(kind: str, tmp_path_factory, request):
    """(Api, engine) over a freshly built base on `kind` ("sqlite" / "postgresql"); a generator for a fixture."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('movement') / 'tiergraph.db'}"
    else:
        url = request.getfixturevalue("pg_server").new_database()
    engine = make_engine(url)
    migrate(engine)
    build(engine)
    app = create_app(Settings(database_url=url, admin_token=TOKEN, webhooks=False), engine=engine)
    with TestClient(app) as http:
        yield Api(http), engine
    engine.dispose()
