"""Phone calls through Twilio Media Streams: a custom Rasa input channel.

Register it in ``credentials.yml`` by module path (settings: ``channels/twilio/config.py``)::

    channels.twilio_media.TwilioMediaStreamInput:
      max_concurrent_calls: 8

Routes under ``/webhooks/twilio_media/``:

- ``GET  /``          health
- ``POST /voice``     Twilio's voice webhook (signed) -> ``<Connect><Stream>`` TwiML
- ``WS   /websocket`` the Media Stream (stream token + handshake signature checked)
- ``POST /call``      place an outbound call (``Authorization: Bearer $OUTBOUND_API_TOKEN``)
- ``POST /status``    Twilio's call status callbacks (signed)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.twilio import callers, rest, security, tokens, twiml
from channels.twilio.config import TwilioMediaConfig
from channels.twilio.protocol import Start
from channels.twilio.registry import CallRegistry
from channels.twilio.stream import MediaStream
from channels.twilio.transport import TwilioTransport
from channels.voice.config import VoiceConfig
from channels.voice.nlu_parse import rasa_parser, warm_up_parser
from channels.voice.presence import set_presence_soon
from channels.voice.session import ParseFn

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
CALL_STATUSES = {
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "answered",
    "completed",
    "busy",
    "no-answer",
    "failed",
    "canceled",
}
MAX_TEXT = 1000


class TwilioMediaStreamInput(InputChannel):
    """Lets people phone the assistant (and be phoned by it) through Twilio Media Streams."""

    @classmethod
    def name(cls) -> str:
        """Served under ``/webhooks/twilio_media/``."""
        return callers.CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> TwilioMediaStreamInput:
        """Validates the ``twilio_media:`` settings; a bad key raises ``ValueError`` naming it."""
        return cls(TwilioMediaConfig.from_dict(credentials))

    def __init__(self, config: TwilioMediaConfig | None = None) -> None:
        self.config = config or TwilioMediaConfig.from_dict({})
        self.voice_config = VoiceConfig.from_dict(self.config.voice, prefix="twilio_media.voice")
        self.registry = CallRegistry(
            self.config.max_concurrent_calls, ttl_s=self.config.token_ttl_s
        )
        self.streams: dict[str, MediaStream] = {}
        self._client: Any = None
        self._engines: Any = None
        self._background: set[asyncio.Future[Any]] = set()
        self.stream_secret = self._stream_secret()
        self._report_missing()

    # --- configuration ------------------------------------------------------------------------

    def _stream_secret(self) -> str:
        cfg = self.config
        if cfg.stream_secret:
            return cfg.stream_secret
        if cfg.auth_token:
            return hmac.new(cfg.auth_token.encode(), b"voice-stream", hashlib.sha256).hexdigest()
        logger.warning(
            "twilio_media: VOICE_STREAM_SECRET (and TWILIO_AUTH_TOKEN) not set; stream tokens "
            "use a per-process secret, which breaks calls across several workers"
        )
        return secrets.token_hex(32)

    def _report_missing(self) -> None:
        cfg = self.config
        missing = [v for v in ("TWILIO_AUTH_TOKEN",) if not cfg.auth_token]
        if missing and cfg.validate_signature:
            logger.warning(
                "twilio_media: %s not set: incoming calls are refused (503) until it is",
                ", ".join(missing),
            )
        if not cfg.public_base_url:
            logger.info(
                "twilio_media: PUBLIC_BASE_URL not set: webhook URLs are taken from the request "
                "(wrong behind a TLS-terminating proxy or tunnel)"
            )
        if not cfg.outbound_api_token:
            logger.info("twilio_media: OUTBOUND_API_TOKEN not set: POST /call is disabled")

    def rest_client(self) -> Any:
        """The Twilio REST client (created on first use)."""
        if self._client is None:
            cfg = self.config
            if not (cfg.account_sid and cfg.auth_token):
                raise RuntimeError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required")
            self._client = rest.make_client(cfg.account_sid, cfg.auth_token, cfg.api_base_url)
        return self._client

    def engines(self) -> Any:
        """The process-wide speech engines (loaded once, on first use)."""
        if self._engines is None:
            from channels.voice.engines import get_engines

            self._engines = get_engines(self.voice_config)
        return self._engines

    async def warm_up(self) -> None:
        """Loads and warms the speech engines off the event loop, before the first call."""
        try:
            engines = await asyncio.get_running_loop().run_in_executor(None, self.engines)
            await engines.warm_up()
        except Exception:
            logger.exception("twilio_media: warming up the speech engines failed")

    # --- URLs ---------------------------------------------------------------------------------

    def _route_url(self, request: Request, route: str, query: dict[str, str] | None = None) -> str:
        """Public URL of a sibling route (``voice``, ``websocket``, ``status``) of ``request``."""
        here = security.public_url(request.url, self.config.public_base_url)
        parts = urlsplit(here)
        path = parts.path.rsplit("/", 1)[0] + "/" + route
        return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query or {}), ""))

    def _signed(self, request: Request) -> bool:
        """Checks ``X-Twilio-Signature`` of a form-encoded webhook from Twilio."""
        url = security.public_url(request.url, self.config.public_base_url)
        return security.valid_twilio_signature(
            self.config.auth_token or "",
            url,
            request.form,
            request.headers.get("X-Twilio-Signature"),
        )

    def _refuse_unsigned(self, request: Request, what: str) -> HTTPResponse | None:
        """403 for a forged/unsigned webhook; 503 when we cannot check signatures at all."""
        if not self.config.validate_signature:
            return None
        if not self.config.auth_token:
            logger.error("twilio_media %s: TWILIO_AUTH_TOKEN not set; cannot verify Twilio", what)
            return response.text("TWILIO_AUTH_TOKEN is not configured", status=503)
        if not self._signed(request):
            logger.warning(
                "twilio_media %s: bad or missing X-Twilio-Signature from %s (url %s); 403",
                what,
                request.remote_addr or request.ip,
                security.public_url(request.url, self.config.public_base_url),
            )
            return response.text("invalid signature", status=403)
        return None

    # --- routes -------------------------------------------------------------------------------

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """Routes of the channel."""
        bp = Blueprint(f"twilio_media_{id(self)}", __name__)

        @bp.listener("after_server_start")
        async def warm_up(app: Any, _loop: Any) -> None:
            await self.warm_up()
            await warm_up_parser(app)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json(
                {
                    "status": "ok",
                    "active_calls": len(self.registry.active_calls),
                    "max_concurrent_calls": self.config.max_concurrent_calls,
                    "missing_for_calls": self.config.missing_for_calls(),
                    "engines_warm": bool(getattr(self._engines, "warm", False)),
                }
            )

        @bp.route("/voice", methods=["POST"])
        async def voice(request: Request) -> HTTPResponse:
            return await self._voice_webhook(request)

        @bp.route("/status", methods=["POST"])
        async def status(request: Request) -> HTTPResponse:
            return await self._status_callback(request)

        @bp.route("/call", methods=["POST"])
        async def call(request: Request) -> HTTPResponse:
            return await self._outbound_call(request)

        @bp.route("/callback", methods=["POST"])
        async def callback(request: Request) -> HTTPResponse:
            return await self._reminder_callback(request)

        @bp.websocket("/websocket")
        async def websocket(request: Request, ws: Any) -> None:
            await self._media_stream(request, ws, on_new_message)

        return bp

    async def _voice_webhook(self, request: Request) -> HTTPResponse:
        refused = self._refuse_unsigned(request, "voice webhook")
        if refused is not None:
            return refused
        params = {k: request.form.get(k) for k in request.form}
        call_sid = str(params.get("CallSid") or "")
        if not call_sid:
            logger.warning("twilio_media voice webhook without CallSid; 400")
            return response.text("CallSid missing", status=400)
        direction = str(params.get("Direction") or "inbound")
        number = callers.person_number(params)
        context: dict[str, Any] = {}
        ctx = request.args.get("ctx")
        if ctx:
            try:
                context = tokens.verify(ctx, self.stream_secret, kind="ctx")
            except tokens.TokenError as e:
                logger.warning("twilio_media call %s: outbound context rejected: %s", call_sid, e)
        if not self.registry.reserve(call_sid):
            logger.warning(
                "twilio_media call %s from %s: at capacity (%d calls); busy message",
                call_sid,
                number,
                self.config.max_concurrent_calls,
            )
            return response.text(
                twiml.say_and_hang_up(self.config.busy_message), content_type="text/xml"
            )
        purpose = str(context.get("p") or ("inbound" if direction == "inbound" else "outbound"))
        claims: dict[str, Any] = {
            "n": number,
            "c": callers.person_country(params),
            "d": direction,
            "p": purpose,
        }
        if context.get("t"):
            claims["t"] = context["t"]
        if context.get("r"):
            claims["r"] = context["r"]
        token = tokens.make_stream_token(
            self.stream_secret, call_sid, self.config.token_ttl_s, **claims
        )
        ws_url = security.websocket_url(self._route_url(request, "websocket"))
        body = twiml.connect_stream(
            ws_url,
            {"token": token, "caller": number, "direction": direction, "purpose": purpose},
        )
        logger.info("twilio_media call %s (%s) from %s: streaming", call_sid, direction, number)
        return response.text(body, content_type="text/xml")

    async def _status_callback(self, request: Request) -> HTTPResponse:
        refused = self._refuse_unsigned(request, "status callback")
        if refused is not None:
            return refused
        sid = str(request.form.get("CallSid") or "")
        status = str(request.form.get("CallStatus") or "")
        if not sid or status not in CALL_STATUSES:
            logger.warning("twilio_media status callback with sid %r status %r; 400", sid, status)
            return response.text("bad status callback", status=400)
        record = {
            "status": status,
            "to": request.form.get("To"),
            "direction": request.form.get("Direction"),
            "duration_s": request.form.get("CallDuration"),
            "at": time.time(),
        }
        ctx = request.args.get("ctx")
        if ctx:
            try:
                context = tokens.verify(ctx, self.stream_secret, kind="ctx")
                record["purpose"] = context.get("p")
                record["reminder_id"] = context.get("r")
            except tokens.TokenError:
                pass
        self.registry.record_status(sid, record)
        logger.info(
            "twilio_media call %s status %s (to %s, %s)",
            sid,
            status,
            record["to"],
            record.get("purpose") or "no purpose",
        )
        return response.empty(status=204)

    async def _outbound_call(self, request: Request) -> HTTPResponse:
        cfg = self.config
        if not cfg.outbound_api_token:
            logger.warning("twilio_media POST /call refused: OUTBOUND_API_TOKEN is not set")
            return response.json({"error": "outbound calls disabled: set OUTBOUND_API_TOKEN"}, 503)
        if not security.valid_bearer(request.headers.get("Authorization"), cfg.outbound_api_token):
            logger.warning("twilio_media POST /call from %s: bad bearer token; 401", request.ip)
            return response.json(
                {"error": "unauthorized"}, 401, headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            body = request.json
        except Exception:
            body = None
        if not isinstance(body, dict):
            return response.json({"error": "expected a JSON object"}, 400)
        to = body.get("to")
        if not callers.is_e164(to):
            return response.json({"error": "'to' must be an E.164 number like +15551234567"}, 400)
        purpose = body.get("purpose") or "outbound"
        text = body.get("text") or ""
        if not isinstance(purpose, str) or len(purpose) > 64:
            return response.json({"error": "'purpose' must be a string of <= 64 chars"}, 400)
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            return response.json({"error": f"'text' must be a string of <= {MAX_TEXT} chars"}, 400)
        try:
            sid = await self.place_call(to, purpose=purpose, text=text, request=request)
        except CallSetupError as e:
            return response.json({"error": str(e)}, 503)
        except Exception as e:
            logger.warning("twilio_media outbound call to %s failed: %s", to, e)
            return response.json({"error": f"Twilio refused the call: {e}"}, 502)
        return response.json({"call_sid": sid, "to": to, "purpose": purpose}, 201)

    async def _reminder_callback(self, request: Request) -> HTTPResponse:
        """A due reminder of a phone caller (from the reminder dispatcher): tell it in their live
        call, or ring them, or give up after the configured attempts."""
        cfg = self.config
        if not cfg.outbound_api_token or not security.valid_bearer(
            request.headers.get("Authorization"), cfg.outbound_api_token
        ):
            logger.warning("twilio_media POST /callback from %s: bad bearer token; 401", request.ip)
            return response.json({"error": "unauthorized"}, 401)
        try:
            body = request.json
        except Exception:
            body = None
        if not isinstance(body, dict):
            return response.json({"error": "expected a JSON object"}, 400)
        rid, to, attempts = body.get("reminder_id"), body.get("to"), body.get("attempts", 0)
        if not isinstance(rid, str) or not rid or len(rid) > 64 or not callers.is_e164(to):
            return response.json({"error": "need reminder_id and an E.164 'to'"}, 400)
        if not isinstance(attempts, int) or isinstance(attempts, bool):
            return response.json({"error": "'attempts' must be an int"}, 400)
        if not cfg.callbacks.enabled:
            return response.json({"error": "call-backs are disabled"}, 503)
        sender = str(body.get("sender_id") or "") or callers.sender_id(
            to, "", hashed=cfg.hash_caller_ids, salt=cfg.caller_id_salt
        )
        for call_sid, who in self.registry.active_calls.items():
            stream = self.streams.get(call_sid)
            if who == sender and stream is not None and stream.session is not None:
                await stream.session.user_text(self._reminder_intent(rid))
                return response.json({"in_call": call_sid}, 200)
        if attempts >= cfg.callbacks.max_attempts:
            return response.json({"give_up": True, "attempts": attempts}, 409)
        try:
            sid = await self.place_call(to, purpose="reminder", reminder_id=rid)
        except CallSetupError as e:
            logger.warning("twilio_media reminder %s: no call-back: %s", rid, e)
            return response.json({"error": str(e)}, 503)
        except Exception as e:
            logger.warning("twilio_media reminder %s: call to %s failed: %s", rid, to, e)
            return response.json({"error": f"Twilio refused the call: {e}"}, 502)
        return response.json({"call_sid": sid, "retry_after_s": cfg.callbacks.retry_after_s}, 201)

    def _reminder_intent(self, reminder_id: str) -> str:
        """The user turn that makes Rasa tell one reminder (``/EXTERNAL_reminder{...}``)."""
        return f"/{self.config.callbacks.intent}" + json.dumps({"reminder_id": reminder_id})

    async def place_call(
        self,
        to: str,
        *,
        purpose: str,
        text: str = "",
        reminder_id: str | None = None,
        request: Request | None = None,
    ) -> str:
        """Places an outbound call that runs our voice webhook when answered; returns its sid."""
        cfg = self.config
        missing = cfg.missing_for_calls()
        if request is not None and "PUBLIC_BASE_URL" in missing:
            missing.remove("PUBLIC_BASE_URL")  # the request tells us where we are
        if missing:
            raise CallSetupError(f"outbound calls need {', '.join(missing)}")
        context = {"p": purpose, "t": text} if text else {"p": purpose}
        if reminder_id:
            context["r"] = reminder_id
        ctx = tokens.sign(context, self.stream_secret, kind="ctx")
        if request is not None:
            voice_url = self._route_url(request, "voice", {"ctx": ctx})
            status_url = self._route_url(request, "status", {"ctx": ctx})
        else:
            base = f"{(cfg.public_base_url or '').rstrip('/')}/webhooks/{self.name()}"
            voice_url = f"{base}/voice?{urlencode({'ctx': ctx})}"
            status_url = f"{base}/status?{urlencode({'ctx': ctx})}"
        sid = await rest.place_call(
            self.rest_client(),
            to=to,
            from_=cfg.number or "",
            url=voice_url,
            status_callback=status_url,
            timeout_s=cfg.callbacks.ring_timeout_s,
        )
        logger.info("twilio_media outbound call %s to %s (%s) placed", sid, to, purpose)
        return sid

    async def transfer(self, call_sid: str) -> bool:
        """Moves a live call to ``transfer_number`` (a person) with ``<Dial>``."""
        if not self.config.transfer_number:
            return False
        twiml_doc = twiml.dial(self.config.transfer_number, caller_id=self.config.number)
        await rest.update_call_twiml(self.rest_client(), call_sid, twiml_doc)
        logger.info("twilio_media call %s transferred", call_sid)
        return True

    # --- media stream -------------------------------------------------------------------------

    async def _media_stream(self, request: Request, ws: Any, on_new_message: OnNewMessage) -> None:
        signature = request.headers.get("X-Twilio-Signature")
        handshake_ok: bool | None = None
        if signature and self.config.auth_token and self.config.validate_signature:
            ws_url = security.websocket_url(
                security.public_url(request.url, self.config.public_base_url)
            )
            handshake_ok = security.valid_websocket_signature(
                self.config.auth_token, ws_url, signature
            )
            if not handshake_ok:
                logger.warning(
                    "twilio_media stream from %s: bad handshake signature for %s; closing",
                    request.ip,
                    ws_url,
                )
        stream: MediaStream
        senders: dict[str, str] = {}

        async def open_session(
            transport: TwilioTransport, claims: dict[str, Any], start: Start
        ) -> Any:
            session, begin = self._new_session(
                transport, claims, start, on_new_message, rasa_parser(request.app)
            )
            stream._spawn(begin)
            return session

        def on_started(call_sid: str, claims: dict[str, Any]) -> bool:
            number = str(claims.get("n") or "")
            sid = callers.sender_id(
                number,
                call_sid,
                hashed=self.config.hash_caller_ids,
                salt=self.config.caller_id_salt,
            )
            if not self.registry.activate(call_sid, sid):
                return False
            self.streams[call_sid] = stream
            senders[call_sid] = sid
            set_presence_soon(request.app, sid, True)
            return True

        def on_ended(call_sid: str) -> None:
            self.registry.release(call_sid)
            self.streams.pop(call_sid, None)
            sid = senders.pop(call_sid, None)
            if sid is not None:
                set_presence_soon(request.app, sid, False)

        cfg = self.config
        stream = MediaStream(
            ws,
            stream_secret=self.stream_secret,
            open_session=open_session,
            on_started=on_started,
            on_ended=on_ended,
            handshake_ok=handshake_ok,
            start_timeout_s=cfg.start_timeout_s,
            stall_timeout_s=cfg.stall_timeout_s,
            max_message_bytes=cfg.max_message_bytes,
            dtmf_timeout_s=cfg.dtmf_timeout_s,
            dtmf_max_digits=cfg.dtmf_max_digits,
            dtmf_map=cfg.dtmf_map,
            hangup_grace_s=cfg.hangup_grace_s,
        )
        await stream.run()

    def _new_session(
        self,
        transport: TwilioTransport,
        claims: dict[str, Any],
        start: Start,
        on_new_message: OnNewMessage,
        parse: ParseFn | None = None,
    ) -> tuple[Any, Coroutine[Any, Any, None]]:
        """Creates the call's VoiceSession and the coroutine that opens the conversation."""
        from channels.voice.session import VoiceSession

        number = str(claims.get("n") or "")
        direction = str(claims.get("d") or "inbound")
        metadata = callers.rasa_metadata(
            number=number,
            country=str(claims.get("c") or ""),
            call_sid=start.call_sid,
            direction=direction,
            purpose=str(claims.get("p") or "") or None,
        )
        sender = callers.sender_id(
            number,
            start.call_sid,
            hashed=self.config.hash_caller_ids,
            salt=self.config.caller_id_salt,
        )
        session = VoiceSession(
            engines=self.engines(),
            transport=transport,
            on_new_message=on_new_message,
            sender_id=sender,
            input_channel=self.name(),
            metadata=metadata,
            config=self.voice_config,
            parse=parse,
        )
        transport.on_played = session.segment_played
        self._hook_transfer(session, start.call_sid)
        intro = str(claims.get("t") or "")
        reminder_id = str(claims.get("r") or "")

        async def begin() -> None:
            if reminder_id:
                await session.start(greet=False)
                await session.user_text(self._reminder_intent(reminder_id))
            elif intro:
                await session.start(greet=False)
                await _say(session, intro)
            else:
                await session.start(greet=True)

        return session, begin()

    def _hook_transfer(self, session: Any, call_sid: str) -> None:
        """Custom JSON ``{"event": "transfer"}`` from Rasa: after the bot's words are heard,
        the live call moves to ``transfer_number`` (when configured)."""
        original = getattr(session, "bot_custom", None)
        if original is None or not self.config.transfer_number:
            return

        async def transfer_after_speech() -> None:
            speaker = getattr(session, "speaker", None)
            if speaker is not None:
                await speaker.wait_done(timeout=30)
            try:
                await self.transfer(call_sid)
            except Exception as e:
                logger.warning("twilio_media call %s: transfer failed: %s", call_sid, e)

        async def bot_custom(data: dict[str, Any], turn: int) -> None:
            if isinstance(data, dict) and data.get("event") == "transfer":
                task = asyncio.ensure_future(transfer_after_speech())
                self._background.add(task)
                task.add_done_callback(self._background.discard)
                return
            await original(data, turn)

        session.bot_custom = bot_custom


class CallSetupError(RuntimeError):
    """An outbound call cannot be placed because of missing configuration."""


async def _say(session: Any, text: str) -> None:
    """Speaks ``text`` as the assistant's first words (outbound calls, reminder call-backs)."""
    bot_says = getattr(session, "bot_says", None)
    if bot_says is not None:
        bot_says(text, getattr(session, "turn_no", 0))
        return
    logger.warning("twilio_media: session cannot speak an intro; greeting instead")
    await session.user_text("/greet")


__all__ = ["TwilioMediaStreamInput"]
