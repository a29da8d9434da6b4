"""Tiergraph's business core: tables, import, evaluation and value scores; no GraphQL here."""
