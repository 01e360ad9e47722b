"""Rasa NLU for semantic endpointing: parse a partial transcript off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.shared.core.trackers import DialogueStateTracker

from channels.voice.session import ParseFn

logger = logging.getLogger(__name__)

# One thread: endpointing parses never pile up, and never block the loop (DIET runs ~8 ms).
_EXECUTOR = ThreadPoolExecutor(1, thread_name_prefix="nlu-endpointing")


def rasa_parser(app: Any) -> ParseFn:
    """A parse function over the Rasa server's loaded model (``app.ctx.agent``).

    It answers ``{}`` while no model is loaded; the session then uses its text rules alone.
    The result is what ``processor.parse_message`` returns, so the session hands it to Rasa with
    the final transcript (``UserMessage.parse_data``) instead of having it parsed twice.
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
        parsed = await asyncio.get_running_loop().run_in_executor(
            _EXECUTOR, processor._parse_message_with_graph, message, tracker, True
        )
        processor._update_full_retrieval_intent(parsed)  # as processor.parse_message does
        return parsed

    return parse


async def warm_up_parser(app: Any) -> None:
    """Parses one phrase so the first caller's turn does not pay TensorFlow's first-run cost.

    The first DIET parse after a model loads takes about a second, longer than endpointing waits
    for a parse (the turn would then end on the fixed silence rule).
    """
    t0 = time.perf_counter()
    try:
        await rasa_parser(app)("hello")
    except Exception as e:
        logger.warning("warming up the NLU parse failed: %s", e)
        return
    logger.info("nlu parse warm in %.2f s", time.perf_counter() - t0)
