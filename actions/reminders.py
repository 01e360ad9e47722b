"""Reminders: the form, confirm, save, list, cancel (with confirmation) and delivery."""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.helpers import latest_entities, latest_entity, latest_intent, latest_text
from actions.services.reminder_store import (
    Reminder,
    ReminderStore,
    ReminderStoreError,
    get_store,
)
from actions.services.spoken import (
    WEEKDAYS,
    clock_words,
    count_words,
    join_words,
    number_words,
    second_person,
    when_words,
)
from actions.services.timeparse import (
    cap_text,
    clean_reminder_text,
    parse_reminder_time,
    split_request,
)
from actions.services.user_context import (
    Clock,
    caller_number,
    is_connected,
    latest_channel,
    user_zone,
    utc_now,
    zone_or_none,
)

logger = logging.getLogger(__name__)

STORE_APOLOGY = "Sorry, I can't reach my reminder list right now, so I couldn't do that."
NO_TIME_HELP = (
    "Sorry, I didn't catch a time. You can say something like in ten minutes, or at five pm."
)
LATE_AFTER = timedelta(seconds=30)  # later than this, the spoken reminder says it is late
_CONTROL_INTENTS = {
    "stop",
    "repeat",
    "cancel_reminder",
    "list_reminders",
    "greet",
    "goodbye",
    "help",
    "bot_challenge",
    "thank",
    "ask_time",
    "ask_date",
    "ask_weather",
    "affirm",
    "deny",
}
_STOP_PHRASES = re.compile(
    r"^\s*(?:never ?mind|nevermind|forget it|stop|cancel|cancel that|no thanks|nothing|quit|"
    r"exit)\W*$",
    re.I,
)
_ABOUT_STARTS = {"the", "a", "an", "my", "your", "our", "his", "her", "their", "this", "that"}
_THAT_STARTS = {"you", "it", "there", "we", "they", "he", "she"}
_FORM_SLOTS = ("reminder_text", "reminder_time", "reminder_confirm")


def reminder_phrase(text: str) -> str:
    """ "call my mom" -> "to call your mom"; "the dentist" -> "about the dentist"."""
    spoken = second_person(text.strip())
    first = spoken.split()[0].lower() if spoken.split() else ""
    if first in _THAT_STARTS:
        return f"that {spoken}"
    return f"about {spoken}" if first in _ABOUT_STARTS else f"to {spoken}"


def past_when(when: datetime, now: datetime) -> str:
    """When a past moment was, for a late delivery: "at five o'clock", "yesterday at noon"."""
    days = (now.date() - when.date()).days
    clock = clock_words(when)
    if days <= 0:
        return f"at {clock}"
    if days == 1:
        return f"yesterday at {clock}"
    if days < 7:
        return f"on {WEEKDAYS[when.weekday()]} at {clock}"
    return f"on {when.strftime('%B')} {number_words(when.day)} at {clock}"


def _zone(reminder: Reminder) -> ZoneInfo:
    return zone_or_none(reminder.timezone) or ZoneInfo("UTC")


def due_words(reminder: Reminder, now: datetime) -> str:
    """When a reminder is due, in its own timezone: "at five o'clock this afternoon"."""
    zone = _zone(reminder)
    return when_words(reminder.due_at.astimezone(zone), now.astimezone(zone))


def describe(reminder: Reminder, now: datetime) -> str:
    """One reminder for a list: "call your mom at five o'clock this afternoon"."""
    return f"{second_person(reminder.text)} {due_words(reminder, now)}"


def _parse_iso(value: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else None


class _StoreUser:
    """Mixin: a lazily opened store and a clock, both injectable for tests."""

    def __init__(self, store: ReminderStore | None = None, clock: Clock | None = None) -> None:
        self._store = store
        self.clock = clock or utc_now

    @property
    def store(self) -> ReminderStore:
        if self._store is None:
            self._store = get_store()
        return self._store


def widen_to_request(span: str, utterance: str, intent: str | None, now: datetime) -> str:
    """The whole task the user asked for when the NLU's span caught only part of it.

    "remind me to drink some water in one minute" may come with the span "water"; the
    utterance, less its request words and its time, says "drink some water".
    """
    if intent != "set_reminder" or not span:
        return span
    task, _ = split_request(utterance, now)
    task = clean_reminder_text(task or "")
    if len(task) > len(span) and re.search(rf"\b{re.escape(span.lower())}\b", task.lower()):
        return task
    return span


class ValidateReminderForm(FormValidationAction):
    """Fills reminder_text and reminder_time from what the user says, checks both."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or utc_now

    def name(self) -> str:
        return "validate_reminder_form"

    def _now(self, tracker: Tracker) -> datetime:
        return self.clock().astimezone(user_zone(tracker))

    async def extract_reminder_text(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("reminder_text") or latest_entity(tracker, "reminder_text"):
            return {}
        text = latest_text(tracker)
        requested = tracker.get_slot("requested_slot")
        intent = latest_intent(tracker)
        if requested == "reminder_text":
            if intent in _CONTROL_INTENTS or _STOP_PHRASES.match(text):
                return {}
        elif requested is not None or intent not in (None, "set_reminder", "inform"):
            return {}
        task, _ = split_request(text, self._now(tracker))
        return {"reminder_text": task} if task else {}

    async def extract_reminder_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        requested = tracker.get_slot("requested_slot")
        intent = latest_intent(tracker)
        text = latest_text(tracker)
        now = self._now(tracker)
        if requested == "reminder_confirm":
            # "no, make it six pm": a new time while confirming asks again with that time.
            if intent == "affirm":
                return {}
            parsed = parse_reminder_time(text, now)
            if parsed is not None and parsed.ok and parsed.when is not None:
                value = parsed.when.isoformat()
                if value != tracker.get_slot("reminder_time"):
                    return {"reminder_time": value, "reminder_confirm": None}
            return {}
        if tracker.get_slot("reminder_time"):
            return {}
        if requested == "reminder_time":
            if intent in _CONTROL_INTENTS - {"affirm", "deny"} or _STOP_PHRASES.match(text):
                return {}
            parsed = parse_reminder_time(text, now, lenient=True)
            if parsed is None:
                logger.info("No reminder time in %r", text)
                dispatcher.utter_message(text=NO_TIME_HELP)
                return {"reminder_time": None}
        else:
            if intent in _CONTROL_INTENTS:
                return {}
            parsed = parse_reminder_time(text, now)
            if parsed is None:
                return {}
        if not parsed.ok or parsed.when is None:
            logger.info("Rejected reminder time %r: %s", text, parsed.problem)
            dispatcher.utter_message(text=parsed.message or NO_TIME_HELP)
            return {"reminder_time": None}
        return {"reminder_time": parsed.when.isoformat()}

    async def validate_reminder_text(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        spans = latest_entities(tracker, "reminder_text")
        if len(spans) > 1 and str(value or "") in spans:
            # the NLU cut one task into pieces ("water the plants", "one" of "in one minute");
            # the slot got the last piece: the longest is the task
            value = max(spans, key=len)
        text = clean_reminder_text(str(value or ""))
        task, parsed = split_request(text, self._now(tracker))
        if parsed is not None and task:
            text = task  # the NLU's span included the time: "call mom at five"
        text = widen_to_request(
            text, latest_text(tracker), latest_intent(tracker), self._now(tracker)
        )
        if not text:
            return {"reminder_text": None}
        capped, truncated = cap_text(text)
        if truncated:
            logger.info("Reminder text of %d characters capped", len(text))
            dispatcher.utter_message(text="That's a long one, so I'll keep just the first part.")
        return {"reminder_text": capped}

    async def validate_reminder_time(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if value is None:
            return {"reminder_time": None}
        when = _parse_iso(value)
        if when is None:
            parsed = parse_reminder_time(str(value), self._now(tracker), lenient=True)
            if parsed is None or not parsed.ok or parsed.when is None:
                dispatcher.utter_message(text=(parsed and parsed.message) or NO_TIME_HELP)
                return {"reminder_time": None}
            when = parsed.when
        if when <= self.clock():
            dispatcher.utter_message(text="That time has already passed.")
            return {"reminder_time": None}
        return {"reminder_time": when.isoformat()}

    async def validate_reminder_confirm(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        return {"reminder_confirm": value if isinstance(value, bool) else None}


class ActionAskReminderConfirm(Action):
    """ "Should I remind you to call your mom at a quarter past five this afternoon?" """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or utc_now

    def name(self) -> str:
        return "action_ask_reminder_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = tracker.get_slot("reminder_text") or ""
        when = _parse_iso(tracker.get_slot("reminder_time"))
        if not text or when is None:
            dispatcher.utter_message(text="Should I set that reminder?")
            return []
        now = self.clock().astimezone(when.tzinfo)
        dispatcher.utter_message(
            text=f"Should I remind you {reminder_phrase(text)} {when_words(when, now)}?"
        )
        return []


class ActionSetReminder(_StoreUser, Action):
    """Saves the confirmed reminder, then clears the form slots."""

    def name(self) -> str:
        return "action_set_reminder"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        clear: list[EventType] = [SlotSet(slot, None) for slot in _FORM_SLOTS]
        if tracker.get_slot("reminder_confirm") is not True:
            dispatcher.utter_message(text="Okay, I won't set it.")
            return clear
        text = tracker.get_slot("reminder_text")
        when = _parse_iso(tracker.get_slot("reminder_time"))
        if not text or when is None:
            logger.warning("action_set_reminder without text/time: %r %r", text, when)
            dispatcher.utter_message(
                text="Sorry, I lost track of that reminder. Please say it again."
            )
            return clear
        now = self.clock()
        if when <= now:
            logger.warning("Reminder time %s passed before it was saved (now %s)", when, now)
            dispatcher.utter_message(
                text="That time passed while we were talking, so I didn't set it. "
                "Please ask again with a later time."
            )
            return clear
        zone = when.tzinfo
        tz_name = getattr(zone, "key", None) or user_zone(tracker).key
        try:
            await asyncio.to_thread(
                self.store.add,
                tracker.sender_id,
                str(text),
                when,
                tz_name,
                now,
                caller_number(tracker),
                latest_channel(tracker),
            )
        except ReminderStoreError as exc:
            logger.error("Could not save reminder for %s: %s", tracker.sender_id, exc)
            dispatcher.utter_message(text="Sorry, I couldn't save that reminder right now.")
            return clear
        logger.info("Reminder set for %s at %s", tracker.sender_id, when.isoformat())
        dispatcher.utter_message(
            text=f"Okay, I'll remind you {reminder_phrase(str(text))} "
            f"{when_words(when, now.astimezone(zone))}."
        )
        return clear


class ActionListReminders(_StoreUser, Action):
    """ "You have two reminders: ... and ..." """

    def name(self) -> str:
        return "action_list_reminders"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            items = await asyncio.to_thread(
                self.store.list_open, tracker.sender_id, caller_number(tracker)
            )
        except ReminderStoreError as exc:
            logger.error("Could not list reminders for %s: %s", tracker.sender_id, exc)
            dispatcher.utter_message(text=STORE_APOLOGY)
            return []
        dispatcher.utter_message(text=list_sentence(items, self.clock()))
        return []


def list_sentence(items: list[Reminder], now: datetime, limit: int = 5) -> str:
    """The spoken list of reminders."""
    if not items:
        return "You have no reminders."
    described = [describe(r, now) for r in items[:limit]]
    if len(items) == 1:
        return f"You have one reminder: {described[0]}."
    head = f"You have {count_words(len(items), 'reminder')}"
    if len(items) > limit:
        return f"{head}. The next {number_words(limit)} are: {join_words(described)}."
    return f"{head}: {join_words(described)}."


_CANCEL_WORDS = set(
    [
        "cancel",
        "delete",
        "remove",
        "clear",
        "drop",
        "forget",
        "stop",
        "erase",
        "scrap",
        "kill",
        "undo",
        "the",
        "my",
        "a",
        "an",
        "reminder",
        "reminders",
        "alarm",
        "one",
        "ones",
        "about",
        "for",
        "to",
        "please",
        "can",
        "you",
        "could",
        "would",
        "i",
        "want",
        "wanna",
        "need",
        "don't",
        "dont",
        "no",
        "longer",
        "anymore",
        "that",
        "which",
        "with",
        "called",
        "named",
        "set",
        "of",
        "me",
        "thing",
        "it",
        "please",
        "just",
        "actually",
        "hey",
        "okay",
        "ok",
        "so",
    ]
)
_ALL_RE = re.compile(r"\b(?:all|every|everything|each|both)\b", re.I)


def _content_words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return [w for w in words if w not in _CANCEL_WORDS]


def match_reminders(description: str, items: list[Reminder]) -> list[Reminder]:
    """The reminders a description means, by fuzzy match on their text (best ties)."""
    wanted = _content_words(description)
    if not wanted:
        return []
    phrase = " ".join(wanted)
    scored: list[tuple[float, Reminder]] = []
    for reminder in items:
        words = _content_words(reminder.text)
        overlap = sum(
            1
            for w in wanted
            if any(difflib.SequenceMatcher(None, w, x).ratio() >= 0.8 for x in words)
        )
        ratio = difflib.SequenceMatcher(None, phrase, " ".join(words)).ratio()
        score = max(overlap / len(wanted), ratio)
        if score >= 0.5:
            scored.append((score, reminder))
    if not scored:
        return []
    best = max(s for s, _ in scored)
    return [r for s, r in scored if s >= best - 0.05]


class ActionCancelReminder(_StoreUser, Action):
    """Finds the reminder(s) meant, asks to confirm, and sets pending_cancel/cancel_ids."""

    def name(self) -> str:
        return "action_cancel_reminder"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        none: list[EventType] = [SlotSet("pending_cancel", False), SlotSet("cancel_ids", None)]
        try:
            items = await asyncio.to_thread(
                self.store.list_open, tracker.sender_id, caller_number(tracker)
            )
        except ReminderStoreError as exc:
            logger.error("Could not list reminders for %s: %s", tracker.sender_id, exc)
            dispatcher.utter_message(text=STORE_APOLOGY)
            return none
        if not items:
            dispatcher.utter_message(text="You have no reminders to cancel.")
            return none
        now = self.clock()
        text = latest_text(tracker)
        description = latest_entity(tracker, "reminder_text") or text
        if _ALL_RE.search(text):
            chosen = items
        else:
            chosen = match_reminders(description, items) or self._by_time(text, items, tracker)
            if not chosen and not _content_words(description):
                if len(items) == 1:
                    chosen = items
                else:
                    dispatcher.utter_message(
                        text=f"{list_sentence(items, now)} Which one should I cancel?"
                    )
                    return none
        if not chosen:
            what = " ".join(_content_words(description)) or "that"
            dispatcher.utter_message(
                text=f"I couldn't find a reminder about {second_person(what)}."
            )
            return none
        if len(chosen) == 1:
            question = (
                f"Should I cancel your reminder {reminder_phrase(chosen[0].text)} "
                f"{due_words(chosen[0], now)}?"
            )
        elif len(chosen) == len(items):
            question = (
                "Should I cancel both of your reminders?"
                if len(chosen) == 2
                else f"Should I cancel all {number_words(len(chosen))} of your reminders?"
            )
        else:
            question = f"Should I cancel these {number_words(len(chosen))} reminders: " + (
                join_words([describe(r, now) for r in chosen]) + "?"
            )
        dispatcher.utter_message(text=question)
        return [SlotSet("pending_cancel", True), SlotSet("cancel_ids", [r.id for r in chosen])]

    def _by_time(self, text: str, items: list[Reminder], tracker: Tracker) -> list[Reminder]:
        """ "cancel the five pm one": reminders due at the clock time said."""
        now = self.clock().astimezone(user_zone(tracker))
        parsed = parse_reminder_time(text, now)
        if parsed is None or parsed.when is None:
            return []
        said = parsed.when
        return [
            r
            for r in items
            if (due := r.due_at.astimezone(said.tzinfo)).hour == said.hour
            and due.minute == said.minute
        ]


class ActionConfirmCancelReminder(_StoreUser, Action):
    """On yes: cancel the reminders in cancel_ids; on no: keep them."""

    def name(self) -> str:
        return "action_confirm_cancel_reminder"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        done: list[EventType] = [SlotSet("pending_cancel", False), SlotSet("cancel_ids", None)]
        ids = [str(i) for i in tracker.get_slot("cancel_ids") or []]
        if latest_intent(tracker) != "affirm":
            dispatcher.utter_message(
                text="Okay, I'll keep it." if len(ids) <= 1 else "Okay, I'll keep them."
            )
            return done
        if not ids:
            dispatcher.utter_message(text="There's nothing to cancel.")
            return done
        try:
            count = await asyncio.to_thread(
                self.store.cancel, ids, tracker.sender_id, caller_number(tracker)
            )
        except ReminderStoreError as exc:
            logger.error("Could not cancel reminders for %s: %s", tracker.sender_id, exc)
            dispatcher.utter_message(text=STORE_APOLOGY)
            return done
        if count == 0:
            dispatcher.utter_message(text="That reminder was already gone.")
        elif count == 1:
            dispatcher.utter_message(text="Okay, I cancelled it.")
        elif count == 2:
            dispatcher.utter_message(text="Okay, I cancelled both.")
        else:
            dispatcher.utter_message(text=f"Okay, I cancelled all {number_words(count)}.")
        return done


class ActionDeliverReminder(_StoreUser, Action):
    """Runs on EXTERNAL_reminder: marks the reminder delivered once and speaks it."""

    def name(self) -> str:
        return "action_deliver_reminder"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reminder_id = latest_entity(tracker, "reminder_id")
        if not reminder_id:
            logger.warning(
                "action_deliver_reminder without a reminder_id for %s", tracker.sender_id
            )
            return []
        now = self.clock()
        try:
            reminder = await asyncio.to_thread(self.store.get, reminder_id)
            if reminder is None or reminder.state not in ("pending", "claimed"):
                logger.info(
                    "Reminder %s is not deliverable (%s)",
                    reminder_id,
                    reminder.state if reminder else "unknown",
                )
                return []
            if (reminder.due_at - now).total_seconds() > 60:
                logger.warning(
                    "Clock skew? Reminder %s delivered %.0f s before it is due",
                    reminder_id,
                    (reminder.due_at - now).total_seconds(),
                )
            if not is_connected(tracker):
                if await asyncio.to_thread(self.store.mark_missed, reminder_id, now):
                    logger.info("User away; reminder %s marked missed", reminder_id)
                return []
            if not await asyncio.to_thread(self.store.mark_delivered, reminder_id, now):
                logger.info("Reminder %s was already delivered", reminder_id)
                return []
        except ReminderStoreError as exc:
            logger.error("Could not deliver reminder %s: %s", reminder_id, exc)
            return []
        text = second_person(reminder.text)
        if now - reminder.due_at > LATE_AFTER:
            zone = _zone(reminder)
            when = past_when(reminder.due_at.astimezone(zone), now.astimezone(zone))
            dispatcher.utter_message(
                text=f"Sorry, this is late: you asked me to remind you {when} "
                f"{reminder_phrase(reminder.text)}."
            )
        else:
            dispatcher.utter_message(text=f"Here's your reminder: {text}.")
        return []
