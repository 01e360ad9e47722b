"""Small helpers shared by the actions (no Action classes here)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker


def latest_entity(tracker: Tracker, name: str) -> str | None:
    """The first value of an entity in the latest user message, as text."""
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == name and entity.get("value") not in (None, ""):
            return str(entity["value"])
    return None


def latest_entities(tracker: Tracker, name: str) -> list[str]:
    """Every value of an entity in the latest user message, as text."""
    return [
        str(e["value"])
        for e in (tracker.latest_message or {}).get("entities") or []
        if e.get("entity") == name and e.get("value") not in (None, "")
    ]


def latest_text(tracker: Tracker) -> str:
    """The latest user message text ("" when none)."""
    return str((tracker.latest_message or {}).get("text") or "")


def latest_intent(tracker: Tracker) -> str | None:
    """The latest user message's intent name."""
    intent: Any = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name") if isinstance(intent, dict) else None


def place_query(tracker: Tracker) -> str | None:
    """The place the user named now (entity) or, failing that, the location slot."""
    value = latest_entity(tracker, "location") or tracker.get_slot("location")
    if not value or str(value).strip().lower() in _HERE:
        return None
    return str(value).strip()


_HERE = {"here", "my place", "my location", "where i am", "home", "local", "my area", "my city"}


def say_place(name: str) -> str:
    """A place name as it should be read: "Xyzzy", "New York City"."""
    name = " ".join(str(name).split())
    if name.islower():
        return name.title()
    return name
