"""action_repeat and action_stop; every domain action is implemented."""

from __future__ import annotations

from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from actions.dialogue import ActionRepeat, ActionStop
from tests.actions.conftest import make_tracker, slot_events, texts


async def test_repeat_says_the_last_bot_utterance() -> None:
    events = [
        {"event": "bot", "text": "It's noon."},
        {"event": "user", "text": "thanks", "parse_data": {}},
        {"event": "bot", "text": "You're welcome."},
        {"event": "bot", "text": None, "data": {"custom": {}}},
    ]
    dispatcher = CollectingDispatcher()
    await ActionRepeat().run(
        dispatcher, make_tracker("say that again", "repeat", events=events), {}
    )
    assert texts(dispatcher) == ["You're welcome."]


async def test_repeat_with_nothing_said() -> None:
    dispatcher = CollectingDispatcher()
    await ActionRepeat().run(dispatcher, make_tracker("what", "repeat"), {})
    assert texts(dispatcher) == ["I haven't said anything yet."]


async def test_stop_clears_the_form_slots() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionStop().run(dispatcher, make_tracker("never mind", "stop"), {})
    assert texts(dispatcher) == ["utter_stopped"]
    assert slot_events(events) == dict.fromkeys(
        [
            "reminder_text",
            "reminder_time",
            "reminder_confirm",
            "location",
            "date",
            "pending_cancel",
            "cancel_ids",
        ]
    )


def test_every_custom_action_in_the_domain_is_registered(domain: dict) -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    assert set(domain["actions"]) <= set(executor.actions)
