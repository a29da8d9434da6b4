"""The ASGI app (`uvicorn server:app`): GraphQL with GraphiQL at /graphql, the pages (web/), /healthz, /metrics,
migrations on start."""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import threading
from typing import Any

import httpx
import sqlalchemy as sa
from cross_web import HTTPException
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL

from domain.db import make_engine, migrate
from domain.settings import Settings
from domain.rulesets import ActiveRules
from domain.notify import ChangeFeed
from domain.webhooks import deliver_due
from metrics import Metrics
from web.routes import graphiql_html, page_routes
from schema import build_schema
from domain.jobs import mark_interrupted
from schema.context import Context
from schema.permissions import bearer, token_matches
from strawberry.exceptions import ConnectionRejectionError


log = logging.getLogger("tiergraph")


class _Wrap:
    """Adapts a plain ASGI wrapper function to Starlette's middleware list."""

    def __init__(self, app, wrap):
        self.app = wrap(app)

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


class TiergraphGraphQL(GraphQL):
    def __init__(self, schema, engine, settings: Settings, rules: ActiveRules):
        super().__init__(schema, graphql_ide="graphiql")
        self.engine = engine
        self.settings = settings
        self.rules = rules

    async def __call__(self, scope, receive, send):
        """As strawberry's, but a request the API cannot read gets a JSON error with a code, not plain text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            response = _error_response(exc.status_code, "BAD_REQUEST", exc.reason)
        await response(scope, receive, send)

    async def parse_http_body(self, request: Any) -> Any:
        if request.method == "POST" and "json" in (request.content_type or ""):
            try:
                body = json.loads(await request.get_body())
            except ValueError:
                raise HTTPException(400, "the request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise HTTPException(400, 'the request body must be a JSON object: {"query": "...", "variables": {}}')
        data = await super().parse_http_body(request)
        if not isinstance(data, list) and data.protocol == "http" and _is_subscription(data.query,
                                                                                        data.operation_name):
            raise HTTPException(400, "subscriptions run over a websocket (graphql-transport-ws on /graphql), "
                                     "not over an HTTP request")
        return data

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL from installed packages (web/vendor.py), not strawberry's page, which loads it from a CDN."""
        return HTMLResponse(graphiql_html())

    async def get_context(self, request: Any, response: Any) -> Context:
        return await Context.for_request(self.engine, self.settings, self.rules, request).prepare()

    async def on_ws_connect(self, context: Context):
        """With TIERGRAPH_API_TOKEN set, a subscriber sends it in connection_init ({"Authorization": "Bearer
        ..."}) or as a header; otherwise the socket is closed with 4403 before any event is sent."""
        if self.settings.api_token:
            params = context.connection_params or {}
            given = bearer(params.get("Authorization") or params.get("authorization")
                           or context.request.headers.get("authorization"))
            if not token_matches(given, self.settings.api_token, self.settings.admin_token):
                raise ConnectionRejectionError({"message": "an API token is required"})
        return await super().on_ws_connect(context)


def _error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
                        status_code=status)


def _is_subscription(query: Any, operation_name: Any) -> bool:
    if not isinstance(query, str) or "subscription" not in query:
        return False
    try:
        document = parse(query)
    except GraphQLError:
        return False  # execution reports the syntax error
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    return len(chosen) == 1 and chosen[0].operation == OperationType.SUBSCRIPTION


class _ApiTokenGuard:
    """HTTP calls to the API need `Authorization: Bearer <TIERGRAPH_API_TOKEN>` (or the admin token) when the
    API token is set; the GraphiQL page itself is served to anyone, its queries are not."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send):
        settings, app = self.settings, self.app
        if scope["type"] == "http" and settings.api_token:
            request = Request(scope)
            wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "") \
                and "query" not in request.query_params
            if not wants_page:
                given = bearer(request.headers.get("authorization"))
                if not token_matches(given, settings.api_token, settings.admin_token):
                    code, status = ("FORBIDDEN", 403) if given else ("UNAUTHENTICATED", 401)
                    message = "the API token is not valid" if given else \
                        "this API needs a token: 'Authorization: Bearer <token>'"
                    await _error_response(status, code, message)(scope, receive, send)
                    return
        await app(scope, receive, send)


async def _send_webhooks(engine, settings: Settings, feed: ChangeFeed) -> None:
    """Pushes new tier changes to webhook endpoints for as long as the server runs, woken by the change feed."""
    async with httpx.AsyncClient() as client:
        while True:
            seen = feed.reads  # rows the feed reads during this round wake the next one at once
            try:
                await deliver_due(engine, client)
            except Exception:  # noqa: BLE001 - one bad round must not stop delivery; the next round retries
                log.exception("webhook delivery round failed")
            await feed.wait_for_changes(settings.event_poll_seconds, since=seen)


def _seconds_until_hour(hour: int, now: datetime.datetime | None = None) -> float:
    """Seconds from now to the next time the clock shows `hour`:00 (local time)."""
    now = now or datetime.datetime.now()
    nxt = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if nxt <= now:
        nxt += datetime.timedelta(days=1)
    return (nxt - now).total_seconds()


def _full_batch(engine, settings: Settings) -> None:
    """The periodic full batch with the rules in force: fresh rank cut-offs and quintiles for the whole base."""
    from domain.full_batch import evaluate_base

    version, ruleset = ActiveRules(engine, settings.rules_path).current()
    _value_run, run = evaluate_base(engine, ruleset, version.id, datetime.date.today(), model=settings.value_model,
                                    monetary=settings.rfm_monetary)
    log.info("full batch as of %s: %d customers (every %d days)", run.as_of, run.customer_count,
             settings.full_batch_days)
    from domain.loss_store import prepare_after_batch

    prepare_after_batch(engine, ruleset)


async def _daily_tick(engine, settings: Settings, stop: threading.Event) -> None:
    """The tick at start-up (catching up after downtime), then every day at TIERGRAPH_TICK_HOUR, in a worker
    thread. A failed tick is logged; the customers it did not reach stay due and the next tick takes them."""
    from domain.full_batch import full_batch_due
    from domain.tick import ARCHIVE_AFTER_DAYS, is_live, tick

    while True:
        try:
            if await run_in_threadpool(is_live, engine):
                report = await run_in_threadpool(tick, engine, stop=stop)
                log.info("%s", report.summary())
                if await run_in_threadpool(full_batch_due, engine, settings.full_batch_days):
                    await run_in_threadpool(_full_batch, engine, settings)
            else:
                log.info("no tick: the latest evaluation is more than %d days old (an archive, or never evaluated); "
                         "`tiergraph tick --until DATE` advances it on purpose", ARCHIVE_AFTER_DAYS)
        except Exception:  # noqa: BLE001 - one failed tick must not stop the next ones
            log.exception("tick failed; the customers due stay due for the next tick")
        await asyncio.sleep(_seconds_until_hour(settings.tick_hour))


def create_app(settings: Settings | None = None, *, engine=None) -> Starlette:
    """Builds the app from settings; nothing touches the database until start-up."""
    settings = settings or Settings.from_env()
    engine = engine or make_engine(settings.database_url, echo=settings.sql_echo)
    rules = ActiveRules(engine, settings.rules_path)
    metrics = Metrics(engine)
    graphql_app = TiergraphGraphQL(build_schema(), engine, settings, rules)

    def ping() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))

    async def healthz(_: Request) -> JSONResponse:
        try:
            await run_in_threadpool(ping)  # database calls never run on the event loop
        except Exception as exc:  # noqa: BLE001 - report any database failure as unhealthy
            return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "database": engine.dialect.name})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        migrate(engine)
        interrupted = mark_interrupted(engine)
        if interrupted:
            log.warning("%d job(s) left running by a stopped server are marked failed", interrupted)
        # A broken rule set stops the start with the admin-facing errors, rather than serving wrong tiers.
        rules.current()
        # one reader of the change log per process: subscriptions and webhooks are woken by it (domain/notify.py)
        feed = ChangeFeed(engine, poll_seconds=settings.event_poll_seconds, queue_size=settings.subscriber_queue)
        await feed.start()
        sender = asyncio.create_task(_send_webhooks(engine, settings, feed)) if settings.webhooks else None
        stop_tick = threading.Event()
        ticker = asyncio.create_task(_daily_tick(engine, settings, stop_tick)) if settings.tick else None
        yield
        if ticker is not None:  # a tick in its thread ends after its current chunk (which commits whole)
            stop_tick.set()
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        await feed.stop()
        engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", _ApiTokenGuard(graphql_app, settings), methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            Route("/healthz", healthz),
            Route("/metrics", metrics.endpoint),
            *page_routes(),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(_Wrap, wrap=metrics.middleware)
    app.state.engine = engine
    app.state.settings = settings
    return app


def __getattr__(name: str):
    # `uvicorn server:app` reads settings only when the app is asked for, not when this module is imported.
    if name == "app":
        return create_app()
    raise AttributeError(name)
