"""Coqui tts-server engine: a loopback server speaking its API, and the real one when set."""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from channels.voice.audio import float_to_pcm16, write_wav
from channels.voice.config import TTSConfig
from channels.voice.tts import CoquiTTS, TTSError


def _wav(seconds: float = 0.5, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return write_wav(float_to_pcm16(0.3 * np.sin(2 * np.pi * 220 * t)), rate)


def test_coqui_engine_fetches_wav(httpserver: HTTPServer) -> None:
    seen: list[dict[str, str]] = []

    def handler(req: Request) -> Response:
        seen.append(dict(req.args))
        return Response(_wav(), content_type="audio/wav")

    httpserver.expect_request("/api/tts", method="GET").respond_with_handler(handler)
    eng = CoquiTTS(
        TTSConfig(
            engine="coqui",
            coqui_url=httpserver.url_for("/"),
            coqui_speaker="p225",
            coqui_language="en",
        )
    )
    audio = eng.synthesize("Hello there, it is five o'clock.")
    assert eng.sample_rate == 24000
    assert abs(len(audio) - 12000) < 10 and audio.dtype == np.float32
    assert seen[0]["text"] == "Hello there, it is five o'clock."
    assert seen[0]["speaker_id"] == "p225" and seen[0]["language_id"] == "en"


def test_coqui_server_down_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    eng = CoquiTTS(TTSConfig(engine="coqui", coqui_url=f"http://127.0.0.1:{port}", timeout_s=2))
    with pytest.raises(TTSError, match="not reachable"):
        eng.synthesize("Hello.")


def test_coqui_http_error_and_bad_wav(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/tts").respond_with_data("boom", status=500)
    eng = CoquiTTS(TTSConfig(engine="coqui", coqui_url=httpserver.url_for("/")))
    with pytest.raises(TTSError, match="HTTP 500"):
        eng.synthesize("Hello.")
    httpserver.clear()
    httpserver.expect_request("/api/tts").respond_with_data("not a wav", content_type="audio/wav")
    with pytest.raises(TTSError, match="no valid WAV"):
        eng.synthesize("Hello.")


def test_coqui_timeout(httpserver: HTTPServer) -> None:
    def slow(req: Request) -> Response:
        time.sleep(2.0)
        return Response(_wav(), content_type="audio/wav")

    httpserver.expect_request("/api/tts").respond_with_handler(slow)
    eng = CoquiTTS(TTSConfig(engine="coqui", coqui_url=httpserver.url_for("/"), timeout_s=0.5))
    t0 = time.monotonic()
    with pytest.raises(TTSError):
        eng.synthesize("Hello.")
    assert time.monotonic() - t0 < 1.9


@pytest.mark.skipif(not os.environ.get("COQUI_TTS_URL"), reason="set COQUI_TTS_URL to a tts-server")
def test_real_coqui_tts_server_round_trip() -> None:
    from channels.voice.audio import resample_float
    from channels.voice.config import STTConfig
    from channels.voice.stt import make_stt
    from tests.speech import wer

    eng = CoquiTTS(
        TTSConfig(
            engine="coqui",
            coqui_url=os.environ["COQUI_TTS_URL"],
            timeout_s=60,
            coqui_speaker=os.environ.get("COQUI_SPEAKER"),
            coqui_language=os.environ.get("COQUI_LANGUAGE"),
        )
    )
    text = "What time is it in Tokyo?"
    audio = eng.synthesize(text)
    stt = make_stt(STTConfig())
    heard = stt.transcribe(resample_float(audio, eng.sample_rate, 16000)).text
    assert wer(text, heard) <= 0.2, heard
