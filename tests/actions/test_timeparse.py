"""Reminder times as people say them (and as speech-to-text writes them)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from actions.services.timeparse import (
    cap_text,
    clean_reminder_text,
    normalize,
    parse_reminder_time,
    split_request,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2024, 3, 8, 14, 7, tzinfo=NY)  # Friday afternoon


def at(month: int, day: int, hour: int, minute: int = 0) -> str:
    return datetime(2024, month, day, hour, minute, tzinfo=NY).isoformat()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 10 minutes", at(3, 8, 14, 17)),
        ("in ten minutes", at(3, 8, 14, 17)),
        ("in one minute", at(3, 8, 14, 8)),
        ("in a minute", at(3, 8, 14, 8)),
        ("in twenty five minutes", at(3, 8, 14, 32)),
        ("in twenty-five minutes", at(3, 8, 14, 32)),
        ("in 2 hours", at(3, 8, 16, 7)),
        ("in an hour", at(3, 8, 15, 7)),
        ("in half an hour", at(3, 8, 14, 37)),
        ("in an hour and a half", at(3, 8, 15, 37)),
        ("in a couple of minutes", at(3, 8, 14, 9)),
        ("20 minutes from now", at(3, 8, 14, 27)),
        ("at 5 pm", at(3, 8, 17)),
        ("at 5pm", at(3, 8, 17)),
        ("at 5 p.m.", at(3, 8, 17)),
        ("at five pm", at(3, 8, 17)),
        ("at five o'clock", at(3, 8, 17)),
        ("at five thirty", at(3, 8, 17, 30)),
        ("at 5:30", at(3, 8, 17, 30)),
        ("at five oh five", at(3, 8, 17, 5)),
        ("at half past five", at(3, 8, 17, 30)),
        ("at a quarter to six", at(3, 8, 17, 45)),
        ("at ten past six", at(3, 8, 18, 10)),
        ("five to six", at(3, 8, 17, 55)),
        ("at 17:45", at(3, 8, 17, 45)),
        ("at 3 in the afternoon", at(3, 8, 15)),
        ("at 9 tonight", at(3, 8, 21)),
        ("tonight", at(3, 8, 20)),
        ("this evening", at(3, 8, 19)),
        ("tomorrow morning", at(3, 9, 9)),
        ("tomorrow at 7", at(3, 9, 7)),
        ("tomorrow at 3", at(3, 9, 15)),
        ("tomorrow", at(3, 9, 9)),
        ("at 7 in the morning", at(3, 9, 7)),
        ("next monday at 9", at(3, 11, 9)),
        ("on monday", at(3, 11, 9)),
        ("on friday at 3", at(3, 8, 15)),
        ("next friday at 3", at(3, 15, 15)),
        ("on december 3rd at noon", at(12, 3, 12)),
        ("december third at noon", at(12, 3, 12)),
        ("the 3rd of december", at(12, 3, 9)),
        ("at noon", at(3, 9, 12)),
        ("at midnight", at(3, 9, 0)),
        ("at 10", at(3, 8, 22)),
    ],
)
def test_parses(text: str, expected: str) -> None:
    result = parse_reminder_time(text, NOW, lenient=True)
    assert result is not None, text
    assert result.ok, (text, result.problem, result.message)
    assert result.when is not None and result.when.isoformat() == expected


@pytest.mark.parametrize(
    ("text", "problem", "says"),
    [
        ("at 25 o'clock", "invalid", "There's no twenty-five o'clock."),
        ("at twenty five o'clock", "invalid", "There's no twenty-five o'clock."),
        ("at 13 pm", "invalid", "That's not a time I understand."),
        ("at 5:75", "invalid", "That's not a time I understand."),
        ("yesterday at 5", "past", "That time has already passed."),
        ("this morning at 8", "past", "That time has already passed."),
        ("today at 9 am", "past", "That time has already passed."),
        ("today", "need_time", "What time should I remind you?"),
        ("in 500 days", "invalid", "That's too far ahead."),
        ("february 30th", "invalid", "That date doesn't exist."),
    ],
)
def test_problems_come_with_a_spoken_explanation(text: str, problem: str, says: str) -> None:
    result = parse_reminder_time(text, NOW, lenient=True)
    assert result is not None and not result.ok
    assert result.problem == problem
    assert result.message is not None and result.message.startswith(says)


@pytest.mark.parametrize("text", ["call mom", "take 2 pills", "buy milk", ""])
def test_no_time(text: str) -> None:
    assert parse_reminder_time(text, NOW) is None


def test_dst_spring_forward_gap_moves_to_a_real_time() -> None:
    now = datetime(2024, 3, 9, 20, 0, tzinfo=NY)
    result = parse_reminder_time("tomorrow at 2:30 am", now)
    assert result is not None and result.ok and result.when is not None
    # 2:30 does not exist on 2024-03-10 in New York: it is 3:30 EDT.
    assert result.when.isoformat() == "2024-03-10T03:30:00-04:00"


def test_relative_times_across_dst_are_exact_durations() -> None:
    now = datetime(2024, 3, 10, 1, 30, tzinfo=NY)
    result = parse_reminder_time("in one hour", now)
    assert result is not None and result.when is not None
    assert (result.when - now).total_seconds() == 3600


def test_other_timezone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime(2024, 3, 8, 9, 0, tzinfo=tokyo)
    result = parse_reminder_time("at 5 pm", now)
    assert result is not None and result.when == datetime(2024, 3, 8, 17, 0, tzinfo=tokyo)


@pytest.mark.parametrize(
    ("request_text", "task", "when"),
    [
        ("remind me to call mom at 5 pm", "call mom", at(3, 8, 17)),
        ("Remind me to take out the trash tomorrow morning.", "take out the trash", at(3, 9, 9)),
        ("set a reminder for 5 pm to call mom", "call mom", at(3, 8, 17)),
        ("in ten minutes remind me to stretch", "stretch", at(3, 8, 14, 17)),
        ("remind me to book a table for 2 at 7", "book a table for 2", at(3, 8, 19)),
        ("can you remind me in 5 minutes to check the oven", "check the oven", at(3, 8, 14, 12)),
        ("remind me that I need to buy milk tonight", "buy milk", at(3, 8, 20)),
        ("um remind me about the dentist next monday at 9", "the dentist", at(3, 11, 9)),
        ("remind me to call my mom", "call my mom", None),
    ],
)
def test_split_request(request_text: str, task: str, when: str | None) -> None:
    text, parsed = split_request(request_text, NOW)
    assert text == task
    if when is None:
        assert parsed is None
    else:
        assert parsed is not None and parsed.when is not None
        assert parsed.when.isoformat() == when


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("to call mom", "call mom"),
        ("that I have a meeting", "I have a meeting"),
        ("uh remind me to water the plants please", "water the plants"),
        ("about the dentist.", "the dentist"),
        ("  stretch  ", "stretch"),
    ],
)
def test_clean_reminder_text(raw: str, clean: str) -> None:
    assert clean_reminder_text(raw) == clean


def test_cap_text() -> None:
    long = "word " * 250
    capped, truncated = cap_text(long.strip())
    assert truncated and len(capped) <= 200 and not capped.endswith(" ")
    assert cap_text("short") == ("short", False)


def test_normalize_keeps_origins() -> None:
    norm = normalize("call Mom at five thirty")
    assert norm.text == "call mom at 5 30"
    assert norm.words == ["call", "Mom", "at", "five", "thirty"]
