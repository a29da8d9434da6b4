"""Settings come from the environment and fail loudly, naming the variable."""
from pathlib import Path

import pytest

from domain.settings import Settings, SettingsError


def test_defaults_and_postgres_url_spellings():
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///tiergraph.db" and s.admin_token is None and s.webhooks
    assert Settings.from_env({"DATABASE_URL": "postgres://u@h/db"}).database_url == "postgresql+psycopg://u@h/db"
    assert Settings.from_env({"TIERGRAPH_RULES": "x.rules"}).rules_path == Path("x.rules")


@pytest.mark.parametrize("env, name", [
    ({"DATABASE_URL": "tiergraph.db"}, "DATABASE_URL"),
    ({"TIERGRAPH_PORT": "eighty"}, "TIERGRAPH_PORT"),
    ({"TIERGRAPH_VALUE_MODEL": "pareto"}, "TIERGRAPH_VALUE_MODEL"),
    ({"TIERGRAPH_RFM_MONETARY": "profit"}, "TIERGRAPH_RFM_MONETARY"),
    ({"TIERGRAPH_EVENT_POLL_SECONDS": "0"}, "TIERGRAPH_EVENT_POLL_SECONDS"),
])
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_cli_reports_bad_rules_and_settings_plainly(tmp_path, monkeypatch, capsys):
    from cli import main

    bad = tmp_path / "bad.rules"
    bad.write_text("tier a if [x] > 1\ntier b otherwise\n")
    assert main(["rules", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "line 1, column 11" in out and "^" in out
    assert main(["rules", "check", str(tmp_path / "missing.rules")]) == 2
    monkeypatch.setenv("DATABASE_URL", "nonsense")
    assert main(["migrate"]) == 2
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("TIERGRAPH_RULES", str(bad))
    assert main(["evaluate", "--as-of", "2024-01-31"]) == 1
    err = capsys.readouterr().err
    assert "[red]" not in err and "the rules in force have errors" in err
