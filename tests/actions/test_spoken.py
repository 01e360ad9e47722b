"""Numbers, clock times and dates the way a person says them."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from actions.services.spoken import (
    clock_words,
    date_words,
    join_words,
    number_words,
    ordinal_words,
    second_person,
    speakable,
    time_words,
    when_words,
)


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (12, "twelve"),
        (21, "twenty-one"),
        (40, "forty"),
        (-3, "minus three"),
        (100, "one hundred"),
        (115, "one hundred and fifteen"),
        (2025, "two thousand and twenty-five"),
    ],
)
def test_number_words(n: int, words: str) -> None:
    assert number_words(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty-first"),
        (23, "twenty-third"),
        (30, "thirtieth"),
        (31, "thirty-first"),
    ],
)
def test_ordinal_words(n: int, words: str) -> None:
    assert ordinal_words(n) == words


@pytest.mark.parametrize(
    ("hh", "mm", "words"),
    [
        (15, 15, "a quarter past three in the afternoon"),
        (12, 0, "noon"),
        (0, 0, "midnight"),
        (17, 55, "five to six in the afternoon"),
        (18, 55, "five to seven in the evening"),
        (9, 0, "nine o'clock in the morning"),
        (9, 30, "half past nine in the morning"),
        (8, 45, "a quarter to nine in the morning"),
        (20, 10, "ten past eight in the evening"),
        (14, 35, "twenty-five to three in the afternoon"),
        (7, 5, "five past seven in the morning"),
        (7, 7, "seven oh seven in the morning"),
        (13, 22, "one twenty-two in the afternoon"),
        (23, 45, "a quarter to twelve at night"),
        (0, 30, "half past twelve in the morning"),
        (12, 15, "a quarter past twelve in the afternoon"),
    ],
)
def test_time_words(hh: int, mm: int, words: str) -> None:
    assert time_words(time(hh, mm)) == words


def test_clock_words_has_no_period() -> None:
    assert clock_words(time(17, 0)) == "five o'clock"


def test_date_words() -> None:
    assert date_words(date(2024, 12, 3)) == "Tuesday, December third"
    assert date_words(date(2025, 1, 1), today=date(2024, 12, 30)) == (
        "Wednesday, January first, twenty twenty-five"
    )


NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("when", "words"),
    [
        (datetime(2024, 3, 8, 14, 10, tzinfo=NY), "in ten minutes"),
        (datetime(2024, 3, 8, 14, 1, tzinfo=NY), "in one minute"),
        (datetime(2024, 3, 8, 17, 15, tzinfo=NY), "at a quarter past five this afternoon"),
        (datetime(2024, 3, 8, 21, 0, tzinfo=NY), "at nine o'clock this evening"),
        (datetime(2024, 3, 8, 23, 0, tzinfo=NY), "at eleven o'clock tonight"),
        (datetime(2024, 3, 9, 9, 0, tzinfo=NY), "at nine o'clock tomorrow morning"),
        (datetime(2024, 3, 9, 12, 0, tzinfo=NY), "at noon tomorrow"),
        (datetime(2024, 3, 11, 9, 0, tzinfo=NY), "on Monday at nine o'clock in the morning"),
        (
            datetime(2024, 12, 3, 12, 0, tzinfo=NY),
            "on Tuesday, December third at noon",
        ),
    ],
)
def test_when_words(when: datetime, words: str) -> None:
    now = datetime(2024, 3, 8, 14, 0, tzinfo=NY)  # a Friday
    assert when_words(when, now) == words


def test_join_words() -> None:
    assert join_words([]) == ""
    assert join_words(["a"]) == "a"
    assert join_words(["a", "b"]) == "a and b"
    assert join_words(["a", "b", "c"]) == "a, b and c"


def test_second_person() -> None:
    assert second_person("call my mom") == "call your mom"
    assert second_person("tell me when I'm done") == "tell you when you're done"


def test_speakable_strips_markdown_and_symbols() -> None:
    text = "**Sure!** Here's a list:\n- one\n- two\nIt's 20° and 50% humid 😀 see https://x.y"
    out = speakable(text)
    assert "*" not in out and "°" not in out and "%" not in out and "http" not in out
    assert "20 degrees" in out and "50 percent" in out
