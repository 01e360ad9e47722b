"""Per-turn timing records, one structured log line per turn, Prometheus histograms."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as _CT
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

logger = logging.getLogger("channels.voice.turns")

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE_LATEST = _CT
_B = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

PROCESSING = Histogram(
    "voice_turn_processing_seconds",
    "End-of-turn decision to first bot audio out",
    ["channel"],
    buckets=_B,
    registry=REGISTRY,
)
RESPONSE = Histogram(
    "voice_response_seconds",
    "User stopped speaking (last speech) to first bot audio out",
    ["channel"],
    buckets=_B,
    registry=REGISTRY,
)
STT_SECONDS = Histogram(
    "voice_stt_seconds", "Final transcription time", ["channel"], buckets=_B, registry=REGISTRY
)
RASA_SECONDS = Histogram(
    "voice_rasa_seconds", "Rasa turn time", ["channel"], buckets=_B, registry=REGISTRY
)
TTS_FIRST = Histogram(
    "voice_tts_first_audio_seconds",
    "Synthesis time of the first sentence",
    ["channel"],
    buckets=_B,
    registry=REGISTRY,
)
BARGE_IN = Histogram(
    "voice_barge_in_seconds",
    "User speech start to playback stop",
    ["channel"],
    buckets=_B,
    registry=REGISTRY,
)
TURNS = Counter(
    "voice_turns_total", "User turns by outcome", ["channel", "outcome"], registry=REGISTRY
)
ERRORS = Counter("voice_errors_total", "Errors by stage", ["channel", "stage"], registry=REGISTRY)
SESSIONS = Gauge("voice_sessions_active", "Live voice sessions", ["channel"], registry=REGISTRY)


def metrics_text() -> bytes:
    """Prometheus exposition of the voice metrics (serve with CONTENT_TYPE_LATEST)."""
    return generate_latest(REGISTRY)


def now() -> float:
    """Monotonic seconds."""
    return time.monotonic()


@dataclass
class TurnRecord:
    """Timings of one user turn (monotonic seconds; None when it did not happen)."""

    session: str
    channel: str
    turn: int
    speech_start: float | None = None
    speech_end: float | None = None  # last speech chunk (user stopped speaking)
    end_of_turn: float | None = None  # endpointing decision
    endpoint: str = ""  # silence | semantic | max_turn | ptt | text
    stt_done: float | None = None
    stt_speculative: bool = False
    rasa_done: float | None = None
    first_audio: float | None = None
    last_audio: float | None = None
    interrupted: bool = False
    barge_in_s: float | None = None
    transcript: str = ""
    language: str | None = None
    bot_text: list[str] = field(default_factory=list)
    heard_text: list[str] = field(default_factory=list)
    outcome: str = "ok"
    error: str | None = None

    def durations(self) -> dict[str, float | None]:
        """Derived durations in milliseconds."""

        def ms(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round((b - a) * 1000, 1)

        return {
            "speech_ms": ms(self.speech_start, self.speech_end),
            "endpoint_wait_ms": ms(self.speech_end, self.end_of_turn),
            "stt_after_eot_ms": ms(self.end_of_turn, self.stt_done),
            "rasa_ms": ms(self.stt_done, self.rasa_done),
            "processing_ms": ms(self.end_of_turn, self.first_audio),
            "response_ms": ms(self.speech_end, self.first_audio),
            "playback_ms": ms(self.first_audio, self.last_audio),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data for events and logs."""
        d = asdict(self)
        d.update(self.durations())
        return d

    def finish(self) -> dict[str, Any]:
        """Logs one structured line and feeds the histograms; returns the record as a dict."""
        d = self.durations()
        ch = self.channel
        if d["processing_ms"] is not None:
            PROCESSING.labels(ch).observe(d["processing_ms"] / 1000)
        if d["response_ms"] is not None:
            RESPONSE.labels(ch).observe(d["response_ms"] / 1000)
        if d["stt_after_eot_ms"] is not None and self.speech_end is not None:
            STT_SECONDS.labels(ch).observe(max(0.0, d["stt_after_eot_ms"] / 1000))
        if d["rasa_ms"] is not None:
            RASA_SECONDS.labels(ch).observe(d["rasa_ms"] / 1000)
        if self.barge_in_s is not None:
            BARGE_IN.labels(ch).observe(self.barge_in_s)
        TURNS.labels(ch, self.outcome).inc()
        out = {
            "event": "voice_turn",
            "session": self.session,
            "channel": ch,
            "turn": self.turn,
            "endpoint": self.endpoint,
            "speculative": self.stt_speculative,
            "transcript": self.transcript,
            "language": self.language,
            "interrupted": self.interrupted,
            "outcome": self.outcome,
            "error": self.error,
            **d,
        }
        logger.info(json.dumps(out, ensure_ascii=False))
        return out


@dataclass
class SessionSummary:
    """Per-session aggregate of turn records."""

    turns: int = 0
    interrupted: int = 0
    errors: int = 0
    processing_ms: list[float] = field(default_factory=list)
    response_ms: list[float] = field(default_factory=list)

    def add(self, rec: dict[str, Any]) -> None:
        """Adds one finished turn."""
        self.turns += 1
        self.interrupted += int(bool(rec.get("interrupted")))
        self.errors += int(rec.get("outcome") == "error")
        if rec.get("processing_ms") is not None:
            self.processing_ms.append(rec["processing_ms"])
        if rec.get("response_ms") is not None:
            self.response_ms.append(rec["response_ms"])

    def as_dict(self) -> dict[str, Any]:
        """Summary with medians."""

        def med(v: list[float]) -> float | None:
            return sorted(v)[len(v) // 2] if v else None

        return {
            "turns": self.turns,
            "interrupted": self.interrupted,
            "errors": self.errors,
            "processing_ms_p50": med(self.processing_ms),
            "response_ms_p50": med(self.response_ms),
        }
