"""Prometheus metrics for operators: request counts and latency per route, and the size of the base."""
from __future__ import annotations

import time

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


class Metrics:
    """One registry per app, so several apps (tests) never share counters."""

    def __init__(self, engine):
        self.engine = engine
        self.registry = CollectorRegistry()
        self.requests = Counter("tiergraph_http_requests", "HTTP requests", ["path", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("tiergraph_http_request_seconds", "HTTP request duration", ["path"],
                                 registry=self.registry)
        self.customers = Gauge("tiergraph_customers", "Customers in the base", registry=self.registry)
        self.evaluated = Gauge("tiergraph_customers_evaluated", "Customers with stored evaluation results",
                               registry=self.registry)
        self.changes = Gauge("tiergraph_tier_changes", "Entries in the tier / status change log",
                             registry=self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = {"code": 500}

            async def send_and_note(message) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            started = time.perf_counter()
            try:
                await app(scope, receive, send_and_note)
            finally:
                path = scope["path"] if scope["path"] in {"/graphql", "/healthz", "/metrics"} else "other"
                self.latency.labels(path).observe(time.perf_counter() - started)
                self.requests.labels(path, scope["method"], str(status["code"])).inc()

        return measured

    def _count_base(self) -> None:
        with self.engine.connect() as conn:
            self.customers.set(conn.execute(sa.text("select count(*) from customers")).scalar_one())
            self.evaluated.set(conn.execute(sa.text("select count(*) from customer_evaluations")).scalar_one())
            self.changes.set(conn.execute(sa.text("select count(*) from tier_changes")).scalar_one())

    async def endpoint(self, _: Request) -> Response:
        await run_in_threadpool(self._count_base)  # database calls never run on the event loop
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
