"""Test speech made at test time: the bundled Piper voice and espeak-ng, with sox noise/levels.

Needs the Debian packages ``espeak-ng`` and ``sox`` for the espeak voices and noise.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np

from channels.voice.audio import (
    float_to_pcm16,
    pcm16_to_float,
    read_wav,
    resample_float,
    ulaw_decode,
    ulaw_encode,
)

RATE = 16000


def have_espeak() -> bool:
    """True when espeak-ng and sox are installed."""
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


@functools.lru_cache(maxsize=1)
def _piper():  # type: ignore[no-untyped-def]
    from channels.voice.config import TTSConfig
    from channels.voice.tts import PiperTTS

    return PiperTTS(TTSConfig())


@functools.lru_cache(maxsize=256)
def piper_speech(text: str, rate: int = RATE, speed: float = 1.0) -> bytes:
    """Text spoken by the bundled Piper voice, PCM16 mono at ``rate``.

    Piper samples noise for pitch and timing on every call (and onnxruntime cannot seed it), so
    test speech turns both noise scales off: the same text is the same audio on every run.
    """
    from piper import SynthesisConfig

    tts = _piper()
    cfg = SynthesisConfig(
        length_scale=tts.voice.config.length_scale / speed, noise_scale=0.0, noise_w_scale=0.0
    )
    x = np.concatenate([c.audio_float_array for c in tts.voice.synthesize(text, cfg)])
    return float_to_pcm16(resample_float(x, tts.sample_rate, rate) * 0.8)


@functools.lru_cache(maxsize=256)
def espeak_speech(text: str, voice: str = "en-us", wpm: int = 165, rate: int = RATE) -> bytes:
    """Text spoken by an espeak-ng voice (e.g. en-us, en-gb, en-gb-x-rp+f3), PCM16 at ``rate``."""
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    pcm, r = read_wav(out)
    return float_to_pcm16(resample_float(pcm16_to_float(pcm), r, rate))


@functools.lru_cache(maxsize=16)
def sox_noise(
    seconds: float, kind: str = "pinknoise", level: float = 0.05, rate: int = RATE
) -> bytes:
    """Steady noise made by sox (``whitenoise``, ``pinknoise``, ``brownnoise``)."""
    out = subprocess.run(
        [
            "sox",
            "-R",  # repeatable: the same noise every run, so tests are deterministic
            "-n",
            "-r",
            str(rate),
            "-b",
            "16",
            "-c",
            "1",
            "-t",
            "wav",
            "-",
            "synth",
            str(seconds),
            kind,
            "vol",
            str(level),
        ],
        check=True,
        capture_output=True,
    ).stdout
    return read_wav(out)[0]


def silence(ms: int, rate: int = RATE) -> bytes:
    """Digital silence."""
    return b"\x00\x00" * int(rate * ms / 1000)


def gain(pcm: bytes, db: float) -> bytes:
    """Level change in dB (clips like a real overdriven input)."""
    return float_to_pcm16(pcm16_to_float(pcm) * 10 ** (db / 20))


def add_noise(pcm: bytes, snr_db: float, seed: int = 0, rate: int = RATE) -> bytes:
    """Mixes pink noise (sox) at a signal-to-noise ratio."""
    x = pcm16_to_float(pcm)
    n = pcm16_to_float(sox_noise(round(len(x) / rate + 0.5, 1), rate=rate))[: len(x)]
    if len(n) < len(x):
        n = np.pad(n, (0, len(x) - len(n)))
    rng = np.random.default_rng(seed)
    n = np.roll(n, int(rng.integers(0, max(1, len(n)))))
    ps = float(np.mean(x**2)) + 1e-12
    pn = float(np.mean(n**2)) + 1e-12
    n = n * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))
    return float_to_pcm16(x + n)


def phone_line(pcm: bytes, rate: int = RATE) -> bytes:
    """16 kHz -> 8 kHz mu-law -> 16 kHz, like a call through Twilio."""
    x8 = float_to_pcm16(resample_float(pcm16_to_float(pcm), rate, 8000))
    back = ulaw_decode(ulaw_encode(x8))
    return float_to_pcm16(resample_float(pcm16_to_float(back), 8000, rate))


def wer(ref: str, hyp: str) -> float:
    """Word error rate of normalized texts (numbers as digits or words both count as written)."""
    from channels.voice.stt import normalize_text

    r = _words(normalize_text(ref))
    h = _words(normalize_text(hyp))
    d = np.zeros((len(r) + 1, len(h) + 1), dtype=int)
    d[:, 0] = np.arange(len(r) + 1)
    d[0, :] = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            d[i, j] = min(
                d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (r[i - 1] != h[j - 1])
            )
    return d[len(r), len(h)] / max(1, len(r))


_NUM = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "thirty": "30",
    "fifteen": "15",
    "twenty": "20",
    "forty": "40",
    "fifty": "50",
    "o'clock": "",
    "oclock": "",
}


def _words(text: str) -> list[str]:
    return [w2 for w in text.split() if (w2 := _NUM.get(w, w))]
