"""The channel's HTTP routes and Media Stream, driven by the Twilio simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET

import aiohttp

from tests.twilio.conftest import API_TOKEN, OUR_NUMBER
from tests.twilio.simulator import new_sid

CALLER = "+819012345678"


async def test_health(serve_channel) -> None:
    server = await serve_channel()
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.base_url + "/webhooks/twilio_media/") as resp,
    ):
        body = await resp.json()
    assert resp.status == 200 and body["status"] == "ok" and body["active_calls"] == 0


async def test_signed_webhook_answers_connect_stream(serve_channel, sim_for) -> None:
    server = await serve_channel()
    sim = await sim_for(server)
    call_sid = new_sid("CA")
    params = sim.call_params(
        call_sid, from_=CALLER, to=OUR_NUMBER, direction="inbound", status="ringing"
    )
    status, body = await sim.post_webhook(sim.public_base_url + sim.voice_path, params)
    assert status == 200
    root = ET.fromstring(body)
    assert [v.tag for v in root] == ["Connect", "Hangup"]
    stream = root.find("Connect/Stream")
    assert stream is not None
    assert stream.get("url") == server.base_url.replace("http", "ws") + (
        "/webhooks/twilio_media/websocket"
    )
    params_out = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params_out["caller"] == CALLER and params_out["direction"] == "inbound"
    assert params_out["token"].count(".") == 1


async def test_forged_or_unsigned_webhook_gets_403(serve_channel, sim_for, caplog) -> None:
    server = await serve_channel()
    sim = await sim_for(server)
    call, stream = await sim.inbound_call(CALLER, signature="bm90IGEgc2lnbmF0dXJl")
    assert call.http_status == 403 and stream is None
    call, stream = await sim.inbound_call(CALLER, signature="")
    assert call.http_status == 403 and stream is None
    assert "X-Twilio-Signature" in caplog.text
    assert not server.channel.registry.load()


async def test_signature_checked_against_public_url_behind_proxy(serve_channel, sim_for) -> None:
    public = "https://voice.example.com"
    server = await serve_channel({"public_base_url": public})
    sim = await sim_for(server, public_base_url=public)
    call, stream = await sim.inbound_call(CALLER)
    assert call.http_status == 200 and stream is not None
    assert "wss://voice.example.com/webhooks/twilio_media/websocket" in call.twiml[0]
    # Signed for the URL the server sees instead of the public one: refused.
    sim2 = await sim_for(server)
    call2, _ = await sim2.inbound_call(CALLER)
    assert call2.http_status == 403


async def test_no_auth_token_refuses_calls_and_says_why(serve_channel, sim_for, caplog) -> None:
    server = await serve_channel({"auth_token": None})
    sim = await sim_for(server)
    call, _ = await sim.inbound_call(CALLER)
    assert call.http_status == 503
    assert "TWILIO_AUTH_TOKEN" in caplog.text


async def test_at_capacity_callers_hear_busy_message(serve_channel, sim_for) -> None:
    server = await serve_channel({"max_concurrent_calls": 1})
    sim = await sim_for(server)
    first, stream = await sim.inbound_call(CALLER)
    assert stream is not None
    second, stream2 = await sim.inbound_call("+15551230000")
    assert stream2 is None and second.hung_up_by == "twiml"
    assert second.said and "busy" in second.said[0]
    await sim.caller_hangs_up(first.call_sid)
    await sim.finish_call(first.call_sid)
    assert await stream.wait_for(lambda: server.channel.registry.load() == 0, 5)
    _, stream3 = await sim.inbound_call("+15551230000")
    assert stream3 is not None


async def test_stream_without_valid_token_is_closed(serve_channel, sim_for) -> None:
    server = await serve_channel()
    sim = await sim_for(server)
    url = server.base_url.replace("http", "ws") + "/webhooks/twilio_media/websocket"
    for params in ({}, {"token": "garbage"}, {"token": "e30.AAAA"}):
        stream = await sim.open_stream(new_sid("CA"), url, params)
        assert await stream.wait_for(stream.closed.is_set, 5)
        assert stream.close_code == 1008
    assert not server.messages


async def test_token_of_another_call_is_rejected(serve_channel, sim_for) -> None:
    server = await serve_channel()
    sim = await sim_for(server)
    call, stream = await sim.inbound_call(CALLER)
    assert stream is not None
    replay = await sim.open_stream(
        new_sid("CA"),
        sim.streams[call.call_sid].ws._response.url.human_repr().replace("http", "ws"),
        stream.parameters,
    )
    assert await replay.wait_for(replay.closed.is_set, 5) and replay.close_code == 1008


async def test_bad_handshake_signature_is_closed(serve_channel, sim_for) -> None:
    server = await serve_channel()
    sim = await sim_for(server)
    call_sid = new_sid("CA")
    params = sim.call_params(
        call_sid, from_=CALLER, to=OUR_NUMBER, direction="inbound", status="ringing"
    )
    _, body = await sim.post_webhook(sim.public_base_url + sim.voice_path, params)
    stream_el = ET.fromstring(body).find("Connect/Stream")
    assert stream_el is not None
    token = {p.get("name"): p.get("value") for p in stream_el.findall("Parameter")}
    stream = await sim.open_stream(
        call_sid, stream_el.get("url", ""), token, signature="Zm9yZ2VkIHNpZ25hdHVyZQ=="
    )
    assert await stream.wait_for(stream.closed.is_set, 5) and stream.close_code == 1008


async def test_outbound_api_auth_and_validation(serve_channel) -> None:
    server = await serve_channel()
    url = server.base_url + "/webhooks/twilio_media/call"
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"to": "+15551234567"}) as r:
            assert r.status == 401
        async with http.post(
            url, json={"to": "+15551234567"}, headers={"Authorization": "Bearer wrong"}
        ) as r:
            assert r.status == 401
        for bad in ({"to": "5551234567"}, {"to": "+1 555"}, {"to": 15551234567}, {}):
            async with http.post(url, json=bad, headers=auth) as r:
                assert r.status == 400, bad
                assert "E.164" in (await r.json())["error"]
        async with http.post(url, data="{not json", headers=auth) as r:
            assert r.status == 400
        async with http.post(
            url, json={"to": "+15551234567", "text": "x" * 5000}, headers=auth
        ) as r:
            assert r.status == 400


async def test_outbound_api_disabled_without_token(serve_channel) -> None:
    server = await serve_channel({"outbound_api_token": None})
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.base_url + "/webhooks/twilio_media/call",
            json={"to": "+15551234567"},
            headers={"Authorization": "Bearer x"},
        ) as r,
    ):
        assert r.status == 503 and "OUTBOUND_API_TOKEN" in (await r.json())["error"]


async def test_status_callback_is_validated_and_recorded(serve_channel, sim_for) -> None:
    server = await serve_channel()
    sim = await sim_for(server)
    url = server.base_url + "/webhooks/twilio_media/status"
    params = {
        "CallSid": "CA1",
        "CallStatus": "ringing",
        "To": CALLER,
        "AccountSid": sim.account_sid,
    }
    status, _ = await sim.post_webhook(url, params, signature="Zm9yZ2Vk")
    assert status == 403 and "CA1" not in server.channel.registry.statuses
    status, _ = await sim.post_webhook(url, params)
    assert status == 204 and server.channel.registry.statuses["CA1"]["status"] == "ringing"
    status, _ = await sim.post_webhook(url, {**params, "CallStatus": "exploded"})
    assert status == 400


async def test_bad_input_is_survived(serve_channel, sim_for) -> None:
    """Garbage on one call: logged, the call carries on or is closed; other calls carry on."""
    server = await serve_channel()
    sim = await sim_for(server)
    good, good_stream = await sim.inbound_call("+15551230001")
    bad, stream = await sim.inbound_call(CALLER)
    assert good_stream is not None and stream is not None
    for raw in (
        "{malformed",
        json.dumps({"event": "media", "streamSid": stream.stream_sid, "media": {"payload": "%%"}}),
        json.dumps({"event": "whatever"}),
        json.dumps({"event": "start", "start": {"callSid": bad.call_sid}}),  # second start
        json.dumps(  # late chunk (out of order)
            {
                "event": "media",
                "sequenceNumber": "2",
                "streamSid": stream.stream_sid,
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": ""},
            }
        ),
    ):
        await stream.send_raw(raw)
    await asyncio.sleep(0.5)
    assert not stream.closed.is_set()
    # A huge frame: refused (our limit or Sanic's), this call ends cleanly.
    await stream.send_raw("x" * 2_000_000)
    assert await stream.wait_for(stream.closed.is_set, 5)
    assert await stream.wait_for(lambda: bad.call_sid not in server.channel.streams, 5)
    # The other call is unharmed.
    assert not good_stream.closed.is_set() and good.call_sid in server.channel.streams
    await sim.caller_hangs_up(good.call_sid)


async def test_media_before_start_and_silent_stream(serve_channel, sim_for) -> None:
    server = await serve_channel({"start_timeout_s": 1.0})
    sim = await sim_for(server)
    url = server.base_url.replace("http", "ws") + "/webhooks/twilio_media/websocket"
    stream = await sim.open_stream(new_sid("CA"), url, {}, start=False)
    await stream.send_raw(
        json.dumps({"event": "media", "media": {"payload": "/w==", "chunk": "1"}})
    )
    # Never starts: closed after start_timeout_s.
    assert await stream.wait_for(stream.closed.is_set, 5)
    assert not server.messages


async def test_caller_hang_up_frees_the_call(serve_channel, sim_for) -> None:
    server = await serve_channel()
    sim = await sim_for(server)
    call, stream = await sim.inbound_call(CALLER)
    assert stream is not None
    assert await stream.wait_for(lambda: call.call_sid in server.channel.streams, 5)
    await sim.caller_hangs_up(call.call_sid)
    await sim.finish_call(call.call_sid)
    assert call.hung_up_by == "caller"
    assert await stream.wait_for(lambda: not server.channel.streams, 5)
    assert server.channel.registry.load() == 0


async def test_dtmf_reaches_rasa_as_user_input(serve_channel, sim_for) -> None:
    server = await serve_channel({"dtmf_timeout_s": 0.3})
    sim = await sim_for(server)
    call, stream = await sim.inbound_call(CALLER)
    assert stream is not None
    assert await stream.wait_for(lambda: len(server.messages) >= 1, 10)  # the greeting
    for key in "4711#":
        await stream.dtmf(key)
    assert await stream.wait_for(lambda: len(server.messages) >= 2, 5)
    await stream.dtmf("1")  # a lone "1" after a pause: "press 1 to confirm"
    assert await stream.wait_for(lambda: len(server.messages) >= 3, 5)
    texts = [m.text for m in server.messages]
    assert texts == ["/greet", "4711", "/affirm"]
    assert server.messages[1].sender_id == CALLER
    assert server.messages[1].metadata["caller_number"] == CALLER
    assert server.messages[1].metadata["caller_country"] == "JP"
    assert server.messages[1].metadata["call_sid"] == call.call_sid
    await sim.caller_hangs_up(call.call_sid)


LONG = (
    "Here is a long answer. It has several sentences so that it takes a while to say. "
    "The caller will hang up in the middle of it. Nothing should be left running afterwards."
)


async def test_caller_hang_up_mid_sentence_leaves_nothing_running(serve_channel, sim_for) -> None:
    async def reply(message) -> None:
        await message.output_channel.send_text_message(message.sender_id, LONG)

    server = await serve_channel({}, handler=reply)
    sim = await sim_for(server)
    call, stream = await sim.inbound_call(CALLER)
    assert stream is not None
    assert await stream.wait_for(stream.bot_speaking, 30)  # mid-sentence
    await asyncio.sleep(0.5)
    await sim.caller_hangs_up(call.call_sid)
    await sim.finish_call(call.call_sid)
    assert call.hung_up_by == "caller"

    def left() -> list[str]:
        return [
            t.get_name()
            for t in asyncio.all_tasks()
            if t.get_name().startswith("voice-") and not t.done()
        ]

    assert await stream.wait_for(lambda: not server.channel.streams and not left(), 5), left()
    assert server.channel.registry.load() == 0


async def test_bot_hang_up_waits_for_last_words(serve_channel, sim_for) -> None:
    async def reply(message) -> None:
        out = message.output_channel
        await out.send_text_message(message.sender_id, "Goodbye, talk to you soon.")
        await out.send_custom_json(message.sender_id, {"event": "hangup"})

    server = await serve_channel({}, handler=reply)
    sim = await sim_for(server)
    call, stream = await sim.inbound_call(CALLER)
    assert stream is not None
    assert await stream.wait_for(stream.closed.is_set, 30)
    result = await sim.finish_call(call.call_sid)
    assert result.hung_up_by == "bot"  # stream closed, then Twilio ran <Hangup/>
    assert stream.marks_echoed and not stream.marks_cleared
    assert stream.bot_starts() and stream.unplayed_at_close == 0  # all of it was played
    closed_at = next(e.t for e in stream.events if e.kind == "closed")
    last_mark_at = max(e.t for e in stream.events if e.kind == "mark")
    assert last_mark_at <= closed_at
