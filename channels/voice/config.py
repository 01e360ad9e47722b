"""Voice settings: nested dataclasses with defaults that work with no config at all.

A channel passes its ``credentials.yml`` section (or a ``voice:`` sub-dict of it) to
``VoiceConfig.from_dict``; an unknown key or a bad value raises ``ValueError`` naming the key,
e.g. ``voice.stt.beam_size: expected int, got 'x'``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

DEFAULT_HALLUCINATIONS: tuple[str, ...] = (
    "thank you",
    "thank you.",
    "thanks for watching",
    "thanks for watching!",
    "thank you for watching",
    "thank you so much for watching",
    "please subscribe",
    "subscribe to my channel",
    "you",
    "so",
    ".",
    "...",
    "[music]",
    "[blank_audio]",
    "(music)",
    "♪",
)

DEFAULT_BACKCHANNELS: tuple[str, ...] = (
    "uh-huh",
    "uh huh",
    "mm-hmm",
    "mhm",
    "mm hmm",
    "hmm",
    "mm",
    "yeah",
    "yes",
    "yep",
    "okay",
    "ok",
    "right",
    "sure",
    "i see",
    "got it",
    "alright",
    "all right",
    "ah",
    "oh",
    "uh",
    "um",
)


@dataclass(frozen=True)
class STTConfig:
    """Speech-to-text settings (faster-whisper)."""

    engine: str = "faster_whisper"
    model: str | None = None  # name ("base.en") or directory; None: the bundled tiny.en
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    compute_type: str = "int8"
    cpu_threads: int = 2
    language: str | None = "en"  # None: detect (multilingual models only)
    beam_size: int = 1
    hotwords: str | None = None
    # Text that primes the decoder (e.g. the assistant's domain). Off by default: a prompt of
    # sample requests cut held-out WER from 0.25 to 0.22, but made Whisper drop speech that
    # repeated the prompt ("set a reminder ... to water the plants" came out "To water the plants").
    initial_prompt: str | None = None
    # Whisper pads every input to a 30 s window, and encoding that window is most of the time a
    # transcription takes. A turn that fits in window_s is encoded in a window this long
    # instead: 15 s made tiny.en 3.4x faster (300 -> 90 ms) with WER no worse (0.177 -> 0.166 at
    # 16 kHz, 0.303 -> 0.267 at 8 kHz on 120 held-out requests; 10 s was worse). 30: Whisper's own.
    window_s: float = 15.0
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    hallucinations: tuple[str, ...] = DEFAULT_HALLUCINATIONS
    partials: bool = True
    partial_interval_ms: int = 400
    speculative: bool = True


@dataclass(frozen=True)
class TTSConfig:
    """Text-to-speech settings (Piper by default, Coqui tts-server as an alternative)."""

    engine: str = "piper"  # "piper" or "coqui"
    voice: str | None = None  # Piper .onnx path; None: the bundled en_US-joe-medium
    speaker_id: int | None = None
    rate: float = 1.0  # speaking rate: 1.0 normal, 0.8 slower, 1.25 faster
    noise_scale: float | None = None
    coqui_url: str = "http://127.0.0.1:5002"
    coqui_speaker: str | None = None
    coqui_language: str | None = None
    timeout_s: float = 15.0
    cache_size: int = 64
    cached_prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class VADConfig:
    """Voice activity detection settings."""

    engine: str = "silero"
    threshold: float = 0.5
    inline: bool = True  # run on the loop (about 0.1 ms per 32 ms chunk); False: in the pool


@dataclass(frozen=True)
class TurnConfig:
    """Turn-taking: endpointing, barge-in, backchannels, push-to-talk."""

    start_ms: int = 200
    prefix_ms: int = 300
    silence_ms: int = 600
    min_speech_ms: int = 250
    max_turn_s: float = 30.0
    # Pauses inside a turn longer than this are shortened to it before transcription (0: off):
    # after a long mid-sentence pause ("remind me to ... call mum") Whisper tends to end the
    # sentence early and mishear or drop what follows.
    max_pause_ms: int = 300
    semantic: bool = True
    semantic_complete_ms: int = 280
    semantic_incomplete_ms: int = 1200
    semantic_confidence: float = 0.8
    # "intent:entity" pairs: an NLU parse of that intent without the entity reads as unfinished
    semantic_required: tuple[str, ...] = ("set_reminder:reminder_text",)
    # Intents that never end a turn early: a garbled half sentence ("I want to know that I mean")
    # lands in out_of_scope with high confidence, so it says nothing about the turn being done.
    semantic_skip_intents: tuple[str, ...] = ("out_of_scope",)
    barge_in: bool = True
    # Speech over the bot for this long pauses it (the backchannel check then resumes or stops
    # it), so a false trigger costs a short pause, not the answer: kept as low as start_ms.
    barge_in_ms: int = 200
    backchannel_check: bool = True
    backchannels: tuple[str, ...] = DEFAULT_BACKCHANNELS
    push_to_talk: bool = False


@dataclass(frozen=True)
class SessionConfig:
    """Conversation behaviour of a VoiceSession."""

    greet_intent: str = "/greet"
    reprompt_s: float = 8.0
    max_reprompts: int = 2
    reprompt_text: str = "Are you still there?"
    goodbye_text: str = "It seems you've gone. Goodbye!"
    not_understood_text: str = "Sorry, I didn't catch that."
    help_text: str = "You can ask me the time, the weather, or to set a reminder."
    max_not_understood: int = 2
    filler: bool = True
    filler_after_s: float = 1.0
    filler_text: str = "One moment."
    error_text: str = "Sorry, something went wrong on my side."
    rasa_timeout_s: float = 30.0


@dataclass(frozen=True)
class VoiceConfig:
    """All voice settings."""

    stt: STTConfig = field(default_factory=STTConfig)
    tts: TTSConfig = field(default_factory=TTSConfig)
    vad: VADConfig = field(default_factory=VADConfig)
    turns: TurnConfig = field(default_factory=TurnConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    pool_workers: int = 2

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, *, prefix: str = "voice") -> VoiceConfig:
        """Builds a validated config; raises ValueError naming the bad key."""
        return _build(cls, d or {}, prefix)

    def to_dict(self) -> dict[str, Any]:
        """Returns the config as plain data."""
        return dataclasses.asdict(self)


T = TypeVar("T")


def _build(cls: type[T], d: Any, path: str) -> T:
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        if key not in names:
            raise ValueError(f"{path}.{key}: unknown setting (known: {', '.join(sorted(names))})")
        kwargs[key] = _coerce(hints[key], value, f"{path}.{key}")
    obj = cls(**kwargs)
    _check_ranges(obj, path)
    return obj


def _coerce(tp: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"{path}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{path}: expected int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{path}: expected a string, got {value!r}")
        return value
    return value


_POSITIVE = {
    "cpu_threads",
    "beam_size",
    "window_s",
    "partial_interval_ms",
    "rate",
    "timeout_s",
    "start_ms",
    "silence_ms",
    "max_turn_s",
    "semantic_complete_ms",
    "semantic_incomplete_ms",
    "barge_in_ms",
    "reprompt_s",
    "filler_after_s",
    "rasa_timeout_s",
    "pool_workers",
}
_CHOICES = {
    ("STTConfig", "engine"): ("faster_whisper",),
    ("TTSConfig", "engine"): ("piper", "coqui"),
    ("VADConfig", "engine"): ("silero", "energy"),
}


def _check_ranges(obj: Any, path: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in _POSITIVE and value is not None and value <= 0:
            raise ValueError(f"{path}.{f.name}: must be > 0, got {value!r}")
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and f.name not in ("logprob_threshold",)
            and value < 0
        ):
            raise ValueError(f"{path}.{f.name}: must be >= 0, got {value!r}")
        choices = _CHOICES.get((type(obj).__name__, f.name))
        if choices and value not in choices:
            raise ValueError(f"{path}.{f.name}: must be one of {choices}, got {value!r}")
    if isinstance(obj, VADConfig | STTConfig):
        for name in ("threshold", "no_speech_threshold"):
            v = getattr(obj, name, None)
            if v is not None and not 0.0 < v < 1.0:
                raise ValueError(f"{path}.{name}: must be between 0 and 1, got {v!r}")
    if isinstance(obj, STTConfig) and obj.window_s > 30:
        raise ValueError(f"{path}.window_s: Whisper's window is at most 30 s, got {obj.window_s!r}")
