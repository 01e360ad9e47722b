"""Request authentication: Twilio webhook signatures, bearer tokens, public URLs. Pure functions."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator


def public_url(request_url: str, public_base_url: str | None) -> str:
    """The URL Twilio used to reach us: ``request_url``'s path and query on the public base URL.

    Behind a TLS-terminating proxy or a tunnel the server sees ``http://127.0.0.1:5005/…`` while
    Twilio signed ``https://abc.example/…``; the configured public base URL fixes that.
    """
    if not public_base_url:
        return request_url
    base = urlsplit(public_base_url.rstrip("/"))
    req = urlsplit(request_url)
    return urlunsplit((base.scheme, base.netloc, base.path + req.path, req.query, ""))


def websocket_url(http_url: str) -> str:
    """``https://…`` -> ``wss://…`` and ``http://…`` -> ``ws://…``."""
    parts = urlsplit(http_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def valid_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, Any] | None, signature: str | None
) -> bool:
    """Checks ``X-Twilio-Signature`` as Twilio computes it (HMAC-SHA1 of URL + sorted params)."""
    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, _MultiValues(params or {}), signature))


class _MultiValues(dict):  # type: ignore[type-arg]
    """Form parameters with every value of a repeated key (what Twilio signs)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        getlist = getattr(params, "getlist", None)
        super().__init__(
            {k: [str(v) for v in (getlist(k) if getlist else _as_list(params[k]))] for k in params}
        )

    def getall(self, key: str) -> list[str]:
        """All values of ``key`` (the interface RequestValidator looks for)."""
        return list(self[key])


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def valid_websocket_signature(auth_token: str, ws_url: str, signature: str | None) -> bool:
    """Checks the signature Twilio puts on the WebSocket handshake (the stream URL, no params).

    Both the ``wss://`` form given in TwiML and its ``https://`` twin are accepted.
    """
    if not auth_token or not signature:
        return False
    parts = urlsplit(ws_url)
    twin = {"wss": "https", "ws": "http", "https": "wss", "http": "ws"}.get(parts.scheme)
    candidates = [ws_url]
    if twin:
        candidates.append(urlunsplit((twin, *parts[1:])))
    validator = RequestValidator(auth_token)
    return any(validator.validate(u, {}, signature) for u in candidates)


def valid_bearer(header: str | None, expected: str | None) -> bool:
    """``Authorization: Bearer <token>`` matches ``expected`` (constant time)."""
    if not expected or not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())
