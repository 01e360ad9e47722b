"""Phone benchmark: simulated concurrent callers against a real Rasa + action server.

    .venv/bin/python -m tests.twilio.bench_phone [--callers 8] [--seconds 120] [--every 6]

Each caller phones in through the Twilio simulator, waits for the greeting, then asks a tool
question about every ``--every`` seconds. Printed figures:

- processing latency (end of turn -> first audio frame out), from the server's per-turn
  ``voice_turn`` log records (``processing_ms``), p50 and p95, for N callers and for one caller;
- response as the caller hears it (end of their words -> first bot audio played), p50/p95;
- errors, frames that were not 20 ms, marks never echoed, protocol complaints;
- the Rasa server's memory (RSS) at the start and end of the load;
- word error rate of the bundled STT on the benchmark sentences through 8 kHz mu-law.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from tests.servers import free_port, stack_env, start_action_server, start_rasa_server
from tests.speech import phone_line, piper_speech, wer
from tests.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, one_machine_env
from tests.twilio.simulator import TwilioSimulator

QUESTIONS = (
    "What time is it in Tokyo?",
    "What's the date today?",
    "What time is it in London?",
    "What time is it in New York?",
    "What's the date tomorrow?",
    "What time is it in Sydney?",
)


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _caller(
    url: str, number: str, seconds: float, every: float, seed: int
) -> dict[str, list]:
    rng = random.Random(seed)
    out: dict[str, list] = {"heard_ms": [], "errors": [], "bad": []}
    async with TwilioSimulator(
        local_base_url=url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, number=OUR_NUMBER
    ) as sim:
        call, stream = await sim.inbound_call(number)
        if stream is None:
            out["errors"].append(f"no stream ({call.http_status})")
            return out
        if not await stream.wait_bot_turn(0.0, timeout=60, quiet_s=1.0):
            out["errors"].append("no greeting")
        end = time.monotonic() + seconds
        await asyncio.sleep(rng.uniform(0, every))
        while time.monotonic() < end:
            pcm = piper_speech(rng.choice(QUESTIONS))
            t_end = stream.say(pcm, 16000) + len(pcm) / 32000
            ok = await stream.wait_for(lambda t=t_end: bool(stream.bot_starts(t)), 20)
            if ok:
                out["heard_ms"].append((stream.bot_starts(t_end)[0] - t_end) * 1000)
            else:
                out["errors"].append("no answer within 20 s")
            await stream.wait_bot_turn(t_end, timeout=30, quiet_s=0.5)
            await asyncio.sleep(max(0.0, every - (stream.now() - t_end)) * rng.uniform(0.7, 1.0))
        await sim.caller_hangs_up(call.call_sid)
        frames = len(stream.heard) % 160
        if frames:
            out["bad"].append("earpiece not in 20 ms slots")
        out["bad"].extend(stream.bad_frames)
        await asyncio.sleep(0.5)
        if stream.marks_echoed and stream._marks:
            out["bad"].append(f"{len(stream._marks)} marks never echoed")
    return out


def _turns(log: Path, since: float) -> list[float]:
    vals = []
    for line in log.read_text(errors="replace").splitlines():
        if '"voice_turn"' not in line:
            continue
        rec = json.loads(line[line.index("{") :])
        stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        if stamp >= since and rec.get("endpoint") != "greet" and rec.get("processing_ms"):
            vals.append(float(rec["processing_ms"]))
    return vals


async def _load(url: str, callers: int, seconds: float, every: float) -> dict[str, list]:
    results = await asyncio.gather(
        *(_caller(url, f"+1555777{i:04d}", seconds, every, i) for i in range(callers))
    )
    merged: dict[str, list] = {"heard_ms": [], "errors": [], "bad": []}
    for r in results:
        for k in merged:
            merged[k].extend(r[k])
    return merged


def _report(title: str, server_ms: list[float], res: dict[str, list]) -> None:
    print(f"\n== {title}")
    print(
        f"processing latency (end of turn -> first audio out): n={len(server_ms)} "
        f"p50={_pct(server_ms, 50):.0f} ms p95={_pct(server_ms, 95):.0f} ms"
    )
    heard = res["heard_ms"]
    print(
        f"caller-heard response (end of words -> first bot audio): n={len(heard)} "
        f"p50={_pct(heard, 50):.0f} ms p95={_pct(heard, 95):.0f} ms"
    )
    print(f"errors: {len(res['errors'])} {res['errors'][:5]}")
    print(f"frame/protocol problems: {len(res['bad'])} {res['bad'][:5]}")


def _wer_8k() -> float:
    from channels.voice.audio import pcm16_to_float
    from channels.voice.config import STTConfig
    from channels.voice.stt import FasterWhisperSTT

    stt = FasterWhisperSTT(STTConfig())
    scores = []
    for q in QUESTIONS:
        heard = stt.transcribe(pcm16_to_float(phone_line(piper_speech(q)))).text
        scores.append(wer(q, heard))
    return statistics.mean(scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--callers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--every", type=float, default=6)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-phone-"))
    rasa_port, action_port = free_port(), free_port()
    creds = work / "credentials.yml"
    creds.write_text(
        "rest:\nchannels.twilio_media.TwilioMediaStreamInput:\n"
        f"  max_concurrent_calls: {max(8, args.callers)}\n"
    )
    env = stack_env(
        work,
        rasa_port,
        action_port,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_NUMBER=OUR_NUMBER,
        **one_machine_env(),
        VOICE_STREAM_SECRET="bench",
    )
    actions = start_action_server(env, action_port, work / "actions.log")
    rasa = start_rasa_server(env, rasa_port, work / "rasa.log", credentials=creds)
    try:
        for q in QUESTIONS:
            piper_speech(q)
        time.sleep(5)  # engines warm up after start
        t0 = time.time()
        single = asyncio.run(_load(rasa.url, 1, min(90.0, args.seconds), args.every))
        _report("1 caller", _turns(work / "rasa.log", t0), single)
        rss0 = _rss_mb(rasa.proc.pid)
        t1 = time.time()
        many = asyncio.run(_load(rasa.url, args.callers, args.seconds, args.every))
        _report(
            f"{args.callers} callers, {args.seconds:.0f} s", _turns(work / "rasa.log", t1), many
        )
        print(f"Rasa server RSS: {rss0:.0f} MB before load, {_rss_mb(rasa.proc.pid):.0f} MB after")
    finally:
        rasa.stop()
        actions.stop()
    print(f"WER at 8 kHz mu-law (bundled STT, benchmark sentences): {_wer_8k():.3f}")
    print(f"logs: {work}")


if __name__ == "__main__":
    main()
