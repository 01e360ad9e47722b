"""Coqui engine faults (HTTP 500, bad WAV, timeout, server down); the real server: tests/coqui/."""

from __future__ import annotations

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
