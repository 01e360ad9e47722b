"""The turn state machine, driven by scripted probability sequences."""

from __future__ import annotations

from dataclasses import replace

from channels.voice.config import TurnConfig
from channels.voice.turns import (
    CHUNK_MS,
    Kind,
    State,
    TurnDetector,
    looks_complete,
    squeeze_pauses,
)

CHUNK = b"\x01\x00" * 512


def run(det: TurnDetector, probs: list[float], bot: bool = False) -> list[tuple[int, Kind, str]]:
    out = []
    for i, p in enumerate(probs):
        for ev in det.feed(p, CHUNK, bot):
            out.append((i, ev.kind, ev.reason))
    return out


def ms(n: int) -> int:
    return n // CHUNK_MS


def kinds(events: list[tuple[int, Kind, str]]) -> list[Kind]:
    return [k for _, k, _ in events]


def test_start_after_start_ms_and_end_after_silence() -> None:
    cfg = TurnConfig(semantic=False)
    det = TurnDetector(cfg)
    ev = run(det, [0.0] * 20 + [0.9] * ms(1000) + [0.0] * ms(700))
    assert kinds(ev) == [Kind.SPEECH_START, Kind.SILENCE_START, Kind.TURN_END]
    start_i = ev[0][0]
    assert start_i == 20 + ms(cfg.start_ms) - 1 + (1 if cfg.start_ms % CHUNK_MS else 0)
    end_i = ev[2][0]
    silence_chunks = end_i - ev[1][0] + 1
    assert silence_chunks * CHUNK_MS >= cfg.silence_ms
    assert ev[2][2] == "silence"


def test_prefix_audio_is_kept() -> None:
    cfg = TurnConfig(semantic=False, prefix_ms=320)
    det = TurnDetector(cfg)
    events = []
    for p in [0.0] * 30 + [0.9] * 40 + [0.0] * 30:
        events += det.feed(p, CHUNK, False)
    end = next(e for e in events if e.kind == Kind.TURN_END)
    n_chunks = len(end.audio) // len(CHUNK)
    assert n_chunks >= 40 + 10  # speech + prefix (10 chunks) + trailing silence


def test_short_blips_and_coughs_are_dropped() -> None:
    det = TurnDetector(TurnConfig(semantic=False, min_speech_ms=250, start_ms=96))
    # a 64 ms blip never starts a turn
    assert run(det, [0.9, 0.9, 0.0, 0.0, 0.0, 0.0] + [0.0] * 30) == []
    # a 160 ms cough starts (start_ms=96) but is dropped as too short
    ev = run(det, [0.9] * 5 + [0.0] * 30)
    assert kinds(ev)[-1] == Kind.TURN_DROPPED and ev[-1][2] == "too_short"
    assert det.state == State.IDLE


def test_pause_mid_sentence_resumes_same_turn() -> None:
    det = TurnDetector(TurnConfig(semantic=False, silence_ms=600))
    ev = run(det, [0.9] * 30 + [0.0] * ms(400) + [0.9] * 30 + [0.0] * ms(700))
    assert kinds(ev) == [
        Kind.SPEECH_START,
        Kind.SILENCE_START,
        Kind.SPEECH_RESUME,
        Kind.SILENCE_START,
        Kind.TURN_END,
    ]


def test_max_turn_cuts_long_speech() -> None:
    det = TurnDetector(TurnConfig(max_turn_s=2.0))
    ev = run(det, [0.9] * ms(5000))
    ends = [e for e in ev if e[1] == Kind.TURN_END]
    assert len(ends) >= 2 and ends[0][2] == "max_turn"


def test_semantic_endpointing_shortens_and_lengthens_silence() -> None:
    cfg = TurnConfig(
        semantic=True, silence_ms=600, semantic_complete_ms=280, semantic_incomplete_ms=1200
    )
    det = TurnDetector(cfg)
    ev = run(det, [0.9] * 30 + [0.0] * 3)
    assert kinds(ev)[-1] == Kind.SILENCE_START
    det.set_hint(True)
    ev = run(det, [0.0] * ms(600))
    assert kinds(ev) == [Kind.TURN_END] and ev[0][2] == "semantic"
    assert (3 + ev[0][0] + 1) * CHUNK_MS <= 320  # ended after ~280 ms, not 600

    det = TurnDetector(cfg)
    run(det, [0.9] * 30 + [0.0] * 2)
    det.set_hint(False)  # "remind me to ..." : wait longer
    ev = run(det, [0.0] * ms(1000))
    assert ev == []
    ev = run(det, [0.0] * ms(300))
    assert kinds(ev) == [Kind.TURN_END]


def test_semantic_off_ignores_hints() -> None:
    det = TurnDetector(TurnConfig(semantic=False, silence_ms=600))
    run(det, [0.9] * 30 + [0.0])
    det.set_hint(True)
    assert run(det, [0.0] * ms(400)) == []


def test_barge_in_without_backchannel_check() -> None:
    cfg = TurnConfig(barge_in_ms=250, backchannel_check=False)
    det = TurnDetector(cfg)
    ev = run(det, [0.9] * ms(500), bot=True)
    assert kinds(ev) == [Kind.SPEECH_START, Kind.BARGE_IN]
    assert (ev[1][0] + 1) * CHUNK_MS >= 250 and (ev[1][0] + 1) * CHUNK_MS < 320


def test_no_barge_in_when_disabled_or_bot_silent() -> None:
    det = TurnDetector(TurnConfig(barge_in=False))
    assert Kind.BARGE_IN not in kinds(run(det, [0.9] * ms(600), bot=True))
    det = TurnDetector(TurnConfig())
    assert Kind.BARGE_IN_CHECK not in kinds(run(det, [0.9] * ms(600), bot=False))


def test_backchannel_is_ignored_and_bot_keeps_talking() -> None:
    det = TurnDetector(TurnConfig(barge_in_ms=250, backchannel_check=True))
    ev = run(det, [0.9] * ms(300), bot=True)
    assert kinds(ev) == [Kind.SPEECH_START, Kind.BARGE_IN_CHECK]
    ev2 = det.backchannel()
    assert [e.kind for e in ev2] == [Kind.TURN_DROPPED] and ev2[0].reason == "backchannel"
    # the rest of "uh-huh" and the silence after it raise nothing
    assert run(det, [0.9] * 5 + [0.0] * ms(800), bot=True) == []
    assert det.state == State.IDLE


def test_real_interruption_is_confirmed() -> None:
    det = TurnDetector(TurnConfig(barge_in_ms=250, backchannel_check=True))
    run(det, [0.9] * ms(300), bot=True)
    ev = det.confirm_barge_in()
    assert [e.kind for e in ev] == [Kind.BARGE_IN]
    ev = run(det, [0.9] * 20 + [0.0] * ms(700), bot=False)
    assert kinds(ev)[-1] == Kind.TURN_END


def test_long_speech_interrupts_even_before_the_check_returns() -> None:
    det = TurnDetector(TurnConfig(barge_in_ms=250, backchannel_check=True))
    ev = run(det, [0.9] * ms(1000), bot=True)
    assert kinds(ev) == [Kind.SPEECH_START, Kind.BARGE_IN_CHECK, Kind.BARGE_IN]
    assert ev[-1][2] == "long_speech"


def test_push_to_talk() -> None:
    det = TurnDetector(replace(TurnConfig(), push_to_talk=True))
    assert run(det, [0.9] * 50) == []  # VAD ignored in PTT mode
    ev = det.ptt_start()
    assert [e.kind for e in ev] == [Kind.SPEECH_START, Kind.BARGE_IN]
    run(det, [0.0] * 40)  # silence inside a PTT turn does not end it
    ev = det.ptt_end()
    assert [e.kind for e in ev] == [Kind.TURN_END] and ev[0].reason == "ptt"
    assert len(ev[0].audio) == 40 * len(CHUNK)
    det.ptt_start()
    assert [e.kind for e in det.ptt_end()] == [Kind.TURN_DROPPED]
    assert det.ptt_end() == []


def test_nan_probability_is_silence() -> None:
    det = TurnDetector(TurnConfig())
    assert run(det, [float("nan")] * 50) == []


def test_looks_complete() -> None:
    assert looks_complete("What time is it in Tokyo?") is True
    assert looks_complete("Remind me to") is False
    assert looks_complete("Set a reminder to call my") is False
    assert looks_complete("what's the weather in Berlin and") is False
    # how Whisper writes a trailing "to" / "and" before a pause
    assert looks_complete("Remind me too.", intent_confidence=0.99) is False
    assert looks_complete("Tell me the weather end.", intent_confidence=0.99) is False
    assert looks_complete("I want to...") is False
    assert looks_complete("") is None
    assert looks_complete("weather in paris", intent_confidence=0.95) is True
    assert looks_complete("weather in paris", intent_confidence=0.3) is None
    assert looks_complete("remind me", intent_confidence=0.99) is False


def test_a_prelude_is_not_a_finished_request() -> None:
    for text in ("No wait.", "No way.", "Hold on.", "Actually,", "Um, let me see.", "Wait."):
        assert looks_complete(text) is False, text
    for text in ("No.", "Okay.", "No, thanks.", "No wait, what time is it in Paris?"):
        assert looks_complete(text) is not False, text


def _chunks(n: int, first: int = 0) -> list[bytes]:
    return [bytes([(first + i) % 256]) * 1024 for i in range(n)]


def test_long_pauses_are_shortened_keeping_their_edges() -> None:
    parts = _chunks(30)
    voiced = [False] * 3 + [True] * 5 + [False] * 15 + [True] * 4 + [False] * 3
    out = squeeze_pauses(b"".join(parts), voiced, 300)  # keeps 9 chunks of a long pause
    kept = [out[i] for i in range(0, len(out), 1024)]
    pause = list(range(8, 23))
    assert kept == [*range(0, 8), *pause[:5], *pause[-4:], *range(23, 30)]
    # short pauses, leading silence, and audio that does not match its flags stay as they are
    assert squeeze_pauses(b"".join(parts[:10]), [False] * 9 + [True], 300) == b"".join(parts[:10])
    assert squeeze_pauses(b"abc", [True], 300) == b"abc"
    assert squeeze_pauses(b"".join(parts), voiced, 0) == b"".join(parts)


def test_a_mid_sentence_pause_reaches_stt_shortened() -> None:
    det = TurnDetector(TurnConfig(semantic=False, silence_ms=1000))
    events: list = []
    for p in [0.0] * 5 + [0.9] * 20 + [0.0] * ms(800) + [0.9] * 20 + [0.0] * ms(1100):
        events += det.feed(p, CHUNK, False)
    end = next(e for e in events if e.kind == Kind.TURN_END)
    chunks = len(end.audio) // len(CHUNK)
    assert chunks == 5 + 20 + 9 + 20 + 9  # both pauses kept 9 chunks (about 300 ms)
    assert det.voiced == [] and det.audio == bytearray()


def test_a_hint_that_arrives_late_ends_the_turn_at_once() -> None:
    det = TurnDetector(TurnConfig(semantic_complete_ms=250))
    run(det, [0.9] * 20)
    det.mark_pending()
    events = run(det, [0.0] * ms(400))
    assert kinds(events) == [Kind.SILENCE_START]  # pending: waits for the transcript
    assert det.poll() == []  # no hint yet
    det.set_hint(True)
    end = det.poll()
    assert [e.kind for e in end] == [Kind.TURN_END] and end[0].reason == "semantic"
    assert det.poll() == [] and det.state == State.IDLE
