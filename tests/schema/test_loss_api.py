"""Who is being lost and why: lost date, tier before, revenue lost, complaints, late deliveries, win-back."""
from datetime import date

import pytest

from domain.evaluation import run_batch
from domain.loss import loss_episodes, loss_summary
from domain.settings import DEFAULT_RULES
from rules.compiler import load_rules_file

EARLY, LATE = date(2024, 3, 15), date(2024, 6, 30)


@pytest.fixture
def history(client, graph_engine):
    rules = load_rules_file(DEFAULT_RULES)
    run_batch(graph_engine, rules, EARLY)
    client.early_tiers = {e["node"]["externalId"]: e["node"]["tier"]["name"] for e in client.data(
        "{ customers(first: 100) { edges { node { externalId tier { name } } } } }")["customers"]["edges"]}
    run_batch(graph_engine, rules, LATE)
    return client


def test_loss_episode_of_one_customer(history, graph_engine):
    q = """{ customerByExternalId(externalId: "%s") { status { name } tier { name } loss { status asOf lostOn
        tierBefore lastOrderAt revenueLost marginLost ordersLastYear openComplaints overdueComplaints
        lateDeliveries deliveries winBackAttempts lastWinBackAt winBackByOwner } } }"""
    c7 = history.data(q % "C007")["customerByExternalId"]
    loss = c7["loss"]
    assert c7["status"]["name"] == "lost"
    assert loss["lostOn"] == LATE.isoformat() and loss["asOf"] == LATE.isoformat()
    assert loss["lastOrderAt"] == "2024-01-25"
    assert loss["revenueLost"] == pytest.approx((10 + 25) + (20 + 25))
    assert loss["marginLost"] is None  # product B has no cost
    assert loss["ordersLastYear"] == 2
    assert (loss["openComplaints"], loss["overdueComplaints"]) == (1, 1)
    assert (loss["lateDeliveries"], loss["deliveries"]) == (1, 2)
    assert (loss["winBackAttempts"], loss["lastWinBackAt"], loss["winBackByOwner"]) == (1, "2024-03-02", True)
    assert loss["tierBefore"] == history.early_tiers["C007"]
    for e in loss_episodes(graph_engine):  # the level each had before it was lost
        assert e.tier_before == history.early_tiers[e.external_id], e.external_id
    assert history.data(q % "C005")["customerByExternalId"]["loss"] is None  # a prospect is not lost


def test_lost_customers_biggest_first_with_keyset_pages(history, graph_engine):
    q = """query($after: String, $winBack: Boolean) { lostCustomers(first: 4, after: $after, winBack: $winBack) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { revenueLost customer { externalId } } } } }"""
    seen, after = [], None
    while True:
        page = history.data(q, after=after)["lostCustomers"]
        seen += [(e["node"]["revenueLost"], e["node"]["customer"]["externalId"]) for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    total = page["totalCount"]
    assert len(seen) == total == len(loss_episodes(graph_engine)) > 4
    assert [r for r, _ in seen] == sorted((r for r, _ in seen), reverse=True)
    assert len({c for _, c in seen}) == total
    tried = history.data(q, winBack=True)["lostCustomers"]
    assert tried["totalCount"] == len([e for e in loss_episodes(graph_engine) if e.win_back_attempts])
    assert all(e["node"]["customer"]["externalId"] in {f"C{i:03d}" for i in range(7, 46, 7)}
               for e in tried["edges"])


def test_loss_summary_per_tier_before(history, graph_engine):
    rows = history.data("""{ lossSummary { tierBefore customers revenueLost withOpenComplaints
        withLateDeliveries winBackAttempted } }""")["lossSummary"]
    episodes = loss_episodes(graph_engine)
    assert sum(r["customers"] for r in rows) == len(episodes)
    assert sum(r["revenueLost"] for r in rows) == pytest.approx(sum(e.revenue_lost for e in episodes))
    assert sum(r["winBackAttempted"] for r in rows) == sum(1 for e in episodes if e.win_back_attempts)
    assert [s.customers for s in loss_summary(graph_engine)] == [r["customers"] for r in rows]
