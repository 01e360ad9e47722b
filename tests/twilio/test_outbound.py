"""Outbound calls and reminder call-backs through the official twilio client pointed at the fake
Twilio REST API, which rings the simulated callee and drives the call over the real protocol."""

from __future__ import annotations

import json

import aiohttp

from tests.twilio.conftest import API_TOKEN

CALLEE = "+447700900123"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def _setup(serve_channel, sim_for, fake_rest, **settings):
    # The fake REST API needs the simulator, which needs the server URL: start the server with
    # a placeholder and point the channel's client at the fake once it runs.
    server = await serve_channel(settings)
    sim = await sim_for(server)
    fake = await fake_rest(sim)
    server.channel.config = type(server.channel.config).from_dict(
        {
            **_cfg_dict(server.channel.config),
            "api_base_url": fake.base_url,
            "public_base_url": server.base_url,
        },
        env={},
    )
    server.channel._client = None
    return server, sim, fake


def _cfg_dict(cfg) -> dict:
    d = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__ if k not in ("callbacks", "voice")}
    d["callbacks"] = {k: getattr(cfg.callbacks, k) for k in cfg.callbacks.__dataclass_fields__}
    d["voice"] = cfg.voice
    return d


async def test_outbound_call_speaks_text_and_reports_status(
    serve_channel, sim_for, fake_rest
) -> None:
    server, sim, fake = await _setup(serve_channel, sim_for, fake_rest)
    heard = {}

    async def callee(call, stream) -> None:
        ok = await stream.wait_bot_turn(0.0, timeout=30, quiet_s=0.6)
        heard["ok"] = ok
        heard["pcm"] = stream.heard_pcm()
        heard["marks"] = list(stream.marks_echoed)

    fake.callee = callee
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.base_url + "/webhooks/twilio_media/call",
            json={"to": CALLEE, "purpose": "survey", "text": "Hello, this is a test call."},
            headers=AUTH,
        ) as r,
    ):
        body = await r.json()
        assert r.status == 201, body
    placed = fake.placed[0]
    assert body["call_sid"] == placed.sid and placed.to == CALLEE and placed.from_ == sim.number
    assert "/webhooks/twilio_media/voice?ctx=" in placed.url
    await placed.done.wait()
    assert heard["ok"] and len(heard["pcm"]) > 8000 * 2 * 0.5  # at least half a second of speech
    assert heard["marks"]  # every sentence's mark echoed after it played
    assert placed.statuses == ["initiated", "ringing", "in-progress", "completed"]
    recorded = server.channel.registry.statuses[placed.sid]
    assert recorded["status"] == "completed" and recorded["purpose"] == "survey"
    assert not server.messages  # the intro is spoken directly; no greet sent to Rasa


async def test_busy_callee_is_recorded(serve_channel, sim_for, fake_rest) -> None:
    server, _, fake = await _setup(serve_channel, sim_for, fake_rest)
    fake.behaviour[CALLEE] = "busy"
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.base_url + "/webhooks/twilio_media/call", json={"to": CALLEE}, headers=AUTH
        ) as r,
    ):
        assert r.status == 201
    await fake.placed[0].done.wait()
    assert server.channel.registry.statuses[fake.placed[0].sid]["status"] == "busy"


async def test_twilio_rejecting_the_call_is_a_502(serve_channel, sim_for, fake_rest) -> None:
    server, _, _ = await _setup(serve_channel, sim_for, fake_rest, number="+15550000000")
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.base_url + "/webhooks/twilio_media/call", json={"to": CALLEE}, headers=AUTH
        ) as r,
    ):
        assert r.status == 502 and "verified" in (await r.json())["error"]


async def test_reminder_callback_rings_and_asks_rasa_to_tell_it(
    serve_channel, sim_for, fake_rest
) -> None:
    server, _, fake = await _setup(serve_channel, sim_for, fake_rest)
    url = server.base_url + "/webhooks/twilio_media/callback"
    body = {"reminder_id": "r1", "to": CALLEE, "sender_id": CALLEE, "attempts": 0}

    async def callee(call, stream) -> None:
        await stream.wait_for(lambda: bool(server.messages), 20)

    fake.callee = callee
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body) as r:
            assert r.status == 401
        async with http.post(url, json=body, headers=AUTH) as r:
            answer = await r.json()
            assert r.status == 201 and answer["retry_after_s"] == 300
        await fake.placed[0].done.wait()
        msg = server.messages[0]
        assert msg.text == '/EXTERNAL_reminder{"reminder_id": "r1"}'
        assert msg.sender_id == CALLEE
        assert msg.metadata["direction"] == "outbound-api"
        assert msg.metadata["purpose"] == "reminder"
        assert msg.metadata["caller_number"] == CALLEE
        async with http.post(url, json={**body, "attempts": 3}, headers=AUTH) as r:
            assert r.status == 409 and (await r.json())["give_up"]
        assert len(fake.placed) == 1


async def test_reminder_for_a_caller_on_the_line_is_told_in_the_call(
    serve_channel, sim_for, fake_rest
) -> None:
    server, sim, fake = await _setup(serve_channel, sim_for, fake_rest)
    call, stream = await sim.inbound_call(CALLEE)
    assert stream is not None
    assert await stream.wait_for(lambda: call.call_sid in server.channel.streams, 5)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.base_url + "/webhooks/twilio_media/callback",
            json={"reminder_id": "r2", "to": CALLEE, "sender_id": CALLEE, "attempts": 0},
            headers=AUTH,
        ) as r,
    ):
        assert r.status == 200 and (await r.json())["in_call"] == call.call_sid
    assert not fake.placed
    texts = [m.text for m in server.messages]
    assert json.dumps({"reminder_id": "r2"}) in texts[-1]
    await sim.caller_hangs_up(call.call_sid)
