"""Reminder call-backs: the action server's reminder dispatcher delivers a phone caller's due
reminder by asking this channel to ring them.

Runs inside ``rasa run actions``: set ``REMINDER_DELIVERY=channels.twilio.callbacks:delivery``.
For each claimed reminder of a phone caller (channel ``twilio_media``, E.164 ``caller_number``)
it POSTs ``{RASA_URL}/webhooks/twilio_media/callback`` (bearer ``OUTBOUND_API_TOKEN``); the
channel, which owns the policy (``callbacks:`` in credentials.yml), answers one of:

- 200 ``{"in_call": sid}``: the person is on a call now; the reminder is told in that call.
- 201 ``{"call_sid": sid, "retry_after_s": n}``: ringing them. The claim is given back with the
  next attempt ``n`` seconds away, so the dispatcher never places a second call while this one
  rings; when they answer, ``EXTERNAL_reminder`` runs in the call and marks it delivered.
- 409 ``{"give_up": true}``: attempts exhausted; it is marked missed (told at their next session).
- 503: call-backs are off or Twilio is not configured; the default delivery is used instead.

Everything else (reminders set in the browser, no number) goes to the default delivery.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from typing import Any

import aiohttp

from channels.twilio.callers import CHANNEL_NAME, is_e164

logger = logging.getLogger(__name__)


class CallbackDelivery:
    """A ``ReminderDelivery`` that phones the person when they are not connected."""

    def __init__(
        self,
        rasa_url: str | None = None,
        api_token: str | None = None,
        store: Any = None,
        fallback: Any = None,
        timeout_s: float = 20.0,
    ) -> None:
        from actions.services.reminder_dispatcher import RasaTriggerDelivery

        self.rasa_url = (rasa_url or os.environ.get("RASA_URL") or "http://localhost:5005").rstrip(
            "/"
        )
        self.api_token = api_token or os.environ.get("OUTBOUND_API_TOKEN") or ""
        self._store = store
        self.fallback = fallback or RasaTriggerDelivery(self.rasa_url)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=3.0)
        self._http: aiohttp.ClientSession | None = None

    @property
    def store(self) -> Any:
        """The reminder store (env ``REMINDER_DB_URL``)."""
        if self._store is None:
            from actions.services.reminder_store import get_store

            self._store = get_store()
        return self._store

    async def close(self) -> None:
        """Closes HTTP sessions."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        close = getattr(self.fallback, "close", None)
        if close is not None:
            await close()

    async def deliver(self, reminder: Any) -> Any:
        """Delivers one claimed reminder (never raises)."""
        from actions.services.reminder_dispatcher import DeliveryResult

        number = reminder.caller_number
        if reminder.channel != CHANNEL_NAME or not is_e164(number) or not self.api_token:
            return await self.fallback.deliver(reminder)
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        url = f"{self.rasa_url}/webhooks/{CHANNEL_NAME}/callback"
        body = {
            "reminder_id": reminder.id,
            "to": number,
            "sender_id": reminder.sender_id,
            "attempts": reminder.attempts,
        }
        headers = {"Authorization": f"Bearer {self.api_token}"}
        try:
            async with self._http.post(url, json=body, headers=headers) as resp:
                status = resp.status
                answer = await resp.json(content_type=None) if status < 500 else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
            logger.warning("call-back of reminder %s: channel unreachable (%r)", reminder.id, e)
            return DeliveryResult.UNREACHABLE
        now = reminder_now()
        if status == 201:
            retry_s = float(answer.get("retry_after_s") or 300)
            await asyncio.to_thread(
                self.store.release, reminder.id, now + timedelta(seconds=retry_s)
            )
            logger.info(
                "call-back of reminder %s: calling %s (call %s); next try in %.0f s unless told",
                reminder.id,
                number,
                answer.get("call_sid"),
                retry_s,
            )
            return DeliveryResult.HANDED_OVER
        if status == 200:
            logger.info("reminder %s: told in live call %s", reminder.id, answer.get("in_call"))
            await self._await_told(reminder.id)
            return DeliveryResult.HANDED_OVER
        if status == 409:
            logger.info("call-back of reminder %s: no answer after retries; missed", reminder.id)
            await asyncio.to_thread(self.store.mark_missed, reminder.id, now)
            return DeliveryResult.HANDED_OVER
        if status == 503:
            return await self.fallback.deliver(reminder)
        logger.warning("call-back of reminder %s refused: HTTP %s %s", reminder.id, status, answer)
        return DeliveryResult.REJECTED

    async def _await_told(self, reminder_id: str, wait_s: float = 20.0) -> None:
        """Waits for the call's action to mark the reminder; else gives the claim back for later
        (never a second delivery while the first may still be under way)."""
        from actions.services.reminder_store import CLAIMED

        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while loop.time() < deadline:
            current = await asyncio.to_thread(self.store.get, reminder_id)
            if current is None or current.state != CLAIMED:
                return
            await asyncio.sleep(0.5)
        await asyncio.to_thread(
            self.store.release, reminder_id, reminder_now() + timedelta(seconds=300)
        )


def reminder_now() -> Any:
    """Now, as the reminder store wants it (aware UTC)."""
    from actions.services.user_context import utc_now

    return utc_now()


def delivery() -> CallbackDelivery:
    """Factory for ``REMINDER_DELIVERY=channels.twilio.callbacks:delivery``."""
    return CallbackDelivery()
