"""Shared ledger transactions of a worker's threads, on SQLite and the real PostgreSQL."""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ledger.db import make_engine, session_factory, transaction
from workers.commit_group import BatchFailed, CommitGroup
from workers.ledger_writes import LedgerWriter


@pytest.fixture
def sessions(ledger_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(ledger_url, pool_size=4, create=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE marks (name VARCHAR(40) PRIMARY KEY)"))
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def group(sessions: sessionmaker[Session]) -> Iterator[CommitGroup]:
    group = CommitGroup(sessions, max_batch=64)
    yield group
    group.close()


def mark(name: str) -> Callable[[Session], str]:
    def write(session: Session) -> str:
        session.execute(text("INSERT INTO marks (name) VALUES (:name)"), {"name": name})
        return name

    return write


def marks(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(text("SELECT name FROM marks ORDER BY name")))


def held_open(group: CommitGroup, pool: ThreadPoolExecutor) -> tuple[threading.Event, Future[str]]:
    """Start a batch whose write waits for the returned event, so that the writes handed
    over meanwhile form the next batch together."""
    gate, started = threading.Event(), threading.Event()

    def slow(session: Session) -> str:
        started.set()
        gate.wait(10)
        return mark("0-first")(session)

    first = pool.submit(group.run, slow)
    assert started.wait(10)
    return gate, first


def wait_queued(group: CommitGroup, count: int) -> None:
    for _ in range(1000):
        if group._queue.qsize() >= count:
            return
        threading.Event().wait(0.005)
    raise AssertionError(f"{count} writes never queued")


def test_waiting_writes_share_transaction(
    group: CommitGroup, sessions: sessionmaker[Session]
) -> None:
    with ThreadPoolExecutor(8) as pool:
        gate, first = held_open(group, pool)
        rest = [pool.submit(group.run, mark(f"job-{i}")) for i in range(6)]
        wait_queued(group, 6)
        gate.set()
        assert first.result(10) == "0-first"
        assert sorted(f.result(10) for f in rest) == [f"job-{i}" for i in range(6)]
    assert (group.batches, group.writes) == (2, 7)
    assert marks(sessions) == ["0-first"] + [f"job-{i}" for i in range(6)]


def test_failed_write_rolls_back_batch(group: CommitGroup, sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        mark("taken")(session)
    with ThreadPoolExecutor(8) as pool:
        gate, first = held_open(group, pool)
        good = pool.submit(group.run, mark("good"))
        duplicate = pool.submit(group.run, mark("taken"))
        wait_queued(group, 2)
        gate.set()
        assert first.result(10) == "0-first"
        with pytest.raises(BatchFailed):
            good.result(10)
        with pytest.raises(BatchFailed):
            duplicate.result(10)
    # The first batch committed; the second left nothing behind.
    assert marks(sessions) == ["0-first", "taken"]


def test_lone_write_raises_own_error(group: CommitGroup, sessions: sessionmaker[Session]) -> None:
    group.run(mark("once"))
    with pytest.raises(IntegrityError):
        group.run(mark("once"))
    assert marks(sessions) == ["once"]


def test_rolled_back_write_reruns_alone(
    group: CommitGroup, sessions: sessionmaker[Session]
) -> None:
    writer = LedgerWriter(sessions, group, give_up_after_s=5)
    with transaction(sessions) as session:
        mark("taken")(session)
    with ThreadPoolExecutor(8) as pool:
        gate, _ = held_open(group, pool)
        good = pool.submit(writer.write, "job-good", mark("good"))
        duplicate = pool.submit(writer.write, "job-duplicate", mark("taken"))
        wait_queued(group, 2)
        gate.set()
        assert good.result(10) == "good"
        with pytest.raises(IntegrityError):
            duplicate.result(10)
    assert marks(sessions) == ["0-first", "good", "taken"]


def test_close_commits_pending_writes(sessions: sessionmaker[Session]) -> None:
    group = CommitGroup(sessions, max_batch=4)
    with ThreadPoolExecutor(20) as pool:
        done = list(pool.map(group.run, [mark(f"m-{i:02}") for i in range(20)]))
    group.close()
    assert sorted(done) == [f"m-{i:02}" for i in range(20)]
    assert marks(sessions) == sorted(done)
    assert group.writes == 20
    assert group.batches >= 5
