"""VoiceSession end to end: real models, a loopback transport, a real Rasa agent when trained."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from rasa.core.channels.channel import UserMessage

from channels.voice.config import SessionConfig, STTConfig, TurnConfig, VoiceConfig
from channels.voice.engines import Engines
from channels.voice.nlu_parse import rasa_parser, warm_up_parser
from channels.voice.session import VoiceSession, is_backchannel
from channels.voice.stt import normalize_text
from tests import speech
from tests.servers import latest_model
from tests.voice.wire import LoopbackTransport, feed_realtime

pytestmark = pytest.mark.slow

LONG_REPLY = (
    "Here is a long answer. It has several sentences so that it takes a while to say. "
    "The weather tomorrow will be sunny with a light breeze. In the evening it gets colder. "
    "Take a jacket if you go out late."
)


class Responder:
    """Answers every user message like a Rasa bot would, through the session's output channel."""

    def __init__(self, reply: str = LONG_REPLY, custom: dict[str, Any] | None = None) -> None:
        self.reply = reply
        self.custom = custom
        self.messages: list[UserMessage] = []

    async def __call__(self, msg: UserMessage) -> None:
        self.messages.append(msg)
        out = msg.output_channel
        assert out is not None
        await out.send_text_message(msg.sender_id, self.reply)
        if self.custom:
            await out.send_custom_json(msg.sender_id, dict(self.custom))


def make_session(
    engines: Engines,
    on_msg: Any,
    config: VoiceConfig | None = None,
    speed: float = 1.0,
    rate: int = 16000,
) -> tuple[VoiceSession, LoopbackTransport]:
    tr = LoopbackTransport(rate, speed=speed)
    s = VoiceSession(
        engines=engines,
        transport=tr,
        on_new_message=on_msg,
        sender_id="tester",
        input_channel="test_voice",
        metadata={
            "channel": "test_voice",
            "caller_number": "+4930123",
            "timezone": "Europe/Berlin",
        },
        config=config or engines.config,
    )
    tr.session = s
    return s, tr


async def wait_for(cond: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_spoken_question_to_real_rasa_agent_and_back(engines: Engines) -> None:
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    from rasa.core.agent import load_agent

    agent = await load_agent(model_path=str(latest_model()))
    processor = agent.processor
    assert processor is not None
    parsed_by_rasa: list[str] = []
    rasa_parse = processor.parse_message

    async def counting_parse(message: UserMessage, *args: Any, **kwargs: Any) -> dict[str, Any]:
        parsed_by_rasa.append(message.text)
        return await rasa_parse(message, *args, **kwargs)

    processor.parse_message = counting_parse  # type: ignore[method-assign]
    sent: list[UserMessage] = []

    async def handle(msg: UserMessage) -> None:
        sent.append(msg)
        await agent.handle_message(msg)

    s, tr = make_session(engines, handle, speed=4.0)
    app = SimpleNamespace(ctx=SimpleNamespace(agent=agent))
    s.parse = rasa_parser(app)
    await warm_up_parser(app)  # as the channels do at server start
    await s.start(greet=False)
    await feed_realtime(
        s, speech.silence(300) + speech.piper_speech("What can you do?") + speech.silence(1200)
    )
    await wait_for(lambda: tr.played, 30)
    # semantic endpointing parsed the transcript; Rasa took that parse instead of parsing again
    assert sent[0].parse_data and sent[0].parse_data["intent"]["name"] == "help"
    assert sent[0].parse_data["text"] == sent[0].text
    assert parsed_by_rasa == []
    await s.speaker.wait_done(30)
    heard = tr.transcribe_bot(engines.stt).text
    expected = (
        "I can tell you the time or the date anywhere, check the weather, and set, list or "
        "cancel reminders. Just ask."
    )
    assert speech.wer(expected, heard) <= 0.3, heard
    tracker = await agent.tracker_store.retrieve("tester")
    user = [e for e in tracker.events if e.type_name == "user"]
    assert user and user[-1].intent.get("name") == "help"
    assert user[-1].metadata.get("language") == "en"
    assert user[-1].metadata.get("caller_number") == "+4930123"
    await s.close()


async def test_spoken_turn_reaches_rasa_with_metadata_and_reply_is_spoken(engines: Engines) -> None:
    bot = Responder("It is five past three in Tokyo.")
    s, tr = make_session(engines, bot, speed=4.0, rate=8000)
    await s.start(greet=False)
    await feed_realtime(
        s,
        speech.silence(300)
        + speech.piper_speech("What time is it in Tokyo?")
        + speech.silence(1200),
    )
    await wait_for(lambda: bot.messages and tr.played, 20)
    msg = bot.messages[0]
    assert speech.wer("what time is it in tokyo", msg.text) <= 0.2
    assert msg.input_channel == "test_voice" and msg.sender_id == "tester"
    assert msg.metadata["language"] == "en" and msg.metadata["timezone"] == "Europe/Berlin"
    heard = tr.transcribe_bot(engines.stt).text
    assert speech.wer("It is five past three in Tokyo.", heard) <= 0.3, heard
    await wait_for(lambda: tr.of_type("turn_metrics"), 20)
    kinds = [e["type"] for e in tr.events]
    assert "transcript" in kinds and "turn_metrics" in kinds and "bot_text" in kinds
    assert s.summary["turns"] == 1
    await s.close()


async def test_barge_in_stops_playback_and_records_what_was_heard(engines: Engines) -> None:
    bot = Responder()
    s, tr = make_session(engines, bot)
    await s.start(greet=False)
    await s.user_text("tell me about the weather")
    await wait_for(lambda: len(tr.played) >= 1, 20)
    await feed_realtime(
        s, speech.piper_speech("No wait, what time is it in Paris?") + speech.silence(1200)
    )
    await wait_for(lambda: len(bot.messages) >= 2, 20)
    assert tr.cleared >= 1
    meta = bot.messages[1].metadata
    assert meta["interrupted"] is True
    assert meta["heard_bot_text"].startswith("Here is a long answer.")
    assert "Take a jacket" in meta["unheard_bot_text"]
    assert "Take a jacket" not in meta["heard_bot_text"]
    assert "paris" in normalize_text(bot.messages[1].text)
    await s.close()


async def test_backchannel_does_not_interrupt(engines: Engines) -> None:
    bot = Responder()
    s, tr = make_session(engines, bot)
    await s.start(greet=False)
    await s.user_text("tell me about the weather")
    await wait_for(lambda: len(tr.played) >= 1, 20)
    await feed_realtime(s, speech.piper_speech("Okay.") + speech.silence(900))
    await s.speaker.wait_done(60)
    assert tr.cleared == 1, tr.events  # paused while it checked what was said, then resumed
    assert len(bot.messages) == 1
    assert len(tr.played) == 5  # each of the five sentences heard once
    heard = " ".join(s.speaker.heard_text(s.turn_no))
    assert heard.startswith("Here is a long answer.") and heard.endswith("if you go out late.")
    assert not any(e.get("state") == "interrupted" for e in tr.of_type("state"))
    await s.close()


def test_is_backchannel() -> None:
    words = TurnConfig().backchannels
    for t in ("Uh-huh.", "Yeah.", "okay okay", "Mm-hmm", "Right.", ""):
        assert is_backchannel(t, words), t
    for t in ("Stop.", "Yeah, but what about tomorrow?", "No wait"):
        assert not is_backchannel(t, words), t


async def test_unintelligible_turn_gets_sorry_then_help(engines: Engines) -> None:
    bot = Responder()
    s, tr = make_session(engines, bot, speed=50)
    await s.start(greet=False)
    for _ in range(3):
        await s.ptt_start()
        await s.feed_audio(speech.silence(800))
        await s.ptt_end()
        await asyncio.sleep(0.1)
        await wait_for(lambda: s._turn_task is None or s._turn_task.done(), 20)
        await s.speaker.wait_done(20)
    texts = [normalize_text(tr.transcribe_bot(engines.stt).text)]
    assert "sorry" in texts[0] and "catch" in texts[0]
    assert "weather" in texts[0] or "reminder" in texts[0]  # the help text after two sorries
    assert bot.messages == []
    await s.close()


async def test_reprompts_then_hangs_up(engines: Engines) -> None:
    cfg = replace(engines.config, session=SessionConfig(reprompt_s=0.5, max_reprompts=2))
    s, tr = make_session(engines, Responder(), config=cfg, speed=20)
    await s.start(greet=False)
    await wait_for(lambda: tr.hung_up, 30)
    said = normalize_text(tr.transcribe_bot(engines.stt).text)
    assert said.count("still there") == 2 or said.count("there") >= 2, said
    assert "goodbye" in said or "bye" in said, said
    await s.close()


async def test_hangup_custom_event_after_last_words(engines: Engines) -> None:
    bot = Responder("Goodbye, talk to you soon.", custom={"event": "hangup"})
    s, tr = make_session(engines, bot, speed=10)
    await s.start(greet=False)
    await s.user_text("bye")
    await wait_for(lambda: tr.hung_up, 20)
    assert tr.played and tr.played[-1] == tr.order[-1]
    await s.close()


async def test_bad_input_frames(engines: Engines) -> None:
    s, _tr = make_session(engines, Responder(), speed=50)
    await s.start(greet=False)
    for frame in (b"", b"\x01", b"\x01\x02\x03", bytes(1001), b"\xff" * 7):
        await s.feed_audio(frame)
    loud = speech.gain(speech.piper_speech("What time is it?"), 30)  # heavy clipping
    await feed_realtime(s, loud + speech.silence(1000), speed=4)
    await asyncio.sleep(0.5)
    await s.close()
    await s.close()  # idempotent
    await s.feed_audio(b"\x00" * 640)  # after close: ignored


async def test_long_bot_reply_is_spoken_in_sentences(engines: Engines) -> None:
    reply = " ".join(["This is a rather long reply that goes on and on."] * 45)
    assert len(reply) > 2000
    bot = Responder(reply)
    s, tr = make_session(engines, bot, speed=200)
    await s.start(greet=False)
    await s.user_text("talk a lot")
    await wait_for(lambda: len(tr.order) >= 45, 120)
    await s.close()


class BrokenSTT:
    def __init__(self, real: Any) -> None:
        self.real = real

    def transcribe(self, audio: np.ndarray, *, fast: bool = False) -> Any:
        raise RuntimeError("stt exploded")

    def warm_up(self) -> None:
        pass


async def test_stt_error_in_one_session_leaves_others_alone(engines: Engines) -> None:
    broken = Engines(engines.config, engines.vad, BrokenSTT(engines.stt), engines.tts, engines.pool)
    b1 = Responder("It is noon.")
    b2 = Responder("It is noon.")
    s1, t1 = make_session(broken, b1, speed=20)
    s2, t2 = make_session(engines, b2, speed=20)
    await s1.start(greet=False)
    await s2.start(greet=False)
    # a phone line keeps sending (silent) frames after the user stops
    pcm = speech.silence(300) + speech.piper_speech("What time is it?") + speech.silence(2500)
    await asyncio.gather(feed_realtime(s1, pcm, speed=2), feed_realtime(s2, pcm, speed=2))
    await wait_for(lambda: b2.messages and t1.of_type("error"), 20)
    await s1.speaker.wait_done(20)
    assert b1.messages == []
    assert "wrong" in normalize_text(t1.transcribe_bot(engines.stt).text)  # spoken apology
    assert b2.messages and not t2.of_type("error")
    await s1.close()
    await s2.close()


async def test_tts_error_reports_and_session_goes_on(engines: Engines) -> None:
    class BrokenTTS:
        sample_rate = engines.tts.sample_rate

        def synthesize(self, text: str) -> np.ndarray:
            if "explode" in text:
                raise RuntimeError("tts exploded")
            return engines.tts.synthesize(text)

        def warm_up(self) -> None:
            pass

    eng = Engines(engines.config, engines.vad, engines.stt, BrokenTTS(), engines.pool)  # type: ignore[arg-type]
    bot = Responder("Please explode now.")
    s, tr = make_session(eng, bot, speed=50)
    await s.start(greet=False)
    await s.user_text("hi")
    await wait_for(lambda: tr.of_type("error"), 20)
    bot.reply = "All good again."
    await s.user_text("hi again")
    await wait_for(lambda: len(tr.order) >= 1, 20)
    await s.close()


async def test_100_sessions_open_and_close_without_leaks(engines: Engines) -> None:
    import tracemalloc

    async def one() -> None:
        s, _ = make_session(engines, Responder("Hi."), speed=1000)
        await s.start(greet=False)
        await s.feed_audio(speech.silence(200))
        await s.close()

    for _ in range(5):
        await one()
    gc.collect()
    threads = threading.active_count()
    tasks = len(asyncio.all_tasks())
    tracemalloc.start()
    snap1 = tracemalloc.take_snapshot()
    for _ in range(100):
        await one()
    await asyncio.sleep(0.1)
    gc.collect()
    snap2 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(st.size_diff for st in snap2.compare_to(snap1, "filename"))
    assert threading.active_count() <= threads
    assert len(asyncio.all_tasks()) <= tasks
    assert grown < 2_000_000, grown  # well under 20 kB per session


async def test_semantic_endpointing_waits_for_unfinished_sentence(engines: Engines) -> None:
    cfg = replace(engines.config, stt=replace(STTConfig(), partials=False))
    bot = Responder("Okay.")
    s, _tr = make_session(engines, bot, config=cfg, speed=10)
    await s.start(greet=False)
    pcm = (
        speech.silence(300)
        + speech.piper_speech("Remind me to")
        + speech.silence(800)
        + speech.piper_speech("call my mother tomorrow.")
        + speech.silence(1500)
    )
    await feed_realtime(s, pcm)
    await wait_for(lambda: bot.messages, 20)
    assert len(bot.messages) == 1
    assert "mother" in normalize_text(bot.messages[0].text)
    await s.close()


async def test_completeness_from_nlu_and_the_parse_handed_on(engines: Engines) -> None:
    parses = {
        "What time is it?": {"intent": {"name": "ask_time", "confidence": 0.99}, "entities": []},
        "I want to know that I mean.": {
            "intent": {"name": "out_of_scope", "confidence": 0.99},
            "entities": [],
        },
        "Remind me tomorrow.": {
            "intent": {"name": "set_reminder", "confidence": 0.99},
            "entities": [{"entity": "date", "value": "tomorrow"}],
        },
        "Blah blah.": {"intent": {"name": "nlu_fallback", "confidence": 0.45}, "entities": []},
    }

    async def parse(text: str) -> dict[str, Any]:
        return {"text": text, **parses[text]}

    s, _ = make_session(engines, Responder())
    s.parse = parse
    assert await s._completeness("What time is it?") is True
    # garbled speech lands in out_of_scope with high confidence: no early end
    assert await s._completeness("I want to know that I mean.") is None
    assert await s._completeness("Remind me tomorrow.") is False  # what to remind is missing
    assert await s._completeness("Blah blah.") is None
    # the last parse goes to Rasa with the same transcript, once, as a copy
    assert s._parsed("What time is it?") is None  # not the text parsed last
    await s._completeness("What time is it?")
    handed = s._parsed("What time is it?")
    assert handed == {"text": "What time is it?", **parses["What time is it?"]}
    assert s._parsed("What time is it?") is None
    await s.close()


async def test_fixed_endpointing_still_hands_the_parse_to_rasa(engines: Engines) -> None:
    cfg = replace(engines.config, turns=replace(engines.config.turns, semantic=False))
    parsed: list[str] = []

    async def parse(text: str) -> dict[str, Any]:
        parsed.append(text)
        return {"text": text, "intent": {"name": "ask_time", "confidence": 0.99}, "entities": []}

    bot = Responder("It is noon.")
    s, _tr = make_session(engines, bot, config=cfg, speed=4.0)
    s.parse = parse
    await s.start(greet=False)
    pcm = speech.silence(300) + speech.piper_speech("What time is it?") + speech.silence(1200)
    await feed_realtime(s, pcm)
    await wait_for(lambda: bot.messages, 20)
    msg = bot.messages[0]
    assert parsed == [msg.text]  # parsed while the silence ran, once
    assert msg.parse_data is not None and msg.parse_data["text"] == msg.text
    await s.close()
