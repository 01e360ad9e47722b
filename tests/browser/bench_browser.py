"""Browser latency benchmark (`make bench` runs it): real Chromium, fake mic, the real stack.

* end of the user's utterance (measured in the page) -> first bot audio played, p50 over the
  turns (target <= 1.0 s, endpointing included);
* barge-in: the user's speech onset (in the page) -> bot audio stopped (target <= 400 ms);
* the engine's own per-turn figures (``turn_metrics``) for the same turns.

Usage: ``.venv/bin/python -m tests.browser.bench_browser [--turns 10] [--barge 3] [--out F]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from tests.browser.conftest import running_voice_stack
from tests.browser.helpers import write_fake_mic_wav
from tests.browser.test_widget import BASE_ARGS, CHROMIUM, GREETING_GAP_MS

QUESTIONS = [
    "What time is it in Tokyo?",
    "What's the date today?",
    "What time is it in New York?",
    "Can you tell me the time in London?",
    "What day is it?",
    "What can you do?",
    "What time is it in Sydney?",
    "What's the time in Paris right now?",
    "Which day of the week is it?",
    "What time is it in Berlin?",
    "What time is it in Chicago?",
    "Tell me the time in Madrid.",
]


def p50(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def run_page(pw: Any, url: str, wav: Path, until: Any, timeout: float) -> dict[str, Any]:
    args = [
        *BASE_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
    try:
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("button", name="Start talking").click()
        deadline = time.monotonic() + timeout
        st = page.evaluate("window.browserVoice.status()")
        while not until(st) and time.monotonic() < deadline:
            time.sleep(0.5)
            st = page.evaluate("window.browserVoice.status()")
        return st
    finally:
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--barge", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_voice_stack(Path(tmp)) as stack:
        d = Path(tmp)
        qs = (QUESTIONS * 3)[: args.turns]
        turns_wav = write_fake_mic_wav(
            d / "turns.wav", [("", GREETING_GAP_MS)] + [(q, 9000) for q in qs] + [("", 30000)]
        )
        barge_wav = write_fake_mic_wav(
            d / "barge.wav",
            [
                ("", GREETING_GAP_MS),
                ("What can you do?", 3500),
                ("What time is it in London?", 30000),
            ],
        )
        with sync_playwright() as pw:
            url = stack.channel_url()
            voice_turns = lambda s: sum(  # noqa: E731
                1 for t in s["turns"] if t["kind"] == "voice" and t["latencyMs"] is not None
            )
            st = run_page(
                pw, url, turns_wav, lambda s: voice_turns(s) >= len(qs), 12.0 * len(qs) + 60
            )
            lat = [t["latencyMs"] for t in st["turns"] if t["kind"] == "voice" and t["latencyMs"]]
            metrics = [m for m in st["metrics"] if m.get("endpoint") not in ("greet", "text")]
            barge: list[float] = []
            for _ in range(args.barge):
                b = run_page(pw, url, barge_wav, lambda s: s["clears"] and not s["playing"], 60)
                barge += [c["at"] - c["onsetAt"] for c in b["clears"] if c.get("onsetAt")][:1]
    result = {
        "browser_turns": len(lat),
        "speech_end_to_first_audio_ms_p50": p50(lat),
        "speech_end_to_first_audio_ms_all": [round(x) for x in lat],
        "barge_in_to_audio_stopped_ms_p50": p50(barge),
        "barge_in_to_audio_stopped_ms_all": [round(x) for x in barge],
        "engine": {
            key: p50([m[key] for m in metrics if isinstance(m.get(key), int | float)])
            for key in ("endpoint_wait_ms", "stt_after_eot_ms", "rasa_ms", "response_ms")
        },
        "targets": {
            "speech_end_to_first_audio_ms_p50": 1000,
            "barge_in_to_audio_stopped_ms_p50": 400,
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
