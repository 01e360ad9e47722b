"""Delivers due reminders: poll the store, claim each atomically, hand it to a deliverer.

The default deliverer asks Rasa to run the conversation's ``EXTERNAL_reminder`` intent
(``POST {RASA_URL}/conversations/{sender}/trigger_intent``); ``action_deliver_reminder`` then
speaks it and marks it delivered (or missed when the user is away). If Rasa cannot be reached,
the claim is released and retried with backoff, so nothing is lost while servers are down.

Several action servers may run this loop on one store: each pass claims a small batch
(``REMINDER_CLAIM_BATCH``, default 5; on PostgreSQL with ``FOR UPDATE SKIP LOCKED``), delivers
it concurrently and claims again while work is left, so the servers share a burst of due
reminders. A claim is a lease (``REMINDER_LEASE_SECONDS``, default 60): if its server dies
before delivering, another one claims it when the lease lapses. The delivery action marks a
reminder delivered with a conditional UPDATE and speaks only when that succeeded, so a
reminder is spoken once even when a slow delivery outlives its lease.

Seam: any object with ``async deliver(reminder) -> DeliveryResult`` is a ``ReminderDelivery``;
set env ``REMINDER_DELIVERY=package.module:factory`` (a zero-argument callable returning one)
or pass ``delivery=`` to use another, e.g. an outbound phone call-back.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol, runtime_checkable
from urllib.parse import quote

import aiohttp

from actions.services.reminder_store import CLAIMED, Reminder, ReminderStore, ReminderStoreError
from actions.services.user_context import Clock, utc_now

logger = logging.getLogger(__name__)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        logger.warning("%s=%r is not a number; using %s", name, os.environ.get(name), default)
        return default


class DeliveryResult(enum.Enum):
    """What became of one delivery attempt."""

    HANDED_OVER = "handed_over"  # the conversation accepted it; the action marks it done
    UNREACHABLE = "unreachable"  # could not reach anyone; retry later, not the reminder's fault
    REJECTED = "rejected"  # reached but refused; retry a few times, then mark missed


@runtime_checkable
class ReminderDelivery(Protocol):
    """Something that can bring one due reminder to its user."""

    async def deliver(self, reminder: Reminder) -> DeliveryResult:
        """Try to deliver ``reminder``; must not raise."""
        ...


class RasaTriggerDelivery:
    """Deliver by triggering ``EXTERNAL_reminder`` in the user's Rasa conversation."""

    def __init__(
        self,
        rasa_url: str | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.rasa_url = (rasa_url or os.environ.get("RASA_URL") or "http://localhost:5005").rstrip(
            "/"
        )
        self.token = token if token is not None else os.environ.get("RASA_TOKEN") or None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=3.0)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, reminder: Reminder) -> DeliveryResult:
        """POST trigger_intent; 2xx means Rasa ran the conversation's actions."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        url = f"{self.rasa_url}/conversations/{quote(reminder.sender_id, safe='')}/trigger_intent"
        params = {"output_channel": "latest"}
        if self.token:
            params["token"] = self.token
        body = {"name": "EXTERNAL_reminder", "entities": {"reminder_id": reminder.id}}
        try:
            async with self._session.post(url, params=params, json=body) as response:
                if 200 <= response.status < 300:
                    return DeliveryResult.HANDED_OVER
                text = (await response.text())[:300]
                logger.warning(
                    "Rasa refused reminder %s: HTTP %s %s", reminder.id, response.status, text
                )
                if response.status >= 500:
                    return DeliveryResult.UNREACHABLE
                return DeliveryResult.REJECTED
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            logger.warning("Rasa not reachable at %s for reminder %s: %r", url, reminder.id, exc)
            return DeliveryResult.UNREACHABLE


def delivery_from_env() -> ReminderDelivery:
    """The deliverer named by env REMINDER_DELIVERY ("module:factory"), else Rasa's trigger."""
    spec = os.environ.get("REMINDER_DELIVERY", "").strip()
    if spec:
        module_name, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module_name), attr or "delivery")
        delivery = factory()
        logger.info("Reminder delivery: %s", spec)
        return delivery
    return RasaTriggerDelivery()


class ReminderDispatcher:
    """The polling loop; one per action server process, any number of processes."""

    def __init__(
        self,
        store: ReminderStore,
        delivery: ReminderDelivery | None = None,
        clock: Clock = utc_now,
        poll_seconds: float | None = None,
        lease_seconds: float | None = None,
        max_rejections: int = 5,
        max_backoff_s: float = 15.0,
        batch_size: int | None = None,
        max_per_pass: int = 200,
    ) -> None:
        self.store = store
        self.delivery = delivery or delivery_from_env()
        self.clock = clock
        self.poll_seconds = poll_seconds or _env_float("REMINDER_POLL_SECONDS", 1.0)
        self.lease_seconds = lease_seconds or _env_float("REMINDER_LEASE_SECONDS", 60.0)
        self.batch_size = max(1, batch_size or int(_env_float("REMINDER_CLAIM_BATCH", 5)))
        self.max_per_pass = max_per_pass
        self.max_rejections = max_rejections
        self.max_backoff_s = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._store_failing = False

    def backoff(self, attempts: int) -> timedelta:
        """Wait before the next try: 1, 2, 4, 8 s ... capped."""
        return timedelta(seconds=min(self.max_backoff_s, 2.0 ** min(attempts, 10)))

    async def run_once(self) -> int:
        """Deliver what is due now, a claimed batch at a time; returns how many were handed over."""
        handed = claimed = 0
        while claimed < self.max_per_pass:
            batch = await asyncio.to_thread(
                self.store.claim_due, self.clock(), self.batch_size, self.lease_seconds
            )
            if not batch:
                break
            claimed += len(batch)
            results = await asyncio.gather(*(self._deliver_claimed(r) for r in batch))
            handed += sum(results)
        return handed

    async def _deliver_claimed(self, reminder: Reminder) -> int:
        late_s = (self.clock() - reminder.due_at).total_seconds()
        logger.info(
            "Delivering reminder %s for %s (due %s, %.0f s ago)",
            reminder.id,
            reminder.sender_id,
            reminder.due_at.isoformat(),
            late_s,
        )
        try:
            result = await self.delivery.deliver(reminder)
        except Exception:  # a broken deliverer must not stop the loop
            logger.exception("Reminder deliverer crashed on %s", reminder.id)
            result = DeliveryResult.REJECTED
        if result is DeliveryResult.HANDED_OVER:
            current = await asyncio.to_thread(self.store.get, reminder.id)
            if current is None or current.state != CLAIMED:
                return 1
            # Accepted, but no action marked it: the conversation did not run the delivery.
            logger.warning("Reminder %s was accepted but not marked delivered", reminder.id)
            result = DeliveryResult.REJECTED
        attempts = reminder.attempts + 1
        if result is DeliveryResult.REJECTED and attempts >= self.max_rejections:
            logger.error("Giving up on delivering reminder %s; marking it missed", reminder.id)
            await asyncio.to_thread(self.store.mark_missed, reminder.id, self.clock())
            return 0
        retry_at = self.clock() + self.backoff(reminder.attempts)
        await asyncio.to_thread(self.store.release, reminder.id, retry_at)
        logger.info("Reminder %s will be retried at %s", reminder.id, retry_at.isoformat())
        return 0

    async def run_forever(self) -> None:
        """Poll until stopped; errors are logged, never fatal."""
        logger.info(
            "Reminder dispatcher started (store %s, every %.1f s)",
            self.store.url,
            self.poll_seconds,
        )
        while not self._stopping.is_set():
            try:
                await self.run_once()
                if self._store_failing:
                    logger.info("Reminder store is reachable again")
                self._store_failing = False
            except ReminderStoreError as exc:
                if not self._store_failing:
                    logger.error("Reminder dispatcher cannot use the store: %s", exc)
                self._store_failing = True
            except Exception:
                logger.exception("Reminder dispatcher iteration failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_seconds)
        logger.info("Reminder dispatcher stopped")

    def start(self) -> asyncio.Task[None]:
        """Start polling in the running event loop."""
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self.run_forever())
        return self._task

    async def stop(self) -> None:
        """Stop polling and close the deliverer."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            self._task = None
        close: Callable[[], object] | None = getattr(self.delivery, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result
