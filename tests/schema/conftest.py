"""A GraphQL client over the real app and a database holding a small customer graph."""
from __future__ import annotations


import pytest
from starlette.testclient import TestClient

from domain.importer import import_directory
from domain.settings import Settings
from server import create_app

from tests_support import GRAPH_FIXTURE as FIXTURE


class GraphQLClient:
    def __init__(self, http: TestClient):
        self.http = http

    def __call__(self, query: str, **variables):
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, **variables):
        body = self(query, **variables)
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture
def graph_engine(engine):
    import_directory(engine, FIXTURE)
    return engine


@pytest.fixture
def client(graph_engine, empty_db_url):
    app = create_app(Settings(database_url=empty_db_url, webhooks=False), engine=graph_engine)
    with TestClient(app) as http:
        yield GraphQLClient(http)
