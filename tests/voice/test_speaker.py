"""The Speaker's pause on a possible barge-in: hold silences at once, resume replays, stop drops."""

from __future__ import annotations

import asyncio

import pytest

from channels.voice.engines import Engines
from channels.voice.output import REWIND_S, Speaker
from tests.voice.wire import LoopbackTransport

pytestmark = pytest.mark.slow

REPLY = "This is the first sentence of a reply. And this is the second sentence of it."
RATE = 16000


async def _playing(engines: Engines) -> tuple[Speaker, LoopbackTransport]:
    tr = LoopbackTransport(RATE)
    sp = Speaker(engines, tr)
    tr.session = sp
    sp.start()
    sp.say(REPLY, 1)
    for _ in range(200):
        if tr.order:
            break
        await asyncio.sleep(0.02)
    assert tr.order
    return sp, tr


async def test_hold_silences_then_resume_replays_from_just_before_the_pause(
    engines: Engines,
) -> None:
    sp, tr = await _playing(engines)
    await asyncio.sleep(0.8)
    await sp.hold()
    assert tr.cleared == 1 and sp.held and sp.speaking
    sent = len(tr.order)
    await asyncio.sleep(0.6)  # held: nothing new goes out, even once the next sentence is made
    assert len(tr.order) == sent and not tr.played
    await sp.resume()
    assert not sp.held
    assert await sp.wait_done(30)
    first, resumed = bytes(tr.segments[tr.order[0]]), bytes(tr.segments[tr.order[sent]])
    skipped_s = (len(first) - len(resumed)) / 2 / RATE
    assert first.endswith(resumed)  # the same sentence, from where it was paused
    assert 0.8 - REWIND_S - 0.25 < skipped_s < 0.8 - REWIND_S + 0.25, skipped_s
    assert sp.heard_text(1) == [
        "This is the first sentence of a reply.",
        "And this is the second sentence of it.",
    ]
    assert not [s for s in sp.segments.values() if s.pcm]  # heard audio is not kept
    await sp.close()


async def test_stop_while_held_drops_the_reply(engines: Engines) -> None:
    sp, tr = await _playing(engines)
    await asyncio.sleep(0.3)
    await sp.hold()
    unheard = await sp.stop()
    assert " ".join(s.text for s in unheard).startswith("This is the first sentence")
    assert not sp.held
    assert await sp.wait_done(10)
    sent = len(tr.order)
    await sp.resume()  # too late: nothing to resume
    await asyncio.sleep(0.5)
    assert len(tr.order) == sent and not tr.played
    await sp.close()


async def test_hold_when_silent_does_nothing(engines: Engines) -> None:
    tr = LoopbackTransport(RATE)
    sp = Speaker(engines, tr)
    sp.start()
    await sp.hold()
    assert not sp.held and tr.cleared == 0
    await sp.close()
