"""A fake Twilio REST API on loopback: the official ``twilio`` client is pointed at it
(``TWILIO_API_BASE_URL``), and it drives the simulator for outbound calls.

Answers ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (``calls.create``) and
``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` (``calls(sid).update``) with
Twilio's JSON, checks HTTP basic auth like Twilio (error 20003), rings the callee, sends signed
status callbacks (initiated, ringing, answered, completed/busy/no-answer/failed) and, when the
callee answers, runs our voice webhook and its Media Stream through the simulator.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.twilio.simulator import CallResult, StreamSession, TwilioSimulator, new_sid

Callee = Callable[[CallResult, StreamSession], Awaitable[None]]


async def listen_until_hang_up(
    call: CallResult, stream: StreamSession, limit_s: float = 60
) -> None:
    """Default callee: listens until the assistant hangs up (or ``limit_s``), then hangs up."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stream.closed.wait(), limit_s)


@dataclass
class PlacedCall:
    """One ``calls.create`` request as the fake received it."""

    sid: str
    to: str
    from_: str
    url: str
    status_callback: str | None
    events: list[str]
    behaviour: str
    result: CallResult | None = None
    statuses: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class FakeTwilioRest:
    """Fake ``api.twilio.com`` for one account, bound to a simulator."""

    def __init__(self, sim: TwilioSimulator, *, ring_s: float = 0.2) -> None:
        self.sim = sim
        self.ring_s = ring_s
        self.behaviour: dict[str, str] = {}  # number -> answer | busy | no-answer | failed
        self.callee: Callee = listen_until_hang_up
        self.placed: list[PlacedCall] = []
        self.updates: list[dict[str, str]] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Starts serving (on a free port unless given); returns the base URL."""
        app = web.Application()
        prefix = "/2010-04-01/Accounts/{account}/Calls"
        app.router.add_post(prefix + ".json", self._create)
        app.router.add_post(prefix + "/{call}.json", self._update)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stops serving and cancels calls in progress."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._runner is not None:
            await self._runner.cleanup()

    # --- REST ---------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        expected = base64.b64encode(
            f"{self.sim.account_sid}:{self.sim.auth_token}".encode()
        ).decode()
        return (
            header == f"Basic {expected}" and request.match_info["account"] == self.sim.account_sid
        )

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
        )

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        form = await request.post()
        to, from_, url = form.get("To"), form.get("From"), form.get("Url")
        if not to or not from_ or not url:
            return self._error(400, 21201, "Missing required parameter To, From or Url")
        if from_ != self.sim.number:
            return self._error(400, 21210, f"'From' {from_} is not a verified number")
        call = PlacedCall(
            sid=new_sid("CA"),
            to=str(to),
            from_=str(from_),
            url=str(url),
            status_callback=str(form["StatusCallback"]) if form.get("StatusCallback") else None,
            events=[str(e) for e in form.getall("StatusCallbackEvent", [])],
            behaviour=self.behaviour.get(str(to), "answer"),
        )
        self.placed.append(call)
        task = asyncio.create_task(self._ring(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(self._resource(call, "queued"), status=201)

    async def _update(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        sid = request.match_info["call"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.updates.append({"sid": sid, **form})
        result = self.sim.calls.get(sid)
        if result is None:
            return self._error(404, 20404, f"The requested resource {sid} was not found")
        stream = self.sim.streams.get(sid)
        if form.get("Twiml"):
            if stream is not None:  # new TwiML replaces the running <Connect><Stream>
                self.sim._after_stream.pop(sid, None)
                await stream.close()
            await self.sim.run_twiml(result, form["Twiml"])
            if "<Hangup" in form["Twiml"]:
                result.hung_up_by = "rest"
        elif form.get("Status") == "completed":
            result.hung_up_by = "rest"
            if stream is not None:
                self.sim._after_stream.pop(sid, None)
                await stream.close()
            result.status = "completed"
        call = next((c for c in self.placed if c.sid == sid), None)
        to = call.to if call else ""
        return web.json_response(
            {"sid": sid, "account_sid": self.sim.account_sid, "to": to, "status": result.status}
        )

    def _resource(self, call: PlacedCall, status: str) -> dict[str, Any]:
        return {
            "sid": call.sid,
            "account_sid": self.sim.account_sid,
            "to": call.to,
            "from": call.from_,
            "status": status,
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.sim.account_sid}/Calls/{call.sid}.json",
        }

    # --- the callee's phone -------------------------------------------------------------------

    async def _status(self, call: PlacedCall, event: str, status: str, started: float) -> None:
        call.statuses.append(status)
        self.sim.status_log.append((call.sid, status))
        if not call.status_callback or (call.events and event not in call.events):
            return
        params = {
            "AccountSid": self.sim.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
            "SequenceNumber": str(len(call.statuses) - 1),
            "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        }
        if event == "completed":
            params["CallDuration"] = str(round(time.monotonic() - started))
        with contextlib.suppress(Exception):
            await self.sim.post_webhook(call.status_callback, params)

    async def _ring(self, call: PlacedCall) -> None:
        started = time.monotonic()
        try:
            await self._status(call, "initiated", "initiated", started)
            await asyncio.sleep(self.ring_s / 2)
            await self._status(call, "ringing", "ringing", started)
            await asyncio.sleep(self.ring_s / 2)
            if call.behaviour != "answer":
                await self._status(call, "completed", call.behaviour, started)
                return
            params = self.sim.call_params(
                call.sid,
                from_=call.from_,
                to=call.to,
                direction="outbound-api",
                status="in-progress",
            )
            await self._status(call, "answered", "in-progress", started)
            result, stream = await self.sim._answer(call.sid, call.url, params)
            call.result = result
            if stream is not None:
                await self.callee(result, stream)
                if not stream.closed.is_set():
                    await self.sim.caller_hangs_up(call.sid)
                await self.sim.finish_call(call.sid)
            await self._status(call, "completed", "completed", started)
        finally:
            call.done.set()
