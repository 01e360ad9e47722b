"""Twilio REST client for outbound calls, call updates (hang-up, transfer).

``api_base_url`` (env ``TWILIO_API_BASE_URL``) points the official ``twilio`` client at another
host that speaks Twilio's REST API, e.g. the fake on loopback used by the tests.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client


class RebasedAsyncHttpClient(AsyncTwilioHttpClient):
    """Async HTTP client that sends every Twilio API request to ``base_url`` instead."""

    def __init__(self, base_url: str | None = None, timeout: float | None = 10.0) -> None:
        # One aiohttp session per request: no session bound to a loop at import time.
        super().__init__(pool_connections=False, timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None

    async def request(self, method: str, url: str, *args: object, **kwargs: object) -> Response:
        """Rewrites scheme and host of ``url`` to ``base_url`` when set."""
        if self.base_url:
            base = urlsplit(self.base_url)
            u = urlsplit(url)
            url = urlunsplit((base.scheme, base.netloc, base.path + u.path, u.query, ""))
        return await super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


def make_client(account_sid: str, auth_token: str, api_base_url: str | None = None) -> Client:
    """A ``twilio.rest.Client`` whose ``*_async`` methods use our async HTTP client."""
    return Client(account_sid, auth_token, http_client=RebasedAsyncHttpClient(api_base_url))


async def place_call(
    client: Client,
    *,
    to: str,
    from_: str,
    url: str,
    status_callback: str,
    timeout_s: int = 30,
) -> str:
    """Starts an outbound call whose answer runs our voice webhook; returns the call sid."""
    call = await client.calls.create_async(
        to=to,
        from_=from_,
        url=url,
        method="POST",
        status_callback=status_callback,
        status_callback_method="POST",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        timeout=timeout_s,
    )
    return str(call.sid)


async def update_call_twiml(client: Client, call_sid: str, twiml: str) -> None:
    """Replaces the live call's TwiML (``<Hangup/>``, ``<Dial>`` for a transfer)."""
    await client.calls(call_sid).update_async(twiml=twiml)
