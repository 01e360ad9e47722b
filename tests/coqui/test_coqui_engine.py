"""The Coqui engine against Coqui's real tts-server (a tiny random VITS: the audio is noise)."""

from __future__ import annotations

import numpy as np
import pytest

from channels.voice.config import TTSConfig
from channels.voice.tts import CoquiTTS, TTSError, make_tts
from tests.servers import free_port

pytestmark = pytest.mark.slow


def test_synthesizes_audio_at_the_servers_rate(coqui_server: str) -> None:
    tts = make_tts(TTSConfig(engine="coqui", coqui_url=coqui_server))
    short = tts.synthesize("Hi.")
    audio = tts.synthesize("It is a quarter past three in the afternoon in Tokyo.")
    assert tts.sample_rate == 22050
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert 0 < np.abs(audio).max() <= 1.0
    assert audio.size > short.size > 0  # longer text, longer audio
    assert tts.synthesize("   ").size == 0


def test_server_down_is_a_clear_error() -> None:
    tts = CoquiTTS(TTSConfig(engine="coqui", coqui_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(TTSError, match="not reachable"):
        tts.synthesize("Hello.")
