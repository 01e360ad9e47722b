"""The durable reminder store on real SQLite: lifecycle, atomic claims, concurrency, errors."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from actions.services.reminder_store import (
    CANCELLED,
    CLAIMED,
    DELIVERED,
    MISSED,
    PENDING,
    ReminderStore,
    ReminderStoreError,
)

UTC = timezone.utc
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def add(store: ReminderStore, text: str, minutes: float, sender: str = "user-1", **kw):  # type: ignore[no-untyped-def]
    return store.add(sender, text, T0 + timedelta(minutes=minutes), "Europe/Berlin", T0, **kw)


def test_creates_its_directory_and_table(tmp_path: Path) -> None:
    store = ReminderStore(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'r.db'}")
    store.check()
    assert (tmp_path / "deep" / "dir" / "r.db").exists()


def test_add_list_cancel(store: ReminderStore) -> None:
    b = add(store, "stretch", 20)
    a = add(store, "call mom", 10)
    add(store, "someone else's", 5, sender="user-2")
    assert a.state == PENDING and a.due_at == T0 + timedelta(minutes=10)
    assert a.due_at.tzinfo is not None
    assert [r.text for r in store.list_open("user-1")] == ["call mom", "stretch"]
    # Another user cannot cancel them.
    assert store.cancel([a.id], "user-2") == 0
    assert store.cancel([a.id], "user-1") == 1
    assert store.cancel([a.id], "user-1") == 0
    assert store.get(a.id).state == CANCELLED  # type: ignore[union-attr]
    assert [r.id for r in store.list_open("user-1")] == [b.id]


def test_caller_number_finds_reminders_from_another_call(store: ReminderStore) -> None:
    add(store, "water plants", 10, sender="call-1", caller_number="+4930123")
    assert [r.text for r in store.list_open("call-2", caller_number="+4930123")] == ["water plants"]
    assert store.list_open("call-2") == []


def test_due_and_claim_lifecycle(store: ReminderStore) -> None:
    r = add(store, "stretch", 1)
    assert store.due(T0) == []
    now = T0 + timedelta(minutes=2)
    assert [x.id for x in store.due(now)] == [r.id]
    assert store.claim(r.id, now, lease_seconds=30)
    assert store.get(r.id).state == CLAIMED  # type: ignore[union-attr]
    assert not store.claim(r.id, now)  # held
    assert store.due(now) == []
    # A lapsed lease can be claimed again (the claimer crashed).
    later = now + timedelta(seconds=31)
    assert [x.id for x in store.due(later)] == [r.id]
    assert store.claim(r.id, later)
    assert store.mark_delivered(r.id, later)
    assert not store.mark_delivered(r.id, later)  # exactly once
    assert store.get(r.id).state == DELIVERED  # type: ignore[union-attr]
    assert not store.claim(r.id, later + timedelta(hours=1))


def test_release_backs_off(store: ReminderStore) -> None:
    r = add(store, "stretch", 0)
    assert store.claim(r.id, T0)
    assert store.release(r.id, retry_at=T0 + timedelta(seconds=10))
    again = store.get(r.id)
    assert again is not None and again.state == PENDING and again.attempts == 1
    assert store.due(T0 + timedelta(seconds=5)) == []
    assert [x.id for x in store.due(T0 + timedelta(seconds=10))] == [r.id]


def test_missed_are_taken_once(store: ReminderStore) -> None:
    r = add(store, "stretch", 0)
    assert store.mark_missed(r.id, T0)
    assert store.list_open("user-1") == []
    taken = store.take_missed("user-1", T0)
    assert [x.id for x in taken] == [r.id] and taken[0].state == MISSED
    assert store.take_missed("user-1", T0) == []
    assert store.get(r.id).state == DELIVERED  # type: ignore[union-attr]


def test_two_stores_on_one_file_claim_atomically(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = ReminderStore(url), ReminderStore(url)
    reminders = [add(first, f"r{i}", 0) for i in range(20)]
    wins: dict[str, list[str]] = {"first": [], "second": []}
    barrier = threading.Barrier(2)

    def claimer(name: str, store: ReminderStore) -> None:
        barrier.wait()
        for r in reminders:
            if store.claim(r.id, T0):
                wins[name].append(r.id)

    threads = [
        threading.Thread(target=claimer, args=("first", first)),
        threading.Thread(target=claimer, args=("second", second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every reminder claimed exactly once in total.
    assert sorted(wins["first"] + wins["second"]) == sorted(r.id for r in reminders)
    assert not set(wins["first"]) & set(wins["second"])


def test_one_reminder_two_claimers_one_wins(store: ReminderStore) -> None:
    r = add(store, "stretch", 0)
    results = [store.claim(r.id, T0), store.claim(r.id, T0)]
    assert results == [True, False]


async def test_two_sessions_setting_reminders_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    stores = [ReminderStore(url), ReminderStore(url)]

    async def session(i: int) -> None:
        for n in range(15):
            await asyncio.to_thread(
                stores[i].add, f"user-{i}", f"task {n}", T0 + timedelta(minutes=n + 1), "UTC", T0
            )

    await asyncio.gather(session(0), session(1))
    assert len(stores[0].list_open("user-0")) == 15
    assert len(stores[1].list_open("user-1")) == 15


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory_raises_store_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        store = ReminderStore(f"sqlite:///{locked / 'sub' / 'r.db'}")
        with pytest.raises(ReminderStoreError):
            store.check()
    finally:
        locked.chmod(0o700)


def test_unusable_path_raises_store_error(tmp_path: Path) -> None:
    # A regular file where a directory should be: fails even for root.
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = ReminderStore(f"sqlite:///{blocker / 'r.db'}")
    with pytest.raises(ReminderStoreError):
        store.check()
    with pytest.raises(ReminderStoreError):
        add(store, "stretch", 1)
