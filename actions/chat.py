"""Chitchat, out-of-scope and low-confidence turns: an LLM when configured, else offline."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.helpers import latest_intent, latest_text
from actions.services.llm import (
    SYSTEM_PROMPT,
    LLMUnavailable,
    chat_completion,
    guard_reply,
    llm_configured,
    voice_reply,
)
from actions.services.spoken import speakable

logger = logging.getLogger(__name__)

OFFLINE_ANSWER = (
    "I'm not sure I can help with that. I can tell you the time or the weather anywhere, "
    "and set, list or cancel reminders."
)
HISTORY_TURNS = 6
SELECTOR_MIN_CONFIDENCE = 0.8


def history_messages(tracker: Tracker, turns: int = HISTORY_TURNS) -> list[dict[str, str]]:
    """The last few user/bot texts as chat messages, oldest first, ending with the user."""
    messages: list[dict[str, str]] = []
    for event in reversed(tracker.events or []):
        kind = event.get("event")
        text = (event.get("text") or "").strip()
        if kind not in ("user", "bot") or not text or text.startswith("EXTERNAL_"):
            continue
        messages.insert(
            0, {"role": "user" if kind == "user" else "assistant", "content": text[:500]}
        )
        if len(messages) >= turns:
            break
    current = latest_text(tracker).strip()
    if current and (not messages or messages[-1] != {"role": "user", "content": current[:500]}):
        messages.append({"role": "user", "content": current[:500]})
    while messages and messages[0]["role"] != "user":
        messages.pop(0)
    return messages


def selector_answer(tracker: Tracker) -> str | None:
    """The ResponseSelector's out_of_scope answer, when the NLU picked one.

    Rasa 3.6 shape: latest_message["response_selector"]["out_of_scope"]["response"]
    ["responses"][0]["text"], with "confidence" and "intent_response_key" beside it.
    """
    selector = (tracker.latest_message or {}).get("response_selector") or {}
    prediction = (selector.get("out_of_scope") or selector.get("default") or {}).get("response")
    if not isinstance(prediction, dict):
        return None
    key = str(prediction.get("intent_response_key") or "")
    if key and not key.startswith("out_of_scope"):
        return None
    confidence = float(prediction.get("confidence") or 0.0)
    if latest_intent(tracker) != "out_of_scope" and confidence < SELECTOR_MIN_CONFIDENCE:
        return None
    responses = prediction.get("responses") or []
    if not responses or not isinstance(responses[0], dict):
        return None
    text = speakable(str(responses[0].get("text") or ""))
    return text or None


class ActionChat(Action):
    """Answers anything the assistant has no tool for, honestly and briefly."""

    def name(self) -> str:
        return "action_chat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text=await self.answer(tracker))
        return []

    async def answer(self, tracker: Tracker) -> str:
        """The text to speak: the guarded LLM reply, or an offline answer."""
        user_text = latest_text(tracker)
        if llm_configured():
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, *history_messages(tracker)]
            try:
                raw = await chat_completion(messages)
                reply = voice_reply(raw)
                if reply:
                    guarded, replaced = guard_reply(reply, user_text)
                    if replaced:
                        logger.info("Guarded LLM reply for %r", user_text[:100])
                    return guarded
                logger.warning("LLM reply was empty after cleaning: %r", raw[:200])
            except LLMUnavailable as exc:
                logger.warning("LLM unavailable, answering offline: %s", exc)
            except Exception:  # never a stack trace to the user
                logger.exception("LLM call crashed; answering offline")
        return selector_answer(tracker) or OFFLINE_ANSWER
