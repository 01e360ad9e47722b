"""Helpers for the browser channel tests: a protocol client, speech files for the fake mic."""

from __future__ import annotations

import asyncio
import json
import time
import wave
from pathlib import Path
from typing import Any

import websockets

from channels.voice.audio import resample_pcm16
from tests.speech import piper_speech, silence

FRAME_BYTES = 640  # 20 ms at 16 kHz


def hello(session_id: str | None = None, **extra: Any) -> str:
    """A protocol v1 hello."""
    msg: dict[str, Any] = {
        "type": "hello",
        "protocol": 1,
        "timezone": "Europe/Berlin",
        "language": "en",
        "mode": "hands_free",
        "greet": False,
    }
    if session_id:
        msg["session_id"] = session_id
    msg.update(extra)
    return json.dumps(msg)


class Client:
    """A plain WebSocket client that speaks the browser protocol and records what it gets."""

    def __init__(self, ws: websockets.WebSocketClientProtocol) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.audio: dict[str, int] = {}  # segment id -> bytes received
        self.segment: str | None = None

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> Client:
        """Opens a socket (no hello yet)."""
        ws = await websockets.connect(url, max_size=None, open_timeout=20, **kwargs)
        return cls(ws)

    async def send(self, msg: dict[str, Any] | str | bytes) -> None:
        """Sends a dict as JSON, or a str/bytes frame as is."""
        await self.ws.send(json.dumps(msg) if isinstance(msg, dict) else msg)

    async def recv(self, timeout: float = 30) -> dict[str, Any] | bytes:
        """The next frame: a JSON event (recorded) or audio bytes (counted)."""
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(raw, bytes):
            if self.segment is not None:
                self.audio[self.segment] = self.audio.get(self.segment, 0) + len(raw)
            return raw
        event = json.loads(raw)
        self.events.append(event)
        if event.get("type") == "audio_start":
            self.segment = event["id"]
            self.audio.setdefault(event["id"], 0)
        elif event.get("type") == "audio_end":
            self.segment = None
        return event

    async def wait_for(
        self, type_: str, timeout: float = 60, confirm_playback: bool = True, **match: Any
    ) -> dict[str, Any]:
        """Reads until an event of this type (with matching fields) arrives.

        Acknowledges every ``audio_end`` with ``playback_done`` like a browser would.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {type_} {match} in {timeout} s; got {self.types()}")
            msg = await self.recv(left)
            if isinstance(msg, bytes):
                continue
            if confirm_playback and msg.get("type") == "audio_end":
                await self.send({"type": "playback_done", "id": msg["id"]})
            if msg.get("type") == type_ and all(msg.get(k) == v for k, v in match.items()):
                return msg

    async def hello(self, session_id: str | None = None, **extra: Any) -> dict[str, Any]:
        """Sends hello and returns ``ready``."""
        await self.send(hello(session_id, **extra))
        return await self.wait_for("ready", 60)

    async def closed(self, timeout: float = 20) -> tuple[int | None, str]:
        """Reads until the server closes; returns (code, reason)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                await self.recv(deadline - time.monotonic())
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(self.ws.wait_closed(), 5)
        return self.ws.close_code, self.ws.close_reason

    def types(self) -> list[str]:
        """Types of the events received so far."""
        return [e.get("type", "?") for e in self.events]

    def errors(self) -> list[dict[str, Any]]:
        """The error events received so far."""
        return [e for e in self.events if e.get("type") == "error"]

    async def close(self) -> None:
        """Closes the socket."""
        await self.ws.close()


def speech_pcm(text: str, lead_ms: int = 300, tail_ms: int = 1500) -> bytes:
    """16 kHz PCM16 of the bundled Piper voice saying ``text`` with silence around it."""
    return silence(lead_ms) + piper_speech(text) + silence(tail_ms)


async def stream_pcm(client: Client, pcm: bytes, speed: float = 1.0) -> None:
    """Sends PCM in 20 ms frames at ``speed`` times real time."""
    for off in range(0, len(pcm), FRAME_BYTES):
        await client.send(pcm[off : off + FRAME_BYTES])
        await asyncio.sleep(0.02 / speed)


def write_fake_mic_wav(path: Path, parts: list[tuple[str, int]], rate: int = 48000) -> Path:
    """A WAV for Chrome's fake microphone: each part is (text or "", silence after in ms).

    Chrome loops the file, so it should end with long silence.
    """
    pcm = bytearray(silence(200))
    for text, pause_ms in parts:
        if text:
            pcm += piper_speech(text)
        pcm += silence(pause_ms)
    out = resample_pcm16(bytes(pcm), 16000, rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(out)
    return path
