"""The dispatcher against a loopback server speaking Rasa's trigger_intent API."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import datetime, timedelta, timezone

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from actions.services.reminder_dispatcher import (
    DeliveryResult,
    RasaTriggerDelivery,
    ReminderDelivery,
    ReminderDispatcher,
)
from actions.services.reminder_store import (
    CLAIMED,
    DELIVERED,
    MISSED,
    PENDING,
    ReminderStore,
)
from tests.actions.conftest import MovableClock

UTC = timezone.utc
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rasa_handler(store: ReminderStore, calls: list[dict], clock: MovableClock):  # type: ignore[no-untyped-def]
    """Rasa's trigger_intent: runs action_deliver_reminder (marks it) and answers the tracker."""

    def handle(request: Request) -> Response:
        body = json.loads(request.data)
        calls.append({"path": request.path, "args": dict(request.args), "body": body})
        store.mark_delivered(body["entities"]["reminder_id"], clock())
        tracker = {"sender_id": request.path.split("/")[2], "events": [], "slots": {}}
        return Response(
            json.dumps({"tracker": tracker, "messages": []}),
            status=200,
            content_type="application/json",
        )

    return handle


async def test_due_reminder_is_triggered_in_rasa(
    store: ReminderStore, httpserver: HTTPServer
) -> None:
    clock = MovableClock(T0)
    r = store.add("user 1", "stretch", T0 + timedelta(seconds=30), "UTC", T0)
    calls: list[dict] = []
    httpserver.expect_request(
        "/conversations/user 1/trigger_intent", method="POST"
    ).respond_with_handler(rasa_handler(store, calls, clock))
    delivery = RasaTriggerDelivery(rasa_url=httpserver.url_for("/"), token="secret")
    dispatcher = ReminderDispatcher(store, delivery, clock=clock, poll_seconds=0.05)
    try:
        assert await dispatcher.run_once() == 0  # not due yet
        clock.now = T0 + timedelta(seconds=31)
        assert await dispatcher.run_once() == 1
        assert await dispatcher.run_once() == 0  # exactly once
    finally:
        await delivery.close()
    assert len(calls) == 1
    assert calls[0]["body"] == {"name": "EXTERNAL_reminder", "entities": {"reminder_id": r.id}}
    assert calls[0]["args"] == {"output_channel": "latest", "token": "secret"}
    assert store.get(r.id).state == DELIVERED  # type: ignore[union-attr]


async def test_due_while_rasa_is_down_fires_when_it_comes_back(
    store: ReminderStore, httpserver: HTTPServer
) -> None:
    clock = MovableClock(T0)
    r = store.add("user-1", "stretch", T0 - timedelta(minutes=10), "UTC", T0 - timedelta(hours=1))
    down = RasaTriggerDelivery(rasa_url=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    dispatcher = ReminderDispatcher(store, down, clock=clock)
    try:
        for _ in range(3):
            assert await dispatcher.run_once() == 0
            clock.now += timedelta(seconds=20)
    finally:
        await down.close()
    after = store.get(r.id)
    assert after is not None and after.state == PENDING and after.attempts == 3  # nothing lost
    # Backoff: not retried before its time.
    clock.now = T0 + timedelta(minutes=5)
    calls: list[dict] = []
    httpserver.expect_request("/conversations/user-1/trigger_intent").respond_with_handler(
        rasa_handler(store, calls, clock)
    )
    up = RasaTriggerDelivery(rasa_url=httpserver.url_for("/"))
    dispatcher.delivery = up
    try:
        assert await dispatcher.run_once() == 1
    finally:
        await up.close()
    assert store.get(r.id).state == DELIVERED  # type: ignore[union-attr]
    assert len(calls) == 1


async def test_backoff_delays_the_retry(store: ReminderStore) -> None:
    clock = MovableClock(T0)
    store.add("user-1", "stretch", T0, "UTC", T0)
    attempts: list[datetime] = []

    class Down:
        async def deliver(self, reminder):  # type: ignore[no-untyped-def]
            attempts.append(clock())
            return DeliveryResult.UNREACHABLE

    assert isinstance(Down(), ReminderDelivery)
    dispatcher = ReminderDispatcher(store, Down(), clock=clock)
    await dispatcher.run_once()  # attempt 1 at T0; next try after 1 s
    await dispatcher.run_once()  # too early
    clock.now = T0 + timedelta(seconds=1)
    await dispatcher.run_once()  # attempt 2; next after 2 s
    clock.now = T0 + timedelta(seconds=2)
    await dispatcher.run_once()  # too early
    clock.now = T0 + timedelta(seconds=3)
    await dispatcher.run_once()  # attempt 3
    assert attempts == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3)]


async def test_rasa_accepts_but_nothing_delivers_then_missed(
    store: ReminderStore, httpserver: HTTPServer
) -> None:
    clock = MovableClock(T0)
    r = store.add("user-1", "stretch", T0, "UTC", T0)
    httpserver.expect_request("/conversations/user-1/trigger_intent").respond_with_json(
        {"tracker": {}, "messages": []}
    )
    delivery = RasaTriggerDelivery(rasa_url=httpserver.url_for("/"))
    dispatcher = ReminderDispatcher(store, delivery, clock=clock, max_rejections=3)
    try:
        for _ in range(3):
            await dispatcher.run_once()
            clock.now += timedelta(seconds=30)
    finally:
        await delivery.close()
    assert store.get(r.id).state == MISSED  # type: ignore[union-attr]
    assert len(httpserver.log) == 3


async def test_rasa_5xx_is_retried_not_given_up(
    store: ReminderStore, httpserver: HTTPServer
) -> None:
    clock = MovableClock(T0)
    r = store.add("user-1", "stretch", T0, "UTC", T0)
    httpserver.expect_request("/conversations/user-1/trigger_intent").respond_with_data(
        "boom", status=503
    )
    delivery = RasaTriggerDelivery(rasa_url=httpserver.url_for("/"))
    dispatcher = ReminderDispatcher(store, delivery, clock=clock, max_rejections=2)
    try:
        for _ in range(4):
            await dispatcher.run_once()
            clock.now += timedelta(seconds=30)
    finally:
        await delivery.close()
    assert store.get(r.id).state == PENDING  # type: ignore[union-attr]


async def test_two_dispatchers_deliver_each_reminder_once(
    tmp_path,
    httpserver: HTTPServer,  # type: ignore[no-untyped-def]
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    clock = MovableClock(T0)
    stores = [ReminderStore(url), ReminderStore(url)]
    for i in range(10):
        stores[0].add(f"user-{i}", "stretch", T0, "UTC", T0)
    calls: list[dict] = []
    for i in range(10):
        httpserver.expect_request(f"/conversations/user-{i}/trigger_intent").respond_with_handler(
            rasa_handler(stores[0], calls, clock)
        )
    deliveries = [RasaTriggerDelivery(rasa_url=httpserver.url_for("/")) for _ in range(2)]
    dispatchers = [
        ReminderDispatcher(s, d, clock=clock) for s, d in zip(stores, deliveries, strict=True)
    ]
    try:
        counts = await asyncio.gather(*(d.run_once() for d in dispatchers))
    finally:
        for d in deliveries:
            await d.close()
    assert sum(counts) == 10
    ids = [c["body"]["entities"]["reminder_id"] for c in calls]
    assert len(ids) == len(set(ids)) == 10


async def test_crashing_deliverer_does_not_stop_the_loop(store: ReminderStore) -> None:
    store.add("user-1", "stretch", T0, "UTC", T0)

    class Broken:
        async def deliver(self, reminder):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    dispatcher = ReminderDispatcher(store, Broken(), clock=MovableClock(T0))
    assert await dispatcher.run_once() == 0
    assert store.list_open("user-1")[0].state == PENDING


async def test_polling_loop_starts_and_stops(store: ReminderStore, httpserver: HTTPServer) -> None:
    now = datetime.now(UTC)
    r = store.add("user-1", "stretch", now - timedelta(seconds=1), "UTC", now)
    calls: list[dict] = []
    clock = MovableClock(now)
    httpserver.expect_request("/conversations/user-1/trigger_intent").respond_with_handler(
        rasa_handler(store, calls, clock)
    )
    dispatcher = ReminderDispatcher(
        store, RasaTriggerDelivery(rasa_url=httpserver.url_for("/")), poll_seconds=0.05
    )
    dispatcher.start()
    try:
        for _ in range(100):
            if store.get(r.id).state == DELIVERED:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
    assert store.get(r.id).state == DELIVERED  # type: ignore[union-attr]


async def test_store_errors_are_logged_not_fatal(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    dispatcher = ReminderDispatcher(
        ReminderStore(f"sqlite:///{blocker / 'r.db'}"),
        RasaTriggerDelivery(rasa_url="http://127.0.0.1:9"),
        poll_seconds=0.05,
    )
    dispatcher.start()
    await asyncio.sleep(0.3)
    await dispatcher.stop()
    assert "cannot use the store" in caplog.text


def test_claimed_state_constant_is_what_the_dispatcher_checks() -> None:
    assert CLAIMED == "claimed"
