"""Natural reminder times -> aware datetimes in the user's timezone.

Spoken forms as speech-to-text writes them ("in ten minutes", "at five thirty", "a quarter to
six", "tomorrow morning", "next monday at 9", "on december 3rd at noon") are first normalised
to digits by a small pre-normaliser, then resolved by explicit rules; dateparser handles the
absolute dates the rules do not know. Pure functions: the caller passes "now".
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from actions.services.spoken import number_words

logger = logging.getLogger(__name__)

_ONES = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60}
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
_UNITS = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?)"
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
_PERIOD_HOURS = {"morning": 9, "afternoon": 15, "evening": 19, "night": 21, "tonight": 20}
MAX_AHEAD = timedelta(days=366)


@dataclass
class Norm:
    """A normalised utterance: tokens with the original word range each one came from."""

    words: list[str]
    tokens: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(t for t, _, _ in self.tokens)

    def original_indices(self, start: int, end: int) -> set[int]:
        """Original word indices covered by the normalised character span [start, end)."""
        covered: set[int] = set()
        pos = 0
        for token, first, last in self.tokens:
            token_end = pos + len(token)
            if pos < end and token_end > start:
                covered.update(range(first, last))
            pos = token_end + 1
        return covered


@dataclass
class TimeParse:
    """What was found: a time, or a problem with a spoken explanation."""

    when: datetime | None = None
    problem: str | None = None  # "past" | "invalid" | "need_time" | None
    message: str | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    norm: Norm | None = None

    @property
    def ok(self) -> bool:
        return self.when is not None and self.problem is None

    def leftover(self) -> str:
        """The original words not used by the time expression."""
        if self.norm is None:
            return ""
        used: set[int] = set()
        for start, end in self.spans:
            used |= self.norm.original_indices(start, end)
        return " ".join(w for i, w in enumerate(self.norm.words) if i not in used)


def _words(text: str) -> list[str]:
    text = text.replace("’", "'")
    text = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", text, flags=re.I)
    text = re.sub(r"\bo\s*'?\s*clock\b", "oclock", text, flags=re.I)
    text = re.sub(r"(\d)([ap]m)\b", r"\1 \2", text, flags=re.I)
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1\2", text, flags=re.I)
    words = []
    for raw in text.split():
        word = raw.strip('.,!?;"()[]{}')
        if word:
            words.append(word)
    return words


def normalize(text: str) -> Norm:
    """Spoken numbers to digits, keeping track of where each token came from."""
    words = _words(text)
    norm = Norm(words=words)
    lower = [w.lower() for w in words]
    # Split hyphenated number words ("twenty-five") into parts with the same origin.
    parts: list[tuple[str, int]] = []
    for i, w in enumerate(lower):
        if "-" in w and all(p in _ONES or p in _TENS or p in _ORDINALS for p in w.split("-")):
            parts.extend((p, i) for p in w.split("-"))
        else:
            parts.append((w, i))
    i = 0
    out: list[tuple[str, int, int]] = []
    while i < len(parts):
        word, origin = parts[i]
        nxt = parts[i + 1][0] if i + 1 < len(parts) else ""
        nxt2 = parts[i + 2][0] if i + 2 < len(parts) else ""
        end_origin = origin + 1
        if word in _TENS and nxt in _ONES and 0 < _ONES[nxt] < 10:
            out.append((str(_TENS[word] + _ONES[nxt]), origin, parts[i + 1][1] + 1))
            i += 2
            continue
        if word in _TENS and nxt in _ORDINALS and _ORDINALS[nxt] < 10:
            out.append((f"{_TENS[word] + _ORDINALS[nxt]}th", origin, parts[i + 1][1] + 1))
            i += 2
            continue
        if word in _ONES:
            out.append((str(_ONES[word]), origin, end_origin))
        elif word in _TENS:
            out.append((str(_TENS[word]), origin, end_origin))
        elif word in _ORDINALS and (nxt in _MONTHS or nxt == "of" or _prev(out) in _MONTHS):
            out.append((f"{_ORDINALS[word]}th", origin, end_origin))
        elif word in ("a", "an") and re.fullmatch(_UNITS, nxt):
            out.append(("1", origin, end_origin))
        elif word == "a" and nxt in ("couple", "few") and nxt2 == "of":
            out.append(("2" if nxt == "couple" else "3", origin, parts[i + 2][1] + 1))
            i += 3
            continue
        elif word == "a" and nxt in ("couple", "few"):
            out.append(("2" if nxt == "couple" else "3", origin, parts[i + 1][1] + 1))
            i += 2
            continue
        elif word in ("noon", "midday", "lunchtime"):
            out.append(("noon", origin, end_origin))
        else:
            out.append((word, origin, end_origin))
        i += 1
    norm.tokens = out
    text_norm = norm.text
    # Fractions of hours: "half an hour", "an hour and a half", "1 and a half hours".
    replacements = [
        (r"\bhalf (?:an? |1 )?hour\b", "30 minutes"),
        (r"\b(?:a )?quarter (?:of (?:an|1) )?hour\b", "15 minutes"),
        (r"\b1 hours? and a half\b", "90 minutes"),
        (r"\b(\d+) and a half hours?\b", None),
        (r"\b(\d+) hours? and a half\b", None),
    ]
    for pattern, repl in replacements:
        match = re.search(pattern, text_norm)
        if not match:
            continue
        value = repl or f"{int(match.group(1)) * 60 + 30} minutes"
        norm = _replace_span(norm, match.start(), match.end(), value)
        text_norm = norm.text
    return norm


def _prev(out: list[tuple[str, int, int]]) -> str:
    return out[-1][0] if out else ""


def _replace_span(norm: Norm, start: int, end: int, value: str) -> Norm:
    """Replace the tokens covering a character span with new tokens of the same origin."""
    pos = 0
    keep_before: list[tuple[str, int, int]] = []
    keep_after: list[tuple[str, int, int]] = []
    covered: list[tuple[str, int, int]] = []
    for token in norm.tokens:
        token_end = pos + len(token[0])
        if token_end <= start:
            keep_before.append(token)
        elif pos >= end:
            keep_after.append(token)
        else:
            covered.append(token)
        pos = token_end + 1
    first = min(t[1] for t in covered)
    last = max(t[2] for t in covered)
    new = [(w, first, last) for w in value.split()]
    return Norm(words=norm.words, tokens=keep_before + new + keep_after)


# --- patterns over normalised text -------------------------------------------------------
_NUM = r"\d{1,3}(?:\.\d+)?"
_REL = re.compile(
    rf"\b(?:in|after|within|for)?\s*(?:about |around |like )?(?P<n>{_NUM})\s*(?P<u>{_UNITS})"
    r"(?!\s+(?:past|after|to|till|of)\s+\d)"
    rf"(?:\s+(?:and\s+)?(?P<n2>{_NUM})\s*(?P<u2>{_UNITS}))?"
    rf"(?P<tail>\s+(?:from now|later|time))?\b"
)
_REL_LEAD = re.compile(rf"\b(?:in|after|within)\s+(?:about |around |like )?{_NUM}\s*{_UNITS}")
_CLOCK = re.compile(
    r"\b(?P<prep>(?:at|by|around|about|before|till|until)\s+)?"
    r"(?:(?P<rel>half past|(?:a )?quarter past|(?:a )?quarter (?:to|of|till)|"
    r"\d{1,2}(?: minutes?)? (?:past|after|to|till|of)) )?"
    r"(?P<h>\d{1,3})(?:(?::|\.| oh )(?P<m>\d{1,2})| (?P<m2>[1-5]\d)(?= |$))?"
    r"(?: (?P<oc>oclock))?(?: (?P<ampm>am|pm))?\b"
)
_NOON = re.compile(r"\b(?:(?:at|by|around|about)\s+)?(?:(?:12 )?(?P<w>noon|midnight))\b")
_PERIOD = re.compile(
    r"\b(?:(?P<pre>in the|this|tomorrow|at|during the|later this|later)\s+)?"
    r"(?P<p>morning|afternoon|evening|night|tonight)\b"
)
_DAYREL = re.compile(
    r"\b(?P<w>today|tonight|tomorrow|tmrw|day after tomorrow|the day after tomorrow|"
    r"next week|yesterday)\b"
)
_WEEKDAY = re.compile(
    r"\b(?:(?P<mod>on|next|this|coming|this coming|on next)\s+)?"
    r"(?P<d>monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b"
)
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_MONTHDAY = re.compile(
    rf"\b(?:on\s+)?(?:(?P<m1>{_MONTH_NAMES})\s+(?:the\s+)?(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?"
    rf"|(?:the\s+)?(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_MONTH_NAMES}))"
    rf"(?:\s+(?P<y>20\d\d))?\b"
)
_DAY_ONLY = re.compile(r"\b(?:on\s+)?the\s+(?P<d>\d{1,2})(?:st|nd|rd|th)\b")

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _unit_seconds(unit: str) -> int:
    return _UNIT_SECONDS["m" if unit.startswith("min") else unit[0]]


def _say_hour(h: int) -> str:
    return number_words(h)


def parse_reminder_time(text: str, now: datetime, lenient: bool = False) -> TimeParse | None:
    """Find and resolve a reminder time in ``text``; None when there is no time in it.

    Args:
        text: what the user said.
        now: the current time, aware, in the user's timezone.
        lenient: the user was asked for a time, so dateparser may read the whole answer.
    """
    norm = normalize(text)
    s = norm.text
    result = TimeParse(norm=norm)

    # 1. Relative: "in 10 minutes", "in an hour and 30 minutes", "20 minutes from now".
    rel = _REL.search(s)
    if (
        rel
        and (_REL_LEAD.search(s[rel.start() : rel.end()]) or rel.group("tail") or lenient)
        and not re.search(r"\b(?:ago|before)\b", s[rel.end() : rel.end() + 8])
    ):
        seconds = float(rel.group("n")) * _unit_seconds(rel.group("u"))
        if rel.group("n2"):
            seconds += float(rel.group("n2")) * _unit_seconds(rel.group("u2"))
        result.spans.append(rel.span())
        if seconds <= 0:
            result.problem, result.message = "invalid", "I need a time in the future."
            return result
        if timedelta(seconds=seconds) > MAX_AHEAD:
            result.problem = "invalid"
            result.message = "That's too far ahead. I can set reminders up to a year from now."
            return result
        result.when = (now + timedelta(seconds=seconds)).replace(microsecond=0)
        return result

    # 2. Absolute: a day, a clock time and/or a part of the day.
    day: date | None = None
    explicit_day = False
    period: str | None = None
    hour: int | None = None
    minute = 0
    ampm: str | None = None
    is_midnight = False

    if m := _DAYREL.search(s):
        result.spans.append(m.span())
        word = m.group("w")
        explicit_day = True
        if word == "yesterday":
            result.problem, result.message = "past", "That time has already passed."
            return result
        offset = {"today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "next week": 7}.get(word, 2)
        day = now.date() + timedelta(days=offset)
        if word == "tonight":
            period = "tonight"
    if m := _WEEKDAY.search(s):
        result.spans.append(m.span())
        target = _WEEKDAYS.index(m.group("d"))
        ahead = (target - now.weekday()) % 7
        if ahead == 0 and (m.group("mod") or "").strip() in ("next", "on next"):
            ahead = 7
        day = now.date() + timedelta(days=ahead)
        explicit_day = True
    if m := _MONTHDAY.search(s):
        month = _MONTHS[m.group("m1") or m.group("m2")]
        day_num = int(m.group("d1") or m.group("d2"))
        year = int(m.group("y")) if m.group("y") else now.year
        try:
            day = date(year, month, day_num)
        except ValueError:
            result.spans.append(m.span())
            result.problem = "invalid"
            result.message = "That date doesn't exist. Which day should it be?"
            return result
        if not m.group("y") and day < now.date():
            day = date(year + 1, month, day_num)
        result.spans.append(m.span())
        explicit_day = True
    elif m := _DAY_ONLY.search(s):
        day_num = int(m.group("d"))
        for add in range(0, 3):
            month_index = now.month - 1 + add
            try:
                candidate = date(now.year + month_index // 12, month_index % 12 + 1, day_num)
            except ValueError:
                continue
            if candidate >= now.date():
                day = candidate
                break
        if day is not None:
            result.spans.append(m.span())
            explicit_day = True

    if m := _NOON.search(s):
        result.spans.append(m.span())
        hour, minute = (12, 0) if m.group("w") == "noon" else (0, 0)
        is_midnight = m.group("w") == "midnight"
        ampm = "pm" if hour == 12 else "am"
    else:
        for m in _CLOCK.finditer(s):
            if not _looks_like_clock(m, s):
                continue
            result.spans.append(m.span())
            h = int(m.group("h"))
            mins = m.group("m") or m.group("m2")
            mm = int(mins) if mins else 0
            rel_word = m.group("rel")
            if rel_word:
                if rel_word.startswith("half"):
                    mm = 30
                elif "quarter" in rel_word:
                    mm = 15 if "past" in rel_word else -15
                else:
                    n = int(rel_word.split()[0])
                    mm = n if re.search(r"past|after", rel_word) else -n
            ampm = m.group("ampm")
            if h > 24 or (ampm and (h > 12 or h == 0)) or abs(mm) > 59:
                result.problem = "invalid"
                result.message = _invalid_clock_message(h, mm)
                return result
            if mm < 0:
                h, mm = (h - 1) % 24 if h else 23, 60 + mm
                if h == 0 and ampm is None and rel_word:
                    h = 12
            hour, minute = h % 24, mm
            if h == 24:
                is_midnight = True
            break

    if m := _PERIOD.search(s):
        result.spans.append(m.span())
        period = m.group("p")
        pre = m.group("pre") or ""
        if pre == "tomorrow" and day is None:
            day, explicit_day = now.date() + timedelta(days=1), True
        if pre == "this" or period == "tonight":
            explicit_day = explicit_day or pre == "this"
            day = day or now.date()

    if hour is None and period is None and day is None:
        if lenient:
            return _dateparser_fallback(text, now, result)
        return None
    if hour is None and period is None:
        if day == now.date():
            result.problem, result.message = "need_time", "What time should I remind you?"
            return result
        hour, minute = 9, 0
    elif hour is None:
        hour = _PERIOD_HOURS[period or "morning"]

    # Decide am/pm for 1-12 without a marker.
    if ampm is None and 1 <= hour <= 12 and not is_midnight:
        if period in ("afternoon", "evening", "night", "tonight"):
            if hour != 12 and not (period in ("night", "tonight") and hour <= 4):
                hour += 12
            elif hour == 12 and period in ("night", "tonight"):
                hour = 0
        elif period == "morning":
            hour = 0 if hour == 12 else hour
        elif day is not None and day != now.date():
            if 1 <= hour <= 6:
                hour += 12
        else:
            candidates = [
                now.replace(hour=h, minute=minute, second=0, microsecond=0)
                for h in (
                    hour % 12,
                    hour % 12 + 12,
                )
            ]
            future = [c for c in candidates if c > now]
            hour = future[0].hour if future else (hour if 7 <= hour <= 12 else hour + 12)
    elif ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0

    base_day = day or now.date()
    when = datetime(base_day.year, base_day.month, base_day.day, hour, minute, tzinfo=now.tzinfo)
    when = _fix_gap(when)
    if is_midnight and day is not None and hour == 0:
        # "midnight on friday" means the end of friday.
        when += timedelta(days=1)
    if when <= now:
        if not explicit_day:
            when = _fix_gap(
                datetime.combine(when.date() + timedelta(days=1), when.time(), now.tzinfo)
            )
        else:
            result.problem, result.message = "past", "That time has already passed."
            result.when = when
            return result
    if when - now > MAX_AHEAD:
        result.problem = "invalid"
        result.message = "That's too far ahead. I can set reminders up to a year from now."
        return result
    result.when = when
    return result


def _fix_gap(when: datetime) -> datetime:
    """Move a wall time that does not exist (spring-forward gap) to the real instant."""
    from datetime import timezone

    return when.astimezone(timezone.utc).astimezone(when.tzinfo)


def _looks_like_clock(m: re.Match[str], s: str) -> bool:
    """A bare number is a time only with a cue: at/by, am/pm, o'clock, minutes, "half past"."""
    if m.group("prep") or m.group("ampm") or m.group("oc") or m.group("rel"):
        return True
    if m.group("m") and ":" in m.group(0):
        return True
    after = s[m.end() : m.end() + 24]
    return bool(re.match(r"\s+(?:in the|this|tonight|tomorrow|today)", after)) and bool(
        m.group("m") or m.group("m2") or int(m.group("h")) <= 12
    )


def _invalid_clock_message(hour: int, minute: int) -> str:
    if hour > 24:
        return (
            f"There's no {number_words(hour)} o'clock. Say a time like five pm, or in ten minutes."
        )
    if abs(minute) > 59:
        return "That's not a time I understand. Say a time like five thirty pm."
    return "That's not a time I understand. Say a time like five pm, or in ten minutes."


def _dateparser_fallback(text: str, now: datetime, result: TimeParse) -> TimeParse | None:
    """Let dateparser read the whole answer when the user was asked for a time."""
    try:
        import dateparser

        parsed = dateparser.parse(
            text,
            languages=["en"],
            settings={
                "PREFER_DATES_FROM": "future",
                "RELATIVE_BASE": now.replace(tzinfo=None),
                "RETURN_AS_TIMEZONE_AWARE": False,
            },
        )
    except Exception:  # dateparser can raise on odd input
        logger.exception("dateparser failed on %r", text)
        return None
    if parsed is None:
        return None
    when = _fix_gap(parsed.replace(tzinfo=now.tzinfo, microsecond=0))
    result.spans.append((0, len(result.norm.text if result.norm else text)))
    if when <= now:
        result.problem, result.message, result.when = "past", "That time has already passed.", when
        return result
    if when - now > MAX_AHEAD:
        result.problem = "invalid"
        result.message = "That's too far ahead. I can set reminders up to a year from now."
        return result
    result.when = when
    return result


# --- the reminder text ---------------------------------------------------------------------
_REQUEST_PREFIX = re.compile(
    r"^(?:(?:hey|ok|okay|so|um+|uh+|er+|well|please|and|assistant|computer)[\s,]+)*"
    r"(?:(?:can|could|would|will) you (?:please )?|please |i (?:need|want) you to |"
    r"i'd like you to |i want to |i need to )?"
    r"(?:(?:set|create|add|make|schedule|put in) (?:me )?(?:up )?(?:a |an )?"
    r"(?:new )?(?:reminder|alarm|note)(?: for me)?|remind me|remember|don't let me forget|"
    r"do not let me forget|make sure i|i need a reminder|reminder)?"
    r"(?:\s*\b(?:to|that|about|for|of|so that|so|i need to|i have to|i should)\b)*\s*",
    re.I,
)
_TRAILING = re.compile(
    r"(?:\s+(?:please|thanks|thank you|ok|okay|for me|at|on|by|in|and|to|reminder))+$", re.I
)
MAX_TEXT = 200


def clean_reminder_text(text: str) -> str:
    """Strip the request wording around the thing to remember: "remind me to X" -> "X"."""
    text = re.sub(r"\s+", " ", str(text)).strip(" .,!?;:")
    previous = None
    while previous != text:
        previous = text
        text = _REQUEST_PREFIX.sub("", text, count=1).strip(" .,!?;:")
        text = _TRAILING.sub("", text).strip(" .,!?;:")
    return text


def split_request(text: str, now: datetime) -> tuple[str, TimeParse | None]:
    """Split "remind me to call mom at 5 pm" into ("call mom", parse of "at 5 pm")."""
    parsed = parse_reminder_time(text, now)
    rest = parsed.leftover() if parsed is not None else text
    return clean_reminder_text(rest), parsed


def cap_text(text: str, limit: int = MAX_TEXT) -> tuple[str, bool]:
    """Cap a reminder text at a word boundary; returns (text, was_truncated)."""
    if len(text) <= limit:
        return text, False
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:")
    return cut or text[:limit], True
