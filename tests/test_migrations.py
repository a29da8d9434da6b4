"""Migrations upgrade and downgrade cleanly on SQLite and PostgreSQL, and match the models."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import domain.models  # noqa: F401
from domain.db import downgrade, make_engine, migrate

TABLES = {"webhook_endpoints", "customer_scores", "value_runs", "customers", "orders", "order_lines", "complaints", "deliveries", "interactions", "sales_reps",
          "products", "rule_sets", "evaluation_runs", "customer_evaluations", "tier_changes"}


def test_upgrade_downgrade_upgrade(empty_db_url):
    engine = make_engine(empty_db_url)
    migrate(engine)
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    downgrade(engine, "base")
    left = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert left == set()
    migrate(engine)
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_head_matches_models(engine):
    """A model change without a migration fails here."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []


def test_migrate_is_idempotent(engine):
    migrate(engine)
    with engine.connect() as conn:
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    assert version
