"""A Twilio simulator that behaves like Twilio on the wire, for tests and benchmarks.

- Voice webhooks are form-encoded POSTs signed exactly as Twilio signs them (``X-Twilio-Signature``:
  HMAC-SHA1 of the URL and the sorted parameters, keyed with the auth token).
- The TwiML answer is parsed and run verb by verb: ``<Say>`` (recorded as heard text),
  ``<Connect><Stream>`` with its ``<Parameter>``s, ``<Dial>``, ``<Hangup/>``.
- The Media Stream is opened with Twilio's handshake signature header and speaks the documented
  protocol: ``connected``, ``start``, ``media`` every 20 ms (mu-law 8 kHz, ``chunk``/``timestamp``/
  ``sequenceNumber`` counting up), ``dtmf``, ``stop``; it accepts ``media``, ``mark`` and ``clear``.
- The bot's audio is played at real-time speed from a buffer: ``clear`` empties the buffer and
  returns pending marks at once; a ``mark`` is echoed when the audio sent before it has played.
- Everything the caller heard is recorded on a timeline (20 ms slots, silence included).

A public base URL (like a tunnel's ``https://abc.example``) can be mapped onto the loopback server:
the simulator signs the public URL, as Twilio would, and connects to the local one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.request_validator import RequestValidator

from channels.voice.audio import resample_pcm16, ulaw_decode, ulaw_encode

FRAME_MS = 20
FRAME_BYTES = 160  # mu-law bytes per 20 ms at 8 kHz
SILENCE = b"\xff" * FRAME_BYTES


def new_sid(prefix: str) -> str:
    """A Twilio-style sid: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def sign(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """``X-Twilio-Signature`` as Twilio computes it."""
    return RequestValidator(auth_token).compute_signature(url, params or {})


@dataclass
class HeardEvent:
    """Something on the caller's timeline (seconds since the stream started)."""

    t: float
    kind: str  # "bot_start", "bot_stop", "mark", "clear", "dtmf", "say", "caller_start", ...
    detail: str = ""


@dataclass
class CallResult:
    """What happened on one simulated call."""

    call_sid: str
    twiml: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # <Say> texts (Twilio's own TTS)
    dialed: list[str] = field(default_factory=list)
    hung_up_by: str = ""  # "bot" (stream closed then <Hangup/>), "caller", "twiml", "rest"
    status: str = "queued"
    http_status: int | None = None


class StreamSession:
    """One live Media Stream as Twilio runs it: caller audio out and bot audio played per 20 ms."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        call_sid: str,
        account_sid: str,
        parameters: dict[str, str],
    ) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.stream_sid = new_sid("MZ")
        self.parameters = parameters
        self._seq = 0
        self._chunk = 0
        self._t0 = 0.0
        self._caller_queue = bytearray()  # mu-law the caller will say
        self._play_buf = bytearray()  # bot mu-law waiting to be played
        self._played_bytes = 0  # bot bytes played so far (position on the bot's audio)
        self._received_bytes = 0  # bot bytes received so far
        self._marks: list[tuple[int, str]] = []  # (position in bot audio, name)
        self.heard = bytearray()  # mu-law of every 20 ms slot since start (silence included)
        self.events: list[HeardEvent] = []
        self.marks_echoed: list[str] = []
        self.marks_cleared: list[str] = []
        self.bot_frames = 0
        self.bad_frames: list[str] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.unplayed_at_close = 0  # bot audio bytes still buffered when the socket closed
        self._bot_playing = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._lock = asyncio.Lock()

    # --- control ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Sends ``connected`` and ``start``, then runs the 20 ms clock and the reader."""
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": dict(self.parameters),
                },
                "streamSid": self.stream_sid,
            }
        )
        self._t0 = time.monotonic()
        self._tasks.append(asyncio.create_task(self._clock()))

    def listen(self) -> None:
        """Starts reading what the server sends (called when the socket opens)."""
        self._t0 = time.monotonic()
        self._tasks.append(asyncio.create_task(self._reader()))

    def now(self) -> float:
        """Seconds since the stream started."""
        return time.monotonic() - self._t0

    def say(self, pcm16: bytes, rate: int) -> float:
        """Queues caller speech (PCM16 at ``rate``); returns when (stream time) it starts."""
        mulaw = ulaw_encode(resample_pcm16(pcm16, rate, 8000))
        start = self.now() + len(self._caller_queue) / 8000
        self._caller_queue.extend(mulaw)
        self.events.append(HeardEvent(start, "caller_start", f"{len(mulaw) / 8000:.2f}s"))
        return start

    def caller_busy(self) -> bool:
        """True while queued caller speech is still being sent."""
        return bool(self._caller_queue)

    async def dtmf(self, digit: str) -> None:
        """Presses a key (Twilio sends a ``dtmf`` message)."""
        self.events.append(HeardEvent(self.now(), "dtmf", digit))
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def send_raw(self, text: str) -> None:
        """Sends anything (bad-input tests)."""
        await self.ws.send_str(text)

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then the socket closes."""
        if self.closed.is_set():
            return
        with contextlib.suppress(Exception):
            await self._send(
                {
                    "event": "stop",
                    "sequenceNumber": self._next_seq(),
                    "streamSid": self.stream_sid,
                    "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                }
            )
        await self.close()

    async def close(self) -> None:
        """Closes the socket and stops the clock."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.closed.set()

    # --- what the caller heard ----------------------------------------------------------------

    def heard_pcm(self, since: float = 0.0, until: float | None = None) -> bytes:
        """PCM16 8 kHz of the caller's earpiece between two stream times."""
        a = max(0, int(since * 8000))
        b = len(self.heard) if until is None else int(until * 8000)
        return ulaw_decode(bytes(self.heard[a:b]))

    def bot_speaking(self) -> bool:
        """True while bot audio is being played."""
        return self._bot_playing

    def bot_starts(self, since: float = 0.0) -> list[float]:
        """Times bot audio started playing after silence."""
        return [e.t for e in self.events if e.kind == "bot_start" and e.t >= since]

    def bot_stops(self, since: float = 0.0) -> list[float]:
        """Times bot audio stopped playing (end of buffer or ``clear``)."""
        return [e.t for e in self.events if e.kind == "bot_stop" and e.t >= since]

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float, poll: float = 0.05
    ) -> bool:
        """Waits until ``predicate()`` or timeout; returns the predicate's last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(poll)
        return predicate()

    async def wait_bot_turn(
        self, since: float, timeout: float = 30.0, quiet_s: float = 2.0
    ) -> bool:
        """Waits for bot audio after ``since`` followed by ``quiet_s`` of silence (turn over)."""

        def done() -> bool:
            starts = self.bot_starts(since)
            if not starts or self._bot_playing or self._play_buf or self._marks:
                return False
            stops = self.bot_stops(starts[0])
            return bool(stops) and self.now() - stops[-1] >= quiet_s

        return await self.wait_for(done, timeout)

    # --- internals ----------------------------------------------------------------------------

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def _send(self, msg: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_str(json.dumps(msg))

    async def _clock(self) -> None:
        """Every 20 ms: send one caller frame, play one bot frame, echo marks that were reached."""
        tick = 0
        try:
            while True:
                tick += 1
                target = self._t0 + tick * FRAME_MS / 1000
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                # Caller -> Twilio -> server.
                frame = bytes(self._caller_queue[:FRAME_BYTES])
                del self._caller_queue[:FRAME_BYTES]
                frame = frame + SILENCE[len(frame) :]
                self._chunk += 1
                await self._send(
                    {
                        "event": "media",
                        "sequenceNumber": self._next_seq(),
                        "media": {
                            "track": "inbound",
                            "chunk": str(self._chunk),
                            "timestamp": str(self._chunk * FRAME_MS),
                            "payload": base64.b64encode(frame).decode(),
                        },
                        "streamSid": self.stream_sid,
                    }
                )
                # Server -> Twilio -> caller's earpiece.
                out = bytes(self._play_buf[:FRAME_BYTES])
                del self._play_buf[:FRAME_BYTES]
                self._played_bytes += len(out)
                t = self.now()
                if out and not self._bot_playing:
                    self._bot_playing = True
                    self.events.append(HeardEvent(t, "bot_start"))
                elif not out and self._bot_playing:
                    self._bot_playing = False
                    self.events.append(HeardEvent(t, "bot_stop", "end of audio"))
                self.heard.extend(out + SILENCE[len(out) :])
                await self._echo_reached_marks()
        except asyncio.CancelledError:
            raise
        except Exception:  # socket gone: the call is over
            self.closed.set()

    async def _echo_reached_marks(self) -> None:
        while self._marks and self._marks[0][0] <= self._played_bytes:
            _, name = self._marks.pop(0)
            self.marks_echoed.append(name)
            self.events.append(HeardEvent(self.now(), "mark", name))
            await self._send(
                {
                    "event": "mark",
                    "sequenceNumber": self._next_seq(),
                    "streamSid": self.stream_sid,
                    "mark": {"name": name},
                }
            )

    async def _reader(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    self.bad_frames.append(f"non-text frame {msg.type}")
                    continue
                await self._on_server_message(msg.data)
        finally:
            self.close_code = self.ws.close_code
            self.unplayed_at_close = len(self._play_buf)
            self.events.append(HeardEvent(self.now(), "closed", str(self.close_code)))
            self.closed.set()
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    async def _on_server_message(self, raw: str) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            self.bad_frames.append(f"not JSON: {raw[:60]!r}")
            return
        event = msg.get("event")
        if msg.get("streamSid") != self.stream_sid:
            self.bad_frames.append(f"{event} with streamSid {msg.get('streamSid')!r}")
            return
        if event == "media":
            try:
                payload = base64.b64decode(msg["media"]["payload"], validate=True)
            except (KeyError, TypeError, ValueError):
                self.bad_frames.append("media without a base64 payload")
                return
            self._play_buf.extend(payload)
            self._received_bytes += len(payload)
            self.bot_frames += 1
        elif event == "mark":
            name = (msg.get("mark") or {}).get("name")
            if not isinstance(name, str):
                self.bad_frames.append("mark without a name")
                return
            self._marks.append((self._received_bytes, name))
            await self._echo_reached_marks()
        elif event == "clear":
            # Twilio empties the buffer and sends back every pending mark.
            self.events.append(HeardEvent(self.now(), "clear"))
            dropped = len(self._play_buf)
            self._play_buf.clear()
            self._played_bytes += dropped
            if self._bot_playing:
                self._bot_playing = False
                self.events.append(HeardEvent(self.now(), "bot_stop", "clear"))
            pending, self._marks = self._marks, []
            for _, name in pending:
                self.marks_cleared.append(name)
                await self._send(
                    {
                        "event": "mark",
                        "sequenceNumber": self._next_seq(),
                        "streamSid": self.stream_sid,
                        "mark": {"name": name},
                    }
                )
        else:
            self.bad_frames.append(f"unknown event {event!r}")


class TwilioSimulator:
    """Plays Twilio's part for one account: inbound calls to our number, outbound calls placed
    through the fake REST API, signed webhooks and status callbacks."""

    def __init__(
        self,
        *,
        local_base_url: str,
        auth_token: str,
        account_sid: str = "AC" + "0" * 32,
        number: str = "+15005550006",
        public_base_url: str | None = None,
        voice_path: str = "/webhooks/twilio_media/voice",
    ) -> None:
        self.local_base_url = local_base_url.rstrip("/")
        self.public_base_url = (public_base_url or local_base_url).rstrip("/")
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.number = number
        self.voice_path = voice_path
        self.calls: dict[str, CallResult] = {}
        self.streams: dict[str, StreamSession] = {}
        self.status_log: list[tuple[str, str]] = []
        self._after_stream: dict[str, str] = {}
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> TwilioSimulator:
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for stream in list(self.streams.values()):
            await stream.close()
        if self._http is not None:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        """The simulator's HTTP client."""
        if self._http is None:
            raise RuntimeError("use 'async with TwilioSimulator(...)'")
        return self._http

    def to_local(self, url: str) -> str:
        """Maps a public URL (tunnel) onto the loopback server."""
        pub, loc = urlsplit(self.public_base_url), urlsplit(self.local_base_url)
        u = urlsplit(url)
        if u.netloc != pub.netloc:
            return url
        scheme = {"https": "http", "wss": "ws"}.get(u.scheme, u.scheme)
        if loc.scheme == "https":
            scheme = {"http": "https", "ws": "wss"}[scheme]
        return urlunsplit((scheme, loc.netloc, u.path, u.query, ""))

    # --- webhooks -----------------------------------------------------------------------------

    async def post_webhook(
        self, url: str, params: dict[str, str], *, signature: str | None = None
    ) -> tuple[int, str]:
        """POSTs a form-encoded webhook signed as Twilio signs it (or with ``signature``)."""
        sig = sign(self.auth_token, url, params) if signature is None else signature
        headers = {"X-Twilio-Signature": sig} if sig else {}
        async with self.http.post(self.to_local(url), data=params, headers=headers) as resp:
            return resp.status, await resp.text()

    def call_params(
        self, call_sid: str, *, from_: str, to: str, direction: str, status: str
    ) -> dict[str, str]:
        """The parameters Twilio sends with a voice webhook."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": status,
            "Called": to,
            "Caller": from_,
            "Direction": direction,
            "From": from_,
            "FromCountry": _country(from_),
            "To": to,
            "ToCountry": _country(to),
        }

    # --- calls --------------------------------------------------------------------------------

    async def inbound_call(
        self, from_: str, *, signature: str | None = None, voice_url: str | None = None
    ) -> tuple[CallResult, StreamSession | None]:
        """A person calls our number: the voice webhook runs and, if it says so, a stream opens.

        Returns the call and its live stream (None if the TwiML did not stream).
        """
        call_sid = new_sid("CA")
        url = voice_url or self.public_base_url + self.voice_path
        params = self.call_params(
            call_sid, from_=from_, to=self.number, direction="inbound", status="ringing"
        )
        return await self._answer(call_sid, url, params, signature=signature)

    async def _answer(
        self, call_sid: str, url: str, params: dict[str, str], *, signature: str | None = None
    ) -> tuple[CallResult, StreamSession | None]:
        result = CallResult(call_sid)
        self.calls[call_sid] = result
        status, body = await self.post_webhook(url, params, signature=signature)
        result.http_status = status
        if status != 200:
            result.status = "failed"
            return result, None
        result.status = "in-progress"
        stream = await self.run_twiml(result, body, until_stream=True)
        return result, stream

    async def run_twiml(
        self, result: CallResult, body: str, *, until_stream: bool = False
    ) -> StreamSession | None:
        """Runs TwiML verbs; with ``until_stream`` returns as soon as a stream is open (the rest
        runs when it ends, see ``finish_call``)."""
        result.twiml.append(body)
        root = ET.fromstring(body)
        if root.tag != "Response":
            raise ValueError(f"TwiML root is {root.tag!r}, not Response")
        verbs = list(root)
        for i, verb in enumerate(verbs):
            if verb.tag == "Say":
                result.said.append(verb.text or "")
            elif verb.tag == "Hangup":
                result.hung_up_by = result.hung_up_by or "twiml"
                result.status = "completed"
                return None
            elif verb.tag == "Dial":
                result.dialed.extend(n.text or "" for n in verb if n.tag == "Number")
                if verb.text and verb.text.strip():
                    result.dialed.append(verb.text.strip())
                result.status = "completed"
                return None
            elif verb.tag == "Connect":
                stream_el = verb.find("Stream")
                if stream_el is None:
                    raise ValueError("<Connect> without <Stream>")
                params = {
                    p.get("name", ""): p.get("value", "") for p in stream_el.findall("Parameter")
                }
                stream = await self.open_stream(result.call_sid, stream_el.get("url", ""), params)
                rest = ET.tostring(ET.Element("Response"), encoding="unicode")
                if i + 1 < len(verbs):
                    tail = ET.Element("Response")
                    tail.extend(verbs[i + 1 :])
                    rest = ET.tostring(tail, encoding="unicode")
                self._after_stream[result.call_sid] = rest
                if until_stream:
                    return stream
                await stream.closed.wait()
                await self.finish_call(result.call_sid)
                return None
            elif verb.tag == "Pause":
                await asyncio.sleep(float(verb.get("length", "1")))
            else:
                raise ValueError(f"unsupported TwiML verb <{verb.tag}>")
        result.status = "completed"
        return None

    async def finish_call(self, call_sid: str) -> CallResult:
        """After the stream closed: the caller hung up, or Twilio runs the TwiML after
        ``</Connect>`` (``<Hangup/>``: the bot ended the call)."""
        result = self.calls[call_sid]
        stream = self.streams.get(call_sid)
        if stream is not None:
            await stream.closed.wait()
        rest = self._after_stream.pop(call_sid, None)
        if result.hung_up_by == "caller" or rest is None:
            result.status = "completed"
            return result
        result.hung_up_by = "bot"
        await self.run_twiml(result, rest)
        result.status = "completed"
        return result

    async def caller_hangs_up(self, call_sid: str) -> None:
        """The person hangs up mid-call."""
        self.calls[call_sid].hung_up_by = "caller"
        stream = self.streams.get(call_sid)
        if stream is not None:
            await stream.hang_up()

    async def open_stream(
        self,
        call_sid: str,
        url: str,
        parameters: dict[str, str],
        *,
        signature: str | None = None,
        start: bool = True,
    ) -> StreamSession:
        """Opens the Media Stream WebSocket with Twilio's handshake signature."""
        sig = sign(self.auth_token, url) if signature is None else signature
        headers = {"X-Twilio-Signature": sig} if sig else {}
        ws = await self.http.ws_connect(self.to_local(url), headers=headers, max_msg_size=0)
        stream = StreamSession(
            ws, call_sid=call_sid, account_sid=self.account_sid, parameters=parameters
        )
        self.streams[call_sid] = stream
        stream.listen()
        if start:
            await stream.start()
        return stream


def _country(number: str) -> str:
    for prefix, iso in (("+81", "JP"), ("+44", "GB"), ("+49", "DE"), ("+33", "FR"), ("+1", "US")):
        if number.startswith(prefix):
            return iso
    return ""
