"""A real Rasa server (trained model, SQLite tracker) + action server with the browser channel.

The credentials file lists the channel twice: ``browser_voice`` with defaults plus one allowed
foreign origin, and ``browser_voice_strict`` (tests/browser/token_channel.py) with a JWT key
and tight limits, so every protocol rule can be driven against one server.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import (
    Server,
    free_port,
    latest_model,
    stack_env,
    start_action_server,
    start_rasa_server,
)

JWT_KEY = "browser-voice-test-secret-of-32-bytes-or-more"

CREDENTIALS = """
rest:
channels.browser_voice.BrowserVoiceInput:
  allowed_origins: ["{allowed_origin}"]
tests.browser.token_channel.StrictBrowserVoiceInput:
  jwt_key: {jwt_key}
  hello_timeout_s: 1.5
  max_frame_bytes: 4000
  max_messages_per_second: 40
  max_session_s: 6
  max_bad_messages: 5
  send_timeout_s: 3
  max_queued_bytes: 200000
  output_sample_rate: 48000
"""


@dataclass
class VoiceStack:
    """The running servers and their URLs."""

    rasa: Server
    actions: Server
    workdir: Path
    embed_port: int  # a free loopback port whose origin (http://127.0.0.1:port) is allowed

    @property
    def allowed_origin(self) -> str:
        """A foreign origin listed in allowed_origins."""
        return f"http://127.0.0.1:{self.embed_port}"

    @property
    def http(self) -> str:
        """Base URL of the Rasa server."""
        return self.rasa.url

    def channel_url(self, name: str = "browser_voice") -> str:
        """URL of a browser channel's page (ends with a slash)."""
        return f"{self.rasa.url}/webhooks/{name}/"

    def ws_url(self, name: str = "browser_voice") -> str:
        """WebSocket URL of a browser channel."""
        return self.channel_url(name).replace("http://", "ws://") + "websocket"

    def health(self, name: str = "browser_voice") -> dict:
        """The channel's health JSON."""
        with urllib.request.urlopen(self.channel_url(name) + "health", timeout=5) as r:
            return json.loads(r.read())

    def tracker(self, sender_id: str) -> dict:
        """The conversation's tracker from Rasa's HTTP API."""
        url = f"{self.rasa.url}/conversations/{sender_id}/tracker"
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())


@contextlib.contextmanager
def running_voice_stack(workdir: Path) -> Iterator[VoiceStack]:
    """Starts the action server and Rasa (with both browser endpoints) in ``workdir``."""
    rasa_port, action_port, embed_port = free_port(), free_port(), free_port()
    env = stack_env(
        workdir,
        rasa_port,
        action_port,
        TRACKER_DIALECT="sqlite",
        TRACKER_DB=str(workdir / "tracker.db"),
        TRACKER_DB_HOST="",
        TRACKER_DB_PORT="",
        TRACKER_DB_USER="",
        TRACKER_DB_PASSWORD="",
    )
    # endpoints.yml's lock store on one machine (kept if tests/servers.py already sets them)
    for key, value in {
        "LOCK_STORE_TYPE": "in_memory",
        "REDIS_HOST": "",
        "REDIS_PORT": "",
        "REDIS_DB": "",
        "REDIS_PASSWORD": "",
    }.items():
        env.setdefault(key, value)
    creds = workdir / "credentials.yml"
    creds.write_text(
        CREDENTIALS.format(allowed_origin=f"http://127.0.0.1:{embed_port}", jwt_key=JWT_KEY)
    )
    model = Path(os.environ["BROWSER_TEST_MODEL"]) if "BROWSER_TEST_MODEL" in os.environ else None
    actions = start_action_server(env, action_port, workdir / "actions.log")
    try:
        rasa = start_rasa_server(
            env, rasa_port, workdir / "rasa.log", model=model or latest_model(), credentials=creds
        )
    except Exception:
        actions.stop()
        raise
    try:
        yield VoiceStack(rasa=rasa, actions=actions, workdir=workdir, embed_port=embed_port)
    finally:
        rasa.stop()
        actions.stop()


@pytest.fixture(scope="session")
def voice_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceStack]:
    """Rasa (with both browser endpoints) and the action server, for the whole test session."""
    with running_voice_stack(tmp_path_factory.mktemp("browser-stack")) as stack:
        yield stack
