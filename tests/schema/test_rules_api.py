"""Rule-driven GraphQL: validateRules, tier / status / tags with their rule, ad-hoc `where` filters."""
from datetime import date

import pytest

from domain.evaluation import run_batch
from rules.compiler import load_rules_file
from domain.settings import DEFAULT_RULES

AS_OF = date(2024, 6, 30)


@pytest.fixture
def evaluated(client, graph_engine):
    run_batch(graph_engine, load_rules_file(DEFAULT_RULES), AS_OF)
    return client


def test_validate_rules_reports_every_problem_with_a_caret(client):
    source = "metric a = sum(order.amount, 12m)\ntier x if revenu_12m > 3\ntier y if a > 1\n"
    result = client.data("query($s: String!) { validateRules(source: $s) { code severity line column message snippet } }",
                         s=source)["validateRules"]
    assert {e["severity"] for e in result} == {"ERROR"}
    codes = {(e["code"], e["line"]) for e in result}
    assert ("E201", 2) in codes and ("E401", 3) in codes or ("E401", 2) in codes
    unknown = next(e for e in result if e["code"] == "E201")
    assert unknown["column"] == 11 and "revenu_12m" in unknown["message"]
    assert unknown["snippet"].splitlines()[1] == " " * 10 + "^"


def test_validate_rules_accepts_the_shipped_policy(client):
    text = DEFAULT_RULES.read_text()
    result = client.data("query($s: String!) { validateRules(source: $s) { code } }", s=text)["validateRules"]
    assert result == []
    lines = text.split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("tier general"))
    shadowed = "\n".join(lines[:at + 1] + ["tier twin if count(order, 12m) >= 2"] + lines[at + 1:])
    found = client.data("query($s: String!) { validateRules(source: $s) { code severity line } }",
                        s=shadowed)["validateRules"]
    assert found == [{"code": "W102", "severity": "WARNING", "line": at + 2}]


def test_tier_status_tags_come_with_their_rule(evaluated):
    data = evaluated.data("""{ customers(first: 100) { edges { node { externalId
        tier { name line rule explanation } status { name line rule explanation } tags { name line }
        evaluation { asOf metrics } } } } }""")
    nodes = {e["node"]["externalId"]: e["node"] for e in data["customers"]["edges"]}
    assert len(nodes) == 45
    # C005 has no orders (5 % 5 == 0): a prospect by the first status rule
    prospect = nodes["C005"]["status"]
    assert prospect["name"] == "prospect"
    assert prospect["rule"] == "status prospect if count(order) = 0"
    assert prospect["explanation"].startswith("prospect (line")
    for node in nodes.values():
        assert node["evaluation"]["asOf"] == AS_OF.isoformat()
        assert node["tier"]["line"] is not None and node["tier"]["rule"].startswith(f"tier {node['tier']['name']}")
    # C044's last order is 2024-04-05, inside 90 days of AS_OF but not 45: at risk; C004's is in February: lost
    assert nodes["C044"]["status"]["name"] == "at_risk"
    assert nodes["C004"]["status"]["name"] == "lost"
    assert "no order 90d unless seasonal" in nodes["C004"]["status"]["explanation"]
    assert {n["status"]["name"] for n in nodes.values()} == {"prospect", "lost", "at_risk"}


def test_filters_by_tier_status_and_where(evaluated):
    lost = evaluated.data('{ customers(first: 100, status: "lost") { totalCount } }')
    prospects = evaluated.data('{ customers(first: 100, status: "prospect") { totalCount } }')
    at_risk = evaluated.data('{ customers(first: 100, status: "at_risk") { totalCount } }')
    assert sum(x["customers"]["totalCount"] for x in (lost, prospects, at_risk)) == 45
    assert prospects["customers"]["totalCount"] == 9
    where = evaluated.data('query($d: Date) { customers(first: 100, where: "count(order) >= 4", asOf: $d) '
                           '{ totalCount edges { node { externalId } } } }', d=AS_OF.isoformat())
    ids = [e["node"]["externalId"] for e in where["customers"]["edges"]]
    assert ids == [f"C{i:03d}" for i in range(1, 46) if i % 5 == 4]
    assert where["customers"]["totalCount"] == len(ids)
    combined = evaluated.data('{ customers(first: 100, where: "count(order) >= 4", region: "west") '
                              '{ edges { node { externalId region } } } }')
    assert {e["node"]["region"] for e in combined["customers"]["edges"]} == {"west"}


def test_bad_where_is_a_rule_error_with_diagnostics(client):
    body = client('{ customers(first: 5, where: "no order 30 and revenu_12m > 5") { totalCount } }')
    error = body["errors"][0]
    assert error["extensions"]["code"] == "RULE_ERROR"
    assert error["extensions"]["diagnostics"][0]["line"] == 1
    assert "window" in error["message"] or "unit" in error["message"]


def test_tag_and_tier_filters(evaluated):
    tagged = evaluated.data('{ customers(first: 100, tag: "negative") { totalCount edges { node { externalId '
                            'tags { name } } } } }')["customers"]
    ids = [e["node"]["externalId"] for e in tagged["edges"]]
    # C035 has no orders (margin 0) and costs to serve; C007, C014, ... buy product B, whose cost is unknown, in
    # every order: their margin, so their profit, is unknown, not negative (docs/rules.md, "Unknown values")
    assert ids == ["C035"]
    assert all("negative" in [t["name"] for t in e["node"]["tags"]] for e in tagged["edges"])
    assert evaluated.data('{ customers(tag: "neg") { totalCount } }')["customers"]["totalCount"] == 0
    tiers = evaluated.data('{ customers(first: 100, tier: "maintain") { edges { node { tier { name } } } } }')
    assert {e["node"]["tier"]["name"] for e in tiers["customers"]["edges"]} == {"maintain"}
