"""Defect 5: on old data (CDNOW ends in 1998) a left-out date means the latest evaluation's, and is given back."""
from __future__ import annotations

from datetime import date

from starlette.testclient import TestClient

from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.settings import DEFAULT_RULES, Settings
from rules.compiler import load_rules_file
from server import create_app

AS_OF = date(1998, 6, 30)
FILTER = """query($d: Date) { customers(first: 5, where: "count(order, 12m) > 0", asOf: $d) {
  asOf totalCount edges { node { externalId } } } }"""


def test_customers_where_and_preview_without_a_date_use_the_data_now(engine, cdnow_dir, empty_db_url):
    import_directory(engine, cdnow_dir)
    run_batch(engine, load_rules_file(DEFAULT_RULES), AS_OF)
    app = create_app(Settings(database_url=empty_db_url, admin_token="t", webhooks=False), engine=engine)
    with TestClient(app, headers={"Authorization": "Bearer t"}) as http:
        def data(query, **variables):
            body = http.post("/graphql", json={"query": query, "variables": variables}).json()
            assert "errors" not in body, body
            return body["data"]

        left_out = data(FILTER)["customers"]
        explicit = data(FILTER, d=AS_OF.isoformat())["customers"]
        today = data(FILTER, d=date.today().isoformat())["customers"]
        assert today["totalCount"] == 0  # what "today" gave on this export before
        assert left_out["asOf"] == "1998-06-30"
        assert left_out["totalCount"] == explicit["totalCount"] > 500
        assert len(left_out["edges"]) == 5
        plain = data("{ customers(first: 1) { asOf totalCount } }")["customers"]
        assert plain["asOf"] is None  # no condition, no date involved
        preview = data('query($s: String!) { previewRules(source: $s) { asOf customers changedTiers } }',
                       s=DEFAULT_RULES.read_text())["previewRules"]
        assert preview["asOf"] == "1998-06-30"
        assert preview["changedTiers"] == 0  # the same rules as of the same date move nobody
