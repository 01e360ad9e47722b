"""Shared fixtures: the real engines, loaded once."""

from __future__ import annotations

import pytest

from channels.voice.config import VoiceConfig
from channels.voice.engines import Engines, get_engines


@pytest.fixture(scope="session")
def engines() -> Engines:
    """The bundled models (tiny.en, Silero, Piper joe), loaded once for all voice tests."""
    return get_engines(VoiceConfig())
