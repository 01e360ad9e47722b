"""TwilioTransport: a VoiceSession's wire to one Twilio Media Stream (bidirectional).

Bot audio (PCM16 8 kHz) goes out as mu-law in 20 ms ``media`` payloads, each sentence followed by
a ``mark`` named after its segment id. Audio is sent ahead of real time and Twilio buffers it, so
the only proof that a sentence was heard is Twilio echoing its mark; then the session is told
(``on_played``). Barge-in sends ``clear``: Twilio drops the buffer and returns the pending marks,
which are *not* reported as played.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.twilio import protocol
from channels.voice.audio import Framer, ulaw_encode

logger = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]


class TwilioTransport:
    """Implements ``channels.voice.transport.Transport`` over a Media Streams WebSocket."""

    output_sample_rate = protocol.MULAW_RATE

    def __init__(
        self,
        send: SendText,
        stream_sid: str,
        *,
        end_call: Callable[[], Awaitable[None]],
        send_timeout_s: float = 5.0,
        hangup_grace_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send_raw = send
        self.stream_sid = stream_sid
        self._end_call = end_call
        self._send_timeout_s = send_timeout_s
        self._hangup_grace_s = hangup_grace_s
        self._clock = clock
        self._framer = Framer(protocol.FRAME_BYTES)
        self._carry = b""  # odd PCM byte between chunks
        self._pending_marks: list[str] = []
        self._cleared_marks: set[str] = set()
        self._all_played = asyncio.Event()
        self._all_played.set()
        self._play_until = 0.0  # when the audio sent so far will have played (estimate)
        self.on_played: Callable[[str], None] | None = None
        self.frames_sent = 0
        self.marks_sent = 0
        self.clears_sent = 0
        self.closed = False

    # --- Transport protocol -------------------------------------------------------------------

    async def send_audio(self, pcm16: bytes, segment_id: str) -> None:
        """Encodes and sends complete 20 ms frames; a partial frame waits for more audio."""
        pcm = self._carry + pcm16
        cut = len(pcm) // 2 * 2
        pcm, self._carry = pcm[:cut], pcm[cut:]
        if not pcm:
            return
        for frame in self._framer.push(ulaw_encode(pcm)):
            await self._send_frame(frame)

    async def end_segment(self, segment_id: str) -> None:
        """Flushes the last (silence-padded) frame and sends the segment's mark."""
        self._carry = b""
        rest = self._framer.flush(pad=False)
        if rest:
            pad = protocol.MULAW_SILENCE * (protocol.FRAME_BYTES - len(rest))
            await self._send_frame(rest + pad)
        self._pending_marks.append(segment_id)
        self._all_played.clear()
        self.marks_sent += 1
        await self._send(protocol.mark_message(self.stream_sid, segment_id))

    async def clear_audio(self) -> None:
        """Barge-in: Twilio drops its buffer; pending marks will come back unheard."""
        self._carry = b""
        self._framer.flush(pad=False)
        self._cleared_marks.update(self._pending_marks)
        self._pending_marks.clear()
        self._all_played.set()
        self._play_until = self._clock()
        self.clears_sent += 1
        await self._send(protocol.clear_message(self.stream_sid))

    async def send_event(self, event: dict[str, Any]) -> None:
        """Twilio has no channel for UI events; errors are logged."""
        if event.get("type") == "error":
            logger.warning("call %s: session error: %s", self.stream_sid, event)

    async def hang_up(self) -> None:
        """Waits until the last sentence was heard (its mark echoed), then ends the call."""
        timeout = max(0.0, self._play_until - self._clock()) + self._hangup_grace_s
        try:
            await asyncio.wait_for(self._all_played.wait(), timeout)
        except asyncio.TimeoutError:
            logger.info("call %s: marks not echoed in %.1fs, hanging up", self.stream_sid, timeout)
        await self._end_call()

    # --- from the wire ------------------------------------------------------------------------

    def mark_echoed(self, name: str) -> bool:
        """Handles Twilio's ``mark`` echo; returns True if it confirms playback."""
        if name in self._cleared_marks:
            self._cleared_marks.discard(name)
            return False
        if name not in self._pending_marks:
            logger.info("call %s: echo of unknown mark %r ignored", self.stream_sid, name)
            return False
        # Marks are echoed in order; earlier ones still pending were played too.
        idx = self._pending_marks.index(name)
        played, self._pending_marks = self._pending_marks[: idx + 1], self._pending_marks[idx + 1 :]
        if not self._pending_marks:
            self._all_played.set()
        for seg in played:
            if self.on_played is not None:
                self.on_played(seg)
        return True

    @property
    def pending_marks(self) -> tuple[str, ...]:
        """Marks sent whose audio was not yet confirmed heard."""
        return tuple(self._pending_marks)

    def close(self) -> None:
        """Stops sending; pending waits are released."""
        self.closed = True
        self._all_played.set()

    # --- internals ----------------------------------------------------------------------------

    async def _send_frame(self, mulaw: bytes) -> None:
        now = self._clock()
        self._play_until = max(self._play_until, now) + protocol.FRAME_MS / 1000
        self.frames_sent += 1
        await self._send(protocol.media_message(self.stream_sid, mulaw))

    async def _send(self, text: str) -> None:
        if self.closed:
            return
        try:
            await asyncio.wait_for(self._send_raw(text), self._send_timeout_s)
        except asyncio.TimeoutError:
            logger.warning("call %s: WebSocket stalled on send; ending call", self.stream_sid)
            self.closed = True
            await self._end_call()
        except Exception as e:
            logger.info("call %s: send failed (%s); call is over", self.stream_sid, e)
            self.closed = True
