"""Push latency: an order recorded through the API -> every connected subscriber has received its change event.

    python bench/bench_push.py [--orders 1000] [--subscribers 100] [--backends sqlite postgresql]
                               [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each backend: a fresh database with one lost customer per order (an old order under rules where no order in
90 days is `lost`), a real `tiergraph serve` process (safety poll 30 s, so every delivery measured is a push: on
PostgreSQL LISTEN/NOTIFY, on SQLite the in-process signal of the write made in the server's process), M
graphql-transport-ws subscribers on `tierChanges(kinds: ["status"])`, and N `recordOrder` mutations sent one after
another over HTTP, each bringing one customer back to `active`. Per (order, subscriber) it measures

  recorded -> received   from the change's recordedAt (stamped in the order's transaction, just before its commit)
                         to the event's arrival at the subscriber (both on this machine's clock)
  sent -> received       from sending the mutation to the arrival (the write itself included)

and prints p50 / p99 / max in milliseconds for each, with the goal p99 < 100 ms. The client runs in this process
on the same 2-core machine as the server, so the figures include the client's own work on the loop.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import sqlalchemy as sa
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.db import make_engine, migrate  # noqa: E402
from domain.importer import import_directory  # noqa: E402
from domain.rulesets import publish  # noqa: E402

TOKEN = "bench-admin"
RULES = """tier buyer otherwise
status active if count(order, 90d) >= 1
status lost otherwise
"""
OLD_ORDER = date(2024, 1, 2)
NEW_ORDER = date(2024, 6, 28)
SUBSCRIPTION = """subscription { tierChanges(kinds: ["status"], newValues: ["active"]) {
  cursor customerExternalId recordedAt cause { kind recordExternalId } } }"""
RECORD = """mutation($input: OrderInput!) { recordOrder(input: $input) { changed customer { externalId } } }"""
GOAL_MS = 100.0


def write_base(directory: Path, customers: int) -> None:
    """One customer per order to come, each with a single old order: every one is lost until its new order."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "customers.csv").write_text(
        "external_id,name,region,industry,size,owner_rep_external_id,seasonal,blocked_from,created_at,"
        "parent_external_id,referred_by_external_id\n"
        + "".join(f"B{i:05d},Bench {i},east,retail,small,,,,2023-12-01,,\n" for i in range(customers)))
    (directory / "products.csv").write_text("sku,name,unit_cost,seasonal\nA,Widget,4,\n")
    (directory / "orders.csv").write_text(
        "order_external_id,customer_external_id,ordered_at,sku,quantity,unit_price,unit_cost\n"
        + "".join(f"OLD{i:05d},B{i:05d},{OLD_ORDER},A,1,10,\n" for i in range(customers)))


def prepare(url: str, customers: int, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    migrate(engine)
    write_base(work / "base", customers)
    import_directory(engine, work / "base")
    publish(engine, RULES, by="bench", as_of=NEW_ORDER)  # everyone lost as of the day the new orders are dated
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "TIERGRAPH_ADMIN_TOKEN": TOKEN, "TIERGRAPH_WEBHOOKS": "off",
           "TIERGRAPH_EVENT_POLL_SECONDS": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, port
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("the server did not start")
            time.sleep(0.2)


async def subscriber(port: int, arrived: dict[str, list[float]], lags: list[float], ready: asyncio.Event,
                     count: list[int], wanted: int, done: asyncio.Event) -> None:
    async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"],
                       max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {TOKEN}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        ready.set()
        received = 0
        while received < wanted:
            message = json.loads(await ws.recv())
            now, wall = time.perf_counter(), time.time()
            if message.get("type") != "next" or "errors" in message["payload"]:
                raise SystemExit(f"a subscriber got {message}")
            event = message["payload"]["data"]["tierChanges"]
            arrived.setdefault(event["cause"]["recordExternalId"], []).append(now)
            lags.append((wall - _stamp(event["recordedAt"])) * 1000)
            received += 1
        count[0] += 1
        if count[0] == count[1]:
            done.set()


def _stamp(iso: str) -> float:
    """A recordedAt as unix seconds (UTC when it carries no zone); the server runs on this machine's clock."""
    moment = datetime.fromisoformat(iso)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(port: int, orders: int, subscribers: int) -> dict[str, list[float]]:
    arrived: dict[str, list[float]] = {}
    lags: list[float] = []
    count, done = [0, subscribers], asyncio.Event()
    readies = [asyncio.Event() for _ in range(subscribers)]
    tasks = [asyncio.create_task(subscriber(port, arrived, lags, r, count, orders, done)) for r in readies]
    for r in readies:
        await r.wait()
    await asyncio.sleep(1.0)  # every subscription registered with the server's feed
    sent: dict[str, float] = {}
    recorded: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
        for i in range(orders):
            order = f"NEW{i:05d}"
            payload = {"query": RECORD, "variables": {"input": {
                "externalId": order, "customerExternalId": f"B{i:05d}", "orderedAt": NEW_ORDER.isoformat(),
                "lines": [{"sku": "A", "quantity": 1, "unitPrice": 12.5}]}}}
            sent[order] = time.perf_counter()
            body = (await http.post("/graphql", json=payload)).json()
            recorded[order] = time.perf_counter()
            if "errors" in body or not body["data"]["recordOrder"]["changed"]:
                raise SystemExit(f"recordOrder failed: {body}")
    try:
        await asyncio.wait_for(done.wait(), timeout=120)
    finally:
        for t in tasks:
            t.cancel()
    missing = [o for o in sent if len(arrived.get(o, [])) != subscribers]
    if missing:
        raise SystemExit(f"{len(missing)} orders did not reach every subscriber, e.g. {missing[:3]}")
    return {"recorded -> received": lags,
            "sent -> received": [(t - sent[o]) * 1000 for o, ts in arrived.items() for t in ts],
            "recordOrder round trip": [(recorded[o] - sent[o]) * 1000 for o in sent]}


def run_backend(name: str, url: str, orders: int, subscribers: int, work: Path) -> None:
    started = time.perf_counter()
    prepare(url, orders, work)
    print(f"{name}: {orders} lost customers ready in {time.perf_counter() - started:.1f} s", flush=True)
    proc, port = start_server(url)
    try:
        t0 = time.perf_counter()
        results = asyncio.run(measure(port, orders, subscribers))
        took = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"{name}: {orders} recordOrder (one after another) with {subscribers} subscribers, "
          f"{orders * subscribers} deliveries in {took:.1f} s; write path: recordOrder mutation")
    for label, values in results.items():
        p99 = percentile(values, 99)
        verdict = "" if label == "recordOrder round trip" else \
            f"   goal p99 < {GOAL_MS:.0f} ms: {'met' if p99 < GOAL_MS else 'NOT met'} ({p99 / GOAL_MS:.2f}x)"
        print(f"  {label:24s} p50 {percentile(values, 50):7.1f} ms   p99 {p99:7.1f} ms   "
              f"max {max(values):7.1f} ms{verdict}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            work = Path(tmp) / backend
            if backend == "sqlite":
                run_backend("SQLite", f"sqlite:///{work / 'bench.db'}", args.orders, args.subscribers, work)
                continue
            admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            name = f"tiergraph_bench_push_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                url = sa.engine.make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
                run_backend("PostgreSQL", url, args.orders, args.subscribers, work)
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
