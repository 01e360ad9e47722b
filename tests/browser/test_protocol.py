"""The browser voice protocol, driven with a plain WebSocket client against a real Rasa server."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
import uuid

import jwt
import pytest
import websockets

from tests.browser.conftest import JWT_KEY, VoiceStack
from tests.browser.helpers import Client, hello, speech_pcm, stream_pcm

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def sid() -> str:
    return uuid.uuid4().hex


def token(**claims: object) -> str:
    return jwt.encode({"sub": "site-user", **claims}, JWT_KEY, algorithm="HS256")


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


async def wait_sessions(stack: VoiceStack, n: int, name: str = "browser_voice") -> int:
    deadline = time.monotonic() + 15
    while True:
        count = stack.health(name)["sessions"]
        if count == n or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.1)


# --- HTTP -----------------------------------------------------------------------------------


def test_page_health_and_static_files(voice_stack: VoiceStack) -> None:
    base = voice_stack.channel_url()
    status, headers, body = get(base)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="widget.js"' in body and b"{{title}}" not in body
    health = voice_stack.health()
    assert health["status"] == "ok" and health["protocol"] == 1
    for name, kind in [
        ("widget.js", "javascript"),
        ("capture-worklet.js", "javascript"),
        ("style.css", "css"),
    ]:
        status, headers, body = get(base + name)
        assert status == 200 and kind in headers["content-type"], name
        assert headers["access-control-allow-origin"] == "*"  # the worklet loads cross-origin
    assert get(base + "nope.js")[0] == 404
    assert get(base + "..%2F..%2Fbrowser_voice.py")[0] == 404
    # without the trailing slash the page's relative URLs would break: redirected
    status, _, body = get(base.rstrip("/"))
    assert status == 200 and b"widget.js" in body


# --- hello, text, audio, reset -----------------------------------------------------------


async def test_hello_greets_and_streams_tagged_audio(voice_stack: VoiceStack) -> None:
    session_id = sid()
    c = await Client.connect(voice_stack.ws_url())
    try:
        ready = await c.hello(session_id, greet=True, output_sample_rate=16000)
        assert ready["protocol"] == 1 and ready["session_id"] == session_id
        assert ready["input"] == {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1}
        assert ready["output"]["sample_rate"] == 16000
        bot = await c.wait_for("bot_text", 60)
        assert bot["text"]
        end = await c.wait_for("audio_end", 60, confirm_playback=False)
        # the first segment is the first sentence ("Hi!", about half a second): real speech, whole
        # PCM16 samples (Piper's timing varies from run to run, so no tighter bound)
        assert c.audio[end["id"]] > 8000 and c.audio[end["id"]] % 2 == 0
        start = next(e for e in c.events if e["type"] == "audio_start" and e["id"] == end["id"])
        assert start["sample_rate"] == 16000
        await c.send({"type": "playback_done", "id": end["id"]})
        await c.send({"type": "ping", "t": 7})
        assert (await c.wait_for("pong", 10))["t"] == 7
    finally:
        await c.close()
    tracker = voice_stack.tracker(session_id)
    first = next(e for e in tracker["events"] if e["event"] == "user")
    assert first["input_channel"] == "browser_voice"
    assert first["metadata"]["channel"] == "browser_voice"
    assert first["metadata"]["timezone"] == "Europe/Berlin"
    assert first["metadata"]["language"] == "en"


async def test_typed_and_spoken_turns_share_one_conversation(voice_stack: VoiceStack) -> None:
    session_id = sid()
    c = await Client.connect(voice_stack.ws_url())
    try:
        await c.hello(session_id)
        await c.send({"type": "text", "text": "what can you do"})
        typed = await c.wait_for("bot_text", 60)
        assert "time" in typed["text"].lower() or "weather" in typed["text"].lower()
        await c.wait_for("turn_metrics", 60)
        await stream_pcm(c, speech_pcm("What time is it in Tokyo?"), speed=2.0)
        vad = await c.wait_for("vad", 30)
        assert vad["speech"] is True
        transcript = await c.wait_for("transcript", 60)
        assert "time" in transcript["text"].lower() and "tokyo" in transcript["text"].lower()
        spoken = await c.wait_for("bot_text", 60)
        assert spoken["text"]
    finally:
        await c.close()
    texts = [
        e.get("text") for e in voice_stack.tracker(session_id)["events"] if e["event"] == "user"
    ]
    assert texts[0] == "what can you do"
    assert any(t and "tokyo" in t.lower() for t in texts[1:])


async def test_reset_starts_a_new_conversation_on_the_same_socket(voice_stack: VoiceStack) -> None:
    first, second = sid(), sid()
    c = await Client.connect(voice_stack.ws_url())
    try:
        await c.hello(first)
        await c.send({"type": "text", "text": "hello"})
        await c.wait_for("bot_text", 60)
        await c.send({"type": "reset", "session_id": second})
        ready = await c.wait_for("ready", 30)
        assert ready["session_id"] == second
        await c.send({"type": "text", "text": "what can you do"})
        await c.wait_for("bot_text", 60)
    finally:
        await c.close()
    users = [e for e in voice_stack.tracker(second)["events"] if e["event"] == "user"]
    assert [u["text"] for u in users if not u["text"].startswith("/")] == ["what can you do"]


async def test_push_to_talk_turn(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url())
    try:
        ready = await c.hello(sid(), mode="push_to_talk")
        assert ready["mode"] == "push_to_talk"
        await c.send({"type": "ptt_start"})
        # a long pause inside the held button must not end the turn
        await stream_pcm(c, speech_pcm("Set a reminder", tail_ms=1500), speed=2.0)
        await stream_pcm(c, speech_pcm("to water the plants", lead_ms=0, tail_ms=200), speed=2.0)
        await c.send({"type": "ptt_end"})
        transcript = await c.wait_for("transcript", 60)
        assert "remind" in transcript["text"].lower() and "plant" in transcript["text"].lower()
    finally:
        await c.close()


# --- refusals -----------------------------------------------------------------------------


async def test_wrong_protocol_version_is_refused(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url())
    await c.send(hello(sid(), protocol=99))
    code, _ = await c.closed()
    assert code == 4409
    assert c.errors()[0]["code"] == "unsupported_protocol" and c.errors()[0]["fatal"] is True


@pytest.mark.parametrize(
    "first",
    [
        b"\x00\x01" * 320,  # audio before hello
        json.dumps({"type": "text", "text": "hi"}),  # a control message before hello
        "not json at all",
        json.dumps(["hello"]),
    ],
)
async def test_messages_before_hello_are_refused(
    voice_stack: VoiceStack, first: str | bytes
) -> None:
    c = await Client.connect(voice_stack.ws_url())
    await c.send(first)
    code, _ = await c.closed()
    assert code == 4400 and c.errors()[0]["code"] == "hello_required"


@pytest.mark.parametrize(
    "bad",
    [
        {"session_id": "short"},
        {"session_id": "../../etc/passwd-xxxxxxxx"},
        {"mode": "telepathy"},
        {"language": 42},
        {"output_sample_rate": 12345},
        {"greet": "yes"},
    ],
)
async def test_hello_of_the_wrong_shape_is_refused(voice_stack: VoiceStack, bad: dict) -> None:
    c = await Client.connect(voice_stack.ws_url())
    msg = json.loads(hello(sid()))
    msg.update(bad)
    await c.send(msg)
    code, _ = await c.closed()
    assert code == 4400 and c.errors()[0]["code"] == "bad_hello"


async def test_bad_messages_after_hello_get_errors_and_the_session_lives_on(
    voice_stack: VoiceStack,
) -> None:
    c = await Client.connect(voice_stack.ws_url())
    try:
        await c.hello(sid())
        cases = [
            ("{not json", "bad_json"),
            (json.dumps({"no": "type"}), "bad_message"),
            (json.dumps({"type": "teleport"}), "unknown_type"),
            (json.dumps({"type": "text"}), "bad_message"),
            (json.dumps({"type": "text", "text": "   "}), "bad_message"),
            (json.dumps({"type": "text", "text": "x" * 1001}), "text_too_long"),
            (json.dumps({"type": "playback_done"}), "bad_message"),
            (json.dumps({"type": "reset", "session_id": "bad id!"}), "bad_message"),
            (json.dumps({"type": "hello", "protocol": 1}), "bad_message"),
        ]
        for raw, code in cases:
            await c.send(raw)
            err = await c.wait_for("error", 10)
            assert err["code"] == code and err["fatal"] is False, raw
        # garbage audio is just noise: no error, the session still answers
        await c.send(os.urandom(641))
        await c.send(os.urandom(1280))
        await c.send({"type": "playback_done", "id": "never-sent"})
        await c.send({"type": "text", "text": "what can you do"})
        assert (await c.wait_for("bot_text", 60))["text"]
    finally:
        await c.close()


async def test_too_many_bad_messages_close_the_socket(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url("browser_voice_strict"))
    await c.hello(sid(), token=token())
    for _ in range(6):
        await c.send("{")
    code, _ = await c.closed()
    assert code == 4400 and c.errors()[-1]["code"] == "too_many_errors"


async def test_oversize_frame_closes_with_a_clear_error(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url("browser_voice_strict"))
    await c.hello(sid(), token=token())
    await c.send(b"\x00" * 4002)
    code, _ = await c.closed()
    assert code == 4413 and c.errors()[-1]["code"] == "frame_too_large"


async def test_oversize_control_message_closes(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url())
    await c.hello(sid())
    await c.send(json.dumps({"type": "text", "text": "x" * 10000}))
    code, _ = await c.closed()
    assert code == 4413 and c.errors()[-1]["code"] == "message_too_large"


async def test_flood_is_rate_limited(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url("browser_voice_strict"))
    await c.hello(sid(), token=token())
    try:
        for _ in range(500):
            await c.send(b"\x00\x00" * 160)
    except websockets.ConnectionClosed:
        pass
    code, _ = await c.closed()
    assert code == 4429 and c.errors()[-1]["code"] == "rate_limited"


async def test_disallowed_origin_is_refused(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url(), origin="http://evil.example")
    code, _ = await c.closed()
    assert code == 4403 and c.errors()[0]["code"] == "origin_not_allowed"
    for origin in (
        voice_stack.allowed_origin,
        voice_stack.http,
    ):  # listed, and the page's own origin
        ok = await Client.connect(voice_stack.ws_url(), origin=origin)
        try:
            assert (await ok.hello(sid()))["type"] == "ready"
        finally:
            await ok.close()


@pytest.mark.parametrize(
    "tok",
    [
        None,
        "garbage",
        jwt.encode({"sub": "x"}, "another-key-that-is-also-32-bytes-long", algorithm="HS256"),
        "expired",
    ],
)
async def test_bad_or_missing_token_is_refused(voice_stack: VoiceStack, tok: str | None) -> None:
    if tok == "expired":
        tok = token(exp=int(time.time()) - 60)
    c = await Client.connect(voice_stack.ws_url("browser_voice_strict"))
    await c.send(hello(sid(), token=tok) if tok else hello(sid()))
    code, _ = await c.closed()
    assert code == 4401 and c.errors()[0]["code"] == "unauthorized"


async def test_good_token_in_hello_or_query(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url("browser_voice_strict"))
    try:
        assert (await c.hello(sid(), token=token()))["output"]["sample_rate"] == 48000
    finally:
        await c.close()
    q = await Client.connect(voice_stack.ws_url("browser_voice_strict") + "?token=" + token())
    try:
        assert (await q.hello(sid()))["type"] == "ready"
    finally:
        await q.close()


async def test_no_hello_times_out(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url("browser_voice_strict"))
    code, _ = await c.closed(10)
    assert code == 4408 and c.errors()[0]["code"] == "hello_timeout"


async def test_session_length_limit(voice_stack: VoiceStack) -> None:
    c = await Client.connect(voice_stack.ws_url("browser_voice_strict"))
    await c.hello(sid(), token=token())
    t0 = time.monotonic()
    code, _ = await c.closed(20)
    assert code == 4408 and c.errors()[-1]["code"] == "session_time_limit"
    assert 5 < time.monotonic() - t0 < 15


# --- robustness -----------------------------------------------------------------------------


async def test_client_that_never_reads_is_dropped_and_others_are_unaffected(
    voice_stack: VoiceStack,
) -> None:
    # max_queue=1: the client library stops reading the socket after one message
    stuck = await Client.connect(voice_stack.ws_url("browser_voice_strict"), max_queue=1)
    await stuck.send(hello(sid(), token=token(), greet=True))
    for _ in range(4):
        await stuck.send({"type": "text", "text": "what can you do"})
    other = await Client.connect(voice_stack.ws_url())
    try:
        await other.hello(sid())
        await other.send({"type": "text", "text": "what can you do"})
        assert (await other.wait_for("bot_text", 90))["text"]
    finally:
        await other.close()
    # the stuck client's backlog (48 kHz audio) overflows the 200 kB queue or stalls 3 s: dropped
    assert await wait_sessions(voice_stack, 0, "browser_voice_strict") == 0
    await stuck.ws.close()


async def test_many_quick_connects_leak_no_sessions(voice_stack: VoiceStack) -> None:
    async def one(i: int) -> None:
        c = await Client.connect(voice_stack.ws_url())
        if i % 3 == 1:
            await c.send(hello(sid()))
        elif i % 3 == 2:
            await c.send(b"\x01" * 10)
        await c.ws.close()

    for batch in range(10):
        await asyncio.gather(*(one(batch * 10 + i) for i in range(10)))
    assert await wait_sessions(voice_stack, 0) == 0
    c = await Client.connect(voice_stack.ws_url())
    try:
        await c.hello(sid())
        await c.send({"type": "text", "text": "hello"})
        assert (await c.wait_for("bot_text", 60))["text"]
    finally:
        await c.close()
    assert await wait_sessions(voice_stack, 0) == 0
