"""Rasa's REST channel with the request checked first: bad input gets a clear 400, never a 500.

Served at the same URL as Rasa's own (`POST /webhooks/rest/webhook`), so clients do not change.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.core.channels.rest import RestInput
from sanic.exceptions import InvalidUsage
from sanic.request import Request

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 256
MAX_MESSAGE_CHARS = 2_000


def _body(req: Request) -> dict[str, Any]:
    try:
        body = req.json
    except Exception as err:  # Sanic raises InvalidUsage; be explicit about the reason
        raise InvalidUsage("request body must be JSON encoded as UTF-8") from err
    if not isinstance(body, dict):
        raise InvalidUsage('request body must be a JSON object: {"sender": ..., "message": ...}')
    return body


def check_sender(value: Any) -> str:
    """The sender id, or a 400 naming what is wrong with it."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidUsage('"sender" must be a non-empty string')
    if len(value) > MAX_SENDER_CHARS:
        raise InvalidUsage(f'"sender" must be at most {MAX_SENDER_CHARS} characters')
    return value


def check_message(value: Any) -> str:
    """The message text, cut to MAX_MESSAGE_CHARS; a 400 if it is not a string."""
    if not isinstance(value, str):
        raise InvalidUsage('"message" must be a string')
    if len(value) > MAX_MESSAGE_CHARS:
        logger.warning("rest message of %d characters cut to %d", len(value), MAX_MESSAGE_CHARS)
        value = value[:MAX_MESSAGE_CHARS]
    return value


class GuardedRestInput(RestInput):
    """The REST channel, validating sender and message before Rasa sees them."""

    @classmethod
    def name(cls) -> str:
        """Same name, hence same URL, as Rasa's REST channel."""
        return "rest"

    async def _extract_sender(self, req: Request) -> str | None:
        return check_sender(_body(req).get("sender"))

    def _extract_message(self, req: Request) -> str | None:
        return check_message(_body(req).get("message"))

    def _extract_input_channel(self, req: Request) -> str:
        channel = _body(req).get("input_channel")
        return channel if isinstance(channel, str) and channel else self.name()

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """Metadata from the body, when it is a JSON object."""
        metadata = _body(request).get("metadata")
        return metadata if isinstance(metadata, dict) else None
