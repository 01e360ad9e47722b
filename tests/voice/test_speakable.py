"""Bot text made speakable."""

from __future__ import annotations

from channels.voice.speakable import (
    buttons_to_speech,
    lead_clause,
    number_words,
    ordinal_words,
    speakable,
    speech_chunks,
    split_sentences,
)


def test_markdown_emoji_urls_are_removed() -> None:
    s = speakable("**Hi!** 😀 See [the docs](https://x.org) or https://example.com/a?b=1 now.")
    assert "*" not in s and "http" not in s and "😀" not in s and "the docs" in s


def test_times_dates_numbers_units() -> None:
    assert speakable("It is 17:05 in Berlin.") == "It is five oh five p.m. in Berlin."
    assert speakable("at 9:30 am") == "at nine thirty a.m."
    assert speakable("at 7 pm") == "at seven p.m."
    assert speakable("12:00") == "noon"
    assert "March twenty-first, twenty twenty-five" in speakable("on 2025-03-21")
    assert speakable("21°C") == "twenty-one degrees Celsius"
    assert speakable("15 km/h") == "fifteen kilometers per hour"
    assert speakable("45%") == "forty-five percent"
    assert speakable("$12.50") == "twelve dollars fifty cents"
    assert speakable("-3°C") == "minus three degrees Celsius"
    assert speakable("3.5") == "three point five"
    assert speakable("1,200 people") == "one thousand two hundred people"
    assert speakable("call 0301234") == "call zero three zero one two three four"
    assert speakable("May 3") == "May third"
    assert speakable("Dr. Smith, e.g. here") == "Doctor Smith, for example here"


def test_number_words() -> None:
    assert number_words(0) == "zero" and number_words(42) == "forty-two"
    assert number_words(1999) == "one thousand nine hundred ninety-nine"
    assert ordinal_words(1) == "first" and ordinal_words(22) == "twenty-second"
    assert ordinal_words(30) == "thirtieth"


def test_buttons_are_read_as_choices() -> None:
    assert buttons_to_speech([{"title": "Yes"}, {"title": "No"}]) == "You can say: Yes, or No."
    assert buttons_to_speech([]) == ""


def test_sentences_split_and_long_ones_cut() -> None:
    assert split_sentences("Hi! How are you? Fine.") == ["Hi!", "How are you?", "Fine."]
    long = ", ".join(["word word word word"] * 30) + "."
    parts = split_sentences(long, max_chars=100)
    assert all(len(p) <= 100 for p in parts) and len(parts) > 3
    assert split_sentences("x" * 500, max_chars=100)


def test_the_first_sentence_speaks_its_leading_clause_first() -> None:
    assert speech_chunks("Sure, that was request one. Here it is.") == [
        "Sure,",
        "that was request one.",
        "Here it is.",
    ]
    # later sentences stay whole; a short tail is not worth a seam
    assert speech_chunks("Hi! Okay, so, one two three.") == ["Hi!", "Okay, so, one two three."]
    assert lead_clause("Okay, never mind.") == ["Okay, never mind."]
    assert lead_clause("Okay; I will tell you now.") == ["Okay;", "I will tell you now."]
    assert lead_clause("It's ten past four in Tokyo.") == ["It's ten past four in Tokyo."]
    assert lead_clause(", and then some more words.") == [", and then some more words."]
    assert speech_chunks("") == []


def test_twelve_hour_times_keep_the_half_of_day_the_text_gives() -> None:
    assert speakable("It's 8:04 in the evening.") == "It's eight oh four in the evening."
    assert speakable("It is 12:30 in Tokyo") == "It is twelve thirty in Tokyo"
    assert speakable("at 0:30") == "at twelve thirty a.m."
