"""Presence: the ``connected`` slot, which tells actions (reminders) the user is on a voice line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

PRESENCE_SLOT = "connected"
_pending: set[asyncio.Task[None]] = set()


async def set_presence(app: Any, sender_id: str, connected: bool) -> None:
    """Sets the ``connected`` slot so actions (e.g. reminders) know the user is here.

    Only when the domain declares the slot; best effort, never fails the connection.
    """
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    if agent is None or not agent.is_ready() or agent.domain is None:
        return
    if PRESENCE_SLOT not in {s.name for s in agent.domain.slots}:
        return
    from rasa.shared.core.events import SlotSet

    try:
        async with agent.lock_store.lock(sender_id):
            tracker = await agent.tracker_store.get_or_create_tracker(sender_id)
            if tracker.get_slot(PRESENCE_SLOT) == connected:
                return
            tracker.update(SlotSet(PRESENCE_SLOT, connected))
            await agent.tracker_store.save(tracker)
    except Exception:
        logger.exception("Could not set the %s slot for %s.", PRESENCE_SLOT, sender_id)


def set_presence_soon(app: Any, sender_id: str, connected: bool) -> None:
    """Schedules set_presence in a task of its own, which outlives the caller's tasks."""
    task = asyncio.ensure_future(set_presence(app, sender_id, connected))
    _pending.add(task)
    task.add_done_callback(_pending.discard)
