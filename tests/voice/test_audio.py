"""Pure codec and framing tests."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from channels.voice import audio as A


def test_ulaw_known_values() -> None:
    # G.711 mu-law: 0 -> 0xFF, max positive -> 0x80, max negative -> 0x00
    pcm = np.array([0, 32767, -32768, -1, 8, -8], dtype="<i2").tobytes()
    enc = A.ulaw_encode(pcm)
    assert enc[0] == 0xFF and enc[1] == 0x80 and enc[2] == 0x00
    assert list(A.ulaw_decode(bytes([0xFF, 0x80, 0x00, 0x7F]))) != []
    dec = np.frombuffer(A.ulaw_decode(bytes([0xFF, 0x80, 0x00, 0x7F])), dtype="<i2")
    assert dec.tolist() == [0, 32124, -32124, 0]


def test_ulaw_matches_audioop() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audioop = pytest.importorskip("audioop")
    x = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert A.ulaw_encode(x) == audioop.lin2ulaw(x, 2)
    u = bytes(range(256))
    assert A.ulaw_decode(u) == audioop.ulaw2lin(u, 2)


def test_ulaw_round_trip_error_is_small() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(8000) * 6000).clip(-32000, 32000).astype("<i2")
    y = np.frombuffer(A.ulaw_decode(A.ulaw_encode(x.tobytes())), dtype="<i2")
    err = np.abs(y.astype(int) - x)
    assert np.all(err <= np.maximum(16, 0.056 * np.abs(x)))


def test_pcm_float_round_trip_and_bad_values() -> None:
    x = np.array([0.0, 0.5, -0.5, 0.999], dtype=np.float32)
    assert np.allclose(A.pcm16_to_float(A.float_to_pcm16(x)), x, atol=1e-4)
    bad = np.array([np.nan, np.inf, -np.inf, 3.0, -3.0], dtype=np.float32)
    out = np.frombuffer(A.float_to_pcm16(bad), dtype="<i2").tolist()
    assert out == [0, 32767, -32768, 32767, -32768]
    assert A.pcm16_to_float(b"\x01").size == 0
    assert A.pcm16_to_float(b"\x00\x40\x01").tolist() == [0.5]


@pytest.mark.parametrize(
    ("src", "dst"),
    [(8000, 16000), (16000, 8000), (22050, 8000), (22050, 16000), (22050, 24000), (22050, 48000)],
)
def test_resample_length_and_tone(src: int, dst: int) -> None:
    t = np.arange(src) / src
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = A.resample_float(x, src, dst)
    assert abs(len(y) - dst) <= 2
    spec = np.abs(np.fft.rfft(y[dst // 10 : dst // 10 + dst // 2]))
    peak_hz = np.argmax(spec) * dst / (dst // 2)
    assert abs(peak_hz - 440) < 5


def test_resample_pcm_round_trip_8k_16k() -> None:
    t = np.arange(8000) / 8000
    x = A.float_to_pcm16(0.3 * np.sin(2 * np.pi * 300 * t))
    back = A.resample_pcm16(A.resample_pcm16(x, 8000, 16000), 16000, 8000)
    a, b = A.pcm16_to_float(x)[200:-200], A.pcm16_to_float(back)[200:-200]
    assert np.max(np.abs(a - b)) < 0.01


def test_stream_resampler_odd_bytes_matches_total() -> None:
    rs = A.StreamResampler(8000, 16000)
    x = A.float_to_pcm16(0.2 * np.sin(np.arange(8000) / 5))
    out = b""
    for i in range(0, len(x), 333):  # odd chunk sizes
        out += rs.process(x[i : i + 333])
    out += rs.process(b"", last=True)
    assert abs(len(out) // 2 - 16000) <= 4


def test_framer_carries_partial_frames() -> None:
    f = A.Framer(1024)
    assert f.push(b"\x01" * 1000) == []
    frames = f.push(b"\x02" * 1100)
    assert len(frames) == 2 and all(len(x) == 1024 for x in frames)
    assert f.pending == 52
    assert f.push(b"") == []
    rest = f.flush()
    assert rest is not None and len(rest) == 1024 and f.pending == 0
    assert f.flush() is None
    f2 = A.Framer(4)
    assert f2.push(b"\x01\x02\x03") == [] and f2.push(b"\x04\x05") == [b"\x01\x02\x03\x04"]


def test_wav_round_trip_and_levels() -> None:
    pcm = A.float_to_pcm16(np.full(1600, 0.1, dtype=np.float32))
    data = A.write_wav(pcm, 16000)
    back, rate = A.read_wav(data)
    assert back == pcm and rate == 16000
    assert A.rms_dbfs(b"\x00\x00" * 100) == -120.0
    assert -21 < A.rms_dbfs(pcm) < -19
    assert A.duration_s(pcm, 16000) == 0.1
