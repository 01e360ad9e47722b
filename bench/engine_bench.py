"""Speech engine benchmark: latency, endpointing, barge-in, RTF, loop lag, memory, WER.

Run: ``python -m bench.engine_bench [--quick] [--no-rasa]``. Prints a table of figures; no
assertions. Speech is made at run time with the bundled Piper voice and espeak-ng (+ sox noise).
NLU turns: when a trained model exists in ``models/``, each turn runs the real Rasa NLU parse
(DIET) before the reply is spoken; the replies are shaped like the actions' answers (tool/NLU
turns, no LLM).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import glob
import itertools
import json
import logging
import os
import resource
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from channels.voice.audio import float_to_pcm16, pcm16_to_float, resample_float
from channels.voice.config import TurnConfig, VoiceConfig
from channels.voice.engines import get_engines
from channels.voice.session import VoiceSession
from channels.voice.speakable import speakable
from channels.voice.stt import normalize_text
from tests import speech
from tests.voice.wire import LoopbackTransport, feed_realtime

REQUESTS = [
    "What time is it in Tokyo?",
    "What's the weather like in Berlin tomorrow?",
    "Set a reminder to call my mother at six.",
    "What can you do?",
    "Are you a robot?",
    "What's the date today?",
    "Will it rain in London this weekend?",
    "Remind me to water the plants tomorrow morning.",
    "List my reminders.",
    "Cancel the reminder about the dentist.",
    "How warm is it in Madrid right now?",
    "What time is it in New York?",
    "Thank you.",
    "Tell me the weather in Paris.",
    "Please remind me to take my pills at eight in the evening.",
    "What day is it?",
    "Is it cold in Oslo?",
    "Set a reminder for my meeting at three thirty.",
    "Help.",
    "What's the time in Sydney?",
    "Do I need an umbrella today?",
    "Remind me in ten minutes to check the oven.",
    "What reminders do I have?",
    "Goodbye.",
    "What's the weather going to be like on Friday in Rome?",
    "Delete all my reminders.",
    "Who are you?",
    "What time is it in Los Angeles?",
    "Is it sunny in Lisbon?",
    "Can you remind me to buy milk on the way home?",
    "What's today's date?",
    "Tell me the time in Berlin.",
]
UNFINISHED = [  # (first half, pause ms, second half)
    ("Remind me to", 700, "call my mother tomorrow."),
    ("What's the weather in", 650, "Berlin?"),
    ("Set a reminder for", 700, "tomorrow at nine."),
    ("I want to know the time in", 600, "Tokyo."),
    ("Can you remind me to call my", 700, "brother tonight?"),
    ("Tell me the weather and", 650, "the time in Paris."),
]
# Replies shaped like the actions' answers, with numbers that change every turn as real times and
# forecasts do: a constant reply would come from the TTS cache and flatter the latency. A common
# lead ("Okay,") is spoken as its own chunk and cached, as in real use.
REPLIES = (
    "It's {n} minutes past {h} in the afternoon in Tokyo.",
    "Right now in Berlin it's {n} degrees and light rain, with a high of {m} today.",
    "Should I remind you to call your mother at {h} tomorrow?",
    "Okay, I'll remind you to water the plants at {h} in the evening.",
    "You have {k} reminders. The next one is at {h} tomorrow.",
    "In London it's {n} degrees and cloudy.",
)
VOICES = ["piper", "en-us", "en-gb", "piper", "en-us+f3"]


def pct(v: list[float], q: float) -> float | None:
    """Percentile (nearest rank) of a list, or None."""
    if not v:
        return None
    s = sorted(v)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


BARGE_TEXTS = ("Stop, what time is it?", "No wait, set a reminder.", "Hold on please.")
BACKCHANNEL_TEXTS = ("Uh-huh.", "Okay.", "Yeah.", "Right.")


def say(text: str, i: int, noisy: bool = False) -> bytes:
    """A benchmark utterance in one of several voices, some with noise and level changes."""
    v = VOICES[i % len(VOICES)]
    pcm = (
        speech.piper_speech(text)
        if v == "piper" or not speech.have_espeak()
        else (speech.espeak_speech(text, voice=v, wpm=155 + 10 * (i % 3)))
    )
    if noisy and speech.have_espeak():
        pcm = speech.add_noise(speech.gain(pcm, -6 + 4 * (i % 3)), snr_db=25, seed=i)
    return pcm


class LagProbe:
    """Measures event-loop lag with a 10 ms ticker."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.01)
            self.lags.append((loop.time() - t - 0.01) * 1000)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()


_replies = itertools.count(1)


class Bot:
    """NLU turn: real Rasa NLU parse when a model is loaded, then a short spoken reply."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.messages: list[Any] = []
        self.nlu_ms: list[float] = []

    async def __call__(self, msg: Any) -> None:
        self.messages.append(msg)
        if self.agent is not None and not msg.parse_data:  # as Rasa: a given parse is used
            t0 = time.perf_counter()
            await self.agent.parse_message(msg.text)
            self.nlu_ms.append((time.perf_counter() - t0) * 1000)
        i = next(_replies)
        n, h = 1 + (7 * i) % 58, 1 + i % 12
        reply = REPLIES[i % len(REPLIES)].format(n=n, h=h, m=n + 4, k=2 + i % 8)
        await msg.output_channel.send_text_message(msg.sender_id, reply)

    async def parse(self, text: str) -> dict[str, Any]:
        return await self.agent.parse_message(text)


async def run_turns(
    cfg: VoiceConfig, bot: Bot, utterances: list[bytes], label: str, use_parse: bool
) -> dict[str, Any]:
    """Speaks each utterance into a session (real time) and collects the turn records."""
    eng = get_engines(cfg)
    await eng.warm_up()
    tr = LoopbackTransport(8000, speed=20.0)
    s = VoiceSession(
        engines=eng,
        transport=tr,
        on_new_message=bot,
        sender_id=f"bench-{label}",
        input_channel="bench",
        metadata={"channel": "bench"},
        config=cfg,
        parse=bot.parse if (use_parse and bot.agent is not None) else None,
    )
    tr.session = s
    await s.start(greet=False)
    heard: list[str] = []  # what reached Rasa for each utterance ("" if nothing did)
    counts: list[int] = []  # user messages each utterance became (2: it was cut in two)
    turns: list[int] = []  # turns each utterance became, dropped ones too (2: it was cut)
    for pcm in utterances:
        n = len(tr.of_type("turn_metrics"))
        k = len(bot.messages)
        v = len([e for e in tr.of_type("vad") if not e.get("speech")])
        await feed_realtime(s, speech.silence(400) + pcm + speech.silence(1600))
        end = time.monotonic() + 15
        while len(tr.of_type("turn_metrics")) <= n and time.monotonic() < end:
            await feed_realtime(s, speech.silence(100))
        heard.append(" ".join(m.text for m in bot.messages[k:]))
        counts.append(len(bot.messages) - k)
        turns.append(len([e for e in tr.of_type("vad") if not e.get("speech")]) - v)
    recs = tr.of_type("turn_metrics")
    await s.close()
    return {"records": recs, "messages": heard, "counts": counts, "turns": turns}


def summarize(recs: list[dict[str, Any]], key: str) -> str:
    v = [r[key] for r in recs if r.get(key) is not None]
    return f"p50 {pct(v, 50):7.1f}  p95 {pct(v, 95):7.1f}  (n={len(v)})" if v else "n/a"


async def barge_in(
    cfg: VoiceConfig, n: int, texts: tuple[str, ...] = BARGE_TEXTS
) -> tuple[list[float], list[float]]:
    """Speech over a long bot reply, n times: (speech start -> playback stop, in ms; for
    backchannels, playback stop -> the same reply resumed, in ms)."""
    eng = get_engines(cfg)
    stops: list[float] = []
    gaps: list[float] = []
    long_reply = " ".join(["This is a long answer that keeps going for a while."] * 6)
    asked: list[str] = []

    async def bot(msg: Any) -> None:
        asked.append(msg.text)
        await msg.output_channel.send_text_message(msg.sender_id, long_reply)

    for i in range(n):
        asked.clear()
        tr = LoopbackTransport(8000, speed=1.0)
        s = VoiceSession(
            engines=eng,
            transport=tr,
            on_new_message=bot,
            sender_id=f"b{i}",
            input_channel="bench",
            metadata={},
            config=cfg,
        )
        tr.session = s
        await s.start(greet=False)
        await s.user_text("talk")
        while not tr.order:
            await asyncio.sleep(0.02)
        await feed_realtime(s, speech.silence(500))
        pcm = say(texts[i % len(texts)], i)
        loop = asyncio.get_running_loop()
        t_speech = loop.time()
        await feed_realtime(s, pcm + speech.silence(300))
        if tr.clear_times:
            # the speech onset is the first sample above -40 dBFS in the fed audio
            x = np.abs(pcm16_to_float(pcm))
            onset = int(np.argmax(x > 0.01)) / 16000
            stops.append((tr.clear_times[0] - (t_speech + onset)) * 1000)
            after = [t for t in tr.audio_times if t > tr.clear_times[0]]
            if after and len(asked) == 1:  # the same reply resumed, no new turn
                gaps.append((after[0] - tr.clear_times[0]) * 1000)
        await s.close()
    return stops, gaps


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("channels.voice.turns").setLevel(logging.WARNING)
    results: dict[str, Any] = {}
    rss0 = rss_mb()
    agent = None
    model = sorted(glob.glob("models/*.tar.gz"), key=os.path.getmtime)  # the newest
    if model and not args.no_rasa:
        from rasa.core.agent import load_agent

        agent = await load_agent(model_path=model[-1])
    rss_rasa = rss_mb()
    t0 = time.perf_counter()
    base = VoiceConfig()
    eng = get_engines(base)
    await eng.warm_up()
    rss_eng = rss_mb()
    results["engines_load_s"] = round(time.perf_counter() - t0, 2)
    print(
        f"RSS: start {rss0:.0f} MB, +Rasa agent {rss_rasa:.0f} MB, +voice engines {rss_eng:.0f} MB "
        f"(engines add {rss_eng - rss_rasa:.0f} MB); load+warm {results['engines_load_s']} s"
    )

    # --- STT real-time factor and TTS time to first audio ---------------------------------------
    n_req = 8 if args.quick else len(REQUESTS)
    pcms = [say(t, i, noisy=(i % 4 == 3)) for i, t in enumerate(REQUESTS[:n_req])]
    rtf, stt_ms = [], []
    for p in pcms:
        x = pcm16_to_float(p)
        t1 = time.perf_counter()
        eng.stt.transcribe(x)
        dt = time.perf_counter() - t1
        stt_ms.append(dt * 1000)
        rtf.append(dt / (len(x) / 16000))
    print(
        f"STT tiny.en int8: {len(pcms)} utterances {min(len(p) for p in pcms) / 32000:.1f}-"
        f"{max(len(p) for p in pcms) / 32000:.1f} s; latency p50 {pct(stt_ms, 50):.0f} ms, "
        f"RTF p50 {pct(rtf, 50):.3f}"
    )
    tts_first = []
    for t in REQUESTS[:10]:
        first = speakable(t).split(". ")[0]
        t1 = time.perf_counter()
        eng.tts.engine.synthesize(first)
        tts_first.append((time.perf_counter() - t1) * 1000)
    print(f"TTS first sentence: p50 {pct(tts_first, 50):.0f} ms, p95 {pct(tts_first, 95):.0f} ms")

    # --- WER round trip ------------------------------------------------------------------------
    w16, w8 = [], []
    for t in REQUESTS[:n_req]:
        x = eng.tts.engine.synthesize(speakable(t))
        # with the silence a turn carries around the speech (the turn's prefix and first pause)
        p16 = float_to_pcm16(resample_float(x, eng.tts.sample_rate, 16000))
        p16 = speech.silence(300) + p16 + speech.silence(100)
        w16.append(speech.wer(t, eng.stt.transcribe(pcm16_to_float(p16)).text))
        w8.append(speech.wer(t, eng.stt.transcribe(pcm16_to_float(speech.phone_line(p16))).text))
    print(f"WER text->Piper->STT: 16 kHz {np.mean(w16):.1%}, 8 kHz mu-law {np.mean(w8):.1%}")

    # --- turn latency: speculation on/off, fixed vs semantic -------------------------------------
    lag = LagProbe()
    lag.start()
    no_partials = replace(base.stt, partials=False)
    configs = [
        ("spec+fixed", replace(base, stt=no_partials, turns=replace(base.turns, semantic=False))),
        (
            "nospec+fixed",
            replace(
                base,
                stt=replace(no_partials, speculative=False),
                turns=replace(base.turns, semantic=False),
            ),
        ),
        ("spec+semantic", replace(base, stt=no_partials)),
        ("spec+semantic+partials", base),
    ]
    if args.quick:
        configs = configs[:1] + configs[2:3]
    for label, cfg in configs:
        bot = Bot(agent)
        r = await run_turns(cfg, bot, pcms, label, use_parse=True)
        recs = r["records"]
        print(f"[{label:>22}] processing (EOT->first audio) {summarize(recs, 'processing_ms')}")
        print(
            f"[{label:>22}] response (user stop->first audio) {summarize(recs, 'response_ms')}  "
            f"endpoint wait {summarize(recs, 'endpoint_wait_ms')}"
        )
        wers = [speech.wer(t, m) for t, m in zip(REQUESTS[:n_req], r["messages"], strict=True)]
        print(
            f"[{label:>22}] turns {len(recs)}/{len(pcms)}, transcripts WER {np.mean(wers):.1%}"
            + (f", NLU p50 {pct(bot.nlu_ms, 50):.0f} ms" if bot.nlu_ms else "")
        )
        results[label] = recs
    lag.stop()
    print(
        f"Event-loop lag during the sessions: p50 {pct(lag.lags, 50):.2f} ms, "
        f"p99 {pct(lag.lags, 99):.2f} ms, max {max(lag.lags):.1f} ms"
    )

    # --- semantic endpointing must not cut unfinished utterances ---------------------------------
    cut = misheard = 0
    for j, (a, pause, b) in enumerate(UNFINISHED):
        bot = Bot(agent)
        pcm = say(a, j) + speech.silence(pause) + say(b, j)
        r = await run_turns(replace(base, stt=no_partials), bot, [pcm], f"unf{j}", use_parse=True)
        said = [m.text for m in bot.messages]
        if r["turns"] != [1] or r["counts"] != [1]:  # ended early: the rest was another turn
            cut += 1
            print(f"  cut: {a!r} ... {b!r} -> {said}")
        elif normalize_text(b).split()[0] not in normalize_text(r["messages"][0]):
            misheard += 1  # one turn, but STT lost the second half
            print(f"  one turn, second half misheard: {a!r} ... {b!r} -> {said}")
    print(
        f"Semantic endpointing on {len(UNFINISHED)} utterances with mid-sentence pauses "
        f"(600-700 ms): {cut} cut off; {misheard} kept whole but misheard by STT"
    )

    # --- barge-in ---
    n_b = 6 if args.quick else 20
    for label, tc in [
        ("backchannel check on", TurnConfig()),
        ("backchannel check off", TurnConfig(backchannel_check=False)),
    ]:
        lat, _ = await barge_in(replace(base, stt=no_partials, turns=tc), n_b)
        if lat:
            print(
                f"Barge-in ({label}): speech start -> playback stop p50 {pct(lat, 50):.0f} ms, "
                f"p95 {pct(lat, 95):.0f} ms (n={len(lat)}/{n_b})"
            )
    paused, gaps = await barge_in(replace(base, stt=no_partials), n_b // 2, BACKCHANNEL_TEXTS)
    print(
        f"Backchannels over the bot: paused {len(paused)}/{n_b // 2}, resumed {len(gaps)}; "
        + (f"pause p50 {pct(gaps, 50):.0f} ms, p95 {pct(gaps, 95):.0f} ms" if gaps else "")
    )

    # --- per-session memory ---
    gc.collect()
    before = rss_mb()
    sessions = []
    for i in range(50):
        tr = LoopbackTransport(8000)
        s = VoiceSession(
            engines=eng,
            transport=tr,
            on_new_message=Bot(None),
            sender_id=f"m{i}",
            input_channel="bench",
            metadata={},
            config=base,
        )
        await s.start(greet=False)
        await s.feed_audio(speech.silence(1000))
        sessions.append(s)
    after = rss_mb()
    for s in sessions:
        await s.close()
    print(f"Per-session memory (idle, 50 sessions): {(after - before) * 1024 / 50:.0f} kB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: v for k, v in results.items()}, f, default=str)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer utterances")
    ap.add_argument("--no-rasa", action="store_true", help="skip loading the Rasa model")
    ap.add_argument("--json", help="write turn records here")
    asyncio.run(main(ap.parse_args()))
    sys.exit(0)
