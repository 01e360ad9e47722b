"""Rasa's Redis lock store with every change to a conversation's ticket lock made atomically.

Rasa 3.6's ``RedisLockStore`` reads a lock, changes it and writes it back in three steps. Two
workers taking a ticket at the same moment both read ``last_issued = 5`` and both get ticket 6,
so both process the same conversation at once and one tracker write loses the other's message
(seen in the scale test: twenty messages sent 50 ms apart, one missing). Here each change runs
in a Redis ``WATCH``/``MULTI`` transaction that retries when another worker changed the lock.

Waiting turns poll every ``POLL_S`` instead of Rasa's one second: the next turn of a
conversation starts as soon as the previous one finished on any worker.

Configured in ``endpoints.yml`` by ``LOCK_STORE_TYPE=channels.lock_store.AtomicRedisLockStore``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

T = TypeVar("T")
POLL_S = 0.05


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` whose ticket operations cannot interleave across workers."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        """Built by Rasa from ``endpoints.yml`` (``endpoint_config``) or directly (``kwargs``)."""
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs}
        super().__init__(**kwargs)

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock], T],
        create: bool = False,
        drop_empty: bool = False,
    ) -> T | None:
        """Runs ``change`` on the stored lock and stores it, in one transaction.

        Without a stored lock nothing happens (None), unless ``create``; ``drop_empty`` deletes
        the lock when no ticket is left. ``change`` runs again when another worker changed the
        lock meanwhile.
        """
        key = self.key_prefix + conversation_id
        out: list[T | None] = [None]

        def transaction(pipe: Any) -> None:
            raw = pipe.get(key)
            if not raw and not create:
                return
            lock = (
                TicketLock.from_dict(json.loads(raw)) if raw else self.create_lock(conversation_id)
            )
            value = change(lock)
            pipe.multi()
            if drop_empty and not lock.is_someone_waiting():
                pipe.delete(key)
            else:
                pipe.set(key, lock.dumps())
            out[0] = value

        self.red.transaction(transaction, key)
        return out[0]

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Takes the next ticket, creating the lock if there is none."""
        try:
            ticket = self._change(
                conversation_id, lambda lock: lock.issue_ticket(lock_lifetime), create=True
            )
        except Exception as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e
        assert ticket is not None  # created when missing
        return ticket

    def update_lock(self, conversation_id: str) -> None:
        """Drops expired tickets (a worker that died holding one)."""
        self._change(conversation_id, TicketLock.remove_expired_tickets)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Removes one ticket."""
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Removes one ticket, and the lock with it when no one else holds a ticket."""
        self._change(
            conversation_id, lambda lock: lock.remove_ticket_for(ticket_number), drop_empty=True
        )

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = POLL_S,
    ) -> AsyncGenerator[TicketLock, None]:
        """Holds the conversation's lock; waiting turns poll every ``POLL_S`` at most."""
        async with super().lock(
            conversation_id, lock_lifetime, min(wait_time_in_seconds, POLL_S)
        ) as held:
            yield held
