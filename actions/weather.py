"""The weather form and the forecast answer (Open-Meteo, places resolved offline)."""

from __future__ import annotations

import logging
import math
import re
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.helpers import latest_entity, latest_intent, latest_text, say_place
from actions.services.open_meteo import (
    DayForecast,
    Forecast,
    OpenMeteoClient,
    WeatherUnavailable,
    get_client,
    weather_phrase,
)
from actions.services.places import (
    Place,
    find_place_in,
    normalize,
    place_after_preposition,
    resolve_place,
)
from actions.services.spoken import WEEKDAYS, number_words
from actions.services.user_context import Clock, utc_now

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't reach the weather service right now. Please try again in a minute."
_ANSWER_INTENTS = {None, "inform", "ask_weather", "nlu_fallback"}


def weather_day(text: str | None, today: date) -> tuple[date | None, str | None]:
    """Which day a weather question is about: (None, None) means "right now".

    Returns (day, spoken label) for "today", "tonight", "tomorrow", "the day after
    tomorrow", weekdays and "this weekend"; (None, None) when no day is named.
    """
    if not text:
        return None, None
    s = normalize(text)
    if re.search(r"\bday after tomorrow\b", s):
        day = today + timedelta(days=2)
        return day, f"on {WEEKDAYS[day.weekday()]}"
    if re.search(r"\b(?:tomorrow|tmrw|tomorrows)\b", s):
        return today + timedelta(days=1), "tomorrow"
    if re.search(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", s):
        return today, "today"
    if re.search(r"\bweekend\b", s):
        ahead = (5 - today.weekday()) % 7
        return today + timedelta(days=ahead), "on Saturday" if ahead else "today"
    for i, name in enumerate(WEEKDAYS):
        if re.search(rf"\b{name.lower()}s?\b", s):
            ahead = (i - today.weekday()) % 7
            if ahead == 0 and re.search(rf"\bnext {name.lower()}\b", s):
                ahead = 7
            return today + timedelta(days=ahead), "today" if ahead == 0 else f"on {name}"
    return None, None


def _round(value: float) -> int:
    """Round half up (12.5 -> 13), as people read a thermometer."""
    return math.floor(value + 0.5)


def _temp(value: float) -> str:
    return number_words(_round(value))


def _degrees(value: float) -> str:
    n = _round(value)
    return f"{number_words(n)} {'degree' if abs(n) == 1 else 'degrees'}"


def _rain(day: DayForecast) -> str:
    if day.rain_chance is None or day.rain_chance < 30:
        return ""
    tens = int(day.rain_chance / 10 + 0.5) * 10
    return f", and a {number_words(tens)} percent chance of rain"


def describe_current(place: str, fc: Forecast, today: date | None) -> str:
    """ "Right now in Paris, it's twelve degrees and light rain, with a high of fifteen today." """
    text = f"Right now in {place}, it's {_degrees(fc.temperature)} and {weather_phrase(fc.code)}"
    windy = fc.wind_speed >= (20 if fc.units == "imperial" else 30)
    day = fc.on(today) if today else None
    if day is not None:
        text += f", with a high of {_temp(day.high)} and a low of {_temp(day.low)} today"
        text += _rain(day)
    text += "."
    if windy:
        text += " It's windy, too."
    return text


def describe_day(place: str, label: str, day: DayForecast) -> str:
    """ "Tomorrow in Paris, expect light rain, with a high of fifteen and a low of eight." """
    head = label[0].upper() + label[1:]
    return (
        f"{head} in {place}, expect {weather_phrase(day.code)}, with a high of {_temp(day.high)} "
        f"and a low of {_degrees(day.low)}{_rain(day)}."
    )


class ValidateWeatherForm(FormValidationAction):
    """Fills ``location`` from what was said, or from ``default_location``; checks it exists."""

    def name(self) -> str:
        return "validate_weather_form"

    async def extract_location(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("location") or latest_entity(tracker, "location"):
            return {}
        text = latest_text(tracker)
        if tracker.get_slot("requested_slot") == "location":
            if latest_intent(tracker) not in _ANSWER_INTENTS:
                return {}
            place = find_place_in(text)
            if place is not None:
                return {"location": place.name}
            logger.info("No place found in answer %r", text)
            dispatcher.utter_message(text="Sorry, I didn't catch a place I know.")
            return {"location": None}
        # Activation: a place the NLU missed ("weather in berlin"), else the last place used.
        place = place_after_preposition(text)
        if place is not None:
            return {"location": place.name}
        default = tracker.get_slot("default_location")
        if default:
            return {"location": default}
        return {}

    async def validate_location(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if not value:
            return {"location": None}
        place = resolve_place(str(value), near_miss=True)
        if place is None:
            logger.info("Unknown place %r", value)
            dispatcher.utter_message(text=f"I don't know where {say_place(str(value))} is.")
            return {"location": None}
        return {"location": place.name}


class ActionTellWeather(Action):
    """Speaks current conditions or the day's forecast for the place in ``location``."""

    def __init__(self, client: OpenMeteoClient | None = None, clock: Clock | None = None) -> None:
        self._client = client
        self.clock = clock or utc_now

    def name(self) -> str:
        return "action_tell_weather"

    def _day_text(self, tracker: Tracker) -> str | None:
        value = tracker.get_slot("date") or latest_entity(tracker, "date")
        if value:
            return str(value)
        # The NLU may have missed the date: read what was said since the weather question.
        texts: list[str] = []
        for event in reversed(tracker.events or []):
            if event.get("event") != "user":
                continue
            if len(texts) >= 4:
                break
            texts.insert(0, str(event.get("text") or ""))
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent == "ask_weather":
                return " ".join(texts)
        return latest_text(tracker)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reset: list[EventType] = [SlotSet("location", None), SlotSet("date", None)]
        query = (
            tracker.get_slot("location")
            or latest_entity(tracker, "location")
            or tracker.get_slot("default_location")
        )
        if not query:
            dispatcher.utter_message(response="utter_ask_location")
            return reset
        place: Place | None = resolve_place(str(query), near_miss=True)
        if place is None:
            dispatcher.utter_message(text=f"I don't know where {say_place(str(query))} is.")
            return reset
        events = [*reset, SlotSet("default_location", place.name)]
        today = self.clock().astimezone(ZoneInfo(place.timezone)).date()
        day, label = weather_day(self._day_text(tracker), today)
        if day is not None and (day - today).days > 6:
            dispatcher.utter_message(text="I can only see the weather about a week ahead.")
            return events
        client = self._client or get_client()
        try:
            forecast = await client.forecast(place.latitude, place.longitude)
        except WeatherUnavailable as exc:
            logger.error("Weather for %s unavailable: %s", place.name, exc)
            dispatcher.utter_message(text=APOLOGY)
            return events
        except Exception:  # never a silent turn
            logger.exception("Weather lookup crashed for %s", place.name)
            dispatcher.utter_message(text=APOLOGY)
            return events
        if day is None or label == "today":
            text = describe_current(place.name, forecast, today)
        else:
            forecast_day = forecast.on(day)
            if forecast_day is None:
                text = "I can only see the weather about a week ahead."
            else:
                text = describe_day(place.name, label or "then", forecast_day)
        dispatcher.utter_message(text=text)
        return events
