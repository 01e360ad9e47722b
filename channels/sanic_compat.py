"""Run-time patches that let Rasa 3.6's Sanic 21.12 work on Python 3.11.

Sanic 21.12's WebSocket implementation calls ``asyncio.wait`` with bare coroutines, which
Python 3.11 rejects (``TypeError: Passing coroutines is forbidden``), so every ``recv()`` on a
custom channel's WebSocket fails. We give ``sanic.server.websockets.impl`` its own view of
``asyncio`` whose ``wait`` wraps coroutines in tasks first. Nothing else is touched, and on
Python 3.10 the wrapper is a no-op in effect. Applied once, on import of the ``channels`` package.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Iterable
from typing import Any

_PATCHED_ATTR = "_voice_assistant_wait_patch"


async def _wait_wrapping_coroutines(aws: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
    """``asyncio.wait`` that accepts bare coroutines, as it did before Python 3.11."""
    tasks = [asyncio.ensure_future(a) if asyncio.iscoroutine(a) else a for a in aws]
    return await asyncio.wait(tasks, *args, **kwargs)


def apply() -> bool:
    """Patch Sanic's WebSocket module; returns True if a patch was (or already is) in place."""
    try:
        from sanic.server.websockets import impl
    except ImportError:  # pragma: no cover - Sanic absent: nothing to patch
        return False
    if getattr(impl.asyncio, _PATCHED_ATTR, False):
        return True
    shim = types.ModuleType("asyncio_with_compat_wait")
    shim.__dict__.update(asyncio.__dict__)
    shim.wait = _wait_wrapping_coroutines  # type: ignore[attr-defined]
    setattr(shim, _PATCHED_ATTR, True)
    impl.asyncio = shim  # type: ignore[attr-defined]
    return True
