"""Talking to a running Rasa server over HTTP in end-to-end tests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any


def post_raw(url: str, body: bytes, timeout: float = 60) -> tuple[int, bytes]:
    """POSTs raw bytes; returns (status, body) also for HTTP errors."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def say(base_url: str, text: str, sender: str, metadata: dict[str, Any] | None = None) -> str:
    """Sends one REST message; returns the bot's reply texts joined, lower-cased."""
    payload: dict[str, Any] = {"sender": sender, "message": text}
    if metadata:
        payload["metadata"] = metadata
    status, raw = post_raw(f"{base_url}/webhooks/rest/webhook", json.dumps(payload).encode())
    assert status == 200, raw
    return " ".join(r.get("text", "") for r in json.loads(raw)).lower()


def bot_texts(base_url: str, sender: str) -> list[str]:
    """Every bot utterance in the sender's tracker (all sessions), lower-cased."""
    with urllib.request.urlopen(
        f"{base_url}/conversations/{sender}/tracker?include_events=ALL", timeout=30
    ) as resp:
        tracker = json.loads(resp.read())
    return [(e.get("text") or "").lower() for e in tracker["events"] if e["event"] == "bot"]


def wait_for_bot_text(base_url: str, sender: str, needle: str, timeout: float) -> list[str]:
    """Polls the tracker until a bot utterance contains needle; returns the matching ones."""
    deadline = time.monotonic() + timeout
    while True:
        hits = [t for t in bot_texts(base_url, sender) if needle in t]
        if hits or time.monotonic() > deadline:
            return hits
        time.sleep(1)
