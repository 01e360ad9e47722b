"""Shared fixtures: real rasa_sdk Trackers, the real domain, a pinned clock, a real SQLite store."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.services.reminder_store import ReminderStore

ROOT = Path(__file__).resolve().parents[2]

# Unit tests never reach the network or a developer's LLM by accident.
for _var in ("LLM_BASE_URL", "OPEN_METEO_URL", "WEATHER_UNITS", "DEFAULT_TIMEZONE"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    """The real domain.yml as the action server receives it."""
    with open(ROOT / "domain.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def make_tracker(
    text: str = "",
    intent: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    channel: str | None = "rest",
    sender_id: str = "user-1",
    active_loop: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Tracker:
    """A Tracker whose latest user message is ``text`` (also appended as a user event)."""
    latest: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.95} if intent else {},
        "entities": [
            {"entity": e["entity"], "value": e["value"], "start": 0, "end": 0}
            for e in entities or []
        ],
        "metadata": metadata or {},
        **(extra or {}),
    }
    history = list(events or [])
    history.append(
        {
            "event": "user",
            "text": text,
            "parse_data": latest,
            "input_channel": channel,
            "metadata": metadata or {},
        }
    )
    all_slots = {"requested_slot": None, **(slots or {})}
    return Tracker(
        sender_id=sender_id,
        slots=all_slots,
        latest_message=latest,
        events=history,
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def ent(entity: str, value: str) -> dict[str, str]:
    """An entity as the NLU reports it."""
    return {"entity": entity, "value": value}


def fixed_clock(when: datetime) -> Callable[[], datetime]:
    """A clock pinned to ``when`` (aware)."""
    assert when.tzinfo is not None
    return lambda: when


class MovableClock:
    """A pinned clock that tests can move forward."""

    def __init__(self, when: datetime) -> None:
        self.now = when

    def __call__(self) -> datetime:
        return self.now


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    """What the action said (text or response name)."""
    return [m.get("text") or m.get("response") or "" for m in dispatcher.messages]


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """SlotSet events as {name: value}."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


@pytest.fixture()
def store(tmp_path: Path) -> ReminderStore:
    """A real SQLite reminder store in a temp dir (created on first use)."""
    return ReminderStore(f"sqlite:///{tmp_path / 'var' / 'reminders.db'}")


UTC = timezone.utc
