"""One Twilio Media Stream (one call): the WebSocket read loop, from ``connected`` to ``stop``.

Checks the handshake signature (when present) and the stream token before any session exists,
turns inbound mu-law into 16 kHz PCM for the session, routes ``mark`` echoes to the transport
and ``dtmf`` digits to the collector, and frees everything when the call ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.twilio import protocol
from channels.twilio.dtmf import DtmfCollector, digits_after_pause
from channels.twilio.tokens import TokenError, verify_stream_token
from channels.twilio.transport import TwilioTransport
from channels.voice.audio import StreamResampler, ulaw_decode

logger = logging.getLogger(__name__)

MAX_BAD_MESSAGES = 50
CLOSE_POLICY = 1008  # WebSocket close code: policy violation


class SessionLike(Protocol):
    """The part of ``VoiceSession`` a stream drives."""

    async def feed_audio(self, pcm16_16k: bytes) -> None: ...
    async def user_text(self, text: str) -> None: ...
    async def close(self) -> None: ...


OpenSession = Callable[[TwilioTransport, dict[str, Any], protocol.Start], Awaitable[SessionLike]]


class WebSocketLike(Protocol):
    """Sanic's WebSocket (``recv`` with timeout returns None when nothing came)."""

    async def recv(self, timeout: float | None = None) -> str | bytes | None: ...
    async def send(self, message: str) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class MediaStream:
    """Runs one Media Streams WebSocket until the call ends."""

    def __init__(
        self,
        ws: WebSocketLike,
        *,
        stream_secret: str,
        open_session: OpenSession,
        on_started: Callable[[str, dict[str, Any]], bool],
        on_ended: Callable[[str], None],
        handshake_ok: bool | None,
        start_timeout_s: float = 10.0,
        stall_timeout_s: float = 20.0,
        max_message_bytes: int = 64_000,
        dtmf_timeout_s: float = 2.5,
        dtmf_max_digits: int = 32,
        dtmf_map: dict[str, str] | None = None,
        hangup_grace_s: float = 3.0,
    ) -> None:
        self.ws = ws
        self._secret = stream_secret
        self._open_session = open_session
        self._on_started = on_started
        self._on_ended = on_ended
        self._handshake_ok = handshake_ok
        self._start_timeout_s = start_timeout_s
        self._stall_timeout_s = stall_timeout_s
        self._max_bytes = max_message_bytes
        self._hangup_grace_s = hangup_grace_s
        self._dtmf = DtmfCollector(timeout_s=dtmf_timeout_s, max_digits=dtmf_max_digits)
        self._dtmf_timer: asyncio.Task[None] | None = None
        self._dtmf_map = dict(dtmf_map or {})
        self._tasks: set[asyncio.Task[Any]] = set()
        self._resampler = StreamResampler(protocol.MULAW_RATE, 16000)
        self._ended = asyncio.Event()
        self.session: SessionLike | None = None
        self.transport: TwilioTransport | None = None
        self.start: protocol.Start | None = None
        self.call_sid = ""
        self.end_reason = ""
        self._last_chunk = -1
        self._last_seq = -1
        self._bad = 0
        self._dropped = 0
        self.frames_in = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Reads the stream until ``stop``, close, stall, hang-up or a protocol violation."""
        try:
            if self._handshake_ok is False:
                await self._close(CLOSE_POLICY, "bad handshake signature")
                return
            await self._read_loop()
        except asyncio.CancelledError:
            self.end_reason = self.end_reason or "cancelled"
            raise
        finally:
            await self._cleanup()

    async def end_call(self) -> None:
        """Ends the call from our side: closing the stream makes Twilio run ``<Hangup/>``."""
        self.end_reason = self.end_reason or "hung up by assistant"
        self._ended.set()
        await self._close(1000, "call ended")

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_msg = loop.time()
        while not self._ended.is_set():
            limit = self._stall_timeout_s if self.start else self._start_timeout_s
            remaining = limit - (loop.time() - last_msg)
            if remaining <= 0:
                what = "no message" if self.start else "no start"
                self.end_reason = f"stalled ({what} for {limit:.0f}s)"
                logger.warning("stream %s: %s; closing", self._label, self.end_reason)
                await self._close(1000 if self.start else CLOSE_POLICY, "stalled")
                return
            try:
                raw = await self.ws.recv(timeout=min(1.0, remaining))
            except Exception as e:
                self.end_reason = self.end_reason or f"socket closed ({type(e).__name__})"
                return
            if raw is None:
                continue
            last_msg = loop.time()
            if not await self._handle(raw):
                return

    async def _cleanup(self) -> None:
        for task in [self._dtmf_timer, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()
        for task in [self._dtmf_timer, *self._tasks]:
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task
        self._tasks.clear()
        if self.transport is not None:
            self.transport.close()
        if self.session is not None:
            try:
                await self.session.close()
            except Exception:
                logger.exception("stream %s: session close failed", self._label)
        if self.call_sid and self.start is not None:
            self._on_ended(self.call_sid)
        await self._close(1000, "bye")
        logger.info(
            "stream %s ended: %s (frames in %d, dropped %d, bad messages %d)",
            self._label,
            self.end_reason or "stop",
            self.frames_in,
            self._dropped,
            self._bad,
        )

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code, reason), 2.0)

    @property
    def _label(self) -> str:
        return self.call_sid or "(before start)"

    # --- messages -----------------------------------------------------------------------------

    async def _handle(self, raw: str | bytes) -> bool:
        """Handles one message; returns False when the stream must end."""
        try:
            if isinstance(raw, bytes | bytearray):
                raise protocol.ProtocolError("binary frame")
            event = protocol.parse(raw, max_bytes=self._max_bytes)
        except protocol.ProtocolError as e:
            return await self._bad_message(str(e))
        if isinstance(event, protocol.Media):
            return await self._on_media(event)
        if isinstance(event, protocol.Start):
            return await self._on_start(event)
        if isinstance(event, protocol.Mark):
            if self.transport is not None:
                self.transport.mark_echoed(event.name)
            return True
        if isinstance(event, protocol.Dtmf):
            self._on_dtmf(event.digit)
            return True
        if isinstance(event, protocol.Stop):
            self.end_reason = "stop (caller hung up)"
            return False
        if isinstance(event, protocol.Connected):
            return True
        logger.info("stream %s: unknown event %r ignored", self._label, event.event)
        return True

    async def _bad_message(self, why: str) -> bool:
        self._bad += 1
        if self.start is None:
            self.end_reason = f"protocol error before start: {why}"
            logger.warning("stream %s: %s; closing", self._label, self.end_reason)
            await self._close(CLOSE_POLICY, "protocol error")
            return False
        if self._bad <= 3:
            logger.warning("stream %s: bad message ignored: %s", self._label, why)
        if self._bad > MAX_BAD_MESSAGES:
            self.end_reason = f"too many bad messages ({self._bad})"
            logger.warning("stream %s: %s; closing", self._label, self.end_reason)
            await self._close(CLOSE_POLICY, "protocol errors")
            return False
        return True

    async def _on_start(self, start: protocol.Start) -> bool:
        if self.start is not None:
            logger.warning("stream %s: second start ignored", self._label)
            return True
        token = start.custom_parameters.get("token", "")
        try:
            claims = verify_stream_token(token, self._secret, start.call_sid)
        except TokenError as e:
            self.end_reason = f"stream token rejected: {e}"
            logger.warning("stream for call %r: %s; closing", start.call_sid, self.end_reason)
            await self._close(CLOSE_POLICY, "unauthorized")
            return False
        if start.encoding != "audio/x-mulaw" or start.sample_rate != protocol.MULAW_RATE:
            self.end_reason = f"unsupported media format {start.encoding}@{start.sample_rate}"
            logger.warning("stream %s: %s; closing", start.call_sid, self.end_reason)
            await self._close(CLOSE_POLICY, "unsupported media format")
            return False
        if not self._on_started(start.call_sid, claims):
            self.end_reason = "call already has a live stream"
            logger.warning("stream %s: %s; closing", start.call_sid, self.end_reason)
            await self._close(CLOSE_POLICY, "duplicate stream")
            return False
        self.start = start
        self.call_sid = start.call_sid
        self.transport = TwilioTransport(
            self.ws.send,
            start.stream_sid,
            end_call=self.end_call,
            hangup_grace_s=self._hangup_grace_s,
        )
        try:
            self.session = await self._open_session(self.transport, claims, start)
        except Exception:
            self.end_reason = "session failed to start"
            logger.exception("stream %s: %s", self._label, self.end_reason)
            return False
        logger.info(
            "stream %s started (stream %s, %s)",
            self.call_sid,
            start.stream_sid,
            claims.get("d", "inbound"),
        )
        return True

    async def _on_media(self, media: protocol.Media) -> bool:
        if self.start is None or self.session is None:
            self._dropped += 1
            if self._dropped == 1:
                logger.warning("stream %s: media before start dropped", self._label)
            return True
        if media.track not in ("inbound", "inbound_track"):
            return True
        if media.chunk and media.chunk <= self._last_chunk:
            self._dropped += 1
            if self._dropped <= 3:
                logger.warning(
                    "stream %s: late media chunk %d (after %d) dropped",
                    self._label,
                    media.chunk,
                    self._last_chunk,
                )
            return True
        self._last_chunk = max(self._last_chunk, media.chunk)
        self.frames_in += 1
        pcm16k = self._resampler.process(ulaw_decode(media.payload))
        if pcm16k:
            await self.session.feed_audio(pcm16k)
        return True

    # --- DTMF ---------------------------------------------------------------------------------

    def _on_dtmf(self, digit: str) -> None:
        if self.session is None:
            return
        loop = asyncio.get_running_loop()
        done = self._dtmf.press(digit, loop.time())
        if self._dtmf_timer is not None:
            self._dtmf_timer.cancel()
            self._dtmf_timer = None
        if done:
            self._spawn(self._send_digits(done))
        elif self._dtmf.deadline() is not None:
            self._dtmf_timer = asyncio.create_task(self._dtmf_after_pause())

    async def _dtmf_after_pause(self) -> None:
        digits = await digits_after_pause(self._dtmf, asyncio.get_running_loop().time)
        if digits:
            self._spawn(self._send_digits(digits))

    async def _send_digits(self, digits: str) -> None:
        text = self._dtmf_map.get(digits, digits)
        logger.info("stream %s: keypad input %r -> %r", self._label, digits, text)
        if self.session is not None:
            await self.session.user_text(text)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("stream %s: task failed: %r", self._label, task.exception())
