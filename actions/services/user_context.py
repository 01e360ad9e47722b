"""Who the user is and where: timezone from metadata or phone number, channel, presence.

Timezone rules (simple and documented):
1. ``metadata.timezone`` (an IANA name the browser widget sends) when it is valid;
2. else ``metadata.caller_number`` (E.164): the country calling code picks the zone; for +1 the
   area code picks the North American zone when it is in a small table, else America/New_York;
3. else env ``DEFAULT_TIMEZONE`` (default "UTC").
The newest user message that carries metadata wins, so triggered intents (no metadata) still
find the user's zone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rasa_sdk import Tracker

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
VOICE_CHANNELS = frozenset({"browser_voice", "twilio_media"})


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the default clock of every action)."""
    return datetime.now(timezone.utc)


# Country calling codes -> the zone most people there live in. Longest prefix wins.
_COUNTRY_ZONES: dict[str, str] = {
    "1": "America/New_York",
    "7": "Europe/Moscow",
    "20": "Africa/Cairo",
    "27": "Africa/Johannesburg",
    "30": "Europe/Athens",
    "31": "Europe/Amsterdam",
    "32": "Europe/Brussels",
    "33": "Europe/Paris",
    "34": "Europe/Madrid",
    "36": "Europe/Budapest",
    "39": "Europe/Rome",
    "40": "Europe/Bucharest",
    "41": "Europe/Zurich",
    "43": "Europe/Vienna",
    "44": "Europe/London",
    "45": "Europe/Copenhagen",
    "46": "Europe/Stockholm",
    "47": "Europe/Oslo",
    "48": "Europe/Warsaw",
    "49": "Europe/Berlin",
    "51": "America/Lima",
    "52": "America/Mexico_City",
    "54": "America/Argentina/Buenos_Aires",
    "55": "America/Sao_Paulo",
    "56": "America/Santiago",
    "57": "America/Bogota",
    "60": "Asia/Kuala_Lumpur",
    "61": "Australia/Sydney",
    "62": "Asia/Jakarta",
    "63": "Asia/Manila",
    "64": "Pacific/Auckland",
    "65": "Asia/Singapore",
    "66": "Asia/Bangkok",
    "81": "Asia/Tokyo",
    "82": "Asia/Seoul",
    "84": "Asia/Ho_Chi_Minh",
    "86": "Asia/Shanghai",
    "90": "Europe/Istanbul",
    "91": "Asia/Kolkata",
    "92": "Asia/Karachi",
    "234": "Africa/Lagos",
    "254": "Africa/Nairobi",
    "351": "Europe/Lisbon",
    "353": "Europe/Dublin",
    "358": "Europe/Helsinki",
    "420": "Europe/Prague",
    "852": "Asia/Hong_Kong",
    "886": "Asia/Taipei",
    "966": "Asia/Riyadh",
    "971": "Asia/Dubai",
    "972": "Asia/Jerusalem",
}

# North American area codes outside the Eastern zone (a small, common subset).
_NANP_ZONES: dict[str, str] = {
    **dict.fromkeys(
        [
            "206",
            "213",
            "253",
            "310",
            "323",
            "360",
            "408",
            "415",
            "425",
            "503",
            "510",
            "530",
            "559",
            "562",
            "619",
            "626",
            "650",
            "661",
            "702",
            "707",
            "714",
            "725",
            "747",
            "760",
            "775",
            "805",
            "818",
            "858",
            "909",
            "916",
            "925",
            "949",
            "951",
            "971",
            "604",
            "778",
            "236",
            "250",
        ],
        "America/Los_Angeles",
    ),
    **dict.fromkeys(
        [
            "214",
            "217",
            "224",
            "254",
            "281",
            "309",
            "312",
            "314",
            "316",
            "318",
            "319",
            "331",
            "346",
            "361",
            "402",
            "405",
            "409",
            "409",
            "414",
            "430",
            "432",
            "469",
            "479",
            "501",
            "504",
            "512",
            "515",
            "563",
            "573",
            "601",
            "608",
            "612",
            "615",
            "618",
            "630",
            "636",
            "651",
            "682",
            "708",
            "713",
            "715",
            "731",
            "737",
            "763",
            "773",
            "785",
            "815",
            "816",
            "817",
            "830",
            "832",
            "847",
            "872",
            "901",
            "903",
            "913",
            "918",
            "920",
            "931",
            "936",
            "940",
            "952",
            "956",
            "972",
            "979",
            "204",
            "306",
            "431",
        ],
        "America/Chicago",
    ),
    **dict.fromkeys(
        [
            "303",
            "307",
            "385",
            "406",
            "505",
            "575",
            "719",
            "720",
            "801",
            "970",
            "403",
            "587",
            "780",
            "825",
        ],
        "America/Denver",
    ),
    **dict.fromkeys(["480", "520", "602", "623", "928"], "America/Phoenix"),
    "808": "Pacific/Honolulu",
    "907": "America/Anchorage",
    "787": "America/Puerto_Rico",
    "939": "America/Puerto_Rico",
}


def zone_or_none(name: Any) -> ZoneInfo | None:
    """A ZoneInfo for a valid IANA name, else None."""
    if not isinstance(name, str) or not name.strip() or ".." in name:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone_for_phone_number(number: str) -> ZoneInfo | None:
    """Infer a timezone from an E.164 number by its country calling code (see module doc)."""
    digits = "".join(ch for ch in str(number) if ch.isdigit())
    if not digits or not str(number).strip().startswith("+"):
        return None
    if digits.startswith("1") and len(digits) >= 4:
        return ZoneInfo(_NANP_ZONES.get(digits[1:4], "America/New_York"))
    for length in (3, 2, 1):
        zone = _COUNTRY_ZONES.get(digits[:length])
        if zone:
            return ZoneInfo(zone)
    return None


def _metadata_messages(tracker: Tracker) -> list[dict[str, Any]]:
    """Metadata dicts, newest first: the latest message, then earlier user events."""
    found: list[dict[str, Any]] = []
    latest = (tracker.latest_message or {}).get("metadata")
    if isinstance(latest, dict) and latest:
        found.append(latest)
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            meta = event.get("metadata")
            if isinstance(meta, dict) and meta:
                found.append(meta)
    return found


def metadata_value(tracker: Tracker, key: str) -> Any:
    """The newest user-message metadata value for ``key``, or None."""
    for meta in _metadata_messages(tracker):
        value = meta.get(key)
        if value not in (None, ""):
            return value
    return None


def default_zone() -> ZoneInfo:
    """The zone from env DEFAULT_TIMEZONE, or UTC when unset or invalid."""
    name = os.environ.get("DEFAULT_TIMEZONE", "UTC")
    zone = zone_or_none(name)
    if zone is None:
        logger.warning("DEFAULT_TIMEZONE=%r is not a valid IANA zone; using UTC", name)
        return ZoneInfo("UTC")
    return zone


def user_zone(tracker: Tracker) -> ZoneInfo:
    """The user's timezone (see module doc for the rules)."""
    for meta in _metadata_messages(tracker):
        zone = zone_or_none(meta.get("timezone"))
        if zone is not None:
            return zone
        number = meta.get("caller_number")
        if number:
            zone = zone_for_phone_number(str(number))
            if zone is not None:
                return zone
    return default_zone()


def caller_number(tracker: Tracker) -> str | None:
    """The caller's E.164 number when the user is on a phone call."""
    value = metadata_value(tracker, "caller_number")
    return str(value) if value else None


def latest_channel(tracker: Tracker) -> str | None:
    """The name of the channel the user last wrote or spoke from."""
    try:
        return tracker.get_latest_input_channel()
    except Exception:  # a malformed tracker must not break an action
        return None


def is_connected(tracker: Tracker) -> bool:
    """Whether a spoken reply would reach the user now.

    Voice channels need a live connection: the ``connected`` slot (or ``connected`` metadata)
    when present says so. REST and text channels count as connected, since their clients
    read the tracker.
    """
    channel = latest_channel(tracker)
    if channel not in VOICE_CHANNELS:
        return True
    slot = tracker.slots.get("connected") if tracker.slots else None
    if slot is not None:
        return bool(slot)
    meta = metadata_value(tracker, "connected")
    if meta is not None:
        return bool(meta)
    return True
