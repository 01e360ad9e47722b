"""The atomic Redis lock store against a real redis-server on loopback."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator

import pytest
import redis as redis_lib
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

from channels.lock_store import AtomicRedisLockStore
from tests.scale.engines import Redis

_ids = itertools.count()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    server = Redis()
    server.start()
    yield server
    server.close()


def store(server: Redis) -> AtomicRedisLockStore:
    return AtomicRedisLockStore(host="127.0.0.1", port=server.port, db=0, key_prefix="voice")


def conversation() -> str:
    return f"caller-{next(_ids)}"


def test_built_from_endpoints_like_rasa_builds_it(redis_server: Redis) -> None:
    cfg = EndpointConfig(
        url="127.0.0.1",
        type="channels.lock_store.AtomicRedisLockStore",
        port=str(redis_server.port),
        db="0",
        key_prefix="voice",
    )
    made = LockStore.create(cfg)
    assert isinstance(made, AtomicRedisLockStore)
    assert made.key_prefix == "voice:lock:"
    assert made.red.ping()


def test_a_worker_changing_the_lock_mid_change_retries_instead_of_losing_it(
    redis_server: Redis,
) -> None:
    # Worker B takes a ticket between A's read and A's write: A's transaction must run again
    # on B's lock. Rasa's own store wrote A's stale copy back and both held ticket 0.
    a, b = store(redis_server), store(redis_server)
    cid = conversation()
    sneaked: list[int] = []
    runs = 0

    def take(lock: TicketLock) -> int:
        nonlocal runs
        runs += 1
        if not sneaked:
            sneaked.append(b.issue_ticket(cid))
        return lock.issue_ticket(60)

    mine = a._change(cid, take, create=True)
    assert runs == 2
    assert sneaked == [0] and mine == 1
    held = a.get_lock(cid)
    assert held is not None and [t.number for t in held.tickets] == [0, 1]


def test_a_missing_lock_is_not_recreated_and_the_last_ticket_out_deletes_it(
    redis_server: Redis,
) -> None:
    s = store(redis_server)
    cid = conversation()
    first, second = s.issue_ticket(cid), s.issue_ticket(cid)
    s.cleanup(cid, first)
    assert s.get_lock(cid) is not None  # someone still holds a ticket
    s.cleanup(cid, second)
    assert s.get_lock(cid) is None
    s.update_lock(cid)  # nothing to update: no lock is created
    s.finish_serving(cid, 1)
    assert s.get_lock(cid) is None


def test_two_workers_taking_tickets_at_once_never_share_one(redis_server: Redis) -> None:
    cid = conversation()
    workers = [store(redis_server) for _ in range(2)]
    tickets: list[int] = []
    guard = threading.Lock()

    def take(s: AtomicRedisLockStore) -> None:
        mine = [s.issue_ticket(cid) for _ in range(60)]
        with guard:
            tickets.extend(mine)

    threads = [threading.Thread(target=take, args=(workers[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(tickets) == list(range(360))
    held = workers[0].get_lock(cid)
    assert held is not None and len(held.tickets) == 360


def test_turns_of_one_conversation_on_two_workers_never_overlap(redis_server: Redis) -> None:
    # Two workers (threads, each with its own event loop and connection), ten turns each, all
    # at once: one turn at a time holds the conversation, every turn runs, the lock is removed.
    cid = conversation()
    inside = 0
    most = 0
    ran = 0
    guard = threading.Lock()

    async def turn(s: AtomicRedisLockStore) -> None:
        nonlocal inside, most, ran
        async with s.lock(cid):
            with guard:
                inside += 1
                most = max(most, inside)
            await asyncio.sleep(0.005)
            with guard:
                inside -= 1
                ran += 1

    def worker() -> None:
        s = store(redis_server)

        async def all_turns() -> None:
            await asyncio.gather(*(turn(s) for _ in range(10)))

        asyncio.run(all_turns())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert ran == 20
    assert most == 1
    client = redis_lib.Redis(host="127.0.0.1", port=redis_server.port)
    assert client.exists(f"voice:lock:{cid}") == 0
