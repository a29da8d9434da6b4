"""Lost customers of a period over GraphQL: episodes paged biggest loss first, filters, the evidence behind each
episode, the summary per tier at loss, a customer's own loss, a manual mark showing up, and typed errors."""
from datetime import date

import pytest
from starlette.testclient import TestClient
from strawberry import relay

from domain import loss
from domain.evaluation import run_batch
from domain.loss_history import LossRules
from domain.settings import DEFAULT_RULES, Settings
from rules.compiler import load_rules_file
from server import create_app
from tests.schema.conftest import GraphQLClient

EARLY, LATE = date(2024, 3, 15), date(2024, 6, 30)
HALF = {"from": "2024-01-01", "to": "2024-06-30"}
PAGE = """query($from: Date, $to: Date, $after: String, $how: LossHow, $region: String, $owner: String,
               $tier: String) {
  lostCustomers(from: $from, to: $to, first: 10, after: $after, how: $how, region: $region, owner: $owner,
                tierAtLoss: $tier) {
    totalCount asOf pageInfo { hasNextPage endCursor }
    edges { node { lostOn how ruleLine ruleText revenueLost tierAtLoss customer { externalId region } } } } }"""


@pytest.fixture
def history(client, graph_engine):
    rules = load_rules_file(DEFAULT_RULES)
    run_batch(graph_engine, rules, EARLY)
    run_batch(graph_engine, rules, LATE)  # the data's today: LATE
    return client


def _all_pages(client, **variables):
    seen, after = [], None
    while True:
        page = client.data(PAGE, after=after, **{**HALF, **variables})["lostCustomers"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seen, page
        after = page["pageInfo"]["endCursor"]


def test_episodes_of_a_period_biggest_first_in_keyset_pages(history, graph_engine):
    seen, last = _all_pages(history)
    rules = LossRules.of(load_rules_file(DEFAULT_RULES))
    want = loss.lost_customers(graph_engine, rules, date(2024, 1, 1), LATE)
    assert last["asOf"] == LATE.isoformat()
    assert last["totalCount"] == len(seen) == len(want) > 10
    assert [(n["customer"]["externalId"], n["lostOn"]) for n in seen] == [
        (e.external_id, e.lost_on.isoformat()) for e in want]
    assert [n["revenueLost"] for n in seen] == sorted((n["revenueLost"] for n in seen), reverse=True)
    assert all(date(2024, 1, 1) <= date.fromisoformat(n["lostOn"]) <= LATE for n in seen)
    rule = [n for n in seen if n["how"] == "RULE"]
    assert rule and all(n["ruleText"].split()[:3] == ["status", "lost", "if"] for n in rule)
    # each filter keeps exactly the matching episodes
    east, _ = _all_pages(history, region="east")
    assert [n for n in seen if n["customer"]["region"] == "east"] == east
    assert history.data(PAGE, how="BLOCKED", **HALF)["lostCustomers"]["totalCount"] == \
        sum(1 for n in seen if n["how"] == "BLOCKED")
    tier = seen[0]["tierAtLoss"]
    same_tier = history.data(PAGE, tier=tier, **HALF)["lostCustomers"]
    assert same_tier["totalCount"] == sum(1 for n in seen if n["tierAtLoss"] == tier)


def test_one_customer_lost_by_the_rule_with_its_evidence(history):
    q = """{ customerByExternalId(externalId: "C007") { loss { lostOn how ruleText lastOrderAt reactivatedOn
        revenueLost marginLost firstTimeBuyer ordersBeforeLoss atRiskOn
        complaints { count overdue open categories { name count } records { externalId overdue open } }
        deliveries { count late lateRate records { externalId late } } tierChangesBefore { effectiveOn newValue }
        winBack { attemptsBefore attemptsAfter lastAttemptOn } }
        lossHistory { lostOn } } }"""
    c7 = history.data(q)["customerByExternalId"]
    e = c7["loss"]
    # last order 2024-01-25; `no order 90d`: lost 90 days later; at risk (`no order 45d`) 45 days later
    assert (e["lastOrderAt"], e["lostOn"], e["how"]) == ("2024-01-25", "2024-04-24", "RULE")
    assert e["atRiskOn"] == "2024-03-10" and e["reactivatedOn"] is None
    assert e["ruleText"] == "status lost     if no order 90d unless seasonal"
    assert e["revenueLost"] == pytest.approx((10 + 25) + (20 + 25))
    assert e["marginLost"] is None  # product B has no cost
    assert (e["firstTimeBuyer"], e["ordersBeforeLoss"]) == (False, 2)
    # K7: opened 03-01, due 03-10, never resolved: on 04-24 overdue and open
    assert e["complaints"] == {"count": 1, "overdue": 1, "open": 1, "categories": [{"name": "billing", "count": 1}],
                               "records": [{"externalId": "K7", "overdue": True, "open": True}]}
    assert e["deliveries"]["count"] == len(e["deliveries"]["records"])
    assert e["deliveries"]["late"] == sum(r["late"] for r in e["deliveries"]["records"])
    assert c7["lossHistory"] == [{"lostOn": "2024-04-24"}]
    # I7 (win_back, 2024-03-02) came before C007 turned at risk (03-10): not an attempt around this loss
    assert e["winBack"] == {"attemptsBefore": 0, "attemptsAfter": 0, "lastAttemptOn": None}
    assert history.data('{ customerByExternalId(externalId: "C005") { loss { lostOn } } }'
                        )["customerByExternalId"]["loss"] is None  # a prospect is not lost


def test_summary_per_tier_at_loss_adds_up_to_the_episodes(history):
    seen, _ = _all_pages(history)
    rows = history.data("""query($from: Date, $to: Date) { lossSummary(from: $from, to: $to) {
        tierAtLoss customers episodes revenueLost rule blocked manual } }""", **HALF)["lossSummary"]
    assert sum(r["episodes"] for r in rows) == len(seen)
    assert sum(r["revenueLost"] for r in rows) == pytest.approx(sum(n["revenueLost"] for n in seen))
    assert {r["tierAtLoss"]: r["episodes"] for r in rows} == {
        t: sum(1 for n in seen if n["tierAtLoss"] == t) for t in {n["tierAtLoss"] for n in seen}}
    assert sum(r["rule"] + r["blocked"] + r["manual"] for r in rows) == len(seen)


def test_a_manual_mark_is_an_episode_with_its_reason(graph_engine, empty_db_url):
    rules = load_rules_file(DEFAULT_RULES)
    run_batch(graph_engine, rules, LATE)
    app = create_app(Settings(database_url=empty_db_url, admin_token="t", webhooks=False), engine=graph_engine)
    with TestClient(app, headers={"Authorization": "Bearer t"}) as http:
        admin = GraphQLClient(http)
        # C044 last ordered on 2024-04-05: not lost by the rule before 07-04
        admin.data("""mutation($id: ID!) { markCustomerLost(id: $id, on: "2024-06-01", reason: "went bankrupt") {
            changed } }""", id=str(relay.GlobalID("Customer", "C044")))
        found = admin.data("""{ lostCustomers(from: "2024-06-01", to: "2024-06-01", how: MANUAL) { totalCount
            edges { node { lostOn how reason customer { externalId } } } } }""")["lostCustomers"]
    assert found["totalCount"] == 1
    assert found["edges"][0]["node"] == {"lostOn": "2024-06-01", "how": "MANUAL", "reason": "went bankrupt",
                                         "customer": {"externalId": "C044"}}


@pytest.mark.parametrize("args, argument", [
    ('from: "2024-06-02", to: "2024-06-01"', "from"),
    ('from: "1800-01-01"', "from"),
    ('to: "3001-01-01"', "to"),
])
def test_a_bad_period_is_a_typed_error(history, args, argument):
    body = history("{ lostCustomers(%s) { totalCount } }" % args)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_ARGUMENT" and error["extensions"]["argument"] == argument
