"""The real bundled models: Silero VAD, faster-whisper tiny.en, Piper."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from channels.voice.audio import pcm16_to_float
from channels.voice.engines import Engines
from channels.voice.output import Speaker
from channels.voice.stt import FasterWhisperSTT
from channels.voice.vad import CHUNK_BYTES
from tests import speech
from tests.voice.wire import LoopbackTransport

pytestmark = pytest.mark.slow


def vad_probs(engines: Engines, pcm: bytes) -> np.ndarray:
    st = engines.vad.stream()
    return np.array(
        [
            st.prob(pcm16_to_float(pcm[i : i + CHUNK_BYTES]))
            for i in range(0, len(pcm) - CHUNK_BYTES + 1, CHUNK_BYTES)
        ]
    )


def test_vad_finds_speech_not_silence_or_noise(engines: Engines) -> None:
    sp = speech.piper_speech("I would like to know the weather in Berlin tomorrow.")
    p = vad_probs(engines, speech.silence(500) + sp + speech.silence(500))
    assert (p[20:-20] > 0.5).mean() > 0.5
    assert p[:10].max() < 0.3
    assert vad_probs(engines, speech.silence(2000)).max() < 0.2
    if speech.have_espeak():
        noise = speech.sox_noise(3.0, "pinknoise", 0.1)
        assert (vad_probs(engines, noise) > 0.5).mean() < 0.05
        es = speech.espeak_speech("what time is it in new york", voice="en-gb")
        assert (vad_probs(engines, es) > 0.5).mean() > 0.4


def test_vad_state_is_per_stream(engines: Engines) -> None:
    a, b = engines.vad.stream(), engines.vad.stream()
    sp = speech.piper_speech("Hello there, how are you?")
    chunks = [
        pcm16_to_float(sp[i : i + CHUNK_BYTES]) for i in range(0, 20 * CHUNK_BYTES, CHUNK_BYTES)
    ]
    pa = [a.prob(c) for c in chunks]
    for _ in range(5):
        b.prob(np.zeros(512, dtype=np.float32))
    pa2 = [b.prob(c) for c in chunks[:3]]
    b.reset()
    pb = [b.prob(c) for c in chunks]
    assert np.allclose(pa, pb, atol=1e-5)
    assert len(pa2) == 3


@pytest.mark.parametrize(
    "text",
    [
        "What time is it in Tokyo?",
        "Can you set a reminder to call my mother tomorrow at five?",
        "What's the weather like in Berlin?",
    ],
)
def test_stt_transcribes_a_synthesized_question(engines: Engines, text: str) -> None:
    pcm = speech.silence(200) + speech.piper_speech(text) + speech.silence(300)
    tr = engines.stt.transcribe(pcm16_to_float(pcm))
    assert speech.wer(text, tr.text) <= 0.10, tr.text
    assert tr.language == "en"


@pytest.mark.skipif(not speech.have_espeak(), reason="needs espeak-ng and sox")
def test_stt_other_voice_noise_and_phone_line(engines: Engines) -> None:
    text = "What time is it in New York?"
    pcm = speech.espeak_speech(text, voice="en-us", wpm=150)
    tr = engines.stt.transcribe(pcm16_to_float(pcm))
    assert speech.wer(text, tr.text) <= 0.2, tr.text
    text = "Please tell me the weather in London"
    noisy = speech.phone_line(speech.add_noise(speech.gain(speech.piper_speech(text), -6), 15))
    tr = engines.stt.transcribe(pcm16_to_float(noisy))
    assert speech.wer(text, tr.text) <= 0.2, tr.text


def test_stt_encodes_short_turns_in_a_shorter_window(engines: Engines) -> None:
    stt = engines.stt
    assert isinstance(stt, FasterWhisperSTT)
    text = "Remind me to call my mother tomorrow."
    short = speech.silence(200) + speech.piper_speech(text) + speech.silence(300)
    tr = stt.transcribe(pcm16_to_float(short))
    assert stt.model.encoder_frames == int(stt.cfg.window_s * 100) < 3000
    assert speech.wer(text, tr.text) <= 0.10, tr.text
    # a turn longer than the window gets Whisper's full 30 s one
    long = short + speech.silence(15_000) + speech.piper_speech("And buy some milk.")
    tr = stt.transcribe(pcm16_to_float(long))
    assert stt.model.encoder_frames == 3000
    assert "mother" in tr.text.lower() and "milk" in tr.text.lower(), tr.text


def test_stt_returns_nothing_for_silence_and_noise(engines: Engines) -> None:
    assert engines.stt.transcribe(np.zeros(16000 * 2, dtype=np.float32)).text == ""
    rng = np.random.default_rng(3)
    white = (rng.standard_normal(16000 * 2) * 0.03).astype(np.float32)
    assert engines.stt.transcribe(white).text == ""
    if speech.have_espeak():
        pink = pcm16_to_float(speech.sox_noise(3.0, "brownnoise", 0.2))
        assert engines.stt.transcribe(pink).text == ""


def test_stt_bad_input_is_safe(engines: Engines) -> None:
    x = np.full(16000, np.nan, dtype=np.float32)
    assert engines.stt.transcribe(x).text == ""
    assert engines.stt.transcribe(np.zeros(10, dtype=np.float32)).text == ""
    clipped = np.clip(pcm16_to_float(speech.piper_speech("What time is it?")) * 20, -1, 1)
    assert isinstance(engines.stt.transcribe(clipped).text, str)


def test_tts_speaks_and_rate_changes_length(engines: Engines) -> None:
    a = engines.tts.engine.synthesize("Hello, this is a test of the voice.")
    assert a.dtype == np.float32 and len(a) > engines.tts.sample_rate * 0.8
    from channels.voice.config import TTSConfig
    from channels.voice.tts import PiperTTS

    slow = PiperTTS(TTSConfig(rate=0.7)).synthesize("Hello, this is a test of the voice.")
    assert len(slow) > len(a) * 1.2


async def test_tts_streams_first_sentence_before_the_rest(engines: Engines) -> None:
    tr = LoopbackTransport(8000, speed=1000)
    order: list[str] = []
    real = engines.tts.synthesize

    class Spy:
        sample_rate = engines.tts.sample_rate

        def synthesize(self, text: str) -> np.ndarray:
            order.append(f"synth:{text[:10]}")
            return real(text)

    class E:
        tts = Spy()
        pool = engines.pool

    orig_send = tr.send_audio

    async def send_audio(pcm: bytes, seg: str) -> None:
        if not order or order[-1] != "audio":
            order.append("audio")
        await orig_send(pcm, seg)

    tr.send_audio = send_audio  # type: ignore[method-assign]
    sp = Speaker(E(), tr)  # type: ignore[arg-type]
    sp.start()
    long = " ".join(f"This is sentence number {i} of a long reply." for i in range(1, 7))
    sp.say(long, 1)
    await sp.wait_done(timeout=60)
    await sp.close()
    assert order.index("audio") < max(i for i, o in enumerate(order) if o.startswith("synth"))
    assert len(tr.order) == 6
    # 8 kHz for the phone line
    seg = tr.segments[tr.order[0]]
    assert len(seg) / 2 / 8000 > 1.0
    await asyncio.sleep(0)


def test_round_trip_tts_stt_8k_mulaw(engines: Engines) -> None:
    text = "Your reminder to water the plants is set for six thirty tomorrow evening."
    from channels.voice.speakable import speakable

    # the bundled voice without Piper's random noise, so the audio is the same on every run
    pcm16k = speech.piper_speech(speakable(text))
    tr = engines.stt.transcribe(pcm16_to_float(speech.phone_line(pcm16k)))
    assert speech.wer(text, tr.text) <= 0.15, tr.text
