"""Turn-taking state machine: start/end of speech, semantic endpointing, barge-in, push-to-talk.

Pure and synchronous: fed one VAD probability (and its audio) per 32 ms chunk plus whether the
bot is speaking, it returns events. The session does the I/O (STT, Rasa, playback).
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass

from channels.voice.config import TurnConfig
from channels.voice.vad import CHUNK_BYTES

CHUNK_MS = 32


class State(enum.Enum):
    """Where the user is in a turn."""

    IDLE = "idle"  # silence, keeping a short prefix buffer
    STARTING = "starting"  # speech seen, not long enough to count yet
    SPEAKING = "speaking"  # inside a user turn
    TRAILING = "trailing"  # silence after speech, endpointing timer running
    IGNORING = "ignoring"  # a backchannel during bot speech: wait for it to end
    PTT = "ptt"  # push-to-talk: recording until the client says stop


class Kind(enum.Enum):
    """Event kinds."""

    SPEECH_START = "speech_start"
    BARGE_IN_CHECK = "barge_in_check"  # bot speaking, user spoke barge_in_ms: is it a backchannel?
    BARGE_IN = "barge_in"  # interrupt the bot now
    SILENCE_START = "silence_start"  # user paused: a good moment for speculative STT
    SPEECH_RESUME = "speech_resume"  # the pause was not the end: drop the speculation
    TURN_END = "turn_end"
    TURN_DROPPED = "turn_dropped"  # too short (cough, click) or a backchannel


@dataclass
class Event:
    """One turn-taking event; ``audio`` is the turn's PCM16 so far where it matters."""

    kind: Kind
    audio: bytes = b""
    reason: str = ""
    speech_ms: int = 0
    silence_ms: int = 0


_DANGLING = {
    "and",
    "or",
    "but",
    "to",
    "too",  # Whisper often writes a trailing "to" as "too"
    "end",  # ... and a trailing "and" as "end"
    "my",
    "the",
    "a",
    "an",
    "of",
    "for",
    "at",
    "in",
    "on",
    "with",
    "about",
    "so",
    "because",
    "then",
    "um",
    "uh",
    "like",
    "is",
    "are",
    "me",
    "your",
    "our",
    "their",
    "his",
    "her",
    "this",
    "that",
    "if",
    "when",
    "from",
    "by",
    "into",
    "what's",
    "whats",
    "what",
    "how",
    "where",
    "which",
    "i",
    "i'm",
    "we",
    "you",
    "remind",
    "set",
    "tell",
    "please",
    "can",
    "could",
    "would",
    "will",
    "it's",
    "its",
    "next",
    "until",
    "before",
    "after",
}


def looks_complete(
    text: str,
    *,
    intent_confidence: float | None = None,
    min_confidence: float = 0.8,
    missing_entities: bool = False,
) -> bool | None:
    """Does a (partial) transcript read as a finished request?

    Returns True (end the turn soon), False (wait longer) or None (no opinion). Unfinished:
    ends in a dangling word ("and", "to", "my"), trails off ("..."), or NLU says required parts
    are missing. Finished: ends in sentence punctuation and, when NLU was asked, it is confident.
    """
    t = text.strip()
    if not t:
        return None
    if t.endswith(("...", "…", ",", "-", ";", ":")):
        return False
    words = re.findall(r"[a-z']+|\d+", t.lower())
    if not words:
        return None
    if words[-1] in _DANGLING:
        return False
    if set(words) <= _PRELUDE and set(words) & _HOLDING:
        return False  # "no wait", "hold on", "actually": the request is still to come
    if missing_entities:
        return False
    if intent_confidence is not None:
        if intent_confidence >= min_confidence and (t[-1] in ".?!" or len(words) >= 2):
            return True
        return None
    if t[-1] in ".?!" and len(words) >= 2:
        return True
    return None


# A turn made only of these words, one of them a "holding" word, is a prelude: more follows.
# "way": Whisper often writes a clipped "no wait" as "No way."
_HOLDING = {"wait", "way", "hold", "hang", "actually", "well", "um", "uh", "hmm", "let", "see"}
_PRELUDE = _HOLDING | {
    "no",
    "oh",
    "on",
    "so",
    "okay",
    "ok",
    "sorry",
    "me",
    "just",
    "a",
    "sec",
    "second",
}


def squeeze_pauses(audio: bytes, voiced: list[bool], max_pause_ms: int) -> bytes:
    """Shortens runs of unvoiced chunks after speech to about ``max_pause_ms``.

    ``voiced`` flags each 32 ms chunk (16 kHz PCM16) of ``audio``. A long pause keeps its first
    and last parts (the fading end of one word, the soft start of the next); leading silence is
    kept as it is. Audio that does not match the flags is returned unchanged.
    """
    size = CHUNK_BYTES
    if max_pause_ms <= 0 or not voiced or len(audio) != len(voiced) * size:
        return audio
    keep = max(2, max_pause_ms // CHUNK_MS)
    head, tail = keep - keep // 2, keep // 2
    out = bytearray()
    run_start: int | None = None  # first chunk of the current unvoiced run
    seen_speech = False
    for i, v in enumerate([*voiced, True]):  # a sentinel ends the last run
        if not v:
            if run_start is None:
                run_start = i
            continue
        if run_start is not None:
            n = i - run_start
            if seen_speech and n > keep:
                out += audio[run_start * size : (run_start + head) * size]
                out += audio[(i - tail) * size : i * size]
            else:
                out += audio[run_start * size : i * size]
            run_start = None
        if i < len(voiced):
            seen_speech = True
            out += audio[i * size : (i + 1) * size]
    return bytes(out)


class TurnDetector:
    """Per-session turn-taking state machine (one instance per session)."""

    def __init__(self, cfg: TurnConfig, threshold: float = 0.5) -> None:
        self.cfg = cfg
        self.on = threshold
        self.off = max(0.05, threshold - 0.15)
        self.backchannel_max_ms = 800
        self.reset()

    def reset(self) -> None:
        """Back to idle, forgetting any turn in progress."""
        self.state = State.IDLE
        self.prefix: deque[bytes] = deque(maxlen=max(1, self.cfg.prefix_ms // CHUNK_MS))
        self.audio = bytearray()
        self.voiced: list[bool] = []  # per chunk of ``audio``: was it speech?
        self.speech_ms = 0
        self.turn_ms = 0
        self.silence_ms = 0
        self.gap_ms = 0
        self.hint: bool | None = None
        self.pending = False
        self.barge: str = "none"  # none | checking | confirmed

    # -- inputs from the session ---------------------------------------------------------------
    def set_hint(self, complete: bool | None) -> None:
        """Semantic endpointing hint from the latest (partial/speculative) transcript."""
        self.hint = complete if self.cfg.semantic else None
        self.pending = False

    def poll(self) -> list[Event]:
        """Ends the turn now if the silence so far is enough (call after ``set_hint``)."""
        if self.state == State.TRAILING and self.silence_ms >= self.endpoint_ms():
            return self._end("semantic" if self.hint else "silence")
        return []

    def mark_pending(self) -> None:
        """A transcript for the hint is being made: do not end on the fixed rule meanwhile."""
        self.pending = bool(self.cfg.semantic)

    def endpoint_ms(self) -> int:
        """Silence needed to end the turn now."""
        if self.cfg.semantic and self.hint is True:
            return self.cfg.semantic_complete_ms
        if self.cfg.semantic and (self.hint is False or self.pending):
            return max(self.cfg.semantic_incomplete_ms, self.cfg.silence_ms)
        return self.cfg.silence_ms

    def backchannel(self) -> list[Event]:
        """The barge-in audio was a backchannel: forget it, keep the bot talking."""
        self.barge = "none"
        if self.state in (State.SPEAKING, State.STARTING):
            self._clear_turn()
            self.state = State.IGNORING
            return [Event(Kind.TURN_DROPPED, reason="backchannel")]
        if self.state == State.TRAILING:
            self._clear_turn()
            self.state = State.IDLE
            return [Event(Kind.TURN_DROPPED, reason="backchannel")]
        return []

    def confirm_barge_in(self) -> list[Event]:
        """The barge-in audio was real speech: interrupt the bot."""
        if self.barge == "checking":
            self.barge = "confirmed"
            return [Event(Kind.BARGE_IN, reason="confirmed", speech_ms=self.speech_ms)]
        return []

    def ptt_start(self) -> list[Event]:
        """Push-to-talk: the client starts a turn (interrupts the bot)."""
        self._clear_turn()
        self.state = State.PTT
        return [Event(Kind.SPEECH_START, reason="ptt"), Event(Kind.BARGE_IN, reason="ptt")]

    def ptt_end(self) -> list[Event]:
        """Push-to-talk: the client ends the turn."""
        if self.state != State.PTT:
            return []
        audio = self.turn_audio()
        ms = self.turn_ms
        self._clear_turn()
        self.state = State.IDLE
        if ms < self.cfg.min_speech_ms:
            return [Event(Kind.TURN_DROPPED, reason="too_short", speech_ms=ms)]
        return [Event(Kind.TURN_END, audio=audio, reason="ptt", speech_ms=ms)]

    def feed(self, prob: float, chunk: bytes, bot_speaking: bool) -> list[Event]:
        """Advances by one 32 ms chunk with its speech probability."""
        if prob != prob:  # NaN
            prob = 0.0
        st = self.state
        if st == State.PTT:
            self.audio.extend(chunk)
            self.voiced.append(prob >= self.on)
            self.turn_ms += CHUNK_MS
            if self.turn_ms >= self.cfg.max_turn_s * 1000:
                return self.ptt_end()
            return []
        if self.cfg.push_to_talk:
            return []
        speech = prob >= (self.off if st in (State.SPEAKING, State.TRAILING) else self.on)
        if st == State.IDLE:
            if speech:
                self.state = State.STARTING
                self.audio = bytearray(b"".join(self.prefix))
                self.voiced = [False] * len(self.prefix) + [True]
                self.prefix.clear()
                self.audio.extend(chunk)
                self.speech_ms = CHUNK_MS
                self.turn_ms = CHUNK_MS
                self.gap_ms = 0
                return self._check_start(bot_speaking)
            self.prefix.append(chunk)
            return []
        if st == State.IGNORING:
            if speech:
                self.silence_ms = 0
            else:
                self.silence_ms += CHUNK_MS
                if self.silence_ms >= 200:
                    self._clear_turn()
                    self.state = State.IDLE
            return []
        self.audio.extend(chunk)
        self.voiced.append(speech)
        self.turn_ms += CHUNK_MS
        if st == State.STARTING:
            if speech:
                self.speech_ms += CHUNK_MS
                self.gap_ms = 0
                return self._check_start(bot_speaking)
            self.gap_ms += CHUNK_MS
            if self.gap_ms > 96:  # a blip, not speech
                self.prefix.extend(self._tail_chunks(len(chunk)))
                self._clear_turn()
                self.state = State.IDLE
            return []
        events: list[Event] = []
        if st == State.SPEAKING:
            if speech:
                self.speech_ms += CHUNK_MS
                events += self._check_barge(bot_speaking)
            else:
                self.state = State.TRAILING
                self.silence_ms = CHUNK_MS
                events.append(Event(Kind.SILENCE_START, audio=self.turn_audio()))
        elif st == State.TRAILING:
            if speech:
                self.state = State.SPEAKING
                self.speech_ms += CHUNK_MS
                self.silence_ms = 0
                self.hint = None
                self.pending = False
                events.append(Event(Kind.SPEECH_RESUME))
                events += self._check_barge(bot_speaking)
            else:
                self.silence_ms += CHUNK_MS
                if self.silence_ms >= self.endpoint_ms():
                    return events + self._end("semantic" if self.hint else "silence")
        if self.turn_ms >= self.cfg.max_turn_s * 1000:
            events += self._end("max_turn")
        return events

    def turn_audio(self) -> bytes:
        """The turn's audio for transcription, its long pauses shortened."""
        return squeeze_pauses(bytes(self.audio), self.voiced, self.cfg.max_pause_ms)

    # -- internals -----------------------------------------------------------------------------
    def _check_start(self, bot_speaking: bool) -> list[Event]:
        if self.speech_ms < self.cfg.start_ms:
            return []
        self.state = State.SPEAKING
        self.hint = None
        self.barge = "none"
        events = [Event(Kind.SPEECH_START, audio=bytes(self.audio), speech_ms=self.speech_ms)]
        return events + self._check_barge(bot_speaking)

    def _check_barge(self, bot_speaking: bool) -> list[Event]:
        cfg = self.cfg
        if self.barge == "confirmed":
            return []
        if not bot_speaking or not cfg.barge_in:
            if self.barge == "checking" and not bot_speaking:
                self.barge = "confirmed"  # bot finished meanwhile: an ordinary turn
            return []
        if self.barge == "none" and self.speech_ms >= cfg.barge_in_ms:
            if cfg.backchannel_check:
                self.barge = "checking"
                return [
                    Event(Kind.BARGE_IN_CHECK, audio=bytes(self.audio), speech_ms=self.speech_ms)
                ]
            self.barge = "confirmed"
            return [Event(Kind.BARGE_IN, reason="speech", speech_ms=self.speech_ms)]
        if self.barge == "checking" and self.speech_ms >= self.backchannel_max_ms:
            self.barge = "confirmed"  # too long for "uh-huh": a real interruption
            return [Event(Kind.BARGE_IN, reason="long_speech", speech_ms=self.speech_ms)]
        return []

    def _end(self, reason: str) -> list[Event]:
        audio = self.turn_audio()
        speech_ms, silence_ms = self.speech_ms, self.silence_ms
        self._clear_turn()
        self.state = State.IDLE
        if speech_ms < self.cfg.min_speech_ms:
            return [Event(Kind.TURN_DROPPED, reason="too_short", speech_ms=speech_ms)]
        return [
            Event(
                Kind.TURN_END,
                audio=audio,
                reason=reason,
                speech_ms=speech_ms,
                silence_ms=silence_ms,
            )
        ]

    def _tail_chunks(self, size: int) -> list[bytes]:
        n = self.prefix.maxlen or 1
        data = bytes(self.audio[-n * size :]) if size else b""
        return [data[i : i + size] for i in range(0, len(data), size) if size]

    def _clear_turn(self) -> None:
        self.audio = bytearray()
        self.voiced = []
        self.speech_ms = 0
        self.turn_ms = 0
        self.silence_ms = 0
        self.gap_ms = 0
        self.hint = None
        self.pending = False
        self.barge = "none"
