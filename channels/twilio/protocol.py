"""Twilio Media Streams wire protocol: parse Twilio's messages, build ours. Pure functions.

Inbound (Twilio -> us): ``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``stop``.
Outbound (us -> Twilio, bidirectional streams): ``media``, ``mark``, ``clear``.
See https://www.twilio.com/docs/voice/media-streams/websocket-messages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MULAW_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = MULAW_RATE * FRAME_MS // 1000  # 160 mu-law bytes per 20 ms
MULAW_SILENCE = b"\xff"


class ProtocolError(ValueError):
    """A message that does not follow the Media Streams protocol."""


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: dict[str, str] = field(default_factory=dict)
    sequence: int | None = None


@dataclass(frozen=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp: int
    payload: bytes
    sequence: int | None = None


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    digit: str
    sequence: int | None = None


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    name: str
    sequence: int | None = None


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    call_sid: str
    sequence: int | None = None


@dataclass(frozen=True)
class Unknown:
    event: str


Event = Connected | Start | Media | Dtmf | Mark | Stop | Unknown

_DTMF_DIGITS = set("0123456789*#ABCD")


def _int(value: Any, what: str, default: int | None = None) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"{what}: not a number: {value!r}") from e


def _obj(msg: dict[str, Any], key: str) -> dict[str, Any]:
    value = msg.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"{msg.get('event')}: missing object {key!r}")
    return value


def parse(raw: str | bytes, *, max_bytes: int = 64_000) -> Event:
    """Parses one text frame from Twilio; raises ``ProtocolError`` for anything malformed."""
    if len(raw) > max_bytes:
        raise ProtocolError(f"message of {len(raw)} bytes exceeds {max_bytes}")
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError("not JSON") from e
    if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
        raise ProtocolError("not an event object")
    event = msg["event"]
    seq = _int(msg.get("sequenceNumber"), "sequenceNumber")
    sid = str(msg.get("streamSid") or "")
    if event == "connected":
        return Connected(str(msg.get("protocol", "")), str(msg.get("version", "")))
    if event == "start":
        s = _obj(msg, "start")
        fmt = s.get("mediaFormat") or {}
        if not isinstance(fmt, dict):
            raise ProtocolError("start: mediaFormat is not an object")
        params = s.get("customParameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError("start: customParameters is not an object")
        tracks = s.get("tracks") or ["inbound"]
        if not isinstance(tracks, list):
            raise ProtocolError("start: tracks is not a list")
        return Start(
            stream_sid=str(s.get("streamSid") or sid),
            call_sid=str(s.get("callSid") or ""),
            account_sid=str(s.get("accountSid") or ""),
            tracks=tuple(str(t) for t in tracks),
            encoding=str(fmt.get("encoding", "audio/x-mulaw")),
            sample_rate=_int(fmt.get("sampleRate"), "sampleRate", MULAW_RATE) or MULAW_RATE,
            channels=_int(fmt.get("channels"), "channels", 1) or 1,
            custom_parameters={str(k): str(v) for k, v in params.items()},
            sequence=seq,
        )
    if event == "media":
        m = _obj(msg, "media")
        payload = m.get("payload")
        if not isinstance(payload, str):
            raise ProtocolError("media: payload missing")
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ProtocolError("media: payload is not base64") from e
        return Media(
            stream_sid=sid,
            track=str(m.get("track", "inbound")),
            chunk=_int(m.get("chunk"), "chunk", 0) or 0,
            timestamp=_int(m.get("timestamp"), "timestamp", 0) or 0,
            payload=audio,
            sequence=seq,
        )
    if event == "dtmf":
        d = _obj(msg, "dtmf")
        digit = str(d.get("digit", ""))
        if digit not in _DTMF_DIGITS:
            raise ProtocolError(f"dtmf: bad digit {digit!r}")
        return Dtmf(sid, digit, seq)
    if event == "mark":
        name = _obj(msg, "mark").get("name")
        if not isinstance(name, str):
            raise ProtocolError("mark: name missing")
        return Mark(sid, name, seq)
    if event == "stop":
        s = msg.get("stop") if isinstance(msg.get("stop"), dict) else {}
        return Stop(sid, str(s.get("callSid") or ""), seq)
    return Unknown(event)


def media_message(stream_sid: str, mulaw: bytes) -> str:
    """Outbound ``media``: bot audio (mu-law 8 kHz, base64, no headers)."""
    payload = base64.b64encode(mulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    """Outbound ``mark``: Twilio echoes it once the audio sent before it has played."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """Outbound ``clear``: Twilio drops buffered audio and returns the pending marks."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})
