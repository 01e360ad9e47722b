"""The tools through the real stack: Rasa server, trained model, action server, SQLite stores."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from actions.services.spoken import time_words
from tests.e2e.conftest import Stack
from tests.e2e.helpers import bot_texts, say, wait_for_bot_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def sender() -> str:
    """A fresh conversation id."""
    return uuid.uuid4().hex


def test_time_in_tokyo_says_tokyos_time(stack: Stack) -> None:
    before = datetime.now(ZoneInfo("Asia/Tokyo"))
    reply = say(stack.url, "what time is it in tokyo", sender())
    after = datetime.now(ZoneInfo("Asia/Tokyo"))
    expected = {time_words(before).lower(), time_words(after).lower()}
    assert "tokyo" in reply
    assert any(e in reply for e in expected), (reply, expected)


def test_local_time_uses_the_browsers_timezone(stack: Stack) -> None:
    now = datetime.now(ZoneInfo("America/Sao_Paulo"))
    reply = say(stack.url, "what time is it", sender(), metadata={"timezone": "America/Sao_Paulo"})
    expected = {time_words(now).lower(), time_words(now + timedelta(minutes=1)).lower()}
    assert any(e in reply for e in expected), (reply, expected)


def set_reminder(stack: Stack, who: str, request: str) -> None:
    """Asks for a reminder and confirms it."""
    question = say(stack.url, request, who)
    assert "remind you" in question and "?" in question, question
    confirmation = say(stack.url, "yes", who)
    assert "remind you" in confirmation and "won't" not in confirmation, confirmation


def test_reminder_is_delivered_to_the_same_sender_within_seventy_seconds(stack: Stack) -> None:
    who = sender()
    set_reminder(stack, who, "remind me to stretch in one minute")
    assert "stretch" in say(stack.url, "what are my reminders", who)
    delivered = wait_for_bot_text(stack.url, who, "here's your reminder", timeout=75)
    assert delivered == ["here's your reminder: stretch."], bot_texts(stack.url, who)


def test_two_sessions_set_reminders_at_once(stack: Stack) -> None:
    people = {sender(): "water the plants", sender(): "call the bank"}

    def conversation(item: tuple[str, str]) -> str:
        who, what = item
        set_reminder(stack, who, f"remind me to {what} tomorrow at nine am")
        return say(stack.url, "list my reminders", who)

    with ThreadPoolExecutor(2) as pool:
        listings = list(pool.map(conversation, people.items()))
    for (_, what), listing in zip(people.items(), listings, strict=True):
        assert what in listing
        other = next(w for w in people.values() if w != what)
        assert other not in listing  # each user sees only their own


def test_reminder_due_while_servers_are_down_fires_once_after_restart(own_stack: Stack) -> None:
    own_stack.start_actions()
    own_stack.start_rasa()
    who = sender()
    set_reminder(own_stack, who, "remind me to drink some water in one minute")
    own_stack.stop()
    time.sleep(90)  # the reminder falls due while both servers are down
    own_stack.start_actions()
    own_stack.start_rasa()
    delivered = wait_for_bot_text(own_stack.url, who, "sorry, this is late", timeout=60)
    assert len(delivered) == 1 and "drink some water" in delivered[0], bot_texts(own_stack.url, who)
    # Another restart must not deliver it again.
    own_stack.stop()
    own_stack.start_actions()
    own_stack.start_rasa()
    time.sleep(8)
    assert wait_for_bot_text(own_stack.url, who, "sorry, this is late", timeout=0) == delivered
