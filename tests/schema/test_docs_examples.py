"""Every GraphQL example in docs/api.md runs without errors against the app (the docs stay true)."""
import re
from datetime import date
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from domain.evaluation import run_batch
from domain.settings import DEFAULT_RULES, Settings
from domain.value.batch import run_value_batch
from rules.compiler import load_rules_file
from server import create_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EXAMPLES = re.findall(r"```graphql\n(.*?)```", DOC.read_text(), re.S)
AS_OF = date(2024, 6, 30)


@pytest.fixture
def admin_client(graph_engine, empty_db_url):
    run_value_batch(graph_engine, AS_OF)
    run_batch(graph_engine, load_rules_file(DEFAULT_RULES), date(2024, 3, 15))
    run_batch(graph_engine, load_rules_file(DEFAULT_RULES), AS_OF)
    settings = Settings(database_url=empty_db_url, admin_token="t", webhooks=False)
    with TestClient(create_app(settings, engine=graph_engine)) as http:
        yield http


def test_examples_are_found():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("example", [e for e in EXAMPLES if not e.lstrip().startswith("subscription")],
                         ids=lambda e: re.search(r"(query|mutation) (\w+)", e).group(2))
def test_example_runs(admin_client, example):
    variables = {"source": DEFAULT_RULES.read_text()} if "$source" in example else {}
    body = admin_client.post("/graphql", json={"query": example, "variables": variables},
                             headers={"Authorization": "Bearer t"}).json()
    assert "errors" not in body, body["errors"]
    assert body["data"]
