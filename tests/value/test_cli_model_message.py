"""`tiergraph evaluate` says whether the lifetime model was fitted, and why not when it was not (defect 10)."""
from __future__ import annotations

from cli import main
from domain.importer import import_directory
from tests_support import GRAPH_FIXTURE


def test_evaluate_states_why_no_lifetime_model_was_fitted(engine, empty_db_url, monkeypatch, capsys):
    import_directory(engine, GRAPH_FIXTURE)
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    assert main(["evaluate", "--as-of", "2024-01-10"]) == 0  # a week into the data: hardly a repeat buyer yet
    err = " ".join(capsys.readouterr().err.split())
    assert "lifetime model not fitted: too few repeat buyers to fit" in err
    assert "P(alive), expected orders, expected spend and CLV are unknown" in err
    assert main(["evaluate", "--as-of", "2024-12-31"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "bgnbd fitted on" in err and "not fitted" not in err
