"""Voice activity detection: a small protocol and Silero VAD (ONNX, no torch)."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16000
CHUNK_SAMPLES = 512  # 32 ms at 16 kHz
CHUNK_BYTES = CHUNK_SAMPLES * 2
CONTEXT_SAMPLES = 64


class VADStream(Protocol):
    """Per-session detector state: one speech probability per 512-sample chunk."""

    def prob(self, chunk: np.ndarray) -> float:
        """Returns the speech probability of one 512-sample float32 chunk at 16 kHz."""
        ...

    def reset(self) -> None:
        """Forgets the recurrent state."""
        ...


class VAD(Protocol):
    """A voice activity detector shared by all sessions."""

    def stream(self) -> VADStream:
        """Returns a fresh per-session stream."""
        ...


def silero_model_path() -> str:
    """Path of the Silero VAD ONNX file that faster-whisper ships."""
    from faster_whisper.utils import get_assets_path

    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


class SileroVAD:
    """Silero VAD v5/v6 via onnxruntime: one shared InferenceSession, state per stream."""

    def __init__(self, path: str | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(
            path or silero_model_path(), providers=["CPUExecutionProvider"], sess_options=opts
        )

    def stream(self) -> SileroStream:
        """Returns a fresh per-session stream."""
        return SileroStream(self)

    def run(
        self, x: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Runs one 576-sample window (64 context + 512 new) through the model."""
        out, h2, c2 = self.session.run(None, {"input": x, "h": h, "c": c})
        return float(np.asarray(out).reshape(-1)[0]), h2, c2


class SileroStream:
    """Recurrent state and the 64-sample context of one session."""

    def __init__(self, model: SileroVAD) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Forgets the recurrent state."""
        self.h = np.zeros((1, 1, 128), dtype=np.float32)
        self.c = np.zeros((1, 1, 128), dtype=np.float32)
        self.context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def prob(self, chunk: np.ndarray) -> float:
        """Speech probability of one 512-sample float32 chunk."""
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.shape != (CHUNK_SAMPLES,):
            raise ValueError(f"Silero needs {CHUNK_SAMPLES} samples, got {chunk.shape}")
        x = np.concatenate([self.context, chunk])[None, :]
        p, self.h, self.c = self.model.run(x, self.h, self.c)
        self.context = chunk[-CONTEXT_SAMPLES:].copy()
        return p


class EnergyVAD:
    """A crude level-based detector (fallback/testing; not for production)."""

    def __init__(self, threshold_dbfs: float = -40.0) -> None:
        self.threshold_dbfs = threshold_dbfs

    def stream(self) -> EnergyStream:
        """Returns a fresh per-session stream."""
        return EnergyStream(self.threshold_dbfs)


class EnergyStream:
    """Level-based speech 'probability'."""

    def __init__(self, threshold_dbfs: float) -> None:
        self.threshold_dbfs = threshold_dbfs

    def reset(self) -> None:
        """Stateless."""

    def prob(self, chunk: np.ndarray) -> float:
        """1.0 above the level threshold, else 0.0."""
        r = float(np.sqrt(np.mean(np.asarray(chunk, dtype=np.float64) ** 2)))
        db = 20 * np.log10(r) if r > 1e-6 else -120.0
        return 1.0 if db > self.threshold_dbfs else 0.0


def make_vad(engine: str) -> VAD:
    """Builds the detector named by config."""
    if engine == "silero":
        return SileroVAD()
    if engine == "energy":
        return EnergyVAD()
    raise ValueError(f"voice.vad.engine: unknown VAD engine {engine!r}")
