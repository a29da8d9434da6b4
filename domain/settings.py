"""The one typed settings object, read from the environment; bad values fail loudly at start-up."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///tiergraph.db"
DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules" / "default.rules"


class SettingsError(ValueError):
    """A setting in the environment is missing or malformed."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc


def _hour(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if not 0 <= value <= 23:
        raise SettingsError(f"{name} must be an hour from 0 to 23, got {value}")
    return value


def _choice(env: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _days(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 0:
        raise SettingsError(f"{name} must be 0 (never) or a number of days, got {value}")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be more than 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    rules_path: Path = DEFAULT_RULES
    host: str = "127.0.0.1"
    port: int = 8000
    sql_echo: bool = False
    event_poll_seconds: float = 1.0  # safety poll of the change feed (pushed changes arrive at once)
    subscriber_queue: int = 10_000  # changes a subscriber may fall behind before it is closed (SLOW_CONSUMER)
    rfm_monetary: str = "revenue"  # RFM's M: revenue, or margin
    value_model: str = "bgnbd"  # lifetime model: bgnbd, or mbgnbd (one-time buyers can be lost too)
    webhooks: bool = True  # the server pushes tier changes to registered webhook endpoints
    # the server runs the tick at start-up (catching up after downtime) and then daily. On by default from the
    # environment (TIERGRAPH_TICK); Settings built in code (tests, embedding) opt in, so their data does not age
    tick: bool = False
    tick_hour: int = 2  # the hour of the day (0-23, server's local time) of the daily tick
    # with the tick on: a full batch (scores, rank cut-offs, quintiles) when the last one is this many days old;
    # 0 never (from the environment the default is 7; settings built in code, such as tests', leave it off)
    full_batch_days: int = 0
    api_token: str | None = None  # when set, every API call needs it (or the admin token)
    admin_token: str | None = None  # required for admin fields (rule sets, jobs, webhooks); None disables them

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        if "://" not in url:
            raise SettingsError(
                f"DATABASE_URL must be a URL such as sqlite:///tiergraph.db or "
                f"postgresql://user@host/db, got {url!r}"
            )
        rules = Path(env.get("TIERGRAPH_RULES") or DEFAULT_RULES)
        return cls(
            database_url=normalise_database_url(url),
            rules_path=rules,
            host=env.get("TIERGRAPH_HOST") or "127.0.0.1",
            port=_int(env, "TIERGRAPH_PORT", 8000),
            sql_echo=env.get("TIERGRAPH_SQL_ECHO", "") in {"1", "true", "yes"},
            admin_token=env.get("TIERGRAPH_ADMIN_TOKEN") or None,
            api_token=env.get("TIERGRAPH_API_TOKEN") or None,
            rfm_monetary=_choice(env, "TIERGRAPH_RFM_MONETARY", ("revenue", "margin"), "revenue"),
            value_model=_choice(env, "TIERGRAPH_VALUE_MODEL", ("bgnbd", "mbgnbd"), "bgnbd"),
            webhooks=env.get("TIERGRAPH_WEBHOOKS", "on").lower() not in {"0", "off", "false", "no"},
            tick=env.get("TIERGRAPH_TICK", "on").lower() not in {"0", "off", "false", "no"},
            tick_hour=_hour(env, "TIERGRAPH_TICK_HOUR", 2),
            full_batch_days=_days(env, "TIERGRAPH_FULL_BATCH_DAYS", 7),
            event_poll_seconds=_float(env, "TIERGRAPH_EVENT_POLL_SECONDS", 1.0),
            subscriber_queue=_int(env, "TIERGRAPH_SUBSCRIBER_QUEUE", 10_000),
        )


def normalise_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and route them to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
