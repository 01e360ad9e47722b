"""Process-wide, load-once cache of the speech engines, keyed by config."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from channels.voice.config import VoiceConfig
from channels.voice.stt import STT, make_stt
from channels.voice.tts import TTS, CachedTTS, make_tts
from channels.voice.vad import VAD, make_vad

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BoundedPool:
    """A thread pool that knows how busy it is (partials are skipped when it is busy)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voice")
        self._busy = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        """Jobs queued or running."""
        return self._busy

    @property
    def idle(self) -> bool:
        """True when nothing is queued or running."""
        return self._busy == 0

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs a blocking function in the pool without blocking the event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._busy += 1
        try:
            return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))
        finally:
            with self._lock:
                self._busy -= 1

    def shutdown(self) -> None:
        """Stops the threads."""
        self.executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Engines:
    """The shared engines: VAD, STT, TTS and the inference pool."""

    config: VoiceConfig
    vad: VAD
    stt: STT
    tts: CachedTTS
    pool: BoundedPool
    warm: bool = False
    load_s: float = 0.0
    _warm_lock: asyncio.Lock | None = field(default=None, repr=False)

    async def warm_up(self) -> None:
        """Runs one STT and TTS inference (and caches the fixed prompts) off the loop."""
        if self.warm:
            return
        t0 = time.perf_counter()
        await self.pool.run(self.stt.warm_up)
        await self.pool.run(self.tts.warm_up)
        self.warm = True
        logger.info("voice engines warm in %.2f s", time.perf_counter() - t0)


_CACHE: dict[VoiceConfig, Engines] = {}
_CACHE_LOCK = threading.Lock()
_PARTS: dict[tuple[str, Any], Any] = {}


def fixed_prompts(config: VoiceConfig) -> tuple[str, ...]:
    """The session's fixed phrases, synthesized once at warm-up."""
    s = config.session
    return (
        s.reprompt_text,
        s.goodbye_text,
        s.not_understood_text,
        s.help_text,
        s.filler_text,
        s.error_text,
        *config.tts.cached_prompts,
    )


def get_engines(config: VoiceConfig | None = None) -> Engines:
    """Returns the process-wide engines for this config, loading them on first use."""
    config = config or VoiceConfig()
    with _CACHE_LOCK:
        eng = _CACHE.get(config)
        if eng is not None:
            return eng
        t0 = time.perf_counter()
        from channels.voice.speakable import speakable, speech_chunks

        # Components are shared across configs that agree on them: one model per process.
        stt = _PARTS.get(("stt", config.stt)) or make_stt(config.stt)
        vad = _PARTS.get(("vad", config.vad.engine)) or make_vad(config.vad.engine)
        engine_tts = _PARTS.get(("tts", config.tts)) or make_tts(config.tts)
        pool = _PARTS.get(("pool", config.pool_workers)) or BoundedPool(config.pool_workers)
        _PARTS[("stt", config.stt)] = stt
        _PARTS[("vad", config.vad.engine)] = vad
        _PARTS[("tts", config.tts)] = engine_tts
        _PARTS[("pool", config.pool_workers)] = pool
        tts = CachedTTS(
            engine_tts,
            size=config.tts.cache_size,
            # cached as the Speaker will ask for them: chunk by chunk
            prompts=tuple(c for p in fixed_prompts(config) for c in speech_chunks(speakable(p))),
        )
        eng = Engines(config=config, vad=vad, stt=stt, tts=tts, pool=pool)
        eng.load_s = time.perf_counter() - t0
        logger.info("voice engines loaded in %.2f s", eng.load_s)
        _CACHE[config] = eng
        return eng


def clear_engines() -> None:
    """Drops cached engines (tests)."""
    with _CACHE_LOCK:
        for key, part in _PARTS.items():
            if key[0] == "pool":
                part.shutdown()
        _CACHE.clear()
        _PARTS.clear()


__all__ = ["STT", "TTS", "VAD", "BoundedPool", "Engines", "clear_engines", "get_engines"]
