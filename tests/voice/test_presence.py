"""The presence slot the voice channels set, on Rasa's real tracker and lock stores."""

from __future__ import annotations

from types import SimpleNamespace

from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain

from channels.voice.presence import PRESENCE_SLOT, set_presence
from tests.servers import ROOT


def app_with(domain: Domain) -> SimpleNamespace:
    """A Sanic-app-shaped object whose agent has real stores."""
    agent = SimpleNamespace(
        domain=domain,
        tracker_store=InMemoryTrackerStore(domain),
        lock_store=InMemoryLockStore(),
        is_ready=lambda: True,
    )
    return SimpleNamespace(ctx=SimpleNamespace(agent=agent))


async def test_sets_and_clears_the_connected_slot() -> None:
    app = app_with(Domain.load(ROOT / "domain.yml"))
    store = app.ctx.agent.tracker_store
    await set_presence(app, "caller-1", True)
    assert (await store.retrieve("caller-1")).get_slot(PRESENCE_SLOT) is True
    await set_presence(app, "caller-1", False)
    assert (await store.retrieve("caller-1")).get_slot(PRESENCE_SLOT) is False


async def test_does_nothing_when_the_domain_has_no_such_slot() -> None:
    app = app_with(Domain.from_dict({"intents": ["greet"]}))
    await set_presence(app, "caller-2", True)
    assert await app.ctx.agent.tracker_store.retrieve("caller-2") is None
