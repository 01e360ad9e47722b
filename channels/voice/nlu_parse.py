"""Rasa NLU for semantic endpointing: parse a partial transcript off the event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.shared.core.trackers import DialogueStateTracker

from channels.voice.session import ParseFn

# One thread: endpointing parses never pile up, and never block the loop (DIET runs ~8 ms).
_EXECUTOR = ThreadPoolExecutor(1, thread_name_prefix="nlu-endpointing")


def rasa_parser(app: Any) -> ParseFn:
    """A parse function over the Rasa server's loaded model (``app.ctx.agent``).

    It answers ``{}`` while no model is loaded; the session then uses its text rules alone.
    """

    async def parse(text: str) -> dict[str, Any]:
        agent = getattr(getattr(app, "ctx", None), "agent", None)
        if agent is None or not agent.is_ready() or agent.processor is None:
            return {}
        processor = agent.processor
        message = UserMessage(text, sender_id="endpointing")
        if processor.http_interpreter:  # NLU served elsewhere: already non-blocking
            return await processor.parse_message(message)
        tracker = DialogueStateTracker.from_events("endpointing", [])
        return await asyncio.get_running_loop().run_in_executor(
            _EXECUTOR, processor._parse_message_with_graph, message, tracker, True
        )

    return parse
