"""domain/notify.py: announcing committed changes is cheap and never fails a write; the feed's fan-out drops only
the subscriber whose queue is full."""
from __future__ import annotations

import asyncio
import logging
from datetime import date

import pytest

from domain.db import make_engine
from domain.events import ChangeEvent
from domain.notify import ChangeFeed, SlowConsumer, changes_committed


def test_announcing_to_an_unreachable_database_logs_and_returns(caplog):
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    with caplog.at_level(logging.ERROR, logger="tiergraph.notify"):
        changes_committed(engine)  # the write before it stands: nothing is raised
    assert "could not announce" in caplog.text


def _event(i: int) -> ChangeEvent:
    return ChangeEvent(i, 1, "C001", "Customer 1", "status", "active", "lost", date(2024, 6, 30), None)


def test_a_full_queue_drops_only_that_subscriber(engine):
    async def scenario():
        feed = ChangeFeed(engine, poll_seconds=30, queue_size=3)
        slow, fast = feed.subscribe(), feed.subscribe()
        for i in range(1, 6):
            feed._fan_out(_event(i))
            if i <= 4:
                assert (await fast.next()).id == i  # the fast one takes each event as it comes
        assert feed.subscriber_count == 1 and slow.overflowed and not fast.overflowed
        with pytest.raises(SlowConsumer):
            await slow.next()  # its queued events are dropped with it: it resumes from the log
        assert (await fast.next()).id == 5

    asyncio.run(scenario())


def test_the_queue_must_hold_at_least_one_event(engine):
    with pytest.raises(ValueError, match="TIERGRAPH_SUBSCRIBER_QUEUE"):
        ChangeFeed(engine, queue_size=0)


def test_an_idle_feed_asks_the_database_nothing(engine):
    """With no subscriber the safety poll costs no query (the webhook sender still wakes on a writer's signal);
    a subscriber's own replay tells the feed where to start."""
    import sqlalchemy as sa

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    async def scenario():
        feed = ChangeFeed(engine, poll_seconds=0.02)
        await feed.start()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            reads = feed.reads
            await asyncio.sleep(0.2)  # ten safety polls
            assert statements == []
            changes_committed(engine)  # a writer's signal: no rows read, but the webhook sender is woken
            assert await feed.wait_for_changes(2, since=reads) == reads + 1
            sub = feed.subscribe(replayed_through=41)
            assert feed.position == 41
            await asyncio.sleep(0.1)
            assert any("tier_changes" in s for s in statements)  # with a subscriber the poll reads the log
            feed.unsubscribe(sub)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
            await feed.stop()

    asyncio.run(scenario())
