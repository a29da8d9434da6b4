"""The rule back ends read the tables as the models declare them (one declaration, guarded against the migrations
by tests/test_migrations.py::test_head_matches_models), and every built-in metric is a score column of its type."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.util import find_tables
from sqlmodel import SQLModel

from domain import records
from rules import to_sql
from rules.builtins import BOOL, BUILTINS, SCORE_COLUMNS


def test_rule_back_ends_use_the_model_tables():
    used = [to_sql.customers, to_sql.customer_scores, records.customers, records.customer_scores]
    for source in to_sql.TABLES.values():  # a table, or a select over tables (order lines with their order)
        used += [source] if isinstance(source, sa.Table) else find_tables(source.element)
    for table in used:
        assert SQLModel.metadata.tables[table.name] is table, table.name
    assert not [v for v in vars(to_sql).values() if isinstance(v, sa.MetaData)]  # no private copy left


def test_every_builtin_metric_is_a_score_column_of_its_type():
    columns = to_sql.customer_scores.c
    for name in SCORE_COLUMNS:
        assert name in BUILTINS and name in columns, name
        assert isinstance(columns[name].type, sa.Boolean) == (BUILTINS[name].type == BOOL), name
