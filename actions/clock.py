"""Tell the time and the date, the user's own or somewhere else's."""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.helpers import latest_entity, latest_text, place_query, say_place
from actions.services.places import Place, place_after_preposition, resolve_place
from actions.services.spoken import date_words, time_words
from actions.services.user_context import Clock, user_zone, utc_now

logger = logging.getLogger(__name__)


def _resolve(
    tracker: Tracker, dispatcher: CollectingDispatcher
) -> tuple[ZoneInfo | None, Place | None, bool]:
    """(zone, place, ok): the named place's zone, or the user's own when none is named."""
    query = place_query(tracker)
    if not latest_entity(tracker, "location"):
        # a place the NLU did not mark ("is it still daytime in reykjavik")
        found = place_after_preposition(latest_text(tracker))
        if found is not None:
            return ZoneInfo(found.timezone), found, True
    if not query:
        return user_zone(tracker), None, True
    place = resolve_place(query, near_miss=True)
    if place is None:
        logger.info("Unknown place %r", query)
        dispatcher.utter_message(text=f"I don't know where {say_place(query)} is.")
        return None, None, False
    return ZoneInfo(place.timezone), place, True


def _events(place: Place | None) -> list[EventType]:
    events: list[EventType] = [SlotSet("location", None), SlotSet("date", None)]
    if place is not None:
        events.append(SlotSet("default_location", place.name))
    return events


class ActionTellTime(Action):
    """ "What time is it (in Tokyo)?" -> "In Tokyo, it's a quarter past three in the afternoon." """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or utc_now

    def name(self) -> str:
        return "action_tell_time"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        zone, place, ok = _resolve(tracker, dispatcher)
        if not ok or zone is None:
            return _events(None)
        now = self.clock().astimezone(zone)
        # the place first: it confirms what was heard, and "In Tokyo," is spoken while the rest
        # of the sentence is synthesized
        if place is None:
            dispatcher.utter_message(text=f"It's {time_words(now)}.")
        else:
            dispatcher.utter_message(text=f"In {place.name}, it's {time_words(now)}.")
        return _events(place)


class ActionTellDate(Action):
    """ "What's the date?" -> "Today is Monday, December third." """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or utc_now

    def name(self) -> str:
        return "action_tell_date"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        zone, place, ok = _resolve(tracker, dispatcher)
        if not ok or zone is None:
            return _events(None)
        now = self.clock().astimezone(zone)
        if place is None:
            dispatcher.utter_message(text=f"Today is {date_words(now.date())}.")
        else:
            dispatcher.utter_message(text=f"In {place.name}, it's {date_words(now.date())}.")
        return _events(place)
