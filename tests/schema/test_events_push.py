"""Push, not poll (issue 8, section 6): a real uvicorn server and real graphql-transport-ws clients over websockets.

The safety poll is set to 30 s, so an event that arrives within a second was pushed: on PostgreSQL by NOTIFY from a
writer in another process, on SQLite by the in-process signal of a write made in the server's process. A subscriber
that stops reading is closed with SLOW_CONSUMER and its last cursor while a fast one receives everything.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from websockets.sync.client import connect

from domain.db import make_engine
from domain.models import Customer, TierChange
from domain.notify import running_feed
from domain.settings import Settings
from schema.pagination import encode_cursor
from server import create_app

ROOT = Path(__file__).parents[2]
POLL = "30"  # seconds: far longer than any push test waits
PUSHED = 2.0  # seconds: generous for a push that takes milliseconds, far below the poll
FIELDS = "cursor kind oldValue newValue customerExternalId effectiveOn exact ruleLine ruleText metrics " \
         "cause { kind recordKind recordExternalId ruleSetVersion }"


def write_changes(url: str, count: int, *, new_value: str = "lost", kind: str = "status", per_commit: int = 0,
                  effective_on: str = "2024-06-01", pause: float = 0.0) -> None:
    """Appends `count` change rows for the fixture's customers in writer transactions (as every writer does),
    then announces them. Also run as a separate process (the PostgreSQL test's writer)."""
    from domain.evaluation_state import writer_transaction

    engine = make_engine(url)
    changes = TierChange.__table__
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.select(Customer.__table__.c.id).order_by(Customer.__table__.c.id))]
    row = {"as_of": date(2024, 6, 30), "kind": kind, "old_value": "active", "new_value": new_value,
           "effective_on": date.fromisoformat(effective_on), "exact": True, "cause": "NEW_DATA",
           "cause_record_kind": "order", "cause_record_external_id": "O-push", "rule_line": 3,
           "rule_text": "status lost if no order 90d", "rule_set_version": 1, "metrics": {"days_since_order": 91}}
    row = {k: v for k, v in row.items() if k in changes.c}
    per_commit = per_commit or count
    done = 0
    while done < count:
        n = min(per_commit, count - done)
        with writer_transaction(engine) as conn:  # announces after the commit (domain.notify.changes_committed)
            conn.execute(changes.insert(), [{**row, "customer_id": ids[(done + i) % len(ids)]} for i in range(n)])
        done += n
        time.sleep(pause)
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server_in_process(url: str, engine, **settings):
    """uvicorn serving the app in a thread of this process: a write made here is a write in the server's process."""
    port = _free_port()
    app = create_app(Settings(database_url=url, webhooks=False, event_poll_seconds=float(POLL), **settings),
                     engine=engine)
    # no websocket keepalive pings: the stalled client of the slow-subscriber test must be closed by the feed
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws_ping_interval=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def server_process(url: str, **env):
    """`tiergraph serve` in its own process."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "DATABASE_URL": url, "TIERGRAPH_WEBHOOKS": "off",
                                 "TIERGRAPH_EVENT_POLL_SECONDS": POLL, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.1)
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Subscriber:
    def __init__(self, uri: str, variables: dict | None = None, *, fields: str = FIELDS, sock=None):
        self.ws = connect(uri, subprotocols=["graphql-transport-ws"], sock=sock, max_size=None,
                          ping_interval=None).__enter__()
        self.ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(self.ws.recv(timeout=10))["type"] == "connection_ack"
        args = "after: $after, kinds: $kinds, newValues: $newValues, customer: $customer, " \
               "effectiveFrom: $effectiveFrom, effectiveTo: $effectiveTo"
        query = (f"subscription($after: String, $kinds: [String!], $newValues: [String!], $customer: String, "
                 f"$effectiveFrom: Date, $effectiveTo: Date) {{ tierChanges({args}) {{ {fields} }} }}")
        self.ws.send(json.dumps({"id": "1", "type": "subscribe",
                                 "payload": {"query": query, "variables": variables or {}}}))

    def message(self, timeout: float) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def events(self, count: int, timeout: float) -> list[dict]:
        got, deadline = [], time.monotonic() + timeout
        while len(got) < count:
            message = self.message(max(deadline - time.monotonic(), 0.001))
            assert message["type"] == "next" and "errors" not in message["payload"], message
            got.append(message["payload"]["data"]["tierChanges"])
        return got

    def nothing_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            self.message(seconds)

    def close(self) -> None:
        self.ws.close()


class StalledSubscriber:
    """A client that subscribes over a raw socket with a tiny receive window and then stops reading (a client
    library would keep reading into its own buffers)."""

    def __init__(self, uri: str):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small TCP window
        host, port = uri.split("/")[2].split(":")
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)  # byte by byte: nothing after the handshake is consumed here
        assert response.startswith(b"HTTP/1.1 101"), response
        self._send({"type": "connection_init"})
        padding = " ".join(f"r{i}: ruleText" for i in range(20))  # big events fill the socket buffers sooner
        self._send({"id": "1", "type": "subscribe",
                    "payload": {"query": f"subscription {{ tierChanges {{ {FIELDS} {padding} }} }}"}})

    def _send(self, message: dict) -> None:
        data, mask = json.dumps(message).encode(), os.urandom(4)
        assert len(data) < 2**16
        size = bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
        self.sock.sendall(b"\x81" + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def start_reading(self) -> Subscriber:
        """Hands the socket to a real client from here on (the handshake is done: read raw frames)."""
        return _RawReader(self.sock)


class _RawReader:
    def __init__(self, sock: socket.socket):
        self.sock, self.buffer = sock, b""

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def message(self, timeout: float) -> dict:
        self.sock.settimeout(timeout)
        while True:
            head = self._read(2)
            length = head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(self._read(2), "big")
            elif length == 127:
                length = int.from_bytes(self._read(8), "big")
            payload = self._read(length)
            message = json.loads(payload) if head[0] & 0x0F == 1 else {}  # text; pings are skipped
            if message.get("type") in ("next", "error", "complete"):
                return message

    def close(self) -> None:
        self.sock.close()


def _settle(sub: Subscriber) -> None:
    # the subscription is registered with the feed once its (empty) replay is done; a short quiet wait covers it
    sub.nothing_for(0.3)


def test_a_write_in_another_process_is_pushed_by_notify(graph_engine, empty_db_url, db_kind):
    if db_kind != "postgresql":
        pytest.skip("cross-process push is PostgreSQL's NOTIFY; SQLite pushes within the server's process")
    with server_process(empty_db_url) as uri:
        sub = Subscriber(uri)
        _settle(sub)
        writer = subprocess.Popen(  # another process, started before timing (Python's start-up is not the push)
            [sys.executable, "-c", "import sys; sys.path[:0] = ['tests/schema', 'tests/support']; "
             "from test_events_push import write_changes; print('ready', flush=True); sys.stdin.readline(); "
             f"write_changes({empty_db_url!r}, 1)"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        started = time.monotonic()
        writer.stdin.write("go\n")
        writer.stdin.flush()
        [event] = sub.events(1, timeout=PUSHED)
        waited = time.monotonic() - started
        assert writer.wait(timeout=30) == 0
        sub.close()
    assert event["newValue"] == "lost" and event["cause"]["recordExternalId"] == "O-push"
    assert event["ruleText"] == "status lost if no order 90d" and event["ruleLine"] == 3
    assert waited < PUSHED  # the safety poll would take 30 s


def test_a_write_in_the_server_process_is_pushed(graph_engine, empty_db_url):
    with server_in_process(empty_db_url, graph_engine) as uri:
        sub = Subscriber(uri)
        _settle(sub)
        started = time.monotonic()
        write_changes(empty_db_url, 3)
        events = sub.events(3, timeout=PUSHED)
        waited = time.monotonic() - started
        sub.close()
    assert waited < PUSHED
    assert len({e["cursor"] for e in events}) == 3
    assert events[0]["effectiveOn"] == "2024-06-01" and events[0]["exact"] is True
    assert events[0]["cause"] == {"kind": "NEW_DATA", "recordKind": "order", "recordExternalId": "O-push",
                                  "ruleSetVersion": None}
    assert events[0]["metrics"] == {"days_since_order": 91}


def test_live_filters(graph_engine, empty_db_url):
    with graph_engine.connect() as conn:
        first = conn.execute(sa.select(Customer.__table__.c.external_id).order_by(Customer.__table__.c.id)).scalar()
    with server_in_process(empty_db_url, graph_engine) as uri:
        lost = Subscriber(uri, {"newValues": ["lost"]})
        tiers = Subscriber(uri, {"kinds": ["tier"]})
        one = Subscriber(uri, {"customer": first})
        june = Subscriber(uri, {"effectiveFrom": "2024-06-01", "effectiveTo": "2024-06-30"})
        for sub in (lost, tiers, one, june):
            _settle(sub)
        write_changes(empty_db_url, 45, new_value="active")                     # one per customer
        write_changes(empty_db_url, 2, new_value="lost", effective_on="2024-05-31")
        write_changes(empty_db_url, 1, kind="tier", new_value="key")
        got_lost = lost.events(2, timeout=PUSHED)
        got_tier = tiers.events(1, timeout=PUSHED)
        got_one = one.events(3, timeout=PUSHED)  # the first customer's change in each write
        got_june = june.events(46, timeout=PUSHED)
        for sub in (lost, tiers, one, june):
            sub.nothing_for(0.3)
            sub.close()
    assert [e["newValue"] for e in got_lost] == ["lost", "lost"]
    assert [(e["kind"], e["newValue"]) for e in got_tier] == [("tier", "key")]
    assert {e["customerExternalId"] for e in got_one} == {first}
    assert {e["effectiveOn"] for e in got_june} == {"2024-06-01"}


def test_a_slow_subscriber_is_closed_and_the_fast_one_keeps_receiving(graph_engine, empty_db_url):
    with server_in_process(empty_db_url, graph_engine, subscriber_queue=1500) as uri:
        feed = running_feed(graph_engine)
        fast = Subscriber(uri)
        _settle(fast)
        received: list[dict] = []

        def read_fast():
            with contextlib.suppress(Exception):
                while True:
                    received.extend(fast.events(1, timeout=120))

        reader = threading.Thread(target=read_fast, daemon=True)
        reader.start()
        slow = StalledSubscriber(uri)  # subscribes, then reads nothing until the end
        deadline = time.monotonic() + 10
        while feed.subscriber_count < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        total = 0
        while feed.subscriber_count == 2:  # write until the socket buffers are full and its queue overflows
            assert total < 40_000, "the subscriber that reads nothing was never closed"
            write_changes(empty_db_url, 100)
            total += 100
            time.sleep(0.1)  # a write rate the fast subscriber keeps up with on a busy machine
        deadline = time.monotonic() + 60
        while len(received) < total and time.monotonic() < deadline:  # never held up by the one that does not read
            time.sleep(0.05)
        assert feed.subscriber_count == 1
        cursors = [e["cursor"] for e in received]
        assert len(set(cursors)) == total
        # the slow one reads at last: what was already sent, then the reason and where to resume
        seen, closing = [], None
        slow = slow.start_reading()
        while closing is None:
            message = slow.message(10)
            if "errors" in message.get("payload", {}):
                closing = message
            else:
                seen.append(message["payload"]["data"]["tierChanges"]["cursor"])
        error = closing["payload"]["errors"][0]
        assert error["extensions"]["code"] == "SLOW_CONSUMER", error
        assert slow.message(10)["type"] == "complete"
        assert 0 < len(seen) < total and seen == cursors[:len(seen)]
        assert error["extensions"]["lastCursor"] == seen[-1]
        # resuming from lastCursor replays the rest from the log: nothing lost, nothing twice
        resumed = Subscriber(uri, {"after": error["extensions"]["lastCursor"]})
        rest = resumed.events(total - len(seen), timeout=60)
        assert seen + [e["cursor"] for e in rest] == cursors
        for sub in (fast, slow, resumed):
            sub.close()


def test_replay_then_live_has_no_gap_and_no_duplicate(graph_engine, empty_db_url):
    """Subscribers that join with a cursor while a writer keeps committing switch from the log to the feed
    exactly once: every later change, in order, none twice."""
    write_changes(empty_db_url, 300)
    with graph_engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.select(TierChange.__table__.c.id).order_by(TierChange.__table__.c.id))]
    start = ids[9]
    with server_in_process(empty_db_url, graph_engine) as uri:
        writer = threading.Thread(target=write_changes, args=(empty_db_url, 600),
                                  kwargs={"per_commit": 20, "pause": 0.02})
        writer.start()
        subs = []
        for _ in range(3):  # joining at different points of the writer's run
            subs.append(Subscriber(uri, {"after": encode_cursor("tier_changes", [start])}))
            time.sleep(0.15)
        writer.join()
        with graph_engine.connect() as conn:
            later = [r[0] for r in conn.execute(sa.select(TierChange.__table__.c.id)
                                                .where(TierChange.__table__.c.id > start)
                                                .order_by(TierChange.__table__.c.id))]
        assert len(later) == 300 - 10 + 600
        want = [encode_cursor("tier_changes", [i]) for i in later]
        for sub in subs:
            assert [e["cursor"] for e in sub.events(len(want), timeout=30)] == want
            sub.nothing_for(0.3)
            sub.close()


def test_an_order_recorded_through_the_api_is_pushed_with_its_cause(graph_engine, empty_db_url):
    """The API's own write (recordOrder, made in the server's process) reaches a subscriber on another connection
    at once, on both databases: the lost customer is active, cause NEW_DATA with the order's id and the rule."""
    import httpx

    from domain.data_date import data_today
    from domain.rulesets import publish
    from domain.settings import DEFAULT_RULES

    publish(graph_engine, DEFAULT_RULES.read_text())
    today = data_today(graph_engine)
    with graph_engine.connect() as conn:
        lost = conn.execute(sa.text(
            "SELECT c.external_id FROM customer_evaluations e JOIN customers c ON c.id = e.customer_id "
            "WHERE e.status = 'lost' AND c.blocked_from IS NULL ORDER BY c.id")).scalar()
    assert lost is not None
    with server_process(empty_db_url, TIERGRAPH_ADMIN_TOKEN="push-admin") as uri:
        sub = Subscriber(uri, {"customer": lost, "kinds": ["status"]})
        _settle(sub)
        order = {"externalId": "O-live-1", "customerExternalId": lost, "orderedAt": today.isoformat(),
                 "lines": [{"sku": "A", "quantity": 1, "unitPrice": 30}]}
        started = time.monotonic()
        body = httpx.post(uri.replace("ws://", "http://"), headers={"Authorization": "Bearer push-admin"}, json={
            "query": "mutation($o: OrderInput!) { recordOrder(input: $o) { changed customer { status { name } } } }",
            "variables": {"o": order}}, timeout=30).json()
        [event] = sub.events(1, timeout=PUSHED)
        waited = time.monotonic() - started
        sub.nothing_for(0.3)
        sub.close()
    assert "errors" not in body, body
    assert body["data"]["recordOrder"]["customer"]["status"]["name"] == "active"
    assert waited < PUSHED  # the safety poll would take 30 s
    assert (event["kind"], event["oldValue"], event["newValue"]) == ("status", "lost", "active")
    assert event["cause"] == {"kind": "NEW_DATA", "recordKind": "order", "recordExternalId": "O-live-1",
                              "ruleSetVersion": None}
    assert event["ruleLine"] is not None and event["ruleText"].startswith("status active")
    assert event["effectiveOn"] == today.isoformat()
