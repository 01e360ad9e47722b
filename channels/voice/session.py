"""VoiceSession: one live conversation, audio in -> VAD/turns/STT -> Rasa -> TTS -> audio out.

What Rasa sees: each final transcript becomes ``UserMessage(text, VoiceOutputChannel, sender_id,
input_channel=..., metadata=...)``; metadata carries the transport's fields (channel,
caller_number, timezone, ...) plus ``language`` (the STT language) and a ``voice`` dict with the
turn's endpointing. After a barge-in, the *next* user message carries ``interrupted: true``,
``heard_bot_text`` (the bot sentences actually played) and ``unheard_bot_text`` (dropped) so the
tracker records what the user really heard. Speech over the bot pauses it at once
(``Speaker.hold``); a quick transcription then either resumes it (a backchannel, "uh-huh") or
confirms the interruption.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from rasa.core.channels.channel import UserMessage

from channels.voice.audio import Framer, pcm16_to_float
from channels.voice.config import VoiceConfig
from channels.voice.engines import Engines
from channels.voice.metrics import ERRORS, SESSIONS, SessionSummary, TurnRecord, now
from channels.voice.output import Speaker, VoiceOutputChannel
from channels.voice.stt import Transcript, normalize_text
from channels.voice.transport import Transport
from channels.voice.turns import CHUNK_MS, Event, Kind, TurnDetector, looks_complete
from channels.voice.vad import CHUNK_BYTES

logger = logging.getLogger(__name__)

ParseFn = Callable[[str], Awaitable[dict[str, Any]]]


class VoiceSession:
    """One live conversation: audio in -> VAD/turns/STT -> Rasa -> TTS -> audio out."""

    def __init__(
        self,
        *,
        engines: Engines,
        transport: Transport,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        sender_id: str,
        input_channel: str,
        metadata: dict[str, Any],
        config: VoiceConfig,
        parse: ParseFn | None = None,
    ) -> None:
        self.engines = engines
        self.transport = transport
        self.on_new_message = on_new_message
        self.sender_id = sender_id
        self.input_channel = input_channel
        self.metadata = dict(metadata or {})
        self.config = config
        self.parse = parse  # optional Rasa NLU parse for semantic endpointing
        self.channel = str(self.metadata.get("channel") or input_channel or "voice")
        self.id = uuid.uuid4().hex[:8]
        self.vad = engines.vad.stream()
        self.turns = TurnDetector(config.turns, threshold=config.vad.threshold)
        self.framer = Framer(CHUNK_BYTES)
        self.speaker = Speaker(
            engines,
            transport,
            channel=self.channel,
            on_first_audio=self._on_first_audio,
            on_error=self._on_speak_error,
        )
        self.summary_acc = SessionSummary()
        self.closed = False
        self.started = False
        self.hangup_pending = False
        self.turn_no = 0
        self.language: str | None = config.stt.language
        self.not_understood = 0
        self.reprompts = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._turn_task: asyncio.Task[Any] | None = None
        self._records: dict[int, TurnRecord] = {}
        self._current: TurnRecord | None = None  # record of the user turn being spoken
        self._spec_gen = 0
        self._spec: tuple[int, int, asyncio.Task[Transcript]] | None = None
        self._barge_check: asyncio.Task[bool] | None = None
        self._interrupted: dict[str, Any] | None = None
        self._last_partial_ms = 0
        self._nlu: tuple[str, dict[str, Any]] | None = None  # endpointing's parse of a transcript
        self._speech_start_t: float | None = None
        self._last_user_activity = now()
        self._vad_ms: list[float] = []
        self._reprompt_task: asyncio.Task[None] | None = None
        SESSIONS.labels(self.channel).inc()

    # -- public API ------------------------------------------------------------------------------
    @property
    def summary(self) -> dict[str, Any]:
        """Per-session metrics summary."""
        d = self.summary_acc.as_dict()
        d["session"] = self.id
        d["sender_id"] = self.sender_id
        d["tts_first_ms_p50"] = (
            round(float(np.median(self.speaker.tts_first_s)) * 1000, 1)
            if self.speaker.tts_first_s
            else None
        )
        d["vad_ms_p50"] = round(float(np.median(self._vad_ms)), 3) if self._vad_ms else None
        return d

    async def start(self, greet: bool = True) -> None:
        """Starts the session's tasks; greets by sending the greet intent to Rasa."""
        if self.started or self.closed:
            return
        self.started = True
        self.speaker.start()
        self._reprompt_task = self._spawn(self._reprompt_loop(), "reprompt")
        await self._state("listening")
        if greet:
            self._start_turn(self.config.session.greet_intent, None, endpoint="greet")

    async def feed_audio(self, pcm16_16k: bytes) -> None:
        """Feeds 16 kHz PCM16 of any length (odd bytes carried over); never blocks the loop."""
        if self.closed or not pcm16_16k:
            return
        for frame in self.framer.push(pcm16_16k):
            events = self._process_chunk(frame)
            for ev in events:
                await self._handle(ev)

    def segment_played(self, segment_id: str) -> None:
        """Playback confirmation (Twilio mark echo / browser playback_done)."""
        self.speaker.segment_played(segment_id)

    async def user_text(self, text: str) -> None:
        """Typed text or collected DTMF digits: a full user turn."""
        if self.closed or not text.strip():
            return
        if self.speaker.speaking:
            await self._interrupt(reason="text")
        self._last_user_activity = now()
        self.reprompts = 0
        self._start_turn(text.strip(), None, endpoint="text")

    async def ptt_start(self) -> None:
        """Push-to-talk: the client starts a turn."""
        for ev in self.turns.ptt_start():
            await self._handle(ev)

    async def ptt_end(self) -> None:
        """Push-to-talk: the client ends the turn."""
        rest = self.framer.flush(pad=True)
        if rest and self.turns.state.value == "ptt":
            self.turns.feed(1.0, rest, False)
        for ev in self.turns.ptt_end():
            await self._handle(ev)

    async def close(self) -> None:
        """Ends the session (idempotent): cancels tasks, frees buffers."""
        if self.closed:
            return
        self.closed = True
        SESSIONS.labels(self.channel).dec()
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.speaker.close()
        self._tasks.clear()
        self.turns.reset()
        self.framer.flush()
        self._spec = None
        self._records.clear()
        logger.info("voice session %s closed: %s", self.id, self.summary)

    # -- called by the output channel -------------------------------------------------------------
    def bot_says(self, text: str, turn: int, buttons: list[dict[str, Any]] | None = None) -> None:
        """Queues bot speech for a turn (stale turns are dropped)."""
        if self.closed or turn != self.turn_no:
            logger.debug("dropping stale bot text of turn %s", turn)
            return
        rec = self._records.get(turn)
        if rec is not None:
            rec.bot_text.append(text)
        self.speaker.say(text, turn)
        self._spawn(self._event({"type": "bot_text", "text": text, "turn": turn}), "event")

    async def bot_custom(self, data: dict[str, Any], turn: int) -> None:
        """Custom JSON from Rasa: ``hangup`` ends the call after the last words are heard."""
        if turn != self.turn_no:
            return
        if data.get("event") == "hangup":
            self.hangup_pending = True
            self._spawn(self._hang_up_after_speech(), "hangup")
        await self._event({"type": "custom", "data": data})

    # -- audio path -----------------------------------------------------------------------------
    def _process_chunk(self, frame: bytes) -> list[Event]:
        x = pcm16_to_float(frame)
        t0 = time.perf_counter()
        try:
            p = self.vad.prob(x)
        except Exception as e:
            ERRORS.labels(self.channel, "vad").inc()
            logger.warning("vad failed: %s", e)
            p = 0.0
        if len(self._vad_ms) < 2000:
            self._vad_ms.append((time.perf_counter() - t0) * 1000)
        bot = self.speaker.speaking
        events = self.turns.feed(p, frame, bot)
        st = self.turns.state.value
        if st in ("speaking", "starting", "trailing", "ptt"):
            self._last_user_activity = now()
        if st == "speaking" and self.config.stt.partials:
            self._maybe_partial()
        return events

    async def _handle(self, ev: Event) -> None:
        k = ev.kind
        t = now()
        if k == Kind.SPEECH_START:
            self._speech_start_t = t - ev.speech_ms / 1000
            self._last_partial_ms = 0
            self.reprompts = 0
            rec = TurnRecord(self.id, self.channel, self.turn_no + 1)
            rec.speech_start = self._speech_start_t
            self._current = rec
            await self._event({"type": "vad", "speech": True})
        elif k == Kind.BARGE_IN_CHECK:
            # pause the bot now; the check decides between resuming and a real interruption
            await self.speaker.hold()
            if self._current is not None and self._speech_start_t:
                self._current.barge_in_s = t - self._speech_start_t
            self._barge_check = self._spawn(self._check_backchannel(ev.audio), "barge-check")
        elif k == Kind.BARGE_IN:
            await self._interrupt(reason=ev.reason)
        elif k == Kind.SILENCE_START:
            if self._current is not None:
                self._current.speech_end = t - CHUNK_MS / 1000
            if self.config.stt.speculative:
                self._speculate(ev.audio)
        elif k == Kind.SPEECH_RESUME:
            self._spec_gen += 1
            self._spec = None
            if self._current is not None:
                self._current.speech_end = None
        elif k == Kind.TURN_DROPPED:
            self._spec_gen += 1
            self._spec = None
            self._current = None
            await self._event({"type": "vad", "speech": False, "dropped": ev.reason})
        elif k == Kind.TURN_END:
            rec = self._current or TurnRecord(self.id, self.channel, self.turn_no + 1)
            self._current = None
            rec.end_of_turn = t
            rec.endpoint = ev.reason
            if rec.speech_end is None:
                rec.speech_end = t if ev.reason in ("max_turn", "ptt") else t - ev.silence_ms / 1000
            spec = self._spec
            self._spec = None
            check = self._barge_check
            if check is not None and not check.done():
                # the turn ended before the backchannel check: let the check decide
                self._spawn(self._end_after_check(check, ev, rec, spec), "end-after-check")
                return
            await self._event({"type": "vad", "speech": False})
            self._start_turn(None, ev.audio, endpoint=ev.reason, rec=rec, spec=spec)

    async def _end_after_check(
        self,
        check: asyncio.Task[bool],
        ev: Event,
        rec: TurnRecord,
        spec: tuple[int, int, asyncio.Task[Transcript]] | None,
    ) -> None:
        try:
            backchannel = await check
        except Exception:
            backchannel = False
        if backchannel:
            self._spec_gen += 1
            await self._event({"type": "vad", "speech": False, "dropped": "backchannel"})
            return
        await self._interrupt(reason="turn_end")
        await self._event({"type": "vad", "speech": False})
        self._start_turn(None, ev.audio, endpoint=ev.reason, rec=rec, spec=spec)

    def _maybe_partial(self) -> None:
        ms = self.turns.speech_ms
        if ms - self._last_partial_ms < self.config.stt.partial_interval_ms:
            return
        if not self.engines.pool.idle:
            return  # bounded cost: skip when inference is busy
        self._last_partial_ms = ms
        audio = bytes(self.turns.audio)
        self._spawn(self._partial(audio), "partial")

    async def _partial(self, audio: bytes) -> None:
        try:
            tr = await self.engines.pool.run(
                self.engines.stt.transcribe, pcm16_to_float(audio), fast=True
            )
        except Exception as e:
            logger.debug("partial failed: %s", e)
            return
        if tr.text and not self.closed:
            await self._event({"type": "partial", "text": tr.text})

    def _speculate(self, audio: bytes) -> None:
        self._spec_gen += 1
        gen = self._spec_gen
        if self.config.turns.semantic:
            self.turns.mark_pending()
        task = self._spawn(self._transcribe_and_hint(audio, gen), "speculative-stt")
        self._spec = (gen, len(audio), task)

    async def _transcribe_and_hint(self, audio: bytes, gen: int) -> Transcript:
        try:
            tr = await self.engines.pool.run(self.engines.stt.transcribe, pcm16_to_float(audio))
        except BaseException:
            if gen == self._spec_gen:
                self.turns.set_hint(None)
            raise
        # Parsed even with semantic endpointing off: the parse then goes to Rasa with the turn,
        # made while the end-of-turn silence runs instead of after it.
        if gen == self._spec_gen and (self.config.turns.semantic or self.parse is not None):
            hint = await self._completeness(tr.text)
            if gen == self._spec_gen and self.turns.state.value == "trailing":
                self.turns.set_hint(hint)
                # the silence may already be long enough: end now, not at the next chunk (in
                # a task of its own, as the turn awaits this one)
                events = self.turns.poll()
                if events:
                    self._spawn(self._handle_all(events), "endpoint")
        return tr

    async def _handle_all(self, events: list[Event]) -> None:
        for ev in events:
            await self._handle(ev)

    async def _completeness(self, text: str) -> bool | None:
        if not text.strip():
            return None
        conf: float | None = None
        missing = False
        if self.parse is not None:
            try:
                parsed = await asyncio.wait_for(self.parse(text), 0.3)
                if parsed.get("intent"):
                    self._nlu = (text, parsed)
                intent = parsed.get("intent") or {}
                conf = float(intent.get("confidence") or 0.0)
                name = intent.get("name")
                if (
                    name in ("nlu_fallback", None)
                    or name in self.config.turns.semantic_skip_intents
                ):
                    conf = 0.0
                found = {e.get("entity") for e in parsed.get("entities") or []}
                for pair in self.config.turns.semantic_required:
                    want_intent, _, want_entity = pair.partition(":")
                    if name == want_intent and want_entity not in found:
                        missing = True
            except Exception as e:
                logger.debug("nlu parse for endpointing failed: %s", e)
        return looks_complete(
            text,
            intent_confidence=conf,
            min_confidence=self.config.turns.semantic_confidence,
            missing_entities=missing,
        )

    async def _check_backchannel(self, audio: bytes) -> bool:
        """Quick STT of the barge-in audio; True when it was a backchannel."""
        try:
            tr = await self.engines.pool.run(
                self.engines.stt.transcribe, pcm16_to_float(audio), fast=True
            )
            text = normalize_text(tr.text)
        except Exception as e:
            logger.warning("backchannel check failed: %s", e)
            text = "?"
        backchannel = is_backchannel(text, self.config.turns.backchannels)
        if backchannel:
            await self.speaker.resume()
        if self.turns.barge == "checking":
            events = self.turns.backchannel() if backchannel else self.turns.confirm_barge_in()
            for ev in events:
                await self._handle(ev)
        return backchannel

    async def _interrupt(self, reason: str) -> None:
        """Barge-in: stop playback now, drop queued speech, remember what was heard."""
        turn = self.turn_no
        unheard = await self.speaker.stop()
        heard = self.speaker.heard_text(turn)
        t = now()
        lat = (t - self._speech_start_t) if self._speech_start_t and reason != "text" else None
        prev = self._records.get(turn)
        if unheard or (self._turn_task and not self._turn_task.done()):
            before = self._interrupted or {}
            unheard_text = " ".join(s.text for s in unheard)
            self._interrupted = {
                "interrupted": True,
                "heard_bot_text": before.get("heard_bot_text") or " ".join(heard),
                "unheard_bot_text": " ".join(
                    t for t in (before.get("unheard_bot_text"), unheard_text) if t
                ),
            }
            if prev is not None:
                prev.interrupted = True
                prev.heard_text = heard
        if self._current is not None and self._current.barge_in_s is None:
            self._current.barge_in_s = lat
        # the stale response of the previous turn must not speak any more
        self.turn_no += 1 if (self._turn_task and not self._turn_task.done()) else 0
        await self._event({"type": "state", "state": "interrupted", "barge_in_ms": _ms(lat)})

    # -- turns -----------------------------------------------------------------------------------
    def _start_turn(
        self,
        text: str | None,
        audio: bytes | None,
        *,
        endpoint: str,
        rec: TurnRecord | None = None,
        spec: tuple[int, int, asyncio.Task[Transcript]] | None = None,
    ) -> None:
        if self.closed:
            return
        if self._turn_task is not None and not self._turn_task.done():
            # one turn in flight: the new turn makes the old response stale
            self._stale_previous()
        self.turn_no += 1
        turn = self.turn_no
        rec = rec or TurnRecord(self.id, self.channel, turn)
        rec.turn = turn
        rec.endpoint = rec.endpoint or endpoint
        if rec.end_of_turn is None:
            rec.end_of_turn = now()
        self._records[turn] = rec
        while len(self._records) > 8:
            self._records.pop(min(self._records))
        self._turn_task = self._spawn(self._run_turn(turn, text, audio, rec, spec), f"turn-{turn}")

    def _stale_previous(self) -> None:
        prev = self._turn_task
        # Rasa keeps processing the old message (its lock orders turns); its speech is dropped
        # because bot_says ignores turns other than the current one.
        if prev is not None:
            self._spawn(self.speaker.stop(), "stop-stale")

    async def _run_turn(
        self,
        turn: int,
        text: str | None,
        audio: bytes | None,
        rec: TurnRecord,
        spec: tuple[int, int, asyncio.Task[Transcript]] | None,
    ) -> None:
        cfg = self.config.session
        filler: asyncio.Task[None] | None = None
        try:
            if text is None:
                tr = await self._final_transcript(audio or b"", spec, rec)
                rec.stt_done = now()
                text = tr.text.strip()
                rec.transcript = text
                rec.language = tr.language
                if tr.language:
                    self.language = tr.language
                await self._event({"type": "transcript", "text": text, "turn": turn})
                if not text:
                    rec.outcome = "empty"
                    self._not_understood(turn)
                    return
            else:
                rec.stt_done = now()
                rec.transcript = text
            if not text.startswith("/"):
                self.not_understood = 0
            meta = self._metadata(rec)
            msg = UserMessage(
                text,
                VoiceOutputChannel(self, turn),
                self.sender_id,
                parse_data=self._parsed(text),
                input_channel=self.input_channel,
                metadata=meta,
            )
            if cfg.filler and rec.endpoint != "greet":
                filler = self._spawn(self._filler(turn, rec), "filler")
            await asyncio.wait_for(self.on_new_message(msg), cfg.rasa_timeout_s)
            rec.rasa_done = now()
            if filler is not None:
                filler.cancel()
            if turn == self.turn_no:
                await self.speaker.wait_done(timeout=120)
                if turn == self.turn_no and rec.first_audio is not None:
                    rec.last_audio = now()
        except asyncio.CancelledError:
            rec.outcome = "cancelled"
            raise
        except Exception as e:
            rec.outcome = "error"
            rec.error = f"{type(e).__name__}: {e}"
            stage = "rasa" if rec.stt_done else "stt"
            ERRORS.labels(self.channel, stage).inc()
            logger.exception("voice turn %s failed in %s", turn, stage)
            await self._event({"type": "error", "stage": stage, "message": str(e)[:200]})
            if turn == self.turn_no and not self.closed:
                self.speaker.say(cfg.error_text, turn)
        finally:
            if filler is not None:
                filler.cancel()
            if rec.interrupted:
                rec.outcome = "interrupted" if rec.outcome == "ok" else rec.outcome
            out = rec.finish()
            self.summary_acc.add(out)
            self._spawn(self._event({"type": "turn_metrics", **_jsonable(out)}), "event")

    async def _final_transcript(
        self, audio: bytes, spec: tuple[int, int, asyncio.Task[Transcript]] | None, rec: TurnRecord
    ) -> Transcript:
        # The speculative transcript is valid when no speech came after it started.
        if spec is not None and spec[0] == self._spec_gen:
            try:
                tr = await spec[2]
                rec.stt_speculative = True
                return tr
            except Exception as e:
                logger.debug("speculative STT failed, redoing: %s", e)
        return await self.engines.pool.run(self.engines.stt.transcribe, pcm16_to_float(audio))

    def _parsed(self, text: str) -> dict[str, Any] | None:
        """Endpointing already parsed this very transcript: Rasa need not parse it again."""
        nlu, self._nlu = self._nlu, None
        if nlu is None or nlu[0] != text:
            return None
        return copy.deepcopy(nlu[1])

    def _metadata(self, rec: TurnRecord) -> dict[str, Any]:
        meta = dict(self.metadata)
        if self.language:
            meta["language"] = self.language
            meta["stt_language"] = self.language
        meta["voice"] = {"session": self.id, "turn": rec.turn, "endpoint": rec.endpoint}
        if self._interrupted:
            meta.update(self._interrupted)
            self._interrupted = None
        return meta

    def _not_understood(self, turn: int) -> None:
        cfg = self.config.session
        self.not_understood += 1
        if self.not_understood <= cfg.max_not_understood:
            self.speaker.say(cfg.not_understood_text, turn)
        else:
            self.not_understood = 0
            self.speaker.say(cfg.help_text, turn)

    async def _filler(self, turn: int, rec: TurnRecord) -> None:
        await asyncio.sleep(self.config.session.filler_after_s)
        if turn == self.turn_no and rec.first_audio is None and not self.speaker.speaking:
            self.speaker.say(self.config.session.filler_text, turn)

    def _on_first_audio(self, turn: int) -> None:
        rec = self._records.get(turn)
        if rec is not None and rec.first_audio is None:
            rec.first_audio = now()

    async def _on_speak_error(self, e: BaseException) -> None:
        await self._event({"type": "error", "stage": "tts", "message": str(e)[:200]})

    # -- reprompts and hang-up -------------------------------------------------------------------
    async def _reprompt_loop(self) -> None:
        cfg = self.config.session
        while not self.closed:
            await asyncio.sleep(0.25)
            if self.hangup_pending or self.speaker.speaking:
                self._last_user_activity = max(self._last_user_activity, self.speaker.last_activity)
                continue
            if self._turn_task is not None and not self._turn_task.done():
                continue
            if self.turns.state.value != "idle":
                continue
            quiet = now() - max(self._last_user_activity, self.speaker.last_activity)
            if quiet < cfg.reprompt_s:
                continue
            if self.reprompts >= cfg.max_reprompts:
                self.hangup_pending = True
                self.speaker.say(cfg.goodbye_text, self.turn_no)
                await self._hang_up_after_speech()
                return
            self.reprompts += 1
            self.speaker.say(cfg.reprompt_text, self.turn_no)
            self._last_user_activity = now()

    async def _hang_up_after_speech(self) -> None:
        await asyncio.sleep(0.05)
        await self.speaker.wait_done(timeout=60)
        await self._state("ended")
        try:
            await self.transport.hang_up()
        except Exception as e:
            logger.warning("hang_up failed: %s", e)

    # -- helpers ---------------------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"voice-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("voice task %s failed: %r", task.get_name(), task.exception())

    async def _event(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            await self.transport.send_event(event)
        except Exception as e:
            logger.debug("send_event failed: %s", e)

    async def _state(self, state: str) -> None:
        await self._event({"type": "state", "state": state})


def is_backchannel(text: str, words: tuple[str, ...]) -> bool:
    """True when a transcript is only backchannel words ("uh-huh", "yeah okay") or empty."""
    norm = normalize_text(text)
    if not norm:
        return True
    vocab = {normalize_text(w) for w in words}
    rest = norm
    for w in sorted(vocab, key=len, reverse=True):
        if w:
            rest = re.sub(rf"\b{re.escape(w)}\b", " ", rest)
    return not rest.strip()


def _ms(s: float | None) -> float | None:
    return None if s is None else round(s * 1000, 1)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if isinstance(v, str | int | float | bool | type(None))}
