"""The whole customer over GraphQL: surveys, deals, invoices, spend and anniversaries, on the data's now.

Given a small base (no import fixture: every record is written here, its expected value worked out by hand below),
evaluated on 2025-12-20, when the API is asked, then satisfaction, pipeline, payment, spend and anniversary fields
hold those values, agree with the same metrics written in the rule language, and bad arguments are typed errors.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from starlette.testclient import TestClient

from domain.evaluation import run_batch
from domain.models import Customer, Invoice, Opportunity, Order, OrderLine, Product, Survey
from domain.settings import Settings
from rules.compiler import compile_rules
from server import create_app
from tests.schema.conftest import GraphQLClient

NOW = date(2025, 12, 20)
RULES = """
metric days_late_12m = avg(invoice.days_late where paid, 12m)
metric utilisation   = sum(invoice.outstanding) / credit_limit
metric pipeline      = sum(opportunity.weighted_amount where open)
metric tools_12m     = sum(order_line.amount where category = "tools", 12m)
metric to_anniversary = days until anniversary
metric detractors    = count(survey where detractor, 12m)
tier any otherwise
"""


def _insert(conn, model, rows):
    table = model.__table__
    return [conn.execute(table.insert().values(**r).returning(table.c.id)).scalar_one() for r in rows]


def _customer(external_id, created, **more):
    return dict(external_id=external_id, name=external_id.title(), seasonal=False, created_at=created,
                attributes=more.pop("attributes", {}), **more)


def _build(engine):
    with engine.begin() as conn:
        acme, beta, leap, delta, fresh, future, erased = _insert(conn, Customer, [
            _customer("ACME", date(2018, 1, 3), payment_terms_days=30, credit_grade="B", credit_limit=10000.0,
                      consent=True, consent_at=date(2024, 5, 1),
                      attributes={"wallet.tools": "1400", "wallet.service": 0}),
            _customer("BETA", date(2019, 1, 5)),  # anniversary across the year end
            _customer("LEAP", date(2020, 2, 29)),  # 28 February in common years
            _customer("DELTA", date(2015, 12, 28)),  # same day as ACME's: ordered by id after it
            _customer("FRESH", date(2010, 12, 20)),  # anniversary on the day
            _customer("FUTURE", date(2026, 1, 1)),  # not a customer yet on the data's now
            _customer("ERASED", date(2020, 12, 21), erased_at=datetime(2025, 1, 1, tzinfo=timezone.utc)),
        ])
        tools_a, tools_b, service, loose = _insert(conn, Product, [
            dict(sku="T-A", name="Hammer", unit_cost=60.0, seasonal=False, category="tools"),
            dict(sku="T-B", name="Saw", seasonal=False, category="tools"),  # unknown cost: margin unknown
            dict(sku="S-1", name="Install", unit_cost=100.0, seasonal=False, category="service"),
            dict(sku="X-1", name="Misc", unit_cost=20.0, seasonal=False),  # no category
        ])
        orders = {}
        for ext, customer, day, amount in [
                ("O-FIRST", acme, date(2017, 12, 28), 10.0),  # ACME since 2017-12-28
                ("O-X", acme, date(2025, 5, 10), 500.0), ("O-Y", acme, date(2025, 8, 10), 250.0),
                ("O-Z", acme, date(2024, 1, 1), 3000.0), ("O-W", acme, date(2025, 9, 1), -50.0),
                ("O-B", beta, date(2025, 11, 1), 100.0)]:
            orders[ext] = _insert(conn, Order, [dict(external_id=ext, customer_id=customer, ordered_at=day,
                                                     amount=amount, line_count=1)])[0]
        line = lambda o, n, p, q, price, cost, ret=False, c=acme: dict(
            order_id=orders[o], customer_id=c, line_no=n, product_id=p, quantity=q, unit_price=price, unit_cost=cost,
            is_return=ret)
        _insert(conn, OrderLine, [
            line("O-X", 1, tools_a, 2, 100.0, 60.0), line("O-X", 2, service, 1, 300.0, 100.0),
            line("O-Y", 1, tools_b, 1, 150.0, None), line("O-Y", 2, tools_a, 1, 100.0, 60.0),
            line("O-Z", 1, service, 10, 300.0, 100.0),  # before the 12 months
            line("O-W", 1, loose, 1, 50.0, 20.0), line("O-W", 2, tools_a, -1, 100.0, 60.0, True),
            line("O-B", 1, tools_a, 1, 100.0, 60.0, c=beta)])
        survey = lambda ext, day, kind, score: dict(external_id=ext, customer_id=acme, answered_at=day, kind=kind,
                                                    score=score)
        _insert(conn, Survey, [survey("S1", date(2025, 3, 1), "nps", 10), survey("S2", date(2025, 6, 1), "nps", 9),
                               survey("S3", date(2025, 9, 1), "nps", 3), survey("S4", date(2025, 10, 1), "csat", 4),
                               survey("S5", date(2024, 12, 1), "csat", 2),  # only in 24m
                               survey("S6", date(2026, 1, 2), "nps", 0)])  # after the data's now
        deal = lambda ext, opened, amount, p, expected=None, closed=None, outcome=None: dict(
            external_id=ext, customer_id=acme, opened_at=opened, stage="won" if outcome else "proposal", amount=amount,
            probability=p, expected_close_on=expected, closed_at=closed, outcome=outcome)
        _insert(conn, Opportunity, [
            deal("D1", date(2025, 9, 1), 1000.0, 0.5, date(2026, 2, 1)),
            deal("D2", date(2025, 8, 1), 2000.0, 0.25, date(2025, 11, 1)),  # stalled
            deal("D3", date(2023, 1, 1), 3000.0, 0.9, closed=date(2025, 5, 1), outcome="won"),  # opened long ago
            deal("D4", date(2024, 1, 1), 700.0, 0.9, closed=date(2024, 6, 1), outcome="won"),  # won too early
            deal("D5", date(2025, 1, 1), 400.0, 0.5, closed=date(2025, 7, 1), outcome="lost"),
            deal("D6", date(2025, 11, 1), 800.0, 0.1, closed=date(2026, 1, 10), outcome="won"),  # open on the 20th
        ])
        invoice = lambda ext, issued, due, amount, paid=None: dict(external_id=ext, customer_id=acme, issued_at=issued,
                                                                   due_at=due, amount=amount, paid_at=paid)
        _insert(conn, Invoice, [
            invoice("I1", date(2025, 10, 1), date(2025, 10, 31), 1200.0),  # overdue
            invoice("I2", date(2025, 12, 1), date(2025, 12, 31), 800.0),  # open, not due
            invoice("I3", date(2025, 6, 1), date(2025, 7, 1), 500.0, date(2025, 7, 11)),  # 10 days late
            invoice("I4", date(2025, 3, 1), date(2025, 3, 31), 300.0, date(2025, 3, 20)),  # on time
            invoice("I5", date(2024, 6, 1), date(2024, 7, 1), 900.0, date(2024, 8, 1)),  # 31 days, only in 24m
            invoice("I6", date(2025, 11, 1), date(2025, 12, 1), 600.0, date(2026, 1, 5)),  # unpaid on the 20th
        ])


@pytest.fixture
def api(engine, empty_db_url):
    _build(engine)
    run_batch(engine, compile_rules(RULES), NOW)
    app = create_app(Settings(database_url=empty_db_url, webhooks=False), engine=engine)
    with TestClient(app) as http:
        yield GraphQLClient(http)


WHOLE = """query($id: String!, $window: String!) { customerByExternalId(externalId: $id) {
  consent consentAt paymentTermsDays creditGrade creditLimit
  customerSince nextAnniversary daysUntilAnniversary relationshipYears
  satisfaction(window: $window) { window answers detractors promoters latestScore latestKind latestAnsweredAt
                                  averageNpsScore averageCsatScore nps }
  pipeline { openCount openAmount weightedAmount stalledCount wonAmount12m }
  payment { termsDays creditGrade creditLimit outstanding overdueCount overdueAmount creditUtilisation
            averageDaysLate twoYears: averageDaysLate(window: "24m") }
  spendByCategory(window: $window) { category revenue margin orders share shareOfWallet }
  spendByProduct(window: $window, first: 2) { sku name category revenue margin orders share shareOfWallet }
  evaluation { metrics } } }"""


def test_satisfaction_pipeline_payment_by_hand(api):
    c = api.data(WHOLE, id="ACME", window="12m")["customerByExternalId"]
    assert (c["consent"], c["consentAt"], c["paymentTermsDays"], c["creditGrade"], c["creditLimit"]) == \
        (True, "2024-05-01", 30, "B", 10000.0)
    s = c["satisfaction"]
    # 2024-12-21..2025-12-20: NPS 10, 9, 3 and CSAT 4; the CSAT 2 is older, the NPS 0 not answered yet
    assert (s["window"], s["answers"], s["detractors"], s["promoters"]) == ("12m", 4, 1, 3)
    assert (s["latestScore"], s["latestKind"], s["latestAnsweredAt"]) == (4.0, "csat", "2025-10-01")
    assert s["averageNpsScore"] == pytest.approx(22 / 3) and s["averageCsatScore"] == 4.0
    assert s["nps"] == pytest.approx(100 * (2 - 1) / 3)
    assert c["pipeline"] == {"openCount": 3, "openAmount": 3800.0, "weightedAmount": pytest.approx(500 + 500 + 80),
                             "stalledCount": 1, "wonAmount12m": 3000.0}
    p = c["payment"]
    assert (p["termsDays"], p["creditGrade"], p["creditLimit"]) == (30, "B", 10000.0)
    assert (p["outstanding"], p["overdueCount"], p["overdueAmount"]) == (2600.0, 2, 1800.0)
    assert p["creditUtilisation"] == pytest.approx(0.26)
    assert p["averageDaysLate"] == pytest.approx(5.0) and p["twoYears"] == pytest.approx(41 / 3)
    # the same numbers written as rules (evaluated in SQL by the batch) agree
    metrics = c["evaluation"]["metrics"]
    assert metrics["days_late_12m"] == pytest.approx(p["averageDaysLate"])
    assert metrics["utilisation"] == pytest.approx(p["creditUtilisation"])
    assert metrics["pipeline"] == pytest.approx(c["pipeline"]["weightedAmount"])
    assert metrics["detractors"] == s["detractors"]
    assert metrics["to_anniversary"] == c["daysUntilAnniversary"]
    wider = api.data(WHOLE, id="ACME", window="24m")["customerByExternalId"]["satisfaction"]
    assert (wider["answers"], wider["detractors"], wider["averageCsatScore"]) == (5, 2, 3.0)


def test_spend_by_category_and_product(api):
    c = api.data(WHOLE, id="ACME", window="12m")["customerByExternalId"]
    # tools 200 + 150 + 100 - 100 (a return), margin unknown (the saw); service 300; no category 50; of 700
    assert c["spendByCategory"] == [
        {"category": "tools", "revenue": 350.0, "margin": None, "orders": 3, "share": 0.5, "shareOfWallet": 0.25},
        {"category": "service", "revenue": 300.0, "margin": 200.0, "orders": 1, "share": pytest.approx(3 / 7),
         "shareOfWallet": None},  # a wallet of 0 is no estimate
        {"category": None, "revenue": 50.0, "margin": 30.0, "orders": 1, "share": pytest.approx(1 / 14),
         "shareOfWallet": None}]
    assert [(p["sku"], p["name"], p["revenue"], p["margin"], p["orders"]) for p in c["spendByProduct"]] == \
        [("S-1", "Install", 300.0, 200.0, 1), ("T-A", "Hammer", 200.0, 80.0, 3)]
    assert c["spendByProduct"][1]["shareOfWallet"] == pytest.approx(200 / 1400)
    three_years = api.data(WHOLE, id="ACME", window="3y")["customerByExternalId"]["spendByCategory"]
    assert three_years[0]["category"] == "service" and three_years[0]["revenue"] == 3300.0
    assert c["evaluation"]["metrics"]["tools_12m"] == pytest.approx(350.0)


def test_a_page_of_customers_keeps_each_ones_own_numbers(api):
    found = api.data("""{ customers(first: 10) { edges { node { externalId spendByCategory { category revenue share }
        payment { outstanding creditUtilisation averageDaysLate } satisfaction { answers nps } } } } }""")
    by_id = {e["node"]["externalId"]: e["node"] for e in found["customers"]["edges"]}
    assert by_id["BETA"]["spendByCategory"] == [{"category": "tools", "revenue": 100.0, "share": 1.0}]
    assert by_id["BETA"]["payment"] == {"outstanding": 0.0, "creditUtilisation": None, "averageDaysLate": None}
    assert by_id["BETA"]["satisfaction"] == {"answers": 0, "nps": None}
    assert by_id["ACME"]["spendByCategory"][0] == {"category": "tools", "revenue": 350.0, "share": 0.5}
    assert by_id["LEAP"]["spendByCategory"] == []


def test_child_lists_with_flags_on_the_data_now(api):
    c = api.data("""{ customerByExternalId(externalId: "ACME") {
        surveys(first: 2) { totalCount edges { node { externalId detractor promoter } } pageInfo { hasNextPage } }
        opportunities { edges { node { externalId open won stalled weightedAmount
                                       wonThen: won(asOf: "2026-01-10") } } }
        invoices { edges { node { externalId overdue paidLate daysLate outstanding
                                  late: daysLate(asOf: "2026-01-05") } } }
        } }""")["customerByExternalId"]
    assert c["surveys"]["totalCount"] == 6 and c["surveys"]["pageInfo"]["hasNextPage"]
    assert [e["node"]["externalId"] for e in c["surveys"]["edges"]] == ["S6", "S4"]  # newest first
    deals = {e["node"]["externalId"]: e["node"] for e in c["opportunities"]["edges"]}
    assert (deals["D6"]["open"], deals["D6"]["won"], deals["D6"]["wonThen"]) == (True, False, True)
    assert deals["D2"]["stalled"] and deals["D1"]["weightedAmount"] == 500.0
    bills = {e["node"]["externalId"]: e["node"] for e in c["invoices"]["edges"]}
    assert (bills["I6"]["overdue"], bills["I6"]["daysLate"], bills["I6"]["outstanding"], bills["I6"]["late"]) == \
        (True, 19.0, 600.0, 35.0)
    assert bills["I3"]["paidLate"] and bills["I3"]["daysLate"] == 10.0


ANNIVERSARY = """query($id: String!) { customerByExternalId(externalId: $id) {
    customerSince nextAnniversary daysUntilAnniversary relationshipYears } }"""


def test_anniversary_fields(api, engine):
    def fields(ext):
        c = api.data(ANNIVERSARY, id=ext)["customerByExternalId"]
        return c["customerSince"], c["nextAnniversary"], c["daysUntilAnniversary"], c["relationshipYears"]

    # since the first order (before created); 8 years on the 28th, 7 whole years until then
    assert fields("ACME") == ("2017-12-28", "2025-12-28", 8, 7)
    assert fields("BETA") == ("2019-01-05", "2026-01-05", 16, 6)  # across the year end
    assert fields("LEAP") == ("2020-02-29", "2026-02-28", 11 + 31 + 28, 5)
    assert fields("FRESH") == ("2010-12-20", "2025-12-20", 0, 15)
    # on 28 February of a common year a 29 February customer has its anniversary, its 7th year completes the
    # next day, as `customer for 7y` says; in a leap year the anniversary is the 29th
    run_batch(engine, compile_rules("tier seven if customer for 7y\ntier six if customer for 6y\n"
                                    "tier any otherwise\n"), date(2027, 2, 28))
    assert fields("LEAP") == ("2020-02-29", "2027-02-28", 0, 6)
    assert api.data('{ customerByExternalId(externalId: "LEAP") { tier { name } } }')[
        "customerByExternalId"]["tier"]["name"] == "six"
    run_batch(engine, compile_rules("tier any otherwise\n"), date(2028, 2, 28))
    assert fields("LEAP") == ("2020-02-29", "2028-02-29", 1, 7)


UPCOMING = """query($days: Int!, $first: Int, $after: String) { upcomingAnniversaries(days: $days, first: $first,
    after: $after) { totalCount asOf pageInfo { hasNextPage endCursor }
    edges { node { anniversary years daysUntil customerSince customer { externalId } } } } }"""


def _upcoming(api, days, first=None, after=None):
    found = api.data(UPCOMING, days=days, first=first, after=after)["upcomingAnniversaries"]
    return found, [(e["node"]["customer"]["externalId"], e["node"]["daysUntil"], e["node"]["years"],
                    e["node"]["anniversary"]) for e in found["edges"]]


def test_upcoming_anniversaries_order_and_pages(api):
    first, rows = _upcoming(api, 30, first=2)
    assert first["asOf"] == NOW.isoformat() and first["totalCount"] == 4 and first["pageInfo"]["hasNextPage"]
    assert rows == [("FRESH", 0, 15, "2025-12-20"), ("ACME", 8, 8, "2025-12-28")]
    second, rows = _upcoming(api, 30, first=2, after=first["pageInfo"]["endCursor"])
    assert rows == [("DELTA", 8, 10, "2025-12-28"), ("BETA", 16, 7, "2026-01-05")]
    assert not second["pageInfo"]["hasNextPage"] and second["totalCount"] == 4
    # FUTURE (not a customer yet) and ERASED never show; LEAP from 70 days on
    assert [r[0] for r in _upcoming(api, 69)[1]] == ["FRESH", "ACME", "DELTA", "BETA"]
    assert _upcoming(api, 70)[1][-1] == ("LEAP", 70, 6, "2026-02-28")
    assert _upcoming(api, 366)[0]["totalCount"] == 5


BAD = [
    ('{ customerByExternalId(externalId: "ACME") { satisfaction(window: "12x") { answers } } }', "window"),
    ('{ customerByExternalId(externalId: "ACME") { satisfaction(window: "0d") { answers } } }', "window"),
    ('{ customerByExternalId(externalId: "ACME") { spendByCategory(window: "101y") { revenue } } }', "window"),
    ('{ customerByExternalId(externalId: "ACME") { payment { averageDaysLate(window: "") } } }', "window"),
    ('{ customerByExternalId(externalId: "ACME") { spendByProduct(first: 0) { revenue } } }', "first"),
    ('{ customerByExternalId(externalId: "ACME") { spendByProduct(first: 101) { revenue } } }', "first"),
    ("{ upcomingAnniversaries(days: 0) { totalCount } }", "days"),
    ("{ upcomingAnniversaries(days: 367) { totalCount } }", "days"),
]


def test_bad_arguments_are_typed(api):
    for query, argument in BAD:
        body = api(query)
        assert body["errors"][0]["extensions"] == {"code": "BAD_ARGUMENT", "argument": argument}, body


def test_a_cursor_of_another_list_is_refused(api):
    other = api.data('{ customers(first: 1) { pageInfo { endCursor } } }')["customers"]["pageInfo"]["endCursor"]
    body = api(UPCOMING, days=30, first=1, after=other)
    assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR"
