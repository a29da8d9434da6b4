"""Bulk inserts for batch results: PostgreSQL COPY when available, executemany in chunks elsewhere."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

CHUNK = 5000


def insert_rows(conn: Connection, table: sa.Table, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> int:
    """Insert dict rows into `table` inside the caller's transaction; returns how many were written."""
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return _copy(conn, table, rows, columns)
    count = 0
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            conn.execute(table.insert(), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        conn.execute(table.insert(), chunk)
        count += len(chunk)
    return count


def _copy(conn: Connection, table: sa.Table, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> int:
    from psycopg.types.json import Jsonb

    json_cols = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
    names = ", ".join(f'"{c}"' for c in columns)  # column names come from the table definition, never from input
    cursor = conn.connection.dbapi_connection.cursor()
    count = 0
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([Jsonb(row[c]) if c in json_cols else row[c] for c in columns])
            count += 1
    return count
