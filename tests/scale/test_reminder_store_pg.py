"""The reminder store on real PostgreSQL: batch claims with SKIP LOCKED, leases, concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from actions.services.reminder_store import (
    CLAIMED,
    DELIVERED,
    PENDING,
    ReminderStore,
    ReminderStoreError,
)
from tests.scale.engines import Postgres
from tests.servers import free_port

pytestmark = pytest.mark.scale

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(pg: Postgres) -> ReminderStore:
    """A store on the session's PostgreSQL, emptied first."""
    s = ReminderStore(pg.url)
    s.check()
    pg.query("DELETE FROM reminders WHERE created_at = %s", T0.replace(tzinfo=None))
    return s


def _add(store: ReminderStore, n: int, due: datetime = T0) -> list[str]:
    return [store.add(f"pg-{i % 7}", f"task {i}", due, "UTC", T0).id for i in range(n)]


def test_claim_due_takes_at_most_the_batch_size(store: ReminderStore) -> None:
    ids = _add(store, 20)
    first = store.claim_due(T0 + timedelta(seconds=1), limit=3, lease_seconds=30)
    assert len(first) == 3 and all(r.state == CLAIMED for r in first)
    assert {r.id for r in first} <= set(ids)
    assert all(store.get(r.id).state == CLAIMED for r in first)  # type: ignore[union-attr]
    rest = store.claim_due(T0 + timedelta(seconds=1), limit=100, lease_seconds=30)
    assert len(rest) == 17 and not {r.id for r in rest} & {r.id for r in first}
    assert store.claim_due(T0 + timedelta(seconds=2), limit=100) == []


def test_not_yet_due_and_finished_reminders_are_not_claimed(store: ReminderStore) -> None:
    later = _add(store, 2, due=T0 + timedelta(hours=1))
    done = _add(store, 1)[0]
    assert store.claim(done, T0) and store.mark_delivered(done, T0)
    assert store.claim_due(T0 + timedelta(minutes=5), limit=10) == []
    assert {r.id for r in store.claim_due(T0 + timedelta(hours=2), limit=10)} == set(later)


def test_lapsed_lease_is_claimed_again_and_delivered_once(store: ReminderStore) -> None:
    (rid,) = _add(store, 1)
    assert [r.id for r in store.claim_due(T0, limit=5, lease_seconds=10)] == [rid]
    assert store.claim_due(T0 + timedelta(seconds=5), limit=5) == []  # lease held
    again = store.claim_due(T0 + timedelta(seconds=11), limit=5, lease_seconds=10)
    assert [r.id for r in again] == [rid]  # its claimer died: another server takes it
    assert store.mark_delivered(rid, T0 + timedelta(seconds=12))
    assert not store.mark_delivered(rid, T0 + timedelta(seconds=13))
    assert store.get(rid).state == DELIVERED  # type: ignore[union-attr]


def test_concurrent_claimers_share_the_work_without_overlap(pg: Postgres) -> None:
    seed = ReminderStore(pg.url)
    seed.check()
    ids = set(_add(seed, 60))
    stores = [ReminderStore(pg.url) for _ in range(4)]
    taken: list[list[str]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def claimer(i: int) -> None:
        barrier.wait()
        while batch := stores[i].claim_due(T0 + timedelta(seconds=1), limit=2, lease_seconds=60):
            taken[i].extend(r.id for r in batch)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(len(stores))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    every = [rid for part in taken for rid in part if rid in ids]
    assert len(every) == len(set(every)) == len(ids)  # each claimed exactly once


def test_release_makes_it_pending_for_a_later_retry(store: ReminderStore) -> None:
    (rid,) = _add(store, 1)
    assert store.claim_due(T0, limit=1)
    assert store.release(rid, T0 + timedelta(seconds=30))
    assert store.get(rid).state == PENDING  # type: ignore[union-attr]
    assert store.claim_due(T0 + timedelta(seconds=10), limit=1) == []
    assert [r.id for r in store.claim_due(T0 + timedelta(seconds=31), limit=1)] == [rid]


def test_unreachable_database_names_the_setting_without_the_password() -> None:
    store = ReminderStore(f"postgresql://rasa:s3cret@127.0.0.1:{free_port()}/rasa")
    with pytest.raises(ReminderStoreError) as err:
        store.check()
    message = str(err.value)
    assert "REMINDER_DB_URL=postgresql://rasa:***@127.0.0.1" in message
    assert "s3cret" not in message
