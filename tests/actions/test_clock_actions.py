"""action_tell_time / action_tell_date with a pinned clock, places, and DST."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.clock import ActionTellDate, ActionTellTime
from tests.actions.conftest import ent, fixed_clock, make_tracker, slot_events, texts

UTC = timezone.utc


async def _say(action: Any, tracker: Any, domain: dict) -> tuple[list[str], dict]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, domain)
    return texts(dispatcher), slot_events(events)


@pytest.mark.parametrize(
    ("now_utc", "metadata", "expected"),
    [
        (
            datetime(2024, 6, 1, 15, 15, tzinfo=UTC),
            {},
            "It's a quarter past three in the afternoon.",
        ),
        (datetime(2024, 6, 1, 12, 0, tzinfo=UTC), {}, "It's noon."),
        (datetime(2024, 6, 1, 0, 0, tzinfo=UTC), {}, "It's midnight."),
        (datetime(2024, 6, 1, 17, 55, tzinfo=UTC), {}, "It's five to six in the afternoon."),
        (
            datetime(2024, 6, 1, 6, 15, tzinfo=UTC),
            {"timezone": "Asia/Tokyo"},
            "It's a quarter past three in the afternoon.",
        ),
        (
            datetime(2024, 6, 1, 6, 15, tzinfo=UTC),
            {"caller_number": "+81312345678"},
            "It's a quarter past three in the afternoon.",
        ),
    ],
)
async def test_local_time(now_utc: datetime, metadata: dict, expected: str, domain: dict) -> None:
    action = ActionTellTime(clock=fixed_clock(now_utc))
    said, slots = await _say(
        action, make_tracker("what time is it", "ask_time", metadata=metadata), domain
    )
    assert said == [expected]
    assert slots == {"location": None, "date": None}


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ("tokyo", "In Tokyo, it's nine o'clock in the evening."),
        ("são paulo", "In São Paulo, it's nine o'clock in the morning."),
        ("sao paulo", "In São Paulo, it's nine o'clock in the morning."),
        ("new york city", "In New York City, it's eight o'clock in the morning."),
        ("texas", "In Texas, it's seven o'clock in the morning."),
        ("england", "In London, it's one o'clock in the afternoon."),
        ("germany", "In Germany, it's two o'clock in the afternoon."),
        ("paris", "In Paris, it's two o'clock in the afternoon."),
        ("sydney", "In Sydney, it's ten o'clock at night."),
    ],
)
async def test_time_in_a_place(place: str, expected: str, domain: dict) -> None:
    action = ActionTellTime(clock=fixed_clock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC)))
    tracker = make_tracker(f"what time is it in {place}", "ask_time", [ent("location", place)])
    said, slots = await _say(action, tracker, domain)
    assert said == [expected]
    assert slots["location"] is None and slots["default_location"]


async def test_unknown_place(domain: dict) -> None:
    action = ActionTellTime(clock=fixed_clock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC)))
    tracker = make_tracker("time in xyzzy", "ask_time", [ent("location", "xyzzy")])
    said, slots = await _say(action, tracker, domain)
    assert said == ["I don't know where Xyzzy is."]
    assert "default_location" not in slots


@pytest.mark.parametrize(
    ("now_utc", "expected"),
    [
        # New York springs forward on 2024-03-10 at 2:00 EST -> 3:00 EDT.
        (
            datetime(2024, 3, 10, 6, 59, tzinfo=UTC),
            "In New York City, it's one fifty-nine in the morning.",
        ),
        (
            datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
            "In New York City, it's three o'clock in the morning.",
        ),
        # ... and falls back on 2024-11-03: 1:30 happens twice.
        (
            datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
            "In New York City, it's half past one in the morning.",
        ),
        (
            datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
            "In New York City, it's half past one in the morning.",
        ),
        (
            datetime(2024, 11, 3, 7, 30, tzinfo=UTC),
            "In New York City, it's half past two in the morning.",
        ),
        # London switches to BST on 2024-03-31 at 01:00 UTC.
        (
            datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
            "In London, it's half past twelve in the morning.",
        ),
        (datetime(2024, 3, 31, 1, 30, tzinfo=UTC), "In London, it's half past two in the morning."),
    ],
)
async def test_dst_transitions(now_utc: datetime, expected: str, domain: dict) -> None:
    place = "new york city" if "New York" in expected else "london"
    action = ActionTellTime(clock=fixed_clock(now_utc))
    said, _ = await _say(action, make_tracker("time", "ask_time", [ent("location", place)]), domain)
    assert said == [expected]


async def test_date_local_and_in_a_place(domain: dict) -> None:
    clock = fixed_clock(datetime(2024, 12, 3, 20, 0, tzinfo=UTC))
    said, _ = await _say(ActionTellDate(clock=clock), make_tracker("date", "ask_date"), domain)
    assert said == ["Today is Tuesday, December third."]
    said, _ = await _say(
        ActionTellDate(clock=clock),
        make_tracker("date in tokyo", "ask_date", [ent("location", "tokyo")]),
        domain,
    )
    assert said == ["In Tokyo, it's Wednesday, December fourth."]


async def test_location_slot_is_used_when_no_entity(domain: dict) -> None:
    action = ActionTellTime(clock=fixed_clock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC)))
    said, _ = await _say(
        action, make_tracker("and there?", "ask_time", slots={"location": "tokyo"}), domain
    )
    assert said == ["In Tokyo, it's nine o'clock in the evening."]


async def test_here_means_the_users_own_place(domain: dict) -> None:
    action = ActionTellTime(clock=fixed_clock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC)))
    tracker = make_tracker("what time is it here", "ask_time", [ent("location", "here")])
    said, _ = await _say(action, tracker, domain)
    assert said == ["It's noon."]


async def test_a_place_the_nlu_did_not_mark(domain: dict) -> None:
    action = ActionTellTime(clock=fixed_clock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC)))
    tracker = make_tracker("is it still daytime in reykjavik", "ask_time")
    said, slots = await _say(action, tracker, domain)
    assert said == ["In Reykjavík, it's noon."]
    assert slots["default_location"] == "Reykjavík"


@pytest.mark.parametrize(
    ("text", "entities"),
    [
        ("what time is it in pairs", []),  # the NLU did not mark it
        ("what time is it in pairs", [ent("location", "pairs")]),  # the NLU marked the slip
    ],
)
async def test_a_big_city_misheard_by_one_letter_is_answered_and_named(
    domain: dict, text: str, entities: list
) -> None:
    action = ActionTellTime(clock=fixed_clock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC)))
    said, _ = await _say(action, make_tracker(text, "ask_time", entities), domain)
    assert said == ["In Paris, it's two o'clock in the afternoon."]
