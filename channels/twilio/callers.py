"""Who is on the line: E.164 checks, stable sender ids, Rasa metadata. Pure functions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CHANNEL_NAME = "twilio_media"


def is_e164(number: Any) -> bool:
    """True for a number like ``+15551234567`` (ITU E.164: ``+``, country code, <= 15 digits)."""
    return isinstance(number, str) and bool(_E164.match(number))


def person_number(params: Mapping[str, Any]) -> str:
    """The person's number in a voice webhook: ``From`` inbound, ``To`` on outbound calls."""
    direction = str(params.get("Direction", "inbound"))
    key = "To" if direction.startswith("outbound") else "From"
    return str(params.get(key) or "")


def person_country(params: Mapping[str, Any]) -> str:
    """ISO country Twilio derived for the person's number (``FromCountry``/``ToCountry``)."""
    direction = str(params.get("Direction", "inbound"))
    key = "ToCountry" if direction.startswith("outbound") else "FromCountry"
    return str(params.get(key) or "")


def sender_id(number: str, call_sid: str, *, hashed: bool = False, salt: str | None = None) -> str:
    """A sender id that is stable per caller so history and reminders follow them across calls.

    Withheld or non-phone callers (``anonymous``, ``client:…``) get a per-call id.
    """
    if not is_e164(number):
        return f"twilio-anon-{call_sid or 'unknown'}"
    if not hashed:
        return number
    digest = hashlib.sha256(f"{salt or ''}:{number}".encode()).hexdigest()[:24]
    return f"tel-{digest}"


def rasa_metadata(
    *, number: str, country: str, call_sid: str, direction: str, purpose: str | None = None
) -> dict[str, Any]:
    """What Rasa gets with every message of the call (the time action uses ``caller_number``)."""
    meta: dict[str, Any] = {
        "channel": CHANNEL_NAME,
        "caller_number": number if is_e164(number) else None,
        "caller_country": country or None,
        "call_sid": call_sid,
        "direction": direction,
    }
    if purpose:
        meta["purpose"] = purpose
    return meta
