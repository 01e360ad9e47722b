"""Pure audio functions: PCM16 <-> float, G.711 mu-law, soxr resampling, framing."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field

import numpy as np
import soxr

_BIAS = 0x84


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    """PCM16 LE bytes -> float32 in [-1, 1); a trailing odd byte is ignored."""
    n = len(pcm) // 2
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    return np.frombuffer(pcm, dtype="<i2", count=n).astype(np.float32) / 32768.0


def float_to_pcm16(x: np.ndarray) -> bytes:
    """Float samples -> PCM16 LE bytes; NaN becomes 0, +-inf and overs are clipped."""
    a = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return (np.clip(a, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes()


def pcm16_to_int16(pcm: bytes) -> np.ndarray:
    """PCM16 LE bytes -> int16 array (odd trailing byte ignored)."""
    return np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2)


def _ulaw_encode_table() -> np.ndarray:
    # The classic Sun/ITU G.711 reference (14-bit magnitude, bias 33), as audioop does it.
    x = np.arange(-32768, 32768, dtype=np.int32) >> 2
    neg = x < 0
    mag = np.minimum(np.where(neg, -x, x), 8159) + 0x21
    seg_end = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    seg = np.searchsorted(seg_end, mag)
    uval = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return (uval ^ np.where(neg, 0x7F, 0xFF)).astype(np.uint8)


def _ulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    mag = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -mag, mag).astype(np.int16)


_ULAW_ENC = _ulaw_encode_table()
_ULAW_DEC = _ulaw_decode_table()


def ulaw_encode(pcm: bytes) -> bytes:
    """PCM16 LE -> G.711 mu-law (one byte per sample)."""
    s = pcm16_to_int16(pcm).astype(np.int32) + 32768
    return _ULAW_ENC[s].tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """G.711 mu-law -> PCM16 LE."""
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def resample_float(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """High-quality resampling of float32 mono audio with soxr."""
    x = np.asarray(x, dtype=np.float32)
    if src_rate == dst_rate or x.size == 0:
        return x
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"bad sample rate {src_rate} -> {dst_rate}")
    return soxr.resample(x, src_rate, dst_rate, quality="HQ").astype(np.float32)


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resamples PCM16 LE mono bytes (one-shot, whole buffer)."""
    if src_rate == dst_rate:
        return pcm[: len(pcm) // 2 * 2]
    return float_to_pcm16(resample_float(pcm16_to_float(pcm), src_rate, dst_rate))


class StreamResampler:
    """Streaming soxr resampler for PCM16 chunks (keeps filter state across calls)."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"bad sample rate {src_rate} -> {dst_rate}")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._carry = b""
        self._rs = (
            None
            if src_rate == dst_rate
            else soxr.ResampleStream(src_rate, dst_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        """Resamples one chunk; odd bytes are carried to the next call."""
        pcm = self._carry + pcm
        cut = len(pcm) // 2 * 2
        pcm, self._carry = pcm[:cut], pcm[cut:]
        if self._rs is None:
            return pcm
        out = self._rs.resample_chunk(pcm16_to_float(pcm), last=last)
        return float_to_pcm16(out)


@dataclass
class Framer:
    """Cuts a byte stream into fixed-size frames, carrying partial frames over."""

    frame_bytes: int
    _buf: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if self.frame_bytes <= 0:
            raise ValueError("frame_bytes must be > 0")

    def push(self, data: bytes) -> list[bytes]:
        """Adds bytes; returns all complete frames."""
        self._buf.extend(data)
        n = len(self._buf) // self.frame_bytes
        frames = [
            bytes(self._buf[i * self.frame_bytes : (i + 1) * self.frame_bytes]) for i in range(n)
        ]
        del self._buf[: n * self.frame_bytes]
        return frames

    def flush(self, pad: bool = True) -> bytes | None:
        """Returns the partial frame (zero-padded if ``pad``), or None if empty."""
        if not self._buf:
            return None
        out = bytes(self._buf)
        self._buf.clear()
        if pad:
            out = out + b"\x00" * (self.frame_bytes - len(out))
        return out

    @property
    def pending(self) -> int:
        """Bytes waiting for a complete frame."""
        return len(self._buf)


def sanitize_float(x: np.ndarray) -> np.ndarray:
    """Replaces NaN/inf and clips to [-1, 1]."""
    a = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(a, -1.0, 1.0)


def rms_dbfs(pcm: bytes) -> float:
    """RMS level of PCM16 in dBFS (-inf-safe: returns -120 for silence)."""
    x = pcm16_to_float(pcm)
    if x.size == 0:
        return -120.0
    r = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return 20 * np.log10(r) if r > 1e-6 else -120.0


def read_wav(data: bytes | str) -> tuple[bytes, int]:
    """Reads a mono (or first channel of) PCM16 WAV from bytes or a path -> (pcm16, rate)."""
    src = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    with wave.open(src, "rb") as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        frames = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"only 16-bit WAV is supported, got {width * 8}-bit")
    if ch > 1:
        frames = np.frombuffer(frames, dtype="<i2").reshape(-1, ch)[:, 0].tobytes()
    return frames, rate


def write_wav(pcm: bytes, rate: int) -> bytes:
    """PCM16 mono -> WAV bytes."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm[: len(pcm) // 2 * 2])
    return buf.getvalue()


def duration_s(pcm: bytes, rate: int) -> float:
    """Duration in seconds of PCM16 mono bytes."""
    return (len(pcm) // 2) / rate
