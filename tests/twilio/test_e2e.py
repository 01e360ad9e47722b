"""End to end: the simulator phones a real Rasa server (trained model, real speech engines) and a
real action server; the fake Twilio REST API carries the reminder call-back.

What the caller heard is transcribed with faster-whisper from the simulator's recording.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from actions.services.spoken import clock_words, day_period, number_words
from channels.voice.audio import pcm16_to_float, resample_pcm16
from tests.servers import (
    Server,
    free_port,
    stack_env,
    start_action_server,
    start_rasa_server,
)
from tests.speech import piper_speech
from tests.twilio.conftest import ACCOUNT_SID, API_TOKEN, AUTH_TOKEN, OUR_NUMBER, one_machine_env
from tests.twilio.fake_rest import FakeTwilioRest
from tests.twilio.simulator import StreamSession, TwilioSimulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CREDENTIALS = """\
rest:
channels.twilio_media.TwilioMediaStreamInput:
  max_concurrent_calls: 8
  dtmf_timeout_s: 1.0
"""


@dataclass
class PhoneStack:
    """Rasa (serving the phone channel) + action server, and where the fake REST API must run."""

    workdir: Path
    rasa: Server
    actions: Server
    rest_port: int

    @property
    def url(self) -> str:
        return self.rasa.url


@pytest.fixture(scope="module")
def phone_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneStack]:
    """A real action server and Rasa server with the twilio_media channel, on loopback."""
    workdir = tmp_path_factory.mktemp("phone")
    rasa_port, action_port, rest_port = free_port(), free_port(), free_port()
    creds = workdir / "credentials.yml"
    creds.write_text(CREDENTIALS)
    env = stack_env(
        workdir,
        rasa_port,
        action_port,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_NUMBER=OUR_NUMBER,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{rasa_port}",
        **one_machine_env(),
        VOICE_STREAM_SECRET="e2e-stream-secret",
        OUTBOUND_API_TOKEN=API_TOKEN,
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{rest_port}",
        REMINDER_DELIVERY="channels.twilio.callbacks:delivery",
        REMINDER_POLL_SECONDS="1",
    )
    actions = start_action_server(env, action_port, workdir / "actions.log")
    try:
        rasa = start_rasa_server(env, rasa_port, workdir / "rasa.log", credentials=creds)
    except Exception:
        actions.stop()
        raise
    stack = PhoneStack(workdir, rasa, actions, rest_port)
    try:
        asyncio.run(_wait_warm(stack.url, 240))
        yield stack
    finally:
        rasa.stop()
        actions.stop()


async def _wait_warm(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/webhooks/twilio_media/") as r:
                    if r.status == 200 and (await r.json()).get("engines_warm"):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1)
    raise TimeoutError("speech engines of the phone channel not warm")


def caller_speech(text: str) -> tuple[bytes, int]:
    """The caller's voice (Piper; the bundled tiny.en model mishears espeak-ng at 8 kHz)."""
    return piper_speech(text), 16000


_stt = None


def transcribe(pcm8k: bytes) -> str:
    """What the caller heard, as faster-whisper (bundled tiny.en) writes it."""
    global _stt
    if _stt is None:
        from channels.voice.config import STTConfig
        from channels.voice.stt import FasterWhisperSTT

        _stt = FasterWhisperSTT(STTConfig(beam_size=5))
    audio = pcm16_to_float(resample_pcm16(pcm8k, 8000, 16000))
    return _stt.transcribe(audio).text


async def _greeted(stream: StreamSession) -> None:
    assert await stream.wait_bot_turn(0.0, timeout=60), "no greeting heard"


async def _ask(stream: StreamSession, text: str, timeout: float = 60) -> tuple[float, str]:
    pcm, rate = caller_speech(text)
    t = stream.say(pcm, rate) + len(pcm) / 2 / rate  # end of the caller's words
    assert await stream.wait_bot_turn(t, timeout=timeout), f"no answer to {text!r}"
    heard = await asyncio.to_thread(transcribe, stream.heard_pcm(t))
    return t, heard


def _simulator(stack: PhoneStack) -> TwilioSimulator:
    """Twilio, as the simulator plays it, in front of the stack's phone channel."""
    return TwilioSimulator(
        local_base_url=stack.url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, number=OUR_NUMBER
    )


def _hour_said(heard: str, zone: str) -> bool:
    """The transcript states the time in ``zone``: its hour, or (tiny.en at 8 kHz sometimes
    mishears a lone hour word: "ten pass over in the evening") its minute together with the
    zone's part of the day."""
    text = re.sub(r"\bpass\b", "past", heard.lower())
    now = datetime.now(ZoneInfo(zone))
    for moment in (now - timedelta(minutes=2), now, now + timedelta(minutes=1)):
        # "ten to two" names the next hour
        hours = {moment.hour % 12 or 12, (moment + timedelta(minutes=30)).hour % 12 or 12}
        for h in hours:
            if re.search(rf"\b{h}(?::?\d\d)?\b|\b{number_words(h)}\b", text):
                return True
        m = moment.minute
        minute_said = m > 9 and re.search(rf"(?<![\d])[:.]?{m:02d}\b", text)
        words = clock_words(moment)  # "ten past seven": "ten past" with "evening" will do
        if " past " in words or " to " in words:
            minute_said = minute_said or words.rsplit(" ", 1)[0] in text
        if minute_said and day_period(moment.hour) in text:
            return True
    return False


async def test_time_in_tokyo(phone_stack: PhoneStack) -> None:
    async with _simulator(phone_stack) as sim:
        call, stream = await sim.inbound_call("+15551230001")
        assert stream is not None, call
        await _greeted(stream)
        _, heard = await _ask(stream, "What time is it in Tokyo?")
        assert _hour_said(heard, "Asia/Tokyo"), heard
        await sim.caller_hangs_up(call.call_sid)
        assert not stream.bad_frames


async def test_barge_in_and_backchannel(phone_stack: PhoneStack) -> None:
    async with _simulator(phone_stack) as sim:
        call, stream = await sim.inbound_call("+15551230002")
        assert stream is not None
        await _greeted(stream)
        # A long answer; a backchannel while it plays does not end it.
        pcm, rate = caller_speech("What can you do?")
        t = stream.say(pcm, rate)
        assert await stream.wait_for(lambda: bool(stream.bot_starts(t + 0.3)), 30)
        await asyncio.sleep(0.8)
        uh = stream.say(*caller_speech("uh-huh"))
        await asyncio.sleep(1.6)
        # it may pause while it checks what was said, but then goes on with the same answer
        paused = [e.t for e in stream.events if e.kind == "clear" and e.t > uh]
        if paused:
            assert stream.bot_starts(paused[0]), "the answer did not resume after uh-huh"
        # A real interruption cuts the bot off at once and is answered.
        if not stream.bot_speaking():
            pytest.skip("the answer ended before the interruption could be tested")
        pcm, rate = caller_speech("What time is it in London?")
        t_int = stream.say(pcm, rate)
        assert await stream.wait_for(
            lambda: any(e.kind == "clear" and e.t > t_int for e in stream.events), 5
        ), "no clear after the interruption"
        stop = min(e.t for e in stream.events if e.kind == "clear" and e.t > t_int)
        cut_ms = (stop - t_int) * 1000
        print(f"bot audio stopped {cut_ms:.0f} ms after the caller started speaking")
        assert cut_ms <= 1000  # issue target 400 ms; figures in bench, generous bound here
        assert stream.marks_cleared  # Twilio returned the unplayed sentences' marks
        assert await stream.wait_bot_turn(t_int + 0.3, timeout=60)
        heard = await asyncio.to_thread(transcribe, stream.heard_pcm(t_int + 0.3))
        assert _hour_said(heard, "Europe/London"), heard
        await sim.caller_hangs_up(call.call_sid)


def _reminders(workdir: Path) -> list[tuple[str, str, str | None, str | None]]:
    with sqlite3.connect(workdir / "reminders.db") as db:
        return db.execute("SELECT id, state, caller_number, channel FROM reminders").fetchall()


async def test_dtmf_confirms_reminder_goodbye_hangs_up_and_reminder_calls_back(
    phone_stack: PhoneStack,
) -> None:
    caller = "+15551230003"
    async with _simulator(phone_stack) as sim:
        fake = FakeTwilioRest(sim)
        await fake.start(port=phone_stack.rest_port)
        try:
            call, stream = await sim.inbound_call(caller)
            assert stream is not None
            await _greeted(stream)
            _, heard = await _ask(stream, "Remind me to water the plants in one minute.")
            assert "plant" in heard.lower() or "remind" in heard.lower(), heard
            t = stream.now()
            await stream.dtmf("1")  # "press 1 to confirm"
            assert await stream.wait_bot_turn(t, timeout=60)
            rows = _reminders(phone_stack.workdir)
            assert [(r[1], r[2], r[3]) for r in rows] == [("pending", caller, "twilio_media")]
            # Goodbye: the last words play to the end, then the call ends.
            pcm, rate = caller_speech("Goodbye.")
            stream.say(pcm, rate)
            assert await stream.wait_for(stream.closed.is_set, 60), "bot did not hang up"
            result = await sim.finish_call(call.call_sid)
            assert result.hung_up_by == "bot" and stream.unplayed_at_close == 0
            # The reminder falls due while they are away: the assistant calls them back.
            heard_cb: dict[str, str] = {}

            async def callee(cb_call, cb_stream: StreamSession) -> None:
                ok = await cb_stream.wait_bot_turn(0.0, timeout=60)
                heard_cb["text"] = await asyncio.to_thread(transcribe, cb_stream.heard_pcm())
                heard_cb["ok"] = str(ok)

            fake.callee = callee
            deadline = time.monotonic() + 120
            while not fake.placed and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            assert fake.placed, "no call-back placed"
            placed = fake.placed[0]
            assert placed.to == caller
            await asyncio.wait_for(placed.done.wait(), 90)
            assert "plant" in heard_cb.get("text", "").lower(), heard_cb
            assert _reminders(phone_stack.workdir)[0][1] == "delivered"
            await asyncio.sleep(3)
            assert len(fake.placed) == 1  # once
        finally:
            await fake.stop()
