"""Text for the ear: numbers, clock times, dates and lists the way a person says them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_ONES = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def number_words(n: int) -> str:
    """Spell an integer: 42 -> "forty-two", -3 -> "minus three"."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("-" + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = _ONES[hundreds] + " hundred"
        return head + (" and " + number_words(rest) if rest else "")
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        head = number_words(thousands) + " thousand"
        if not rest:
            return head
        return head + (" and " if rest < 100 else " ") + number_words(rest)
    return str(n)


def ordinal_words(n: int) -> str:
    """Spell an ordinal: 3 -> "third", 21 -> "twenty-first"."""
    words = number_words(n)
    head, sep, last = words.rpartition("-") if "-" in words else ("", "", words)
    if last in _ORDINAL_ONES:
        last = _ORDINAL_ONES[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return head + sep + last


def count_words(n: int, noun: str, plural: str | None = None) -> str:
    """Say a count with its noun: (1, "minute") -> "one minute", (3, ...) -> "three minutes"."""
    return f"{number_words(n)} {noun if n == 1 else (plural or noun + 's')}"


def day_period(hour: int) -> str:
    """Name the part of the day an hour belongs to: morning, afternoon, evening or night."""
    if hour < 12:
        return "morning"
    if 12 <= hour < 18:
        return "afternoon"
    if 18 <= hour < 22:
        return "evening"
    return "night"


def clock_words(t: time | datetime) -> str:
    """Say a clock time without its part of day: "a quarter past three", "noon", "five to six"."""
    hour, minute = t.hour, t.minute
    if minute == 0 and hour == 12:
        return "noon"
    if minute == 0 and hour == 0:
        return "midnight"
    h12 = hour % 12 or 12
    next12 = (hour + 1) % 12 or 12
    if minute == 0:
        return f"{number_words(h12)} o'clock"
    if minute == 15:
        return f"a quarter past {number_words(h12)}"
    if minute == 30:
        return f"half past {number_words(h12)}"
    if minute == 45:
        return f"a quarter to {number_words(next12)}"
    if minute % 5 == 0:
        if minute < 30:
            return f"{number_words(minute)} past {number_words(h12)}"
        return f"{number_words(60 - minute)} to {number_words(next12)}"
    if minute < 10:
        return f"{number_words(h12)} oh {number_words(minute)}"
    return f"{number_words(h12)} {number_words(minute)}"


def time_words(t: time | datetime) -> str:
    """Say a clock time with its part of day: "a quarter past three in the afternoon"."""
    words = clock_words(t)
    if words in ("noon", "midnight"):
        return words
    period = day_period(t.hour)
    return f"{words} at night" if period == "night" else f"{words} in the {period}"


def date_words(d: date, today: date | None = None) -> str:
    """Say a date: "Monday, December third" (the year only when it is not this year)."""
    text = f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {ordinal_words(d.day)}"
    if today is not None and d.year != today.year:
        text += f", {year_words(d.year)}"
    return text


def year_words(year: int) -> str:
    """Say a year the usual way: 2025 -> "twenty twenty-five", 2000 -> "two thousand"."""
    if 2000 <= year < 2010:
        return number_words(year)
    high, low = divmod(year, 100)
    if low == 0:
        return f"{number_words(high)} hundred"
    low_words = number_words(low) if low >= 10 else f"oh {number_words(low)}"
    return f"{number_words(high)} {low_words}"


def when_words(when: datetime, now: datetime) -> str:
    """Say when something happens relative to now, both in the same timezone.

    "in ten minutes", "at a quarter past five this afternoon", "at nine o'clock tomorrow
    morning", "on Monday at noon", "on Tuesday, December third at nine o'clock in the morning".
    """
    delta = (when - now).total_seconds()
    if 0 <= delta < 3600 and when.date() == now.date():
        minutes = max(1, round(delta / 60))
        if minutes < 60:
            return "in " + count_words(minutes, "minute")
    clock = clock_words(when)
    period = day_period(when.hour)
    days = (when.date() - now.date()).days
    if days == 0:
        if clock in ("noon", "midnight"):
            return f"at {clock} today" if clock == "noon" else "at midnight"
        return f"at {clock} tonight" if period == "night" else f"at {clock} this {period}"
    if days == 1:
        if clock in ("noon", "midnight"):
            return f"at {clock} tomorrow"
        return (
            f"at {clock} tomorrow night" if period == "night" else f"at {clock} tomorrow {period}"
        )
    if 1 < days < 7:
        return f"on {WEEKDAYS[when.weekday()]} at {time_words(when)}"
    return f"on {date_words(when.date(), now.date())} at {time_words(when)}"


def join_words(items: Sequence[str], conjunction: str = "and") -> str:
    """Join phrases for speech: ["a", "b", "c"] -> "a, b and c"."""
    items = [i for i in items if i]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


_PRONOUNS = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i'm": "you're",
    "im": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "am": "are",
    "we": "you",
    "our": "your",
    "us": "you",
    "ours": "yours",
}


def second_person(text: str) -> str:
    """Turn the user's own words around for the reply: "call my mom" -> "call your mom"."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        return _PRONOUNS.get(word.lower(), word)

    return re.sub(r"[A-Za-z']+", swap, text)


def speakable(text: str) -> str:
    """Strip symbols and markdown a speech synthesiser should not read aloud."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"https?://\S+", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", text, flags=re.M)
    text = re.sub(r"[*_#`>|~]+", "", text)
    text = text.replace("°", " degrees").replace("%", " percent").replace("&", " and ")
    text = re.sub(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]", "", text)
    return re.sub(r"\s+", " ", text).strip()
