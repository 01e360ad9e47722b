"""Unit tests of the Media Streams wire protocol and the Twilio transport (marks, clear, frames)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from channels.twilio import protocol
from channels.twilio.transport import TwilioTransport
from channels.voice.audio import ulaw_decode, ulaw_encode

START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "AC1",
        "streamSid": "MZ1",
        "callSid": "CA1",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"token": "t", "caller": "+15551234567"},
    },
    "streamSid": "MZ1",
}


def test_parse_documented_messages() -> None:
    c = protocol.parse(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    assert c == protocol.Connected("Call", "1.0.0")
    s = protocol.parse(json.dumps(START))
    assert isinstance(s, protocol.Start)
    assert (s.call_sid, s.stream_sid, s.sample_rate, s.encoding) == (
        "CA1",
        "MZ1",
        8000,
        "audio/x-mulaw",
    )
    assert s.custom_parameters["caller"] == "+15551234567" and s.sequence == 1
    payload = base64.b64encode(b"\xff" * 160).decode()
    m = protocol.parse(
        json.dumps(
            {
                "event": "media",
                "sequenceNumber": "3",
                "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": payload},
                "streamSid": "MZ1",
            }
        )
    )
    assert isinstance(m, protocol.Media) and m.payload == b"\xff" * 160 and m.chunk == 1
    d = protocol.parse(
        json.dumps(
            {
                "event": "dtmf",
                "streamSid": "MZ1",
                "sequenceNumber": "5",
                "dtmf": {"track": "inbound_track", "digit": "1"},
            }
        )
    )
    assert d == protocol.Dtmf("MZ1", "1", 5)
    k = protocol.parse(
        json.dumps(
            {"event": "mark", "sequenceNumber": "4", "streamSid": "MZ1", "mark": {"name": "s1"}}
        )
    )
    assert k == protocol.Mark("MZ1", "s1", 4)
    st = protocol.parse(
        json.dumps(
            {
                "event": "stop",
                "sequenceNumber": "5",
                "streamSid": "MZ1",
                "stop": {"accountSid": "AC1", "callSid": "CA1"},
            }
        )
    )
    assert st == protocol.Stop("MZ1", "CA1", 5)
    assert protocol.parse('{"event": "future-thing"}') == protocol.Unknown("future-thing")


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        '{"no": "event"}',
        '{"event": "start"}',
        '{"event": "start", "start": {"mediaFormat": 5}}',
        '{"event": "media", "media": {"payload": "@@@not base64@@@"}}',
        '{"event": "media", "media": {}}',
        '{"event": "media", "sequenceNumber": "x", "media": {"payload": ""}}',
        '{"event": "dtmf", "dtmf": {"digit": "Z"}}',
        '{"event": "mark", "mark": {}}',
        b"\xff\xfe",
    ],
)
def test_parse_rejects_malformed(raw: str | bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.parse(raw)


def test_parse_rejects_huge_frames() -> None:
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.parse("x" * 70_000, max_bytes=64_000)


def test_outbound_messages_follow_the_docs() -> None:
    assert json.loads(protocol.media_message("MZ1", b"\x00\x01")) == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": "AAE="},
    }
    assert json.loads(protocol.mark_message("MZ1", "s1")) == {
        "event": "mark",
        "streamSid": "MZ1",
        "mark": {"name": "s1"},
    }
    assert json.loads(protocol.clear_message("MZ1")) == {"event": "clear", "streamSid": "MZ1"}


class Wire:
    """Collects what the transport sends."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.ended = 0

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def end(self) -> None:
        self.ended += 1

    def of(self, event: str) -> list[dict]:
        return [m for m in self.sent if m["event"] == event]


def _tone(n: int) -> bytes:
    return ulaw_decode(bytes((i * 7) % 256 for i in range(n)))  # PCM16 8 kHz, n samples


async def test_transport_sends_20ms_frames_and_a_mark_per_segment() -> None:
    wire = Wire()
    t = TwilioTransport(wire.send, "MZ1", end_call=wire.end)
    pcm = _tone(1000)  # 125 ms
    await t.send_audio(pcm[:301], "s1")  # odd byte count carried over
    await t.send_audio(pcm[301:], "s1")
    await t.end_segment("s1")
    frames = [base64.b64decode(m["media"]["payload"]) for m in wire.of("media")]
    assert all(len(f) == 160 for f in frames) and len(frames) == 7  # 1000 samples -> 6.25 frames
    assert b"".join(frames)[:1000] == ulaw_encode(pcm)
    assert frames[-1][40:] == b"\xff" * 120  # padded with mu-law silence
    assert wire.sent[-1] == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "s1"}}
    assert all(m["streamSid"] == "MZ1" for m in wire.sent)


async def test_marks_confirm_playback_in_order_and_cleared_marks_do_not() -> None:
    wire = Wire()
    played: list[str] = []
    t = TwilioTransport(wire.send, "MZ1", end_call=wire.end)
    t.on_played = played.append
    for seg in ("a", "b", "c"):
        await t.send_audio(_tone(160), seg)
        await t.end_segment(seg)
    assert t.mark_echoed("b") and played == ["a", "b"]
    await t.clear_audio()
    assert wire.sent[-1] == {"event": "clear", "streamSid": "MZ1"}
    assert not t.mark_echoed("c")  # returned by Twilio after clear: never heard
    assert not t.mark_echoed("zzz")
    assert played == ["a", "b"] and t.pending_marks == ()


async def test_hang_up_waits_for_the_last_mark() -> None:
    wire = Wire()
    t = TwilioTransport(wire.send, "MZ1", end_call=wire.end, hangup_grace_s=5)
    await t.send_audio(_tone(800), "last")
    await t.end_segment("last")
    task = asyncio.create_task(t.hang_up())
    await asyncio.sleep(0.05)
    assert wire.ended == 0  # still playing
    t.mark_echoed("last")
    await asyncio.wait_for(task, 1)
    assert wire.ended == 1


async def test_hang_up_gives_up_waiting_when_marks_never_come() -> None:
    wire = Wire()
    t = TwilioTransport(wire.send, "MZ1", end_call=wire.end, hangup_grace_s=0.05)
    await t.end_segment("lost")
    await asyncio.wait_for(t.hang_up(), 2)
    assert wire.ended == 1


async def test_stalled_socket_ends_the_call() -> None:
    ended = []

    async def stuck(_: str) -> None:
        await asyncio.sleep(10)

    async def end() -> None:
        ended.append(1)

    t = TwilioTransport(stuck, "MZ1", end_call=end, send_timeout_s=0.05)
    await asyncio.wait_for(t.send_audio(_tone(160), "s"), 2)
    assert ended == [1] and t.closed
    await t.send_audio(_tone(160), "s")  # dropped, no error
