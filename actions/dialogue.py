"""Greeting (with reminders missed while away), repeat, and stop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.reminders import _StoreUser, past_when, reminder_phrase
from actions.services.reminder_store import ReminderStoreError
from actions.services.spoken import join_words
from actions.services.user_context import caller_number, zone_or_none

logger = logging.getLogger(__name__)

STOP_SLOTS = (
    "reminder_text",
    "reminder_time",
    "reminder_confirm",
    "location",
    "date",
    "pending_cancel",
    "cancel_ids",
)


class ActionGreet(_StoreUser, Action):
    """Greets; first tells reminders that fell due while the user was away."""

    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        now = self.clock()
        try:
            missed = await asyncio.to_thread(
                self.store.take_missed, tracker.sender_id, now, caller_number(tracker)
            )
        except ReminderStoreError as exc:
            logger.error("Could not read missed reminders for %s: %s", tracker.sender_id, exc)
            missed = []
        if not missed:
            dispatcher.utter_message(response="utter_greet")
            return []
        parts = []
        for reminder in missed[:5]:
            zone = zone_or_none(reminder.timezone) or now.tzinfo
            when = past_when(reminder.due_at.astimezone(zone), now.astimezone(zone))
            parts.append(f"{reminder_phrase(reminder.text)} {when}")
        dispatcher.utter_message(
            text=f"Hi! While you were away: you asked me to remind you {join_words(parts)}. "
            "What can I do for you?"
        )
        return []


class ActionRepeat(Action):
    """Re-says the last thing the bot said."""

    def name(self) -> str:
        return "action_repeat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        for event in reversed(tracker.events or []):
            if event.get("event") == "bot" and (event.get("text") or "").strip():
                dispatcher.utter_message(text=event["text"])
                return []
        dispatcher.utter_message(text="I haven't said anything yet.")
        return []


class ActionStop(Action):
    """ "Okay, never mind." and clears the slots of whatever was going on."""

    def name(self) -> str:
        return "action_stop"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_stopped")
        return [SlotSet(slot, None) for slot in STOP_SLOTS]
