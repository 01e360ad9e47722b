"""The user's timezone from widget metadata, a caller's number, or the default; presence."""

from __future__ import annotations

import pytest

from actions.services.user_context import (
    caller_number,
    is_connected,
    user_zone,
    zone_for_phone_number,
)
from tests.actions.conftest import make_tracker


def test_browser_timezone_wins() -> None:
    tracker = make_tracker("hi", metadata={"timezone": "Asia/Tokyo", "caller_number": "+4420"})
    assert user_zone(tracker).key == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+81312345678", "Asia/Tokyo"),
        ("+442071234567", "Europe/London"),
        ("+4930123456", "Europe/Berlin"),
        ("+12125551234", "America/New_York"),
        ("+14155551234", "America/Los_Angeles"),
        ("+13125551234", "America/Chicago"),
        ("+13035551234", "America/Denver"),
        ("+18085551234", "Pacific/Honolulu"),
        ("+19995551234", "America/New_York"),
        ("+61212345678", "Australia/Sydney"),
        ("+353112345678", "Europe/Dublin"),
    ],
)
def test_zone_from_caller_number(number: str, zone: str) -> None:
    assert zone_for_phone_number(number).key == zone  # type: ignore[union-attr]
    assert user_zone(make_tracker("hi", metadata={"caller_number": number})).key == zone


@pytest.mark.parametrize("number", ["", "12345", "+", "+999999", "anonymous"])
def test_bad_numbers_give_no_zone(number: str) -> None:
    assert zone_for_phone_number(number) is None


def test_invalid_timezone_falls_back_to_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_TIMEZONE", "Europe/Paris")
    assert user_zone(make_tracker("hi", metadata={"timezone": "Mars/Olympus"})).key == (
        "Europe/Paris"
    )
    monkeypatch.setenv("DEFAULT_TIMEZONE", "Not/AZone")
    assert user_zone(make_tracker("hi")).key == "UTC"
    monkeypatch.delenv("DEFAULT_TIMEZONE")
    assert user_zone(make_tracker("hi")).key == "UTC"


def test_metadata_from_an_earlier_message_is_used() -> None:
    earlier = {
        "event": "user",
        "text": "hello",
        "parse_data": {},
        "input_channel": "twilio_media",
        "metadata": {"caller_number": "+81312345678"},
    }
    tracker = make_tracker("EXTERNAL_reminder", events=[earlier], channel=None)
    assert user_zone(tracker).key == "Asia/Tokyo"
    assert caller_number(tracker) == "+81312345678"


def test_presence() -> None:
    assert is_connected(make_tracker("hi", channel="rest"))
    assert is_connected(make_tracker("hi", channel=None))
    assert is_connected(make_tracker("hi", channel="browser_voice"))
    assert not is_connected(make_tracker("hi", channel="browser_voice", slots={"connected": False}))
    assert not is_connected(
        make_tracker("hi", channel="twilio_media", metadata={"connected": False})
    )
    assert is_connected(make_tracker("hi", channel="rest", slots={"connected": False}))
