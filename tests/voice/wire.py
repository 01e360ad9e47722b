"""A loopback transport for session tests: records bot audio, plays it back in simulated time."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from channels.voice.audio import pcm16_to_float, resample_float
from channels.voice.stt import Transcript


class LoopbackTransport:
    """Implements the Transport protocol like a client would: plays segments, confirms them."""

    def __init__(self, output_sample_rate: int = 16000, speed: float = 1.0) -> None:
        self.output_sample_rate = output_sample_rate
        self.speed = speed  # playback speed-up (tests: >1 plays faster than real time)
        self.events: list[dict[str, Any]] = []
        self.segments: dict[str, bytearray] = {}
        self.order: list[str] = []
        self.played: list[str] = []
        self.cleared = 0
        self.clear_times: list[float] = []
        self.audio_times: list[float] = []  # when each chunk of bot audio arrived
        self.hung_up = False
        self.first_audio_t: float | None = None
        self.session: Any = None
        self._play_task: asyncio.Task[None] | None = None
        self._pending: asyncio.Queue[str] = asyncio.Queue()

    async def send_audio(self, pcm16: bytes, segment_id: str) -> None:
        """Records a chunk."""
        if segment_id not in self.segments:
            self.segments[segment_id] = bytearray()
            self.order.append(segment_id)
        t = asyncio.get_running_loop().time()
        self.audio_times.append(t)
        if self.first_audio_t is None:
            self.first_audio_t = t
        self.segments[segment_id].extend(pcm16)

    async def end_segment(self, segment_id: str) -> None:
        """Queues the segment for simulated playback."""
        self._pending.put_nowait(segment_id)
        if self._play_task is None or self._play_task.done():
            self._play_task = asyncio.create_task(self._play())

    async def _play(self) -> None:
        while not self._pending.empty():
            sid = self._pending.get_nowait()
            dur = len(self.segments.get(sid, b"")) / 2 / self.output_sample_rate
            await asyncio.sleep(dur / self.speed)
            self.played.append(sid)
            if self.session is not None:
                self.session.segment_played(sid)

    async def clear_audio(self) -> None:
        """Stops playback: queued segments are never confirmed."""
        self.cleared += 1
        self.clear_times.append(asyncio.get_running_loop().time())
        while not self._pending.empty():
            self._pending.get_nowait()
        if self._play_task is not None:
            self._play_task.cancel()

    async def send_event(self, event: dict[str, Any]) -> None:
        """Records the event."""
        self.events.append(event)

    async def hang_up(self) -> None:
        """Records the hang-up."""
        self.hung_up = True

    def bot_audio(self, ids: list[str] | None = None) -> bytes:
        """All bot audio (or of the given segments) concatenated."""
        return b"".join(bytes(self.segments[s]) for s in (ids or self.order))

    def transcribe_bot(self, stt: Any) -> Transcript:
        """Transcribes all bot audio in one go, segments a short pause apart, with the given STT.

        One go, as a listener hears it: Whisper mishears a lone short segment ("Goodbye!" alone
        came out as "The." once in twenty) far more often than the same words in context.
        """
        gap = np.zeros(int(0.2 * self.output_sample_rate), dtype=np.float32)
        parts: list[np.ndarray] = []
        for sid in self.order:
            parts += [pcm16_to_float(bytes(self.segments[sid])), gap]
        if not parts:
            return Transcript(text="")
        x = resample_float(np.concatenate(parts), self.output_sample_rate, 16000)
        return Transcript(text=stt.transcribe(x).text)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Events of one type."""
        return [e for e in self.events if e.get("type") == kind]


async def feed_realtime(session: Any, pcm: bytes, chunk_ms: int = 20, speed: float = 1.0) -> None:
    """Feeds PCM16 16 kHz to a session in chunks at (sped-up) real-time pace."""
    step = 16 * chunk_ms * 2
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i, off in enumerate(range(0, len(pcm), step)):
        await session.feed_audio(pcm[off : off + step])
        target = t0 + (i + 1) * chunk_ms / 1000 / speed
        await asyncio.sleep(max(0.0, target - loop.time()))
