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
