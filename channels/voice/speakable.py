"""Bot text -> speech-ready text: no markdown/emoji/URLs, abbreviations, units, times, numbers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

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
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORD = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_MONTHS = [
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


def number_words(n: int) -> str:
    """Cardinal number in words (up to the billions)."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + ("-" + _ONES[o] if o else "")
    if n < 1000:
        h, r = divmod(n, 100)
        return _ONES[h] + " hundred" + (" " + number_words(r) if r else "")
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            q, r = divmod(n, size)
            return number_words(q) + " " + name + (" " + number_words(r) if r else "")
    return str(n)


def ordinal_words(n: int) -> str:
    """Ordinal number in words ("twenty-first")."""
    words = number_words(n)
    head, sep, last = words.rpartition("-") if "-" in words.split()[-1] else ("", "", words)
    if not sep:
        parts = words.split(" ")
        head, last = " ".join(parts[:-1]), parts[-1]
        sep = " " if head else ""
    if last in _ORD:
        last = _ORD[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return f"{head}{sep}{last}"


def year_words(y: int) -> str:
    """A year as people say it ("twenty twenty-five", "two thousand five")."""
    if 2000 <= y < 2010:
        return number_words(y)
    if 1100 <= y < 2100:
        hi, lo = divmod(y, 100)
        if lo == 0:
            return number_words(hi) + " hundred"
        return number_words(hi) + (" oh " if lo < 10 else " ") + number_words(lo)
    return number_words(y)


def time_words(h: int, m: int, ampm: str | None = None) -> str:
    """Clock time in words ("five thirty p.m.", "noon")."""
    suffix = ""
    if ampm:
        suffix = " a.m." if ampm.lower().startswith("a") else " p.m."
    elif h == 12 and m == 0:
        return "noon"
    elif h == 0 and m == 0:
        return "midnight"
    elif h == 0 or h > 12:
        # A 24-hour clock time: say which half of the day it is.
        suffix = " a.m." if h < 12 else " p.m."
        h = h % 12 or 12
    # 1:00-12:59 without a.m./p.m. stays as written: the text around it ("in the evening")
    # says which half of the day it means, and guessing "a.m." would contradict it.
    if m == 0:
        return f"{number_words(h)}{suffix}" if ampm else f"{number_words(h)} o'clock{suffix}"
    mins = ("oh " + number_words(m)) if m < 10 else number_words(m)
    return f"{number_words(h)} {mins}{suffix}"


_ABBREV = {
    r"\bDr\.(?=\s+[A-Z])": "Doctor",
    r"\bMr\.": "Mister",
    r"\bMrs\.": "Missus",
    r"\bMs\.": "Miz",
    r"\bSt\.(?=\s+[A-Z])": "Saint",
    r"\be\.g\.": "for example",
    r"\bi\.e\.": "that is",
    r"\betc\.": "et cetera",
    r"\bvs\.?": "versus",
    r"\bapprox\.": "approximately",
    r"\bmin\.": "minutes",
    r"\bno\.(?=\s*\d)": "number",
    r"\bNo\.(?=\s*\d)": "number",
    r"\bAPI\b": "A P I",
    r"\bUTC\b": "U T C",
    r"\bGMT\b": "G M T",
    r"\bFAQ\b": "F A Q",
}
_UNITS = [
    (r"(\d)\s*°\s*C\b", r"\1 degrees Celsius"),
    (r"(\d)\s*°\s*F\b", r"\1 degrees Fahrenheit"),
    (r"(\d)\s*°", r"\1 degrees"),
    (r"(\d)\s*km/h\b", r"\1 kilometers per hour"),
    (r"(\d)\s*mph\b", r"\1 miles per hour"),
    (r"(\d)\s*m/s\b", r"\1 meters per second"),
    (r"(\d)\s*km\b", r"\1 kilometers"),
    (r"(\d)\s*mm\b", r"\1 millimeters"),
    (r"(\d)\s*cm\b", r"\1 centimeters"),
    (r"(\d)\s*kg\b", r"\1 kilograms"),
    (r"(\d)\s*hPa\b", r"\1 hectopascals"),
    (r"(\d)\s*%", r"\1 percent"),
    (r"(\d)\s*mi\b", r"\1 miles"),
    (r"(\d)\s*h\b", r"\1 hours"),
    (r"(\d)\s*s\b", r"\1 seconds"),
]
_URL_RE = re.compile(r"(https?://|www\.)\S+", re.I)
_EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_EMOJI_RE = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\u200d\ufe0f\u2b50\u2b55"
    "\u2190-\u21ff\u2300-\u23ff\u25a0-\u25ff]+"
)
_MD_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_TIME_RE = re.compile(r"\b(\d{1,2}):(\d{2})(?::\d{2})?(?:\s*([AaPp]\.?[Mm]\b\.?))?(?![\d:])")
_HOUR_AMPM_RE = re.compile(r"\b(\d{1,2})\s*([AaPp])\.?[Mm]\b\.?")
_ISO_DATE_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:T[\d:.+\-Z]*)?")
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I)
_MONTH_DAY_RE = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2})\b(?!:)")
_MONEY_RE = re.compile(r"([$€£])\s?(\d+)(?:\.(\d{2}))?")
_DECIMAL_RE = re.compile(r"\b(\d+)\.(\d+)\b")
_INT_RE = re.compile(r"(?<!\w)(?<!\d\.)(\d{1,3}(?:,\d{3})+|\d+)(?!\w|\.\d)")


def speakable(text: str) -> str:
    """Turns bot text into plain text a TTS voice reads naturally."""
    t = text or ""
    t = _MD_LINK_RE.sub(r"\1", t)
    t = _URL_RE.sub(" ", t)
    t = _EMAIL_RE.sub(lambda m: m.group(0).replace("@", " at ").replace(".", " dot "), t)
    t = re.sub(r"```.*?```", " ", t, flags=re.S)
    t = re.sub(r"`([^`]*)`", r"\1", t)
    t = re.sub(r"^\s{0,3}#{1,6}\s*", "", t, flags=re.M)
    t = re.sub(r"^\s*>\s?", "", t, flags=re.M)
    t = re.sub(r"^\s*(?:[-*+•]|\d+[.)])\s+(.*)$", r"\1.", t, flags=re.M)
    t = re.sub(r"(\*\*|__|~~)(.*?)\1", r"\2", t)
    t = re.sub(r"(?<![\w*])[*_](\S(?:.*?\S)?)[*_](?![\w*])", r"\1", t)
    t = re.sub(r"\|", ", ", t)
    t = _EMOJI_RE.sub(" ", t)
    t = re.sub(r"<[^>]+>", " ", t)
    for pat, rep in _ABBREV.items():
        t = re.sub(pat, rep, t)
    t = _ISO_DATE_RE.sub(_iso_date, t)
    t = _TIME_RE.sub(_clock, t)
    t = _HOUR_AMPM_RE.sub(lambda m: time_words(int(m.group(1)), 0, m.group(2) + "m"), t)
    t = _MONTH_DAY_RE.sub(lambda m: f"{m.group(1)} {ordinal_words(int(m.group(2)))}", t)
    t = _ORDINAL_RE.sub(lambda m: ordinal_words(int(m.group(1))), t)
    for pat, rep in _UNITS:
        t = re.sub(pat, rep, t)
    t = _MONEY_RE.sub(_money, t)
    t = re.sub(r"(?<=\d)\s*-\s*(?=\d)", " to ", t)
    t = re.sub(r"(?<!\w)-(?=\d)", "minus ", t)
    t = _DECIMAL_RE.sub(
        lambda m: (
            f"{number_words(int(m.group(1)))} point " + " ".join(_ONES[int(d)] for d in m.group(2))
        ),
        t,
    )
    t = _INT_RE.sub(_int, t)
    t = t.replace("&", " and ").replace("+", " plus ").replace("=", " equals ")
    t = re.sub(r"[\"“”«»()\[\]{}#*_~^\\]", " ", t)
    t = re.sub(r"\s*\n\s*\n\s*", ". ", t)
    t = re.sub(r"\s+", " ", t).strip()
    t = re.sub(r"\s+([,.!?;:])", r"\1", t)
    t = re.sub(r"([.!?])[.!?,;:]+", r"\1", t)
    t = re.sub(r"^[,.;:\s]+", "", t)
    return t


def _iso_date(m: re.Match[str]) -> str:
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return f"{_MONTHS[mo - 1]} {ordinal_words(d)}, {year_words(y)}"


def _clock(m: re.Match[str]) -> str:
    h, mi = int(m.group(1)), int(m.group(2))
    if h > 23 or mi > 59:
        return m.group(0)
    ampm = m.group(3)
    return time_words(h, mi, ampm.replace(".", "") if ampm else None)


def _money(m: re.Match[str]) -> str:
    name = {"$": "dollars", "€": "euros", "£": "pounds"}[m.group(1)]
    whole = int(m.group(2))
    out = f"{number_words(whole)} {name if whole != 1 else name[:-1]}"
    if m.group(3) and int(m.group(3)):
        out += f" {number_words(int(m.group(3)))} cents"
    return out


def _int(m: re.Match[str]) -> str:
    s = m.group(1).replace(",", "")
    if (len(s) > 1 and s.startswith("0")) or len(s) > 9:
        return " ".join(_ONES[int(d)] for d in s)  # codes, phone numbers: digit by digit
    n = int(s)
    if 1100 <= n <= 2099 and "," not in m.group(1):
        return year_words(n) if n >= 1900 else number_words(n)
    return number_words(n)


def buttons_to_speech(buttons: Sequence[dict[str, Any]] | None) -> str:
    """Reads buttons as a spoken list of choices ("You can say: A, B, or C.")."""
    titles = [speakable(str(b.get("title") or b.get("payload") or "")) for b in buttons or []]
    titles = [t.rstrip(".") for t in titles if t]
    if not titles:
        return ""
    if len(titles) == 1:
        return f"You can say: {titles[0]}."
    return f"You can say: {', '.join(titles[:-1])}, or {titles[-1]}."


_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])")


def split_sentences(text: str, max_chars: int = 220) -> list[str]:
    """Splits speakable text into sentences (long ones at commas) for streaming synthesis."""
    out: list[str] = []
    for sent in _SENT_RE.split(text.strip()):
        sent = sent.strip()
        if not sent:
            continue
        out.extend(_split_long(sent, max_chars))
    return out


_CLAUSE_RE = re.compile(r"[,;:](?=\s)")


def speech_chunks(text: str, max_chars: int = 220) -> list[str]:
    """Sentences to synthesize one by one, the first sentence's leading clause on its own.

    Synthesis time grows with the length of the audio, so "Sure, that was request one." starts
    playing after "Sure," is made (about a fifth of the time) while the rest is synthesized. The
    clause keeps its comma, so it is read with the same intonation, and the pause between the two
    parts is about the comma pause inside one sentence.
    """
    sentences = split_sentences(text, max_chars)
    return lead_clause(sentences[0]) + sentences[1:] if sentences else []


def lead_clause(sentence: str, min_rest_words: int = 3) -> list[str]:
    """Splits a sentence after its first clause break when enough words follow it."""
    m = _CLAUSE_RE.search(sentence)
    if m is None:
        return [sentence]
    head, rest = sentence[: m.end()].strip(), sentence[m.end() :].strip()
    if not re.search(r"\w", head) or len(rest.split()) < min_rest_words:
        return [sentence]
    return [head, rest]


def _split_long(sent: str, max_chars: int) -> Iterable[str]:
    if len(sent) <= max_chars:
        yield sent
        return
    parts = re.split(r"(?<=[,;:])\s+", sent)
    buf = ""
    for p in parts:
        while len(p) > max_chars:  # no punctuation at all: cut at a space
            cut = p.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            if buf:
                yield buf
                buf = ""
            yield p[:cut].strip()
            p = p[cut:].strip()
        if buf and len(buf) + len(p) + 1 > max_chars:
            yield buf
            buf = p
        else:
            buf = f"{buf} {p}".strip()
    if buf:
        yield buf
