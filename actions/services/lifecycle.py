"""Start and stop the reminder dispatcher inside ``rasa run actions``.

rasa_sdk's ``create_app`` builds ``Sanic("rasa_sdk")`` before it imports the actions package,
so importing ``actions`` can find that app and hook listeners onto it. Without such an app
(unit tests importing actions) nothing happens. Env ``REMINDER_DISPATCHER=off`` disables it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from actions.services.places import gazetteer
from actions.services.reminder_dispatcher import (
    RasaTriggerDelivery,
    ReminderDispatcher,
    delivery_from_env,
)
from actions.services.reminder_store import ReminderStoreError, get_store

logger = logging.getLogger(__name__)
APP_NAME = "rasa_sdk"


def dispatcher_enabled() -> bool:
    """False when env REMINDER_DISPATCHER is off/0/false/no."""
    return os.environ.get("REMINDER_DISPATCHER", "on").strip().lower() not in {
        "off",
        "0",
        "false",
        "no",
        "disabled",
    }


async def _start(app: Any, _loop: Any = None) -> None:
    store = get_store()
    try:
        await asyncio.to_thread(store.check)
        logger.info("Reminder store ready at %s", store.url)
    except ReminderStoreError as exc:
        logger.error("Reminder store unavailable (%s); the dispatcher will keep trying", exc)
    try:
        delivery = delivery_from_env()
    except Exception:
        logger.exception("REMINDER_DELIVERY could not be loaded; using Rasa's trigger_intent")
        delivery = RasaTriggerDelivery()
    dispatcher = ReminderDispatcher(store, delivery)
    app.ctx.reminder_dispatcher = dispatcher
    dispatcher.start()
    # Load the place gazetteer now so the first question about a place is fast.
    asyncio.get_running_loop().run_in_executor(None, gazetteer)


async def _stop(app: Any, _loop: Any = None) -> None:
    dispatcher: ReminderDispatcher | None = getattr(app.ctx, "reminder_dispatcher", None)
    if dispatcher is not None:
        await dispatcher.stop()


def attach_to_action_server() -> bool:
    """Register dispatcher listeners on the running rasa_sdk app; True when attached."""
    try:
        from sanic import Sanic

        app = Sanic.get_app(APP_NAME)
    except Exception:  # no action server app: imported by tests or tools
        return False
    if getattr(app.ctx, "reminder_dispatcher_attached", False):
        return True
    app.ctx.reminder_dispatcher_attached = True
    if not dispatcher_enabled():
        logger.info("Reminder dispatcher disabled (REMINDER_DISPATCHER=off)")
        return False
    app.register_listener(_start, "after_server_start")
    app.register_listener(_stop, "before_server_stop")
    logger.info("Reminder dispatcher will start with the action server")
    return True
