"""The reminder form, confirmation, saving, listing, cancelling, delivery and greeting."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.dialogue import ActionGreet
from actions.reminders import (
    ActionAskReminderConfirm,
    ActionCancelReminder,
    ActionConfirmCancelReminder,
    ActionDeliverReminder,
    ActionListReminders,
    ActionSetReminder,
    ValidateReminderForm,
)
from actions.services.reminder_store import CANCELLED, DELIVERED, MISSED, PENDING, ReminderStore
from tests.actions.conftest import MovableClock, ent, make_tracker, slot_events, texts

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
NOW = datetime(2024, 3, 8, 14, 7, tzinfo=NY)  # Friday afternoon in New York
META = {"timezone": "America/New_York"}


def slot_event(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value, "timestamp": None}


async def run(action: Any, tracker: Tracker, domain: dict) -> tuple[list[str], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, domain)
    return texts(dispatcher), slot_events(events)


def form_tracker(
    text: str,
    intent: str,
    requested: str | None,
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, str]] | None = None,
    extracted: dict[str, Any] | None = None,
) -> Tracker:
    """A tracker as Rasa sends it to validate_reminder_form (slot candidates at the end)."""
    tracker = make_tracker(
        text,
        intent,
        entities=entities,
        slots={"requested_slot": requested, **(slots or {}), **(extracted or {})},
        metadata=META,
        active_loop="reminder_form" if requested else None,
    )
    tracker.events.extend(slot_event(k, v) for k, v in (extracted or {}).items())
    return tracker


# --- the form ----------------------------------------------------------------------------
async def test_whole_request_fills_text_and_time(domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    said, slots = await run(
        form,
        form_tracker("remind me to call mom at a quarter past five", "set_reminder", None),
        domain,
    )
    assert said == []
    assert slots == {
        "reminder_text": "call mom",
        "reminder_time": datetime(2024, 3, 8, 17, 15, tzinfo=NY).isoformat(),
    }


async def test_entity_text_is_cleaned(domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    tracker = form_tracker(
        "remind me to stretch in ten minutes",
        "set_reminder",
        None,
        entities=[ent("reminder_text", "to stretch")],
        extracted={"reminder_text": "to stretch"},
    )
    _, slots = await run(form, tracker, domain)
    assert slots["reminder_text"] == "stretch"
    assert slots["reminder_time"] == datetime(2024, 3, 8, 14, 17, tzinfo=NY).isoformat()


async def test_a_task_the_nlu_cut_in_pieces_keeps_its_longest_piece(domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    tracker = form_tracker(
        "Remind me to water the plants in one minute.",
        "set_reminder",
        None,
        entities=[ent("reminder_text", "water the plants"), ent("reminder_text", "one")],
        extracted={"reminder_text": "one"},  # the slot mapping keeps the last entity
    )
    _, slots = await run(form, tracker, domain)
    assert slots["reminder_text"] == "water the plants"
    assert slots["reminder_time"] == datetime(2024, 3, 8, 14, 8, tzinfo=NY).isoformat()


@pytest.mark.parametrize(
    ("utterance", "span", "text"),
    [
        ("remind me to drink some water in one minute", "water", "drink some water"),
        ("um remind me to uh pick up the kids at three thirty", "kids", "pick up the kids"),
        ("remind me to call mom at five pm", "call mom", "call mom"),
    ],
)
async def test_a_short_entity_span_widens_to_the_whole_task(
    utterance: str, span: str, text: str, domain: dict
) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    tracker = form_tracker(
        utterance,
        "set_reminder",
        None,
        entities=[ent("reminder_text", span)],
        extracted={"reminder_text": span},
    )
    _, slots = await run(form, tracker, domain)
    assert slots["reminder_text"] == text


async def test_request_without_time_leaves_time_to_ask(domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    _, slots = await run(
        form, form_tracker("remind me to call my mom", "set_reminder", None), domain
    )
    assert slots == {"reminder_text": "call my mom"}


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        ("to water the plants", "water the plants"),
        ("uh that the package arrives", "the package arrives"),
        ("call the bank", "call the bank"),
    ],
)
async def test_answer_to_what_becomes_the_text(answer: str, text: str, domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    _, slots = await run(form, form_tracker(answer, "inform", "reminder_text"), domain)
    assert slots["reminder_text"] == text


@pytest.mark.parametrize(("answer", "intent"), [("never mind", "stop"), ("cancel", "inform")])
async def test_stop_is_not_taken_as_the_text(answer: str, intent: str, domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    _, slots = await run(form, form_tracker(answer, intent, "reminder_text"), domain)
    assert "reminder_text" not in slots


async def test_very_long_text_is_capped_politely(domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    long = "remember the milk and " * 50  # 1,100 characters
    said, slots = await run(form, form_tracker(long, "inform", "reminder_text"), domain)
    assert said == ["That's a long one, so I'll keep just the first part."]
    assert 0 < len(slots["reminder_text"]) <= 200


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("in ten minutes", datetime(2024, 3, 8, 14, 17, tzinfo=NY)),
        ("at five thirty", datetime(2024, 3, 8, 17, 30, tzinfo=NY)),
        ("tomorrow morning", datetime(2024, 3, 9, 9, 0, tzinfo=NY)),
        ("next monday at 9", datetime(2024, 3, 11, 9, 0, tzinfo=NY)),
        ("on december 3rd at noon", datetime(2024, 12, 3, 12, 0, tzinfo=NY)),
    ],
)
async def test_answer_to_when(answer: str, expected: datetime, domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    tracker = form_tracker(answer, "inform", "reminder_time", slots={"reminder_text": "stretch"})
    said, slots = await run(form, tracker, domain)
    assert said == []
    assert slots["reminder_time"] == expected.isoformat()


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            "at 25 o'clock",
            "There's no twenty-five o'clock. Say a time like five pm, or in ten minutes.",
        ),
        ("yesterday at five", "That time has already passed."),
        (
            "whenever",
            "Sorry, I didn't catch a time. You can say something like in ten minutes, "
            "or at five pm.",
        ),
    ],
)
async def test_bad_times_get_a_spoken_reason(answer: str, says: str, domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    tracker = form_tracker(answer, "inform", "reminder_time", slots={"reminder_text": "stretch"})
    said, slots = await run(form, tracker, domain)
    assert said == [says]  # the form then asks "When should I remind you?"
    assert slots["reminder_time"] is None


async def test_correcting_the_time_while_confirming(domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    old = datetime(2024, 3, 8, 17, 0, tzinfo=NY).isoformat()
    tracker = form_tracker(
        "no make it six pm",
        "deny",
        "reminder_confirm",
        slots={"reminder_text": "stretch", "reminder_time": old},
        extracted={"reminder_confirm": False},
    )
    _, slots = await run(form, tracker, domain)
    assert slots["reminder_time"] == datetime(2024, 3, 8, 18, 0, tzinfo=NY).isoformat()
    assert slots["reminder_confirm"] is None


async def test_plain_yes_keeps_the_time(domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    old = datetime(2024, 3, 8, 17, 0, tzinfo=NY).isoformat()
    tracker = form_tracker(
        "yes",
        "affirm",
        "reminder_confirm",
        slots={"reminder_text": "stretch", "reminder_time": old},
        extracted={"reminder_confirm": True},
    )
    _, slots = await run(form, tracker, domain)
    assert slots == {"reminder_confirm": True}


async def test_confirm_question(domain: dict) -> None:
    tracker = make_tracker(
        "",
        slots={
            "reminder_text": "call my mom",
            "reminder_time": datetime(2024, 3, 8, 17, 15, tzinfo=NY).isoformat(),
        },
    )
    said, _ = await run(ActionAskReminderConfirm(clock=lambda: NOW), tracker, domain)
    assert said == ["Should I remind you to call your mom at a quarter past five this afternoon?"]


# --- saving, listing ---------------------------------------------------------------------
def confirmed(text: str, when: datetime, confirm: bool | None = True, **kw: Any) -> Tracker:
    return make_tracker(
        "yes" if confirm else "no",
        "affirm" if confirm else "deny",
        slots={
            "reminder_text": text,
            "reminder_time": when.isoformat(),
            "reminder_confirm": confirm,
        },
        metadata=META,
        **kw,
    )


CLEARED = {"reminder_text": None, "reminder_time": None, "reminder_confirm": None}


async def test_set_reminder_saves_it(store: ReminderStore, domain: dict) -> None:
    action = ActionSetReminder(store=store, clock=lambda: NOW)
    when = datetime(2024, 3, 8, 17, 15, tzinfo=NY)
    said, slots = await run(action, confirmed("call my mom", when), domain)
    assert said == ["Okay, I'll remind you to call your mom at a quarter past five this afternoon."]
    assert slots == CLEARED
    [saved] = store.list_open("user-1")
    assert (saved.text, saved.due_at, saved.timezone, saved.state) == (
        "call my mom",
        when.astimezone(UTC),
        "America/New_York",
        PENDING,
    )


async def test_denied_reminder_is_not_saved(store: ReminderStore, domain: dict) -> None:
    action = ActionSetReminder(store=store, clock=lambda: NOW)
    said, slots = await run(action, confirmed("stretch", NOW + timedelta(hours=1), False), domain)
    assert said == ["Okay, I won't set it."]
    assert slots == CLEARED
    assert store.list_open("user-1") == []


async def test_time_that_passed_while_confirming(store: ReminderStore, domain: dict) -> None:
    action = ActionSetReminder(store=store, clock=lambda: NOW)
    said, _ = await run(action, confirmed("stretch", NOW - timedelta(seconds=5)), domain)
    assert said[0].startswith("That time passed while we were talking")
    assert store.list_open("user-1") == []


async def test_unwritable_store_is_an_apology(tmp_path: Path, domain: dict, caplog) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    broken = ReminderStore(f"sqlite:///{blocker / 'r.db'}")
    action = ActionSetReminder(store=broken, clock=lambda: NOW)
    said, slots = await run(action, confirmed("stretch", NOW + timedelta(hours=1)), domain)
    assert said == ["Sorry, I couldn't save that reminder right now."]
    assert slots == CLEARED
    assert "Could not save reminder" in caplog.text
    said, _ = await run(
        ActionListReminders(store=broken, clock=lambda: NOW), make_tracker("x"), domain
    )
    assert said[0].startswith("Sorry, I can't reach my reminder list")


async def test_list_reminders(store: ReminderStore, domain: dict) -> None:
    action = ActionListReminders(store=store, clock=lambda: NOW)
    said, _ = await run(action, make_tracker("what are my reminders", "list_reminders"), domain)
    assert said == ["You have no reminders."]
    store.add(
        "user-1", "call my mom", datetime(2024, 3, 8, 17, 0, tzinfo=NY), "America/New_York", NOW
    )
    said, _ = await run(action, make_tracker("what are my reminders", "list_reminders"), domain)
    assert said == ["You have one reminder: call your mom at five o'clock this afternoon."]
    store.add("user-1", "stretch", NOW + timedelta(minutes=10), "America/New_York", NOW)
    said, _ = await run(action, make_tracker("what are my reminders", "list_reminders"), domain)
    assert said == [
        "You have two reminders: stretch in ten minutes and call your mom at five o'clock "
        "this afternoon."
    ]


# --- cancelling --------------------------------------------------------------------------
@pytest.fixture()
def two(store: ReminderStore) -> tuple[str, str]:
    a = store.add("user-1", "go to the dentist", NOW + timedelta(hours=3), "America/New_York", NOW)
    b = store.add("user-1", "call mom", NOW + timedelta(hours=5), "America/New_York", NOW)
    return a.id, b.id


async def test_cancel_one_by_description(
    store: ReminderStore, two: tuple[str, str], domain: dict
) -> None:
    action = ActionCancelReminder(store=store, clock=lambda: NOW)
    said, slots = await run(
        action, make_tracker("cancel the dentist one", "cancel_reminder"), domain
    )
    assert said == [
        "Should I cancel your reminder to go to the dentist at five oh seven this afternoon?"
    ]
    assert slots == {"pending_cancel": True, "cancel_ids": [two[0]]}

    confirm = ActionConfirmCancelReminder(store=store, clock=lambda: NOW)
    tracker = make_tracker("yes", "affirm", slots={"pending_cancel": True, "cancel_ids": [two[0]]})
    said, slots = await run(confirm, tracker, domain)
    assert said == ["Okay, I cancelled it."]
    assert slots == {"pending_cancel": False, "cancel_ids": None}
    assert store.get(two[0]).state == CANCELLED  # type: ignore[union-attr]
    assert store.get(two[1]).state == PENDING  # type: ignore[union-attr]


async def test_cancel_by_entity_with_a_typo(
    store: ReminderStore, two: tuple[str, str], domain: dict
) -> None:
    action = ActionCancelReminder(store=store, clock=lambda: NOW)
    tracker = make_tracker(
        "cancel the one about calling mum", "cancel_reminder", [ent("reminder_text", "call mum")]
    )
    _, slots = await run(action, tracker, domain)
    assert slots == {"pending_cancel": True, "cancel_ids": [two[1]]}


async def test_cancel_all_then_deny_keeps_them(
    store: ReminderStore, two: tuple[str, str], domain: dict
) -> None:
    action = ActionCancelReminder(store=store, clock=lambda: NOW)
    said, slots = await run(
        action, make_tracker("cancel all my reminders", "cancel_reminder"), domain
    )
    assert said == ["Should I cancel both of your reminders?"]
    assert slots["pending_cancel"] is True and sorted(slots["cancel_ids"]) == sorted(two)
    confirm = ActionConfirmCancelReminder(store=store, clock=lambda: NOW)
    tracker = make_tracker("no", "deny", slots={"pending_cancel": True, "cancel_ids": list(two)})
    said, slots = await run(confirm, tracker, domain)
    assert said == ["Okay, I'll keep them."]
    assert slots == {"pending_cancel": False, "cancel_ids": None}
    assert len(store.list_open("user-1")) == 2


async def test_cancel_all_then_yes(
    store: ReminderStore, two: tuple[str, str], domain: dict
) -> None:
    confirm = ActionConfirmCancelReminder(store=store, clock=lambda: NOW)
    tracker = make_tracker("yes", "affirm", slots={"pending_cancel": True, "cancel_ids": list(two)})
    said, _ = await run(confirm, tracker, domain)
    assert said == ["Okay, I cancelled both."]
    assert store.list_open("user-1") == []


async def test_cancel_nothing_matches(
    store: ReminderStore, two: tuple[str, str], domain: dict
) -> None:
    action = ActionCancelReminder(store=store, clock=lambda: NOW)
    said, slots = await run(
        action, make_tracker("cancel the gym reminder", "cancel_reminder"), domain
    )
    assert said == ["I couldn't find a reminder about gym."]
    assert slots == {"pending_cancel": False, "cancel_ids": None}


async def test_cancel_with_no_reminders(store: ReminderStore, domain: dict) -> None:
    action = ActionCancelReminder(store=store, clock=lambda: NOW)
    said, slots = await run(action, make_tracker("cancel my reminder", "cancel_reminder"), domain)
    assert said == ["You have no reminders to cancel."]
    assert slots["pending_cancel"] is False


async def test_cancel_by_time(store: ReminderStore, two: tuple[str, str], domain: dict) -> None:
    action = ActionCancelReminder(store=store, clock=lambda: NOW)
    _, slots = await run(
        action, make_tracker("cancel the 5:07 pm one", "cancel_reminder", metadata=META), domain
    )
    assert slots == {"pending_cancel": True, "cancel_ids": [two[0]]}


async def test_cancel_which_one(store: ReminderStore, two: tuple[str, str], domain: dict) -> None:
    action = ActionCancelReminder(store=store, clock=lambda: NOW)
    said, slots = await run(action, make_tracker("cancel a reminder", "cancel_reminder"), domain)
    assert said[0].startswith("You have two reminders:") and said[0].endswith(
        "Which one should I cancel?"
    )
    assert slots["pending_cancel"] is False


# --- delivery and greeting ---------------------------------------------------------------
def external(reminder_id: str, channel: str | None = None, **kw: Any) -> Tracker:
    return make_tracker(
        "EXTERNAL_reminder",
        "EXTERNAL_reminder",
        [ent("reminder_id", reminder_id)],
        channel=channel,
        **kw,
    )


async def test_deliver_once(store: ReminderStore, domain: dict) -> None:
    r = store.add("user-1", "stretch", NOW, "America/New_York", NOW - timedelta(minutes=5))
    clock = MovableClock(NOW + timedelta(seconds=2))
    action = ActionDeliverReminder(store=store, clock=clock)
    said, _ = await run(action, external(r.id), domain)
    assert said == ["Here's your reminder: stretch."]
    assert store.get(r.id).state == DELIVERED  # type: ignore[union-attr]
    said, _ = await run(action, external(r.id), domain)
    assert said == []  # already delivered: say nothing


async def test_late_delivery_says_so(store: ReminderStore, domain: dict) -> None:
    due = datetime(2024, 3, 8, 17, 0, tzinfo=NY)
    r = store.add("user-1", "call my mom", due, "America/New_York", NOW)
    action = ActionDeliverReminder(store=store, clock=lambda: due + timedelta(minutes=40))
    said, _ = await run(action, external(r.id), domain)
    assert said == [
        "Sorry, this is late: you asked me to remind you at five o'clock to call your mom."
    ]


async def test_away_on_voice_marks_missed_then_greet_tells(
    store: ReminderStore, domain: dict
) -> None:
    due = datetime(2024, 3, 8, 17, 0, tzinfo=NY)
    r = store.add("user-1", "stretch", due, "America/New_York", NOW)
    clock = MovableClock(due + timedelta(seconds=1))
    deliver = ActionDeliverReminder(store=store, clock=clock)
    said, _ = await run(
        deliver, external(r.id, channel="browser_voice", slots={"connected": False}), domain
    )
    assert said == []
    assert store.get(r.id).state == MISSED  # type: ignore[union-attr]

    clock.now = due + timedelta(hours=1)
    greet = ActionGreet(store=store, clock=clock)
    said, _ = await run(greet, make_tracker("hello", "greet", metadata=META), domain)
    assert said == [
        "Hi! While you were away: you asked me to remind you to stretch at five o'clock. "
        "What can I do for you?"
    ]
    said, _ = await run(greet, make_tracker("hello", "greet", metadata=META), domain)
    assert said == ["utter_greet"]
    assert store.get(r.id).state == DELIVERED  # type: ignore[union-attr]


async def test_deliver_unknown_or_missing_id_is_quiet(store: ReminderStore, domain: dict) -> None:
    action = ActionDeliverReminder(store=store, clock=lambda: NOW)
    assert (await run(action, external("nope"), domain))[0] == []
    assert (await run(action, make_tracker("EXTERNAL_reminder", "EXTERNAL_reminder"), domain))[
        0
    ] == []


async def test_deliver_logs_clock_skew(store: ReminderStore, domain: dict, caplog) -> None:  # type: ignore[no-untyped-def]
    r = store.add("user-1", "stretch", NOW + timedelta(minutes=10), "America/New_York", NOW)
    action = ActionDeliverReminder(store=store, clock=lambda: NOW)
    said, _ = await run(action, external(r.id), domain)
    assert said == ["Here's your reminder: stretch."]
    assert "Clock skew" in caplog.text


async def test_entity_text_with_the_time_inside_is_trimmed(domain: dict) -> None:
    form = ValidateReminderForm(clock=lambda: NOW)
    tracker = form_tracker(
        "remind me to call mom at five",
        "set_reminder",
        None,
        entities=[ent("reminder_text", "call mom at five")],
        extracted={"reminder_text": "call mom at five"},
    )
    _, slots = await run(form, tracker, domain)
    assert slots["reminder_text"] == "call mom"
    assert slots["reminder_time"] == datetime(2024, 3, 8, 17, 0, tzinfo=NY).isoformat()
