"""VoiceConfig validation."""

from __future__ import annotations

import pytest

from channels.voice.config import VoiceConfig


def test_defaults_work_without_config() -> None:
    c = VoiceConfig.from_dict(None)
    assert c.stt.engine == "faster_whisper" and c.tts.engine == "piper"
    assert c.turns.semantic and c.turns.barge_in and c == VoiceConfig()
    assert hash(c) == hash(VoiceConfig())


def test_nested_values_are_read() -> None:
    c = VoiceConfig.from_dict(
        {
            "stt": {"beam_size": 3, "hotwords": "Berlin reminder"},
            "turns": {"silence_ms": 500},
            "tts": {"rate": 0.8},
            "session": {"reprompt_s": 5},
        }
    )
    assert c.stt.beam_size == 3 and c.turns.silence_ms == 500 and c.tts.rate == 0.8
    assert c.session.reprompt_s == 5.0


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"stt": {"bogus": 1}}, "voice.stt.bogus"),
        ({"stt": {"beam_size": "x"}}, "voice.stt.beam_size"),
        ({"turns": {"silence_ms": 0}}, "voice.turns.silence_ms"),
        ({"tts": {"engine": "espeak"}}, "voice.tts.engine"),
        ({"vad": {"threshold": 1.5}}, "voice.vad.threshold"),
        ({"turns": {"backchannels": "yeah"}}, "voice.turns.backchannels"),
        ({"stt": 3}, "voice.stt"),
        ({"stt": {"window_s": 40}}, "voice.stt.window_s"),
        ({"stt": {"window_s": 0}}, "voice.stt.window_s"),
        ({"nope": {}}, "voice.nope"),
    ],
)
def test_bad_values_name_the_key(bad: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        VoiceConfig.from_dict(bad)
