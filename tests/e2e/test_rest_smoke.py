"""The real Rasa server, trained model and action server answering through the REST channel."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def post_raw(url: str, body: bytes, timeout: float = 60) -> tuple[int, bytes]:
    """POSTs raw bytes; returns (status, body) also for HTTP errors."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def say(stack: Stack, text: str, sender: str | None = None) -> list[dict[str, Any]]:
    """Sends one REST message and returns the bot's replies."""
    body = json.dumps({"sender": sender or uuid.uuid4().hex, "message": text}).encode()
    status, raw = post_raw(f"{stack.url}/webhooks/rest/webhook", body)
    assert status == 200, raw
    return json.loads(raw)


def texts(replies: list[dict[str, Any]]) -> str:
    """All reply texts joined, lower-cased."""
    return " ".join(r.get("text", "") for r in replies).lower()


def test_greeting_gets_a_greeting(stack: Stack) -> None:
    replies = say(stack, "hello there")
    assert replies, "no reply to a greeting"
    assert any(w in texts(replies) for w in ("hi", "hello", "hey"))


def test_what_can_you_do_lists_the_tools(stack: Stack) -> None:
    reply = texts(say(stack, "what can you do"))
    assert "time" in reply and "weather" in reply and "reminder" in reply


def test_replies_are_written_for_the_ear(stack: Stack) -> None:
    for text in ("hi", "what can you do", "are you a robot", "thanks", "goodbye"):
        for reply in say(stack, text):
            spoken = reply.get("text", "")
            assert not any(ch in spoken for ch in "*_#`[]<>"), spoken


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"sender": "bad-1", "message": ""}).encode(),
        json.dumps({"sender": "bad-2", "message": "x" * 10_000}).encode(),
        json.dumps({"sender": "bad-3", "message": "um " * 3_000}).encode(),
        b'{"sender": "bad-4", "message": ',
        b'{"sender": "bad-5", "message": "caf\xe9 \xff\xfe"}',
        b"\x00\x01\x02",
        json.dumps({"sender": "bad-6"}).encode(),
        json.dumps(["not", "an", "object"]).encode(),
    ],
    ids=[
        "empty",
        "10k-chars",
        "10k-words",
        "truncated-json",
        "non-utf8",
        "binary",
        "no-msg",
        "list",
    ],
)
def test_bad_input_gets_an_error_or_a_reply_and_the_server_goes_on(
    stack: Stack, body: bytes
) -> None:
    status, raw = post_raw(f"{stack.url}/webhooks/rest/webhook", body)
    assert status in (200, 400), (status, raw[:500])
    if status == 200:
        assert isinstance(json.loads(raw), list)  # a well-formed (possibly empty) reply
    else:
        assert b"must" in raw  # a clear reason
    assert "reminder" in texts(say(stack, "what can you do"))


def test_a_long_message_is_cut_and_answered(stack: Stack) -> None:
    replies = say(stack, "what can you do " + "and " * 3_000)
    assert replies and all("text" in r or "custom" in r for r in replies)
