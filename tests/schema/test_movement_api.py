"""movement, statusCounts, evaluationDates and previewRules' revenue / moverList over GraphQL on the hand-computed
base of tests/support/movement_base.py, on SQLite and PostgreSQL, with typed errors for every new argument."""
from __future__ import annotations

import base64
import json
from datetime import date

import pytest

from domain.tiers_in_force import labels_on, tiers_on
from movement_base import IDS, R1, R2, served_base

MOVEMENT = """query ($from: Date!, $to: Date!, $kind: MoveKind! = TIER, $first: Int, $after: String) {
  movement(from: $from, to: $to, kind: $kind) { from to kind customers
    flows { old new customers revenue
      customerList(first: $first, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
        edges { cursor node { revenue customer { externalId } } } } } } }"""
CANDIDATE = """tier big if count(order) >= 3
tier small otherwise
status active if count(order, 30d) >= 1
status quiet otherwise
"""
PREVIEW = """query ($s: String!, $kind: MoveKind!, $old: String, $new: String, $first: Int, $after: String) {
  previewRules(source: $s) { asOf customers moves { kind old new customers revenue }
    moverList(kind: $kind, old: $old, new: $new, first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { node { revenue customer { externalId } } } } } }"""


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def api(request, tmp_path_factory):
    yield from served_base(request.param, tmp_path_factory, request)


def flows(movement: dict) -> list[tuple]:
    return [(f["old"], f["new"], f["customers"], f["revenue"],
             [e["node"]["customer"]["externalId"] for e in f["customerList"]["edges"]]) for f in movement["flows"]]


def code(error: dict) -> str:
    return error["extensions"]["code"]


def test_tier_movement_between_two_evaluations(api):
    call, _ = api
    m = call(MOVEMENT, **{"from": "2024-03-01", "to": "2024-04-15"})["movement"]
    assert (m["from"], m["to"], m["kind"], m["customers"]) == ("2024-03-01", "2024-04-15", "TIER", 6)
    # on 03-01 R1 is in force (D and G not yet customers: old null); on 04-15 R2 (G, created that day, never
    # evaluated: new null). Revenue: orders of 2023-03-02..2024-03-01: A 100+50+5, B 30, C 20, D / E / G none.
    assert flows(m) == [
        ("small", "small", 2, 20.0, ["C", "E"]),  # biggest revenue first: C 20, E 0
        ("big", "big", 1, 155.0, ["A"]),
        ("small", "big", 1, 30.0, ["B"]),
        (None, "big", 1, 0.0, ["D"]),
        (None, None, 1, 0.0, ["G"]),
    ]
    a = m["flows"][1]["customerList"]["edges"][0]["node"]
    assert a["revenue"] == 155.0


def test_status_movement_and_a_flow_paged_by_cursor(api):
    call, _ = api
    m = call(MOVEMENT, kind="STATUS", **{"from": "2024-03-01", "to": "2024-04-15"})["movement"]
    assert m["kind"] == "STATUS"
    assert flows(m) == [
        ("active", "quiet", 2, 175.0, ["A", "C"]),
        ("quiet", "active", 1, 30.0, ["B"]),
        ("quiet", "quiet", 1, 0.0, ["E"]),
        (None, "active", 1, 0.0, ["D"]),
        (None, None, 1, 0.0, ["G"]),
    ]

    def page(after=None):
        found = call(MOVEMENT, kind="STATUS", first=1, after=after, **{"from": "2024-03-01", "to": "2024-04-15"})
        return found["movement"]["flows"][0]["customerList"]

    first = page()
    assert first["totalCount"] == 2
    assert [(e["node"]["customer"]["externalId"], e["node"]["revenue"]) for e in first["edges"]] == [("A", 155.0)]
    assert (first["pageInfo"]["hasNextPage"], first["pageInfo"]["hasPreviousPage"]) == (True, False)
    second = page(first["pageInfo"]["endCursor"])
    assert [(e["node"]["customer"]["externalId"], e["node"]["revenue"]) for e in second["edges"]] == [("C", 20.0)]
    assert (second["pageInfo"]["hasNextPage"], second["pageInfo"]["hasPreviousPage"]) == (False, True)


def test_the_same_day_twice_keeps_everyone_and_before_any_evaluation_everyone_is_new(api):
    call, _ = api
    same = call(MOVEMENT, **{"from": "2024-03-01", "to": "2024-03-01"})["movement"]
    assert [(f["old"], f["new"], f["customers"]) for f in same["flows"]] == [("small", "small", 3), ("big", "big", 1)]
    early = call(MOVEMENT, **{"from": "2024-01-15", "to": "2024-02-29"})["movement"]
    # no evaluation in force on 01-15; revenue up to 01-15: A's order of 01-10 only
    assert [(f["old"], f["new"], f["customers"], f["revenue"]) for f in early["flows"]] == [
        (None, "small", 3, 0.0), (None, "big", 1, 100.0)]


def test_flows_agree_with_the_labels_in_force_on_both_days(api):
    call, engine = api
    for kind, pick in (("TIER", tiers_on), ("STATUS", lambda e, d: labels_on(e, d, "status"))):
        m = call(MOVEMENT, kind=kind, first=100, **{"from": "2024-03-25", "to": R2.isoformat()})["movement"]
        old, new = pick(engine, date(2024, 3, 25)), pick(engine, R2)
        for f in m["flows"]:
            assert f["customerList"]["totalCount"] == f["customers"] == len(f["customerList"]["edges"])
            for e in f["customerList"]["edges"]:
                cid = IDS[e["node"]["customer"]["externalId"]]
                assert (old.get(cid), new[cid]) == (f["old"], f["new"])
        assert sum(f["customers"] for f in m["flows"]) == len(new) == 6


def test_movement_bad_arguments(api):
    call, _ = api
    later = call.error(MOVEMENT, **{"from": "2024-04-15", "to": "2024-03-01"})
    assert (code(later), later["extensions"]["argument"]) == ("BAD_ARGUMENT", "from")
    assert "'from' (2024-04-15) is after 'to' (2024-03-01)" in later["message"]
    future = call.error(MOVEMENT, **{"from": "2024-03-01", "to": "2024-04-16"})
    assert (code(future), future["extensions"]["argument"]) == ("BAD_ARGUMENT", "to")
    assert "after the data's today (2024-04-15" in future["message"]
    assert code(call.error(MOVEMENT, **{"from": "0001-01-01", "to": "2024-03-01"})) == "BAD_ARGUMENT"
    assert code(call.error(MOVEMENT, first=101, **{"from": "2024-03-01", "to": "2024-04-15"})) == "BAD_ARGUMENT"
    assert code(call.error(MOVEMENT, after="nope", **{"from": "2024-03-01", "to": "2024-04-15"})) == "BAD_CURSOR"
    forged = base64.urlsafe_b64encode(json.dumps(["movement", ["x", 1]]).encode()).decode()
    assert code(call.error(MOVEMENT, after=forged, **{"from": "2024-03-01", "to": "2024-04-15"})) == "BAD_CURSOR"
    other = base64.urlsafe_b64encode(json.dumps(["customers", [1]]).encode()).decode()
    assert code(call.error(MOVEMENT, after=other, **{"from": "2024-03-01", "to": "2024-04-15"})) == "BAD_CURSOR"
    assert code(call.error('{ movement(from: "2024-03-01", to: "2024-04-15", kind: TAG) { customers } }')) \
        == "BAD_QUERY"


def test_status_counts_on_a_day_and_by_default(api):
    call, _ = api
    q = "query ($d: Date) { statusCounts(asOf: $d) { label customers } }"
    # default: the stored evaluation (A..E; G was never evaluated)
    assert call(q)["statusCounts"] == [{"label": "quiet", "customers": 3}, {"label": "active", "customers": 2}]
    # 03-25: R1 in force; D (created 03-20, after R1) has no status then
    assert call(q, d="2024-03-25")["statusCounts"] == [
        {"label": "active", "customers": 2}, {"label": "quiet", "customers": 2}, {"label": None, "customers": 1}]
    assert call(q, d=R2.isoformat())["statusCounts"] == [
        {"label": "quiet", "customers": 3}, {"label": "active", "customers": 2}, {"label": None, "customers": 1}]
    assert call(q, d=R1.isoformat())["statusCounts"] == [
        {"label": "active", "customers": 2}, {"label": "quiet", "customers": 2}]
    before = call.error(q, d="2024-02-28")
    assert (code(before), before["extensions"]["argument"]) == ("BAD_ARGUMENT", "asOf")
    assert "before the first evaluation (2024-02-29)" in before["message"]
    assert code(call.error(q, d="2024-04-16")) == "BAD_ARGUMENT"


def test_evaluation_dates_newest_first_once_each(api):
    call, _ = api
    assert call("{ evaluationDates }")["evaluationDates"] == [R2.isoformat(), R1.isoformat()]  # R2 ran twice


def test_preview_moves_carry_revenue_and_page_their_customers(api):
    call, _ = api
    p = call(PREVIEW, s=CANDIDATE, kind="TIER", old="big", new="small", first=1)["previewRules"]
    assert (p["asOf"], p["customers"]) == (R2.isoformat(), 6)
    # revenue12m of the scores as of R2: A 155, B 100, C 20, D 210, E 0; G has no scores (0)
    assert sorted((m["kind"], m["old"] or "", m["new"], m["customers"], m["revenue"]) for m in p["moves"]) == [
        ("status", "", "active", 1, 0.0), ("status", "active", "active", 2, 310.0),
        ("status", "quiet", "quiet", 3, 175.0),
        ("tier", "", "small", 1, 0.0), ("tier", "big", "big", 1, 155.0), ("tier", "big", "small", 2, 310.0),
        ("tier", "small", "small", 2, 20.0)]
    first = p["moverList"]
    assert first["totalCount"] == 2 and first["pageInfo"]["hasNextPage"] is True
    assert [(e["node"]["customer"]["externalId"], e["node"]["revenue"]) for e in first["edges"]] == [("D", 210.0)]
    second = call(PREVIEW, s=CANDIDATE, kind="TIER", old="big", new="small", first=1,
                  after=first["pageInfo"]["endCursor"])["previewRules"]["moverList"]
    assert [(e["node"]["customer"]["externalId"], e["node"]["revenue"]) for e in second["edges"]] == [("B", 100.0)]
    assert second["pageInfo"]["hasNextPage"] is False
    new = call(PREVIEW, s=CANDIDATE, kind="TIER", new="small")["previewRules"]["moverList"]  # old null: never evaluated
    assert new["totalCount"] == 1 and [e["node"]["customer"]["externalId"] for e in new["edges"]] == ["G"]
    stay = call(PREVIEW, s=CANDIDATE, kind="STATUS", old="quiet", new="quiet")["previewRules"]["moverList"]
    assert [(e["node"]["customer"]["externalId"], e["node"]["revenue"]) for e in stay["edges"]] == [
        ("A", 155.0), ("C", 20.0), ("E", 0.0)]
    none = call(PREVIEW, s=CANDIDATE, kind="TIER", old="small", new="big")["previewRules"]["moverList"]
    assert (none["totalCount"], none["edges"]) == (0, [])


def test_preview_mover_list_bad_arguments(api):
    call, _ = api
    assert code(call.error(PREVIEW, s=CANDIDATE, kind="TIER", first=101)) == "BAD_ARGUMENT"
    movement_cursor = base64.urlsafe_b64encode(json.dumps(["movement", [1.0, 1]]).encode()).decode()
    assert code(call.error(PREVIEW, s=CANDIDATE, kind="TIER", after=movement_cursor)) == "BAD_CURSOR"
    assert code(call.error(PREVIEW, s=CANDIDATE, kind="TAG")) == "BAD_VARIABLE"


def test_one_flow_by_old_and_new(api):
    call, _ = api
    query = """query ($old: String, $new: String) { movement(from: "2024-03-01", to: "2024-04-15") {
      flow(old: $old, new: $new) { old new customers revenue customerList { edges { node { customer { externalId } } } } } } }"""
    small = call(query, old="small", new="big")["movement"]["flow"]
    assert (small["old"], small["new"], small["customers"], small["revenue"]) == ("small", "big", 1, 30.0)
    assert [e["node"]["customer"]["externalId"] for e in small["customerList"]["edges"]] == ["B"]
    new = call(query, old=None, new="big")["movement"]["flow"]  # null old: created after `from`
    assert [e["node"]["customer"]["externalId"] for e in new["customerList"]["edges"]] == ["D"]
    assert call(query, old="big", new="small")["movement"]["flow"] is None  # nobody made that move
