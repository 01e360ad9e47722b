"""Live calls of this worker: capacity (reservations + active streams) and who is connected."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallRegistry:
    """Counts calls against ``max_calls``; a reservation made by the webhook lapses after ``ttl_s``
    if its stream never connects."""

    max_calls: int
    ttl_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _reserved: dict[str, float] = field(default_factory=dict)
    _active: dict[str, str] = field(default_factory=dict)  # call sid -> sender id
    _used_tokens: set[str] = field(default_factory=set)
    statuses: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)

    def _expire(self) -> None:
        now = self.clock()
        for sid in [s for s, until in self._reserved.items() if until < now]:
            del self._reserved[sid]

    def load(self) -> int:
        """Calls reserved or streaming now."""
        self._expire()
        return len(self._active) + len(set(self._reserved) - set(self._active))

    def reserve(self, call_sid: str) -> bool:
        """Reserves a line for a call the webhook is answering; False when at capacity."""
        self._expire()
        if call_sid in self._reserved or call_sid in self._active:
            return True
        if self.load() >= self.max_calls:
            return False
        self._reserved[call_sid] = self.clock() + self.ttl_s
        return True

    def activate(self, call_sid: str, sender_id: str) -> bool:
        """The call's stream started; False if the call already has a live stream."""
        if call_sid in self._active:
            return False
        self._reserved.pop(call_sid, None)
        self._active[call_sid] = sender_id
        return True

    def release(self, call_sid: str) -> None:
        """The call's stream ended."""
        self._active.pop(call_sid, None)
        self._reserved.pop(call_sid, None)

    def is_connected(self, sender_id: str) -> bool:
        """True if this person is on a call with this worker now."""
        return sender_id in self._active.values()

    @property
    def active_calls(self) -> dict[str, str]:
        """Live streams: call sid -> sender id."""
        return dict(self._active)

    def record_status(self, call_sid: str, status: dict[str, Any], keep: int = 1000) -> None:
        """Keeps the latest status callback of recent calls (bounded)."""
        self.statuses[call_sid] = status
        self.statuses.move_to_end(call_sid)
        while len(self.statuses) > keep:
            self.statuses.popitem(last=False)
