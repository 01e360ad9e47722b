"""Short-lived signed tokens: a stream token binds a media stream to the webhook call that asked
for it, and a context blob carries an outbound call's purpose through Twilio to our webhook.

Format: ``base64url(json claims) "." base64url(HMAC-SHA256(secret, claims))``. Pure functions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


class TokenError(ValueError):
    """A token that is malformed, forged, expired or bound to another call."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], secret: str, *, kind: str) -> str:
    """Signs ``claims`` (JSON-serialisable) for one ``kind`` of use."""
    if not secret:
        raise ValueError("a signing secret is required")
    body = _b64(json.dumps({**claims, "k": kind}, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(token: str, secret: str, *, kind: str, now: float | None = None) -> dict[str, Any]:
    """Checks signature, kind and expiry (claim ``exp``, if present); returns the claims."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 8192:
        raise TokenError("malformed token")
    body, mac = token.split(".")
    expected = hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
        claims = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError) as e:
        raise TokenError("malformed token") from e
    if not hmac.compare_digest(expected, given):
        raise TokenError("bad token signature")
    if not isinstance(claims, dict) or claims.get("k") != kind:
        raise TokenError("token of the wrong kind")
    exp = claims.get("exp")
    if exp is not None and (now if now is not None else time.time()) > float(exp):
        raise TokenError("token expired")
    claims.pop("k", None)
    return claims


def make_stream_token(
    secret: str, call_sid: str, ttl_s: float, now: float | None = None, **claims: Any
) -> str:
    """A token that lets exactly the stream of ``call_sid`` start within ``ttl_s`` seconds."""
    now = time.time() if now is None else now
    return sign({**claims, "cs": call_sid, "exp": round(now + ttl_s, 3)}, secret, kind="stream")


def verify_stream_token(
    token: str, secret: str, call_sid: str, now: float | None = None
) -> dict[str, Any]:
    """Returns the token's claims if it is valid for the stream of ``call_sid``."""
    claims = verify(token, secret, kind="stream", now=now)
    if not call_sid or not hmac.compare_digest(str(claims.get("cs", "")), call_sid):
        raise TokenError("token bound to another call")
    return claims
