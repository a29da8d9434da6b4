"""Shared fixtures: every database test runs on SQLite and on the real PostgreSQL server.

PostgreSQL: a fresh database per test session on TIERGRAPH_TEST_PG (default 127.0.0.1:5432, user postgres).
Unreachable PostgreSQL skips those tests on a laptop, and fails them when CI=true.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.db import make_engine, migrate
from tests_support import IN_CI, require_cdnow

PG_ADMIN_URL = os.environ.get("TIERGRAPH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> str | None:
    try:
        engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


class PostgresServer:
    """Creates throwaway databases on the test server and drops them at the end of the session."""

    def __init__(self, admin_url: str):
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []
        self.base_url = sa.engine.make_url(admin_url)

    def new_database(self) -> str:
        name = f"tiergraph_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.base_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_server():
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    server = PostgresServer(PG_ADMIN_URL)
    yield server
    server.drop_all()


def _fresh_url(kind: str, tmp_path: Path, request) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'tiergraph.db'}"
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_kind(request) -> str:
    return request.param


@pytest.fixture
def empty_db_url(db_kind, tmp_path, request) -> str:
    """A URL of a fresh database with no tables (for migration tests)."""
    return _fresh_url(db_kind, tmp_path, request)


@pytest.fixture
def engine(empty_db_url):
    """An engine on a fresh database migrated to head, on SQLite and on PostgreSQL."""
    eng = make_engine(empty_db_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def cdnow_dir() -> Path:
    return require_cdnow()
