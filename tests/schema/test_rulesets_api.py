"""Admins preview, publish and roll back rule sets; unauthorised or invalid calls change nothing."""

import time

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from domain.settings import DEFAULT_RULES, Settings
from server import create_app

AS_OF = "2024-06-30"
TOKEN = "s3cret-token"
SIMPLE = """tier big if count(order) >= 3
tier small otherwise
status active if count(order, 12m) >= 1
status gone otherwise
"""
PUBLISH = """mutation($s: String!, $d: Date) { publishRules(source: $s, asOf: $d) {
  version { version isActive publishedBy } job { id state asOf } } }"""
JOB = "query($id: Int!) { job(id: $id) { state done total evaluatedCustomers ruleSetVersion asOf error } }"


def finished(call, job_id: int, timeout: float = 60.0) -> dict:
    """The job once it ended (polled through the API)."""
    deadline = time.monotonic() + timeout
    while True:
        job = call(JOB, id=job_id)["data"]["job"]
        if job["state"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


@pytest.fixture
def admin(graph_engine, empty_db_url):
    app = create_app(Settings(database_url=empty_db_url, admin_token=TOKEN), engine=graph_engine)
    with TestClient(app) as http:
        def call(query, token=TOKEN, **variables):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
            assert response.status_code == 200
            return response.json()
        yield call


def tiers(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("select tier, count(*) from customer_evaluations group by tier")).all())


def versions(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(sa.text("select version, is_active from rule_sets order by version")).all()


def test_rules_file_is_version_one(admin, graph_engine):
    body = admin("{ ruleSet { version isActive publishedBy source } ruleSetHistory { version } }")
    assert body["data"]["ruleSet"]["version"] == 1
    assert body["data"]["ruleSet"]["source"] == DEFAULT_RULES.read_text()
    assert [v["version"] for v in body["data"]["ruleSetHistory"]] == [1]


@pytest.mark.parametrize("token, code", [(None, "UNAUTHENTICATED"), ("wrong", "FORBIDDEN")])
def test_publish_needs_the_admin_token(admin, graph_engine, token, code):
    before = versions(graph_engine)
    body = admin(PUBLISH, token=token, s=SIMPLE, d=AS_OF)
    assert body["errors"][0]["extensions"]["code"] == code
    assert versions(graph_engine) == before


def test_mutations_disabled_without_a_configured_token(client, graph_engine):
    body = client(PUBLISH, s=SIMPLE, d=AS_OF)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "TIERGRAPH_ADMIN_TOKEN" in body["errors"][0]["message"]


def test_invalid_rules_are_rejected_whole(admin, graph_engine):
    before = versions(graph_engine)
    body = admin(PUBLISH, s="tier big if count(order) >= 3\ntier small if revenu > 2\n", d=AS_OF)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "RULE_ERROR"
    codes = {d["code"] for d in error["extensions"]["diagnostics"]}
    assert {"E201", "E401"} <= codes
    assert versions(graph_engine) == before


def test_preview_shows_moves_and_stores_nothing(admin, graph_engine):
    job = admin(PUBLISH, s=DEFAULT_RULES.read_text(), d=AS_OF)["data"]["publishRules"]["job"]
    assert finished(admin, job["id"])["state"] == "SUCCEEDED"
    before = tiers(graph_engine)
    body = admin("""query($s: String!, $d: Date) { previewRules(source: $s, asOf: $d) {
        customers changedTiers moves { kind old new customers } movers { newTier customer { externalId } } } }""",
                 s=SIMPLE, d=AS_OF)
    preview = body["data"]["previewRules"]
    assert preview["customers"] == 45
    tier_moves = [m for m in preview["moves"] if m["kind"] == "tier"]
    assert sum(m["customers"] for m in tier_moves) == 45
    assert {m["new"] for m in tier_moves} == {"big", "small"}
    assert preview["changedTiers"] == 45  # no old tier is called big or small
    assert preview["movers"] and preview["movers"][0]["customer"]["externalId"]
    assert tiers(graph_engine) == before


def test_publish_then_rollback(admin, graph_engine):
    first = admin(PUBLISH, s=DEFAULT_RULES.read_text(), d=AS_OF)["data"]["publishRules"]
    # the answer comes at once: the version is stored but becomes active only with its evaluation
    assert first["version"]["version"] == 2 and first["job"]["asOf"] == AS_OF
    done = finished(admin, first["job"]["id"])
    assert done == {"state": "SUCCEEDED", "done": 45, "total": 45, "evaluatedCustomers": 45, "ruleSetVersion": 2,
                    "asOf": AS_OF, "error": None}
    default_tiers = tiers(graph_engine)
    second = admin(PUBLISH, s=SIMPLE, d=AS_OF)["data"]["publishRules"]
    assert second["version"]["version"] == 3 and second["version"]["publishedBy"] == "admin"
    assert finished(admin, second["job"]["id"])["state"] == "SUCCEEDED"
    assert set(tiers(graph_engine)) == {"big", "small"}
    # the API follows the active version at once: the rule text shown for a tier is the new one
    node = admin('{ customerByExternalId(externalId: "C004") { tier { name rule } } }')["data"]
    assert node["customerByExternalId"]["tier"]["rule"].startswith("tier big") or \
        node["customerByExternalId"]["tier"]["rule"].startswith("tier small")
    evaluation = admin('{ customerByExternalId(externalId: "C004") { evaluation { ruleVersion asOf } } }')
    assert evaluation["data"]["customerByExternalId"]["evaluation"] == {"ruleVersion": 3, "asOf": AS_OF}
    back = admin("mutation($d: Date) { rollbackRules(version: 2, asOf: $d) { version { version } job { id } } }",
                 d=AS_OF)["data"]["rollbackRules"]
    assert back["version"] == {"version": 2}
    assert finished(admin, back["job"]["id"])["state"] == "SUCCEEDED"
    assert tiers(graph_engine) == default_tiers
    assert versions(graph_engine) == [(1, False), (2, True), (3, False)]
    missing = admin("mutation { rollbackRules(version: 99) { version { version } } }")
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    listed = admin("{ jobs(first: 2) { totalCount edges { node { id kind } } } }")["data"]["jobs"]
    assert listed["totalCount"] == 3
    assert [e["node"]["kind"] for e in listed["edges"]] == ["rollback", "publish"]


def test_publish_without_a_date_uses_the_latest_evaluation(admin, graph_engine):
    job = admin(PUBLISH, s=DEFAULT_RULES.read_text(), d=AS_OF)["data"]["publishRules"]["job"]
    finished(admin, job["id"])
    again = admin(PUBLISH, s=SIMPLE)["data"]["publishRules"]["job"]
    assert again["asOf"] == AS_OF  # the data's "now", not the calendar's
    preview = admin("query($s: String!) { previewRules(source: $s) { asOf customers } }", s=SIMPLE)
    assert preview["data"]["previewRules"]["asOf"] == AS_OF


def test_a_failed_evaluation_leaves_the_previous_version_active(admin, graph_engine, monkeypatch):
    """Defect 8: a rule set whose evaluation fails must not stay active (every later evaluate failed)."""
    job = admin(PUBLISH, s=DEFAULT_RULES.read_text(), d=AS_OF)["data"]["publishRules"]["job"]
    assert finished(admin, job["id"])["state"] == "SUCCEEDED"
    before_tiers = tiers(graph_engine)
    from domain import evaluation

    real = evaluation.compile_ruleset

    def failing(ruleset, as_of):  # the checker accepted the text; the database cannot run it
        if "tier big" in (ruleset.source or ""):  # SIMPLE, not the default rules (their tag big_pipeline)
            raise OverflowError("parser stack overflow")
        return real(ruleset, as_of)

    monkeypatch.setattr(evaluation, "compile_ruleset", failing)
    started = admin(PUBLISH, s=SIMPLE, d=AS_OF)["data"]["publishRules"]
    failed = finished(admin, started["job"]["id"])
    assert failed["state"] == "FAILED" and "parser stack overflow" in failed["error"]
    assert "version 3" in failed["error"]
    assert versions(graph_engine) == [(1, False), (2, True), (3, False)]
    assert tiers(graph_engine) == before_tiers
    assert admin("{ ruleSet { version } }")["data"]["ruleSet"]["version"] == 2
    # the active rules still evaluate, and the slot is free for the next job
    from domain.evaluation import run_batch
    from domain.rulesets import ActiveRules
    from datetime import date

    version, ruleset = ActiveRules(graph_engine, DEFAULT_RULES).current()
    assert run_batch(graph_engine, ruleset, date(2024, 6, 30), rule_set_id=version.id).customer_count == 45
    retry = admin(PUBLISH, s=DEFAULT_RULES.read_text(), d=AS_OF)["data"]["publishRules"]
    assert finished(admin, retry["job"]["id"])["state"] == "SUCCEEDED"


def test_one_evaluation_job_at_a_time(admin, graph_engine, monkeypatch):
    import threading

    from domain import evaluation

    release = threading.Event()
    real = evaluation.compile_ruleset

    def held(ruleset, as_of):
        release.wait(30)
        return real(ruleset, as_of)

    monkeypatch.setattr(evaluation, "compile_ruleset", held)
    try:
        first = admin(PUBLISH, s=SIMPLE, d=AS_OF)["data"]["publishRules"]
        before = versions(graph_engine)
        second = admin(PUBLISH, s=DEFAULT_RULES.read_text(), d=AS_OF)
        assert second["errors"][0]["extensions"]["code"] == "CONFLICT"
        assert f"job {first['job']['id']}" in second["errors"][0]["message"]
        assert versions(graph_engine) == before  # the refused text was not stored
        rollback = admin("mutation { rollbackRules(version: 1) { job { id } } }")
        assert rollback["errors"][0]["extensions"]["code"] == "CONFLICT"
        running = admin(JOB, id=first["job"]["id"])["data"]["job"]
        assert running["state"] in ("QUEUED", "RUNNING")
    finally:
        release.set()
    assert finished(admin, first["job"]["id"])["state"] == "SUCCEEDED"


def test_jobs_left_running_are_marked_interrupted_at_start(graph_engine, empty_db_url):
    from datetime import date

    from domain import jobs
    from domain.rulesets import ensure_active, store

    ensure_active(graph_engine, DEFAULT_RULES)
    with graph_engine.begin() as conn:
        version = store(conn, SIMPLE, by="admin")
        jobs._claim(conn, "publish", version.id, date(2024, 6, 30), "admin")  # a server died while it ran
    app = create_app(Settings(database_url=empty_db_url, admin_token=TOKEN, webhooks=False), engine=graph_engine)
    with TestClient(app) as http:
        body = http.post("/graphql", json={"query": "{ jobs(first: 5) { edges { node { state error } } } }"},
                         headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert body["data"]["jobs"]["edges"] == [{"node": {"state": "FAILED", "error": jobs.INTERRUPTED}}]
    assert versions(graph_engine) == [(1, True), (2, False)]


def test_two_claims_race_for_one_slot(graph_engine):
    """Across processes the unique slot decides: the second claim is a conflict and stores nothing."""
    from datetime import date

    from domain import jobs
    from domain.rulesets import ensure_active, store

    ensure_active(graph_engine, DEFAULT_RULES)
    with graph_engine.begin() as conn:
        first = store(conn, SIMPLE, by="admin")
        jobs._claim(conn, "publish", first.id, date(2024, 6, 30), "admin")
    with pytest.raises(jobs.JobConflict):
        with graph_engine.begin() as conn:
            second = store(conn, SIMPLE + "# again\n", by="admin")
            jobs._claim(conn, "publish", second.id, date(2024, 6, 30), "admin")
    assert versions(graph_engine) == [(1, True), (2, False)]


DIFF = """query($a: Int!, $b: Int!) { ruleSetDiff(fromVersion: $a, toVersion: $b) { kind oldLine newLine text } }"""


def test_diff_between_two_published_versions(admin):
    published = admin(PUBLISH, s=SIMPLE, d=AS_OF)["data"]["publishRules"]
    assert finished(admin, published["job"]["id"])["state"] == "SUCCEEDED"
    changed = SIMPLE.replace("count(order) >= 3", "count(order) >= 4")
    assert finished(admin, admin(PUBLISH, s=changed, d=AS_OF)["data"]["publishRules"]["job"]["id"])["state"] \
        == "SUCCEEDED"
    lines = admin(DIFF, a=2, b=3)["data"]["ruleSetDiff"]
    assert lines == [
        {"kind": "REMOVED", "oldLine": 1, "newLine": None, "text": "tier big if count(order) >= 3"},
        {"kind": "ADDED", "oldLine": None, "newLine": 1, "text": "tier big if count(order) >= 4"},
        {"kind": "SAME", "oldLine": 2, "newLine": 2, "text": "tier small otherwise"},
        {"kind": "SAME", "oldLine": 3, "newLine": 3, "text": "status active if count(order, 12m) >= 1"},
        {"kind": "SAME", "oldLine": 4, "newLine": 4, "text": "status gone otherwise"},
    ]
    missing = admin(DIFF, a=2, b=42)["errors"][0]
    assert missing["extensions"]["code"] == "NOT_FOUND" and "42" in missing["message"]
    assert admin(DIFF, token=None, a=2, b=3)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
