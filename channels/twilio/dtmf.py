"""Collects keypad digits into one user turn: ends at ``#`` or after a short pause.

``DtmfCollector`` is pure (the caller drives time); ``digits_after_pause`` waits on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class DtmfCollector:
    """State machine for DTMF input; the caller drives time (``now`` in seconds).

    ``press`` returns the collected digits when a turn completes (``#``, or ``max_digits``);
    ``due`` returns them once ``timeout_s`` passed since the last key. ``*`` erases the buffer.
    """

    timeout_s: float = 2.5
    terminator: str = "#"
    max_digits: int = 32
    _digits: list[str] = field(default_factory=list)
    _last_at: float | None = None

    def press(self, digit: str, now: float) -> str | None:
        """Adds one key; returns a completed turn or None."""
        if digit == self.terminator:
            return self._take() if self._digits else None
        if digit == "*":
            self._digits.clear()
            self._last_at = None
            return None
        self._digits.append(digit)
        self._last_at = now
        if len(self._digits) >= self.max_digits:
            return self._take()
        return None

    def deadline(self) -> float | None:
        """When the pending digits complete by timeout (None if nothing pending)."""
        return None if self._last_at is None else self._last_at + self.timeout_s

    def due(self, now: float) -> str | None:
        """Returns the pending digits if the pause after the last key has elapsed."""
        d = self.deadline()
        if d is not None and now >= d and self._digits:
            return self._take()
        return None

    @property
    def pending(self) -> str:
        """Digits collected so far."""
        return "".join(self._digits)

    def _take(self) -> str:
        out = "".join(self._digits)
        self._digits.clear()
        self._last_at = None
        return out


async def digits_after_pause(collector: DtmfCollector, clock: Callable[[], float]) -> str | None:
    """Sleeps until the pending digits are due and takes them; None if they went meanwhile.

    uvloop's clock ticks in milliseconds, so a timer can wake a tick before its deadline; the
    digits were then never sent. This sleeps again until ``due`` agrees.
    """
    while (deadline := collector.deadline()) is not None:
        await asyncio.sleep(max(0.0, deadline - clock()) + 0.001)
        digits = collector.due(clock())
        if digits:
            return digits
    return None
