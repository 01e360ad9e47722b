"""Bot speech out: Rasa's OutputChannel for a voice session and the sentence-streaming speaker."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rasa.core.channels.channel import OutputChannel

from channels.voice.audio import float_to_pcm16, resample_float
from channels.voice.metrics import ERRORS, now
from channels.voice.speakable import (
    buttons_to_speech,
    speakable,
    speech_chunks,
    split_sentences,
)

if TYPE_CHECKING:
    from channels.voice.engines import Engines
    from channels.voice.session import VoiceSession
    from channels.voice.transport import Transport

logger = logging.getLogger(__name__)

CHUNK_S = 0.2  # bot audio goes out in 200 ms chunks
REWIND_S = 0.3  # a resumed sentence starts this much before where it was paused
_seg_ids = itertools.count(1)


@dataclass
class Segment:
    """One synthesized sentence sent to the transport."""

    id: str
    text: str
    turn: int
    duration_s: float
    sent_at: float
    played: bool = False
    pcm: bytes = b""  # kept until heard, so a paused sentence can resume
    sent_bytes: int = 0
    ended: bool = False
    start_est: float = 0.0  # estimated start of its playback


@dataclass
class _Utterance:
    text: str
    turn: int
    generation: int


class Speaker:
    """Streams text to the transport sentence by sentence; knows what was actually heard."""

    def __init__(
        self,
        engines: Engines,
        transport: Transport,
        *,
        channel: str = "voice",
        on_first_audio: Callable[[int], None] | None = None,
        on_error: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> None:
        self.engines = engines
        self.transport = transport
        self.channel = channel
        self.on_first_audio = on_first_audio
        self.on_error = on_error
        self.queue: asyncio.Queue[_Utterance] = asyncio.Queue()
        self.generation = 0
        self.segments: OrderedDict[str, Segment] = OrderedDict()
        self.play_until = 0.0  # estimated end of playback of everything sent
        self.busy = False  # synthesizing or sending
        self.last_activity = now()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.tts_first_s: list[float] = []
        self._rest: list[str] = []
        self.held = False  # paused by a possible barge-in, waiting for the backchannel check
        self._held_at = 0.0
        self._go = asyncio.Event()  # cleared while held: sending waits
        self._go.set()

    def start(self) -> None:
        """Starts the speaking loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voice-speaker")

    async def close(self) -> None:
        """Stops the loop."""
        self.stop_nowait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def say(self, text: str, turn: int) -> None:
        """Queues bot text (made speakable here) for the given turn."""
        spoken = speakable(text)
        if not spoken:
            return
        self._idle.clear()
        self.queue.put_nowait(_Utterance(spoken, turn, self.generation))

    @property
    def speaking(self) -> bool:
        """True while audio is queued, being made, or (probably) still playing."""
        if self.held or self.busy or not self.queue.empty():
            return True
        pending = any(not s.played for s in self.segments.values())
        return pending and now() < self.play_until + 2.0

    def unplayed(self) -> list[Segment]:
        """Segments sent but not yet confirmed heard."""
        return [s for s in self.segments.values() if not s.played]

    def segment_played(self, segment_id: str) -> None:
        """Playback confirmation from the transport."""
        seg = self.segments.get(segment_id)
        if seg is not None:
            seg.played = True
            seg.pcm = b""
        self.last_activity = now()

    def stop_nowait(self) -> list[Segment]:
        """Barge-in: drops queued speech; returns the segments that were not heard."""
        self.generation += 1
        unheard = self.unplayed()
        t = now()
        for rest in self._rest:  # sentences of the current reply not yet sent
            unheard.append(Segment(id="", text=rest, turn=-1, duration_s=0.0, sent_at=t))
        self._rest = []
        while not self.queue.empty():
            u = self.queue.get_nowait()
            unheard.extend(
                Segment(id="", text=x, turn=u.turn, duration_s=0.0, sent_at=t)
                for x in split_sentences(u.text)
            )
        for s in unheard:
            if s.id:
                self.segments.pop(s.id, None)
        self.play_until = now()
        self.held = False
        self._go.set()
        self._idle.set() if not self.busy else None
        return unheard

    async def hold(self) -> None:
        """Possible barge-in: silences playback at once, keeping the unheard audio to resume."""
        if self.held or not self.speaking:
            return
        self.held = True
        self._held_at = now()
        self._go.clear()
        try:
            await self.transport.clear_audio()
        except Exception as e:
            logger.warning("clear_audio failed: %s", e)

    async def resume(self) -> None:
        """It was a backchannel: replays the unheard audio from just before the pause."""
        if not self.held:
            return
        gen = self.generation
        rate = int(self.transport.output_sample_rate)
        self.play_until = now()
        try:
            for i, seg in enumerate(self.unplayed()):
                if gen != self.generation:
                    return
                off = 0
                if i == 0:
                    played_s = self._held_at - seg.start_est - REWIND_S
                    off = min(max(0, int(played_s * rate)) * 2, seg.sent_bytes)
                audio = seg.pcm[off : seg.sent_bytes]
                # a new id: the wire forgets cleared segments, and a late echo of the old mark
                # must not count as heard
                self.segments.pop(seg.id, None)
                seg.id = f"s{next(_seg_ids)}"
                seg.sent_at = seg.start_est = max(now(), self.play_until)
                seg.pcm, seg.sent_bytes = seg.pcm[off:], seg.sent_bytes - off
                seg.duration_s = len(seg.pcm) / 2 / rate
                self.segments[seg.id] = seg
                await self._send_chunks(audio, seg, gen, rate)
                if seg.ended and gen == self.generation:
                    await self.transport.end_segment(seg.id)
        finally:
            if gen == self.generation:
                self.held = False
                self._go.set()

    async def stop(self) -> list[Segment]:
        """Barge-in: stops playback at once on the wire and drops queued speech."""
        unheard = self.stop_nowait()
        try:
            await self.transport.clear_audio()
        except Exception as e:
            logger.warning("clear_audio failed: %s", e)
        return unheard

    async def wait_done(self, timeout: float | None = None) -> bool:
        """Waits until everything queued was sent and (probably) played."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            while self.speaking:
                await asyncio.sleep(0.05)
            return True
        except asyncio.TimeoutError:
            return False

    def heard_text(self, turn: int) -> list[str]:
        """Sentences of a turn confirmed heard."""
        return [s.text for s in self.segments.values() if s.turn == turn and s.played]

    async def _run(self) -> None:
        while True:
            utt = await self.queue.get()
            if utt.generation != self.generation:
                if self.queue.empty():
                    self._idle.set()
                continue
            self.busy = True
            try:
                await self._speak(utt)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                ERRORS.labels(self.channel, "tts").inc()
                logger.exception("speech output failed")
                if self.on_error is not None:
                    with contextlib.suppress(Exception):
                        await self.on_error(e)
            finally:
                self.busy = False
                self.last_activity = now()
                if self.queue.empty():
                    self._idle.set()

    async def _speak(self, utt: _Utterance) -> None:
        sentences = speech_chunks(utt.text)
        tts = self.engines.tts
        pool = self.engines.pool
        out_rate = int(self.transport.output_sample_rate)
        nxt: asyncio.Future[Any] | None = None
        for i, sent in enumerate(sentences):
            self._rest = sentences[i:]  # this one is not a segment until it is sent
            t0 = now()
            fut = nxt if nxt is not None else asyncio.ensure_future(pool.run(tts.synthesize, sent))
            nxt = None
            try:
                audio = await fut
            except BaseException:
                raise
            if i == 0:
                self.tts_first_s.append(now() - t0)
            if i + 1 < len(sentences):  # synthesize the next sentence while this one plays
                nxt = asyncio.ensure_future(pool.run(tts.synthesize, sentences[i + 1]))
            if utt.generation != self.generation:
                if nxt is not None:
                    nxt.cancel()
                return
            pcm = float_to_pcm16(resample_float(audio, tts.sample_rate, out_rate))
            await self._send(pcm, sent, utt, out_rate)
            if utt.generation == self.generation:
                self._rest = sentences[i + 1 :]
            if utt.generation != self.generation:
                if nxt is not None:
                    nxt.cancel()
                return

    async def _send(self, pcm: bytes, text: str, utt: _Utterance, rate: int) -> None:
        await self._go.wait()
        if utt.generation != self.generation:
            return
        seg = Segment(
            id=f"s{next(_seg_ids)}",
            text=text,
            turn=utt.turn,
            duration_s=len(pcm) / 2 / rate,
            sent_at=now(),
            pcm=pcm,
            start_est=max(now(), self.play_until),
        )
        self.segments[seg.id] = seg
        while len(self.segments) > 200:
            self.segments.popitem(last=False)
        step = int(rate * CHUNK_S) * 2
        first = True
        for off in range(0, len(pcm), step):
            await self._go.wait()  # held: the rest is sent on resume (or dropped on stop)
            if utt.generation != self.generation:
                return
            chunk = pcm[off : off + step]
            await self._send_chunks(chunk, seg, utt.generation, rate)
            seg.sent_bytes += len(chunk)
            if first and self.on_first_audio is not None:
                self.on_first_audio(utt.turn)
            first = False
        await self._go.wait()
        if utt.generation != self.generation:
            return
        seg.ended = True
        await self.transport.end_segment(seg.id)
        self.last_activity = now()

    async def _send_chunks(self, pcm: bytes, seg: Segment, gen: int, rate: int) -> None:
        step = int(rate * CHUNK_S) * 2
        for off in range(0, len(pcm), step):
            if gen != self.generation:
                return
            chunk = pcm[off : off + step]
            await self.transport.send_audio(chunk, seg.id)
            self.play_until = max(self.play_until, now()) + len(chunk) / 2 / rate


class VoiceOutputChannel(OutputChannel):
    """Rasa replies for one voice session: text -> speakable -> TTS -> transport."""

    def __init__(self, session: VoiceSession, turn: int) -> None:
        self.session = session
        self.turn = turn

    @classmethod
    def name(cls) -> str:
        """Channel name."""
        return "voice"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Speaks text."""
        self.session.bot_says(text, self.turn)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Speaks text, then the buttons as a list of choices."""
        choices = buttons_to_speech(buttons)
        self.session.bot_says(f"{text} {choices}".strip(), self.turn, buttons=buttons)

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Quick replies are read like buttons."""
        await self.send_text_with_buttons(recipient_id, text, quick_replies, **kwargs)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Images cannot be heard: logged and skipped."""
        logger.info("voice: image not spoken: %s", image)

    async def send_attachment(self, recipient_id: str, attachment: Any, **kwargs: Any) -> None:
        """Attachments cannot be heard: logged and skipped."""
        logger.info("voice: attachment not spoken: %s", attachment)

    async def send_elements(self, recipient_id: str, elements: Any, **kwargs: Any) -> None:
        """Carousel elements: titles are spoken."""
        for el in elements or []:
            title = el.get("title", "")
            if title:
                self.session.bot_says(str(title), self.turn)

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Custom events go to the transport; ``{"event": "hangup"}`` ends the call."""
        await self.session.bot_custom(json_message, self.turn)
