"""Push, not poll: writers announce new change rows, and one shared reader per process fans them out.

After a commit that appended tier_changes rows, a writer calls `changes_committed(engine)`. On PostgreSQL that sends
`NOTIFY tiergraph_changes, '<last change id>'` (the cursor only: readers fetch the rows themselves); in every case it
also wakes the feeds of this process on the same database (the in-process signal: SQLite's only push path, and a
shortcut on PostgreSQL).

A `ChangeFeed` (one per server process) reads each new row once (domain.events.changes_after) and hands it to every
subscriber through a bounded queue. A subscriber whose queue is full cannot keep up: it is dropped from the feed at
once (the others never wait for it) and learns so with its last delivered cursor, to resume from the log. A slow
safety poll (TIERGRAPH_EVENT_POLL_SECONDS) covers a lost notification, a restarted listener and, on SQLite, writes
made by other processes.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from domain.change_filter import ChangeFilter
from domain.events import ChangeEvent, changes_after, last_change_id

log = logging.getLogger("tiergraph.notify")

CHANNEL = "tiergraph_changes"
READ_BATCH = 1000
QUEUE_SIZE = 10_000  # events a subscriber may be behind before it is closed as too slow
STOP_SECONDS = 5.0
LISTEN_RETRY_SECONDS = 1.0

_feeds: dict[str, weakref.WeakSet] = {}  # database URL -> the running feeds of this process on it
_feeds_lock = threading.Lock()


def _key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def changes_committed(engine: Engine, last_id: Optional[int] = None) -> None:
    """Announce change rows just committed. Cheap, and never raises: a lost signal only delays delivery until the
    next safety poll, so a failure is logged and the writer's work stands."""
    try:
        with _feeds_lock:
            local = list(_feeds.get(_key(engine), ()))
        for feed in local:
            feed.wake_threadsafe()
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                if last_id is None:
                    conn.execute(sa.text("SELECT pg_notify(:channel, (SELECT coalesce(max(id), 0) FROM tier_changes)"
                                         "::text)"), {"channel": CHANNEL})
                else:
                    conn.execute(sa.text("SELECT pg_notify(:channel, :payload)"),
                                 {"channel": CHANNEL, "payload": str(int(last_id))})
                conn.commit()
    except Exception:  # noqa: BLE001 - the write is committed; subscribers catch up at the next safety poll
        log.exception("could not announce committed changes; subscribers catch up at the next poll")


def running_feed(engine: Engine) -> Optional["ChangeFeed"]:
    """This process's running feed on the engine's database, if the server started one."""
    with _feeds_lock:
        feeds = list(_feeds.get(_key(engine), ()))
    return feeds[0] if feeds else None


class SlowConsumer(Exception):
    """This subscriber fell more than its queue behind the feed and was dropped from it."""


@dataclass(eq=False)
class Subscription:
    """One subscriber's bounded queue on the feed. `overflowed` is set (and the queue no longer fed) once it fills."""

    where: Optional[ChangeFilter]
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: ChangeEvent) -> bool:
        """Called by the feed; False when the queue is full (the feed then drops this subscriber)."""
        if self.where is not None and not self.where.matches(event):
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
        self._wake.set()
        return not self.overflowed

    async def next(self) -> ChangeEvent:
        """The next event; raises SlowConsumer once the feed dropped this subscriber."""
        while True:
            if self.overflowed:
                raise SlowConsumer()
            if not self.queue.empty():
                return self.queue.get_nowait()
            self._wake.clear()
            await self._wake.wait()


class ChangeFeed:
    """The one reader of the change log in this process."""

    def __init__(self, engine: Engine, *, poll_seconds: float = 1.0, queue_size: int = QUEUE_SIZE):
        if queue_size < 1:
            raise ValueError(f"TIERGRAPH_SUBSCRIBER_QUEUE must be 1 or more, got {queue_size}")
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.queue_size = queue_size
        self.position = 0  # the last change id read from the log and handed out
        self.reads = 0  # how many times new rows were read or announced
        self._subscribers: set[Subscription] = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake: Optional[asyncio.Event] = None
        self._changed: Optional[asyncio.Event] = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake, self._changed = asyncio.Event(), asyncio.Event()
        self.position = await run_in_threadpool(last_change_id, self.engine)
        with _feeds_lock:
            _feeds.setdefault(_key(self.engine), weakref.WeakSet()).add(self)
        self._tasks.append(asyncio.create_task(self._read_forever(), name="tiergraph-change-feed"))
        if self.engine.dialect.name == "postgresql":
            self._tasks.append(asyncio.create_task(self._listen_forever(), name="tiergraph-change-listener"))

    async def stop(self) -> None:
        with _feeds_lock:
            _feeds.get(_key(self.engine), weakref.WeakSet()).discard(self)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # bounded: a task stuck in a database call (a read in a worker thread, a LISTEN connection closing) must
            # not hold the server's shutdown; the process is ending and takes them with it
            _done, stuck = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            for task in stuck:
                log.warning("change feed task %s did not stop within %ss", task.get_name(), STOP_SECONDS)
        self._tasks.clear()

    def subscribe(self, where: Optional[ChangeFilter] = None, replayed_through: int = 0) -> Subscription:
        """A queue that receives every change read after this call (and matching `where`). `replayed_through`: the
        last id the subscriber has read from the log itself; an idle feed (which reads nothing) starts there."""
        if not self._subscribers:
            self.position = max(self.position, replayed_through)
        sub = Subscription(where, asyncio.Queue(self.queue_size))
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def wake_threadsafe(self) -> None:
        """Look for new rows now (callable from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def wait_for_changes(self, timeout: float, since: Optional[int] = None) -> int:
        """Returns `reads` once the feed has read new rows after the `reads` value `since` (at once if it already
        has), or after `timeout`. What the webhook sender sleeps on between rounds."""
        changed = self._changed
        if since is None or since == self.reads:
            if changed is None:
                await asyncio.sleep(timeout)
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout)
        return self.reads

    async def _read_forever(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            # read the flag, not the wait's outcome: a signal landing as the poll timed out must not be cleared unseen
            woken = self._wake.is_set()
            self._wake.clear()
            if not self._subscribers:
                # nobody to hand rows to: no query (a subscriber replays the log itself, see subscribe); a writer's
                # signal still wakes the webhook sender, whose own timeout covers the safety poll
                if woken:
                    self._note_change()
                continue
            try:
                await self.read_new()
            except Exception:  # noqa: BLE001 - a failed read (database restarting) is retried at the next wake
                log.exception("reading new tier changes failed; retrying")

    async def read_new(self) -> int:
        """Reads every row after `position` and fans it out; returns how many were read."""
        total = 0
        while True:
            events = await run_in_threadpool(changes_after, self.engine, self.position, limit=READ_BATCH)
            for event in events:
                self._fan_out(event)
            if events:
                self.position = max(self.position, events[-1].id)
                total += len(events)
            if len(events) < READ_BATCH:
                break
        if total:
            self._note_change()
        return total

    def _note_change(self) -> None:
        self.reads += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _fan_out(self, event: ChangeEvent) -> None:
        for sub in list(self._subscribers):
            if not sub.offer(event):
                self._subscribers.discard(sub)  # it learns why from Subscription.next; the others never wait
                log.warning("a subscriber fell %d events behind and was closed", self.queue_size)

    async def _listen_forever(self) -> None:
        """PostgreSQL: a dedicated async connection LISTENs; each notification wakes the reader."""
        import psycopg

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    assert self._wake is not None
                    self._wake.set()  # catch up on anything committed while not listening
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the safety poll delivers meanwhile
                log.warning("listening for tier changes failed; retrying in %ss", LISTEN_RETRY_SECONDS,
                            exc_info=True)
            await asyncio.sleep(LISTEN_RETRY_SECONDS)
