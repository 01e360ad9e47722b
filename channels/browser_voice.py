"""BrowserVoiceInput: the voice widget page and its WebSocket, as a custom Rasa input channel.

Register it in ``credentials.yml``::

    channels.browser_voice.BrowserVoiceInput:
      allowed_origins: ["https://www.example.com"]   # optional; same-origin always allowed
      jwt_key: ${BROWSER_VOICE_JWT_KEY}              # optional token auth for embedding sites
      voice: {stt: {model: base.en}}                 # optional VoiceConfig overrides

Routes under ``/webhooks/browser_voice/``: ``GET /`` the widget page, ``GET /health``,
``GET /<static file>`` (widget.js, capture-worklet.js, style.css, ...) and the WebSocket
``/websocket`` speaking the protocol in ``docs/browser-protocol.md``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import html
import json
import logging
import re
import time
import uuid
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.exceptions import WebsocketClosed
from sanic.request import Request
from sanic.response import HTTPResponse
from websockets.exceptions import ConnectionClosed

from channels.voice.config import VoiceConfig, _build
from channels.voice.nlu_parse import rasa_parser, warm_up_parser
from channels.voice.presence import set_presence
from channels.voice.session import VoiceSession

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
STATIC_DIR = Path(__file__).resolve().parent / "static"
INPUT_SAMPLE_RATE = 16000
OUTPUT_SAMPLE_RATES = (16000, 22050, 24000, 44100, 48000)
MODES = ("hands_free", "push_to_talk")
CLIENT_TYPES = ("hello", "ptt_start", "ptt_end", "text", "playback_done", "reset", "ping")
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")

# WebSocket close codes (4000-4999 are for applications; see docs/browser-protocol.md).
CLOSE_NORMAL = 1000
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_TIMEOUT = 4408
CLOSE_UNSUPPORTED_VERSION = 4409
CLOSE_TOO_LARGE = 4413
CLOSE_RATE_LIMITED = 4429

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}


class ProtocolError(Exception):
    """A client message the protocol does not allow; ``close_code`` set when it ends the socket."""

    def __init__(self, code: str, message: str, close_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


@dataclass(frozen=True)
class BrowserVoiceSettings:
    """Settings of the browser channel (its ``credentials.yml`` section); no config needed."""

    allowed_origins: tuple[str, ...] = ()  # besides the page's own origin; "*" allows any
    jwt_key: str | None = None  # when set, every hello must carry a valid token
    jwt_method: str = "HS256"
    max_frame_bytes: int = 16000  # one binary frame: 0.5 s of 16 kHz PCM16
    max_text_bytes: int = 8192  # one JSON message
    max_text_chars: int = 1000  # one typed turn
    max_messages_per_second: float = 150.0  # sustained; bursts up to 2 s worth are fine
    max_bytes_per_second: int = 96000  # sustained audio in: 3x real time
    max_bad_messages: int = 20  # malformed JSON messages tolerated before closing
    max_session_s: float = 3600.0
    hello_timeout_s: float = 10.0
    send_timeout_s: float = 10.0  # a client that stops reading is dropped after this
    max_queued_bytes: int = 4_000_000  # server -> client backlog before dropping a slow client
    max_sessions: int = 32  # concurrent connections served by this process
    output_sample_rate: int = 24000  # default bot audio rate; the client may ask for another
    greet: bool = True  # greet with the greet intent when the client's hello asks for it
    title: str = "Voice assistant"
    voice: VoiceConfig = field(default_factory=VoiceConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> BrowserVoiceSettings:
        """Builds validated settings; raises ValueError naming the bad key."""
        data = dict(d or {})
        origins = data.get("allowed_origins")
        if isinstance(origins, str):
            data["allowed_origins"] = [o.strip() for o in origins.split(",") if o.strip()]
        if data.get("jwt_key") == "":
            data["jwt_key"] = None
        settings = _build(cls, data, "browser_voice")
        for name in (
            "max_frame_bytes",
            "max_text_bytes",
            "max_text_chars",
            "max_messages_per_second",
            "max_bytes_per_second",
            "max_session_s",
            "hello_timeout_s",
            "send_timeout_s",
            "max_queued_bytes",
            "max_sessions",
        ):
            if getattr(settings, name) <= 0:
                raise ValueError(
                    f"browser_voice.{name}: must be > 0, got {getattr(settings, name)}"
                )
        if settings.output_sample_rate not in OUTPUT_SAMPLE_RATES:
            raise ValueError(
                f"browser_voice.output_sample_rate: must be one of {OUTPUT_SAMPLE_RATES}, "
                f"got {settings.output_sample_rate}"
            )
        for origin in settings.allowed_origins:
            if origin != "*" and not _is_origin(origin):
                raise ValueError(
                    f"browser_voice.allowed_origins: {origin!r} is not an origin like "
                    "'https://example.com' (scheme://host[:port], no path) or '*'"
                )
        return settings


# --- pure helpers -------------------------------------------------------------------------


def _is_origin(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.path in ("", "/")


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a WebSocket's Origin may connect: same-origin, listed, or no Origin (non-browser)."""
    if not origin:
        return True
    if "*" in allowed:
        return True
    normalized = origin.rstrip("/").lower()
    if normalized in {a.rstrip("/").lower() for a in allowed}:
        return True
    return bool(host) and urlsplit(normalized).netloc == host.lower()


@dataclass
class Hello:
    """A validated ``hello`` message."""

    session_id: str
    timezone: str | None
    language: str
    mode: str
    greet: bool
    output_sample_rate: int
    token: str | None


def parse_hello(msg: dict[str, Any], default_rate: int) -> Hello:
    """Validates a hello; raises ProtocolError (closing) on a wrong version or shape."""
    version = msg.get("protocol")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_protocol",
            f"protocol version {version!r} is not supported; this server speaks {PROTOCOL_VERSION}",
            CLOSE_UNSUPPORTED_VERSION,
        )
    session_id = msg.get("session_id")
    if session_id is None:
        session_id = uuid.uuid4().hex
    if not isinstance(session_id, str) or not SESSION_ID_RE.match(session_id):
        raise ProtocolError(
            "bad_hello", "session_id must be 8-64 characters of A-Z a-z 0-9 _ -", CLOSE_BAD_REQUEST
        )
    tz = msg.get("timezone")
    if tz is not None:
        if not isinstance(tz, str):
            raise ProtocolError("bad_hello", "timezone must be an IANA name", CLOSE_BAD_REQUEST)
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            logger.info("Ignoring unknown timezone %r in hello.", tz)
            tz = None
    language = msg.get("language", "en")
    if not isinstance(language, str) or not LANGUAGE_RE.match(language):
        raise ProtocolError(
            "bad_hello", "language must be a BCP 47 tag like 'en' or 'en-US'", CLOSE_BAD_REQUEST
        )
    mode = msg.get("mode", "hands_free")
    if mode not in MODES:
        raise ProtocolError("bad_hello", f"mode must be one of {MODES}", CLOSE_BAD_REQUEST)
    greet = msg.get("greet", True)
    if not isinstance(greet, bool):
        raise ProtocolError("bad_hello", "greet must be true or false", CLOSE_BAD_REQUEST)
    rate = msg.get("output_sample_rate", default_rate)
    if rate not in OUTPUT_SAMPLE_RATES or isinstance(rate, bool):
        raise ProtocolError(
            "bad_hello",
            f"output_sample_rate must be one of {OUTPUT_SAMPLE_RATES}",
            CLOSE_BAD_REQUEST,
        )
    token = msg.get("token")
    if token is not None and not isinstance(token, str):
        raise ProtocolError("bad_hello", "token must be a string", CLOSE_BAD_REQUEST)
    return Hello(
        session_id, tz, language.split("-")[0].split("_")[0].lower(), mode, greet, rate, token
    )


def parse_control(raw: str, max_text_chars: int) -> dict[str, Any]:
    """Parses and shape-checks one JSON control message (not hello); raises ProtocolError."""
    try:
        msg = json.loads(raw)
    except ValueError:
        raise ProtocolError("bad_json", "control messages must be JSON objects") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_message", 'a control message is an object with a "type" string')
    kind = msg["type"]
    if kind not in CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")
    if kind == "text":
        text = msg.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("bad_message", '"text" needs a non-empty "text" string')
        if len(text) > max_text_chars:
            raise ProtocolError("text_too_long", f"typed text is limited to {max_text_chars} chars")
    elif kind == "playback_done":
        seg = msg.get("id")
        if not isinstance(seg, str) or not seg or len(seg) > 128:
            raise ProtocolError("bad_message", '"playback_done" needs the segment "id" string')
    elif kind == "reset":
        sid = msg.get("session_id")
        if sid is not None and (not isinstance(sid, str) or not SESSION_ID_RE.match(sid)):
            raise ProtocolError("bad_message", "session_id must be 8-64 chars of A-Z a-z 0-9 _ -")
    return msg


class TokenBucket:
    """A token bucket: ``rate`` per second sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic() if now is None else now

    def take(self, amount: float = 1.0, now: float | None = None) -> bool:
        """Takes ``amount`` tokens; False when the bucket is empty (limit exceeded)."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True


def error_event(code: str, message: str, fatal: bool = False) -> dict[str, Any]:
    """The ``error`` event sent to the client."""
    return {"type": "error", "code": code, "message": message, "fatal": fatal}


# --- transport ----------------------------------------------------------------------------


class BrowserTransport:
    """The Transport a VoiceSession talks to: queues JSON events and bot audio for one socket.

    A single writer task drains the queue, so a slow or non-reading client never blocks the
    session: once the backlog exceeds ``max_queued_bytes`` or a send stalls longer than
    ``send_timeout_s``, the connection is dropped.
    """

    def __init__(
        self,
        ws: Any,
        output_sample_rate: int,
        *,
        send_timeout_s: float = 10.0,
        max_queued_bytes: int = 4_000_000,
    ) -> None:
        self.ws = ws
        self.output_sample_rate = output_sample_rate
        self.send_timeout_s = send_timeout_s
        self.max_queued_bytes = max_queued_bytes
        self._queue: collections.deque[str | bytes] = collections.deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._segment: str | None = None
        self._close_after: tuple[int, str] | None = None
        self.closed = asyncio.Event()
        self.failed_reason: str | None = None
        self.writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the writer task."""
        self.writer = asyncio.create_task(self._write_loop(), name="browser-voice-writer")

    def _put(self, item: str | bytes) -> None:
        if self.closed.is_set() or self._close_after is not None:
            return
        self._queue.append(item)
        self._queued_bytes += len(item)
        self._wakeup.set()
        if self._queued_bytes > self.max_queued_bytes:
            self._fail("slow_consumer: the client is not reading")

    def put_event(self, event: dict[str, Any]) -> None:
        """Queues one JSON event."""
        self._put(json.dumps(event, separators=(",", ":"), default=str))

    async def send_audio(self, pcm16: bytes, segment_id: str) -> None:
        """Queues bot audio; an ``audio_start`` precedes the first chunk of each segment."""
        if segment_id != self._segment:
            self._segment = segment_id
            self.put_event(
                {"type": "audio_start", "id": segment_id, "sample_rate": self.output_sample_rate}
            )
        if pcm16:
            self._put(bytes(pcm16))

    async def end_segment(self, segment_id: str) -> None:
        """Queues ``audio_end``; the client answers with ``playback_done`` once it was heard."""
        if segment_id != self._segment:  # a segment without audio still gets start and end
            self.put_event(
                {"type": "audio_start", "id": segment_id, "sample_rate": self.output_sample_rate}
            )
        self.put_event({"type": "audio_end", "id": segment_id})
        self._segment = None

    async def clear_audio(self) -> None:
        """Barge-in: drops queued bot audio (events stay, in order) and tells the client to stop."""
        kept = [item for item in self._queue if isinstance(item, str)]
        self._queue = collections.deque(kept)
        self._queued_bytes = sum(len(i) for i in kept)
        self.put_event({"type": "clear_audio"})

    async def send_event(self, event: dict[str, Any]) -> None:
        """Forwards a session event (vad, partial, transcript, bot_text, turn_metrics, ...)."""
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return
        if event["type"] == "error":  # session errors are turn failures: never fatal
            event = {
                "code": f"{event.get('stage', 'server')}_failed",
                "message": str(event.get("message", "")),
                **event,
                "fatal": False,
            }
        self.put_event(event)

    async def hang_up(self) -> None:
        """Sends ``end`` and closes the socket once everything queued before it was sent."""
        self.put_event({"type": "end", "reason": "hangup"})
        self.close_when_flushed(CLOSE_NORMAL, "conversation ended")

    def close_when_flushed(self, code: int, reason: str) -> None:
        """Closes the socket with ``code`` after the queue is sent; later items are dropped."""
        if self._close_after is None:
            self._close_after = (code, reason)
            self._wakeup.set()

    def _fail(self, reason: str) -> None:
        self.failed_reason = reason
        logger.info("Dropping browser voice connection: %s", reason)
        self._queue.clear()
        self._queued_bytes = 0
        with contextlib.suppress(Exception):  # the socket may be gone already
            self.ws.fail_connection(CLOSE_SERVER_ERROR, reason[:100])
        self.closed.set()
        self._wakeup.set()

    async def _write_loop(self) -> None:
        try:
            while not self.closed.is_set():
                if not self._queue:
                    if self._close_after is not None:
                        code, reason = self._close_after
                        await asyncio.wait_for(self.ws.close(code, reason), self.send_timeout_s)
                        self.closed.set()
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                item = self._queue.popleft()
                self._queued_bytes -= len(item)
                try:
                    await asyncio.wait_for(self.ws.send(item), self.send_timeout_s)
                except asyncio.TimeoutError:
                    self._fail("send timed out: the client is not reading")
                    return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the socket closed under us
            logger.debug("Browser voice writer stopped: %r", e)
        finally:
            self.closed.set()

    async def aclose(self) -> None:
        """Stops the writer."""
        self.closed.set()
        self._wakeup.set()
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.writer


# --- the channel --------------------------------------------------------------------------


SessionFactory = Callable[..., VoiceSession]


class BrowserVoiceInput(InputChannel):
    """The browser voice widget: a page, static files and a WebSocket into a VoiceSession."""

    @classmethod
    def name(cls) -> str:
        """The channel's name; its routes live under ``/webhooks/browser_voice/``."""
        return "browser_voice"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> BrowserVoiceInput:
        """Builds the channel from its ``credentials.yml`` section (None: all defaults)."""
        return cls(BrowserVoiceSettings.from_dict(credentials))

    def __init__(
        self,
        settings: BrowserVoiceSettings | None = None,
        session_factory: SessionFactory | None = None,
    ) -> None:
        self.settings = settings or BrowserVoiceSettings()
        self.session_factory: SessionFactory = session_factory or VoiceSession
        self.connections: dict[int, BrowserConnection] = {}
        self._engines: Any = None
        self._static = {
            p.relative_to(STATIC_DIR).as_posix(): p
            for p in STATIC_DIR.rglob("*")
            if p.is_file() and p.suffix in _CONTENT_TYPES
        }

    def engines(self) -> Any:
        """The process-wide speech engines (loaded once, on first use)."""
        if self._engines is None:
            try:
                from channels.voice.engines import get_engines
            except ImportError:  # the engine module is not there yet: sessions get None
                return None
            self._engines = get_engines(self.settings.voice)
        return self._engines

    def sessions_for(self, sender_id: str) -> list[BrowserConnection]:
        """The live connections of one conversation."""
        return [c for c in self.connections.values() if c.sender_id == sender_id]

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Routes: widget page, health, static files, WebSocket."""
        bp = Blueprint(f"{self.name()}_webhook", __name__)

        @bp.listener("after_server_start")
        async def warm_up(app: Any, _loop: Any) -> None:
            engines = await asyncio.get_running_loop().run_in_executor(None, self.engines)
            if engines is not None and hasattr(engines, "warm_up"):
                try:
                    await engines.warm_up()
                except Exception:
                    logger.exception("Warming up the speech engines failed.")
            await warm_up_parser(app)

        @bp.route("/", methods=["GET"])
        async def page(request: Request) -> HTTPResponse:
            if not request.path.endswith("/"):  # the page's relative URLs need the slash
                return response.redirect(request.path + "/", status=308)
            return self._static_response("index.html")

        @bp.route("/health", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json(
                {
                    "status": "ok",
                    "protocol": PROTOCOL_VERSION,
                    "sessions": len(self.connections),
                    "max_sessions": self.settings.max_sessions,
                }
            )

        @bp.route("/<path:path>", methods=["GET"])
        async def static(request: Request, path: str) -> HTTPResponse:
            return self._static_response(path or "index.html")

        @bp.websocket("/websocket")
        async def websocket(request: Request, ws: Any) -> None:
            conn = BrowserConnection(self, request, ws, on_new_message)
            await conn.run()

        return bp

    def _static_response(self, path: str) -> HTTPResponse:
        file = self._static.get(path)
        if file is None:
            return response.json({"error": "not found"}, status=404)
        body = file.read_bytes()
        if path == "index.html":
            body = body.replace(b"{{title}}", html.escape(self.settings.title).encode("utf-8"))
        return response.raw(
            body,
            content_type=_CONTENT_TYPES[file.suffix],
            headers={
                # widget.js, the worklet and the stylesheet load cross-origin on embedding sites
                "Access-Control-Allow-Origin": "*",
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
            },
        )


class BrowserConnection:
    """One WebSocket: hello, limits, and the message pump into its VoiceSession."""

    def __init__(
        self,
        channel: BrowserVoiceInput,
        request: Request,
        ws: Any,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        self.channel = channel
        self.settings = channel.settings
        self.request = request
        self.ws = ws
        self.on_new_message = on_new_message
        self.sender_id: str | None = None
        self.session: Any = None
        self.transport: BrowserTransport | None = None
        self.hello: Hello | None = None
        self._control: asyncio.Queue[Callable[[], Awaitable[Any]] | None] = asyncio.Queue()
        self._control_task: asyncio.Task[None] | None = None
        self._bad = 0
        rate = self.settings.max_messages_per_second
        self._messages = TokenBucket(rate, rate * 2)
        self._bytes = TokenBucket(
            self.settings.max_bytes_per_second, self.settings.max_bytes_per_second * 5
        )

    async def _send_now(self, event: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.send(json.dumps(event)), self.settings.send_timeout_s)

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        """Sends a fatal error and closes (before a transport exists)."""
        await self._send_now(error_event(code, message, fatal=True))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(close_code, code), self.settings.send_timeout_s)

    async def run(self) -> None:
        """Serves the connection until it closes; always releases the session."""
        key = id(self)
        origin = self.request.headers.get("origin")
        if not origin_allowed(
            origin, self.request.headers.get("host"), self.settings.allowed_origins
        ):
            logger.info("Refused browser voice connection from origin %r.", origin)
            await self._refuse(
                "origin_not_allowed", f"origin {origin} may not connect", CLOSE_FORBIDDEN_ORIGIN
            )
            return
        if len(self.channel.connections) >= self.settings.max_sessions:
            await self._refuse("busy", "the server is at capacity; try again soon", CLOSE_TRY_AGAIN)
            return
        self.channel.connections[key] = self
        try:
            await self._serve()
        except ProtocolError as e:
            await self._close_with(e.code, e.message, e.close_code or CLOSE_BAD_REQUEST)
        except asyncio.CancelledError:
            pass
        except (ConnectionClosed, WebsocketClosed):
            pass
        except Exception:
            logger.exception("Browser voice connection failed.")
            await self._close_with("server_error", "internal error", CLOSE_SERVER_ERROR)
        finally:
            self.channel.connections.pop(key, None)
            await self._teardown()

    async def _close_with(self, code: str, message: str, close_code: int) -> None:
        if self.transport is not None and not self.transport.closed.is_set():
            self.transport.put_event(error_event(code, message, fatal=True))
            self.transport.close_when_flushed(close_code, code)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.transport.closed.wait(), self.settings.send_timeout_s)
        else:
            await self._refuse(code, message, close_code)

    async def _serve(self) -> None:
        raw = await self.ws.recv(timeout=self.settings.hello_timeout_s)
        if raw is None:
            raise ProtocolError("hello_timeout", "no hello received in time", CLOSE_TIMEOUT)
        if not isinstance(raw, str):
            raise ProtocolError(
                "hello_required", "the first message must be a JSON hello", CLOSE_BAD_REQUEST
            )
        if len(raw.encode("utf-8")) > self.settings.max_text_bytes:
            raise ProtocolError("message_too_large", "hello is too large", CLOSE_TOO_LARGE)
        try:
            msg = json.loads(raw)
        except ValueError:
            raise ProtocolError(
                "hello_required", "the first message must be a JSON hello", CLOSE_BAD_REQUEST
            ) from None
        if not isinstance(msg, dict) or msg.get("type") != "hello":
            raise ProtocolError(
                "hello_required", "the first message must be a JSON hello", CLOSE_BAD_REQUEST
            )
        hello = parse_hello(msg, self.settings.output_sample_rate)
        self._authorize(hello)
        self.hello = hello
        self.transport = BrowserTransport(
            self.ws,
            hello.output_sample_rate,
            send_timeout_s=self.settings.send_timeout_s,
            max_queued_bytes=self.settings.max_queued_bytes,
        )
        self.transport.start()
        self._control_task = asyncio.create_task(self._control_loop(), name="browser-voice-control")
        await self._start_session(hello.session_id, greet=hello.greet and self.settings.greet)
        deadline = time.monotonic() + self.settings.max_session_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(
                    "session_time_limit", "the session reached its time limit", CLOSE_TIMEOUT
                )
            if self.transport.closed.is_set():
                return
            raw = await self.ws.recv(timeout=min(left, 5.0))
            if raw is None:
                continue
            await self._handle(raw)

    def _authorize(self, hello: Hello) -> None:
        key = self.settings.jwt_key
        if not key:
            return
        token = hello.token or self.request.args.get("token")
        if not token:
            raise ProtocolError("unauthorized", "a token is required", CLOSE_UNAUTHORIZED)
        try:
            jwt.decode(token.replace("Bearer ", ""), key, algorithms=[self.settings.jwt_method])
        except jwt.PyJWTError as e:
            raise ProtocolError(
                "unauthorized", f"invalid token ({type(e).__name__})", CLOSE_UNAUTHORIZED
            ) from None

    async def _start_session(self, session_id: str, greet: bool) -> None:
        assert self.hello is not None and self.transport is not None
        config = self.settings.voice
        if self.hello.mode == "push_to_talk":
            config = replace(config, turns=replace(config.turns, push_to_talk=True))
        metadata = {
            "channel": BrowserVoiceInput.name(),
            "timezone": self.hello.timezone,
            "language": self.hello.language,
        }
        self.sender_id = session_id
        engines = await asyncio.get_running_loop().run_in_executor(None, self.channel.engines)
        self.session = self.channel.session_factory(
            engines=engines,
            transport=self.transport,
            on_new_message=self.on_new_message,
            sender_id=session_id,
            input_channel=BrowserVoiceInput.name(),
            metadata=metadata,
            config=config,
            parse=rasa_parser(self.request.app),
        )
        self.transport.put_event(
            {
                "type": "ready",
                "protocol": PROTOCOL_VERSION,
                "session_id": session_id,
                "mode": self.hello.mode,
                "input": {"encoding": "pcm_s16le", "sample_rate": INPUT_SAMPLE_RATE, "channels": 1},
                "output": {
                    "encoding": "pcm_s16le",
                    "sample_rate": self.transport.output_sample_rate,
                    "channels": 1,
                },
                "limits": {
                    "max_frame_bytes": self.settings.max_frame_bytes,
                    "max_text_chars": self.settings.max_text_chars,
                    "max_messages_per_second": self.settings.max_messages_per_second,
                    "max_session_s": self.settings.max_session_s,
                },
            }
        )
        session = self.session
        await set_presence(self.request.app, session_id, True)

        async def start() -> None:
            await session.start(greet=greet)

        self._control.put_nowait(start)

    async def _control_loop(self) -> None:
        """Runs session calls that may wait on Rasa (start, typed text) one at a time, in order."""
        while True:
            job = await self._control.get()
            if job is None:
                return
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Browser voice session call failed.")
                if self.transport is not None:
                    self.transport.put_event(error_event("server_error", "that turn failed"))

    def _check_rate(self, size: int) -> None:
        if not self._messages.take(1.0) or not self._bytes.take(float(size)):
            raise ProtocolError("rate_limited", "too many messages; slow down", CLOSE_RATE_LIMITED)

    async def _handle(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes | bytearray | memoryview):
            size = len(raw)
            if size > self.settings.max_frame_bytes:
                raise ProtocolError(
                    "frame_too_large",
                    f"audio frames are limited to {self.settings.max_frame_bytes} bytes",
                    CLOSE_TOO_LARGE,
                )
            self._check_rate(size)
            if self.session is not None:
                await self.session.feed_audio(bytes(raw))
            return
        size = len(raw.encode("utf-8"))
        if size > self.settings.max_text_bytes:
            raise ProtocolError(
                "message_too_large",
                f"control messages are limited to {self.settings.max_text_bytes} bytes",
                CLOSE_TOO_LARGE,
            )
        self._check_rate(size)
        try:
            msg = parse_control(raw, self.settings.max_text_chars)
        except ProtocolError as e:
            self._bad += 1
            if self._bad > self.settings.max_bad_messages:
                raise ProtocolError(
                    "too_many_errors", "too many malformed messages", CLOSE_BAD_REQUEST
                ) from None
            assert self.transport is not None
            self.transport.put_event(error_event(e.code, e.message))
            return
        await self._dispatch(msg)

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        assert self.transport is not None
        kind = msg["type"]
        session = self.session
        if kind == "ping":
            self.transport.put_event({"type": "pong", "t": msg.get("t")})
        elif kind == "hello":
            self.transport.put_event(error_event("bad_message", "hello was already received"))
        elif kind == "text":
            text = msg["text"].strip()

            async def say() -> None:
                await session.user_text(text)

            self._control.put_nowait(say)
        elif kind == "playback_done":
            if msg.get("cleared") is not True:  # cut audio was not heard
                session.segment_played(msg["id"])
        elif kind == "ptt_start":
            await session.ptt_start()
        elif kind == "ptt_end":
            await session.ptt_end()
        elif kind == "reset":
            await self._reset(msg.get("session_id") or uuid.uuid4().hex)

    async def _reset(self, new_id: str) -> None:
        """Starts a fresh conversation under a new session id on the same socket."""
        old, old_id = self.session, self.sender_id
        self.session = None
        if self._control_task is not None:
            self._control_task.cancel()
        self._control = asyncio.Queue()
        if old is not None:
            await old.close()
            if old_id and old_id != new_id:
                await set_presence(self.request.app, old_id, False)
        assert self.transport is not None
        await self.transport.clear_audio()
        self._control_task = asyncio.create_task(self._control_loop(), name="browser-voice-control")
        await self._start_session(new_id, greet=self.settings.greet)

    async def _teardown(self) -> None:
        if self._control_task is not None:
            self._control_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._control_task
        if self.session is not None:
            try:
                await self.session.close()
            except Exception:
                logger.exception("Closing a browser voice session failed.")
            self.session = None
        if self.sender_id and not self.channel.sessions_for(self.sender_id):
            await set_presence(self.request.app, self.sender_id, False)
        if self.transport is not None:
            await self.transport.aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(CLOSE_NORMAL, ""), 2.0)
