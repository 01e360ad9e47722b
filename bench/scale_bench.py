"""Scale benchmark: REST throughput with 1 vs 2 Rasa workers, phone calls per worker, CPU cost.

Run: ``python -m bench scale`` (or ``python -m bench.scale_bench [--quick]``; env
``BENCH_QUICK=1`` does the same under ``make bench``). Starts a throw-away PostgreSQL and Redis on
loopback and real Rasa / action servers, exactly as the scale tests do. Prints, never asserts:

1. REST text turns per second and p50/p95 latency with 1 worker, then 2 workers, same load
   (closed loop: ``CLIENTS`` conversations, each sending its next turn when the last answered),
   and the Rasa worker's CPU seconds per turn.
2. Voice: CPU seconds per minute of call for VAD, STT and TTS (bundled models, measured in this
   process on a typical call minute: 6 caller turns of ~2 s, 6 spoken replies, 60 s of VAD).
3. Voice: concurrent phone calls one worker sustains with p95 (caller stops speaking -> first
   bot audio, as the simulated caller hears it) <= 1.2 s, ramping simulated Twilio callers (the
   phone issue's simulator), each asking a question every 6 s; server processing p95 is shown too.
4. A capacity table for 10 / 100 / 1,000 concurrent calls derived from those figures.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.scale.conftest import snapshot_model
from tests.scale.engines import Postgres, Redis
from tests.servers import Server, free_port, stack_env, start_action_server, start_rasa_server

P95_TARGET_MS = 1200.0
CPU_HEADROOM = 0.6  # plan cores at 60 % busy: bursts, GC, the OS
TURNS_PER_CALL_MINUTE = 6
TEXTS = ("what time is it", "what's the date today", "hello", "what time is it in tokyo")
CALLER_TEXTS = (
    "What time is it in Tokyo?",
    "What's the date today?",
    "Remind me to call my mother at five.",
    "What time is it in London?",
    "What's the weather like in Berlin?",
    "Thanks, that's all.",
)
BOT_REPLIES = (
    "It's ten past three in the afternoon in Tokyo.",
    "Today is Monday, the twenty third of November.",
    "Okay, I'll remind you to call your mother at five o'clock this afternoon.",
    "In London it's seven minutes past six in the morning.",
    "In Berlin it's eight degrees and cloudy, with light rain later.",
    "You're welcome. Goodbye!",
)


def quick() -> bool:
    """Short runs: ``--quick`` or env BENCH_QUICK=1."""
    return "--quick" in sys.argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_s() -> float:
    """User + system CPU seconds of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- 1. REST throughput --------------------------------------------------------------------------


def _post(url: str, sender: str, text: str) -> float:
    body = json.dumps({"sender": sender, "message": text}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as resp:
        resp.read()
    return time.perf_counter() - t0


def rest_load(urls: list[str], clients: int, seconds: float, tag: str) -> dict[str, Any]:
    """Closed-loop load: each client is one conversation, pinned to no worker (round-robin)."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(c: int) -> None:
        n = 0
        while time.monotonic() < stop_at:
            url = f"{urls[(c + n) % len(urls)]}/webhooks/rest/webhook"
            try:
                dt = _post(url, f"bench-{tag}-{c}", TEXTS[n % len(TEXTS)])
                with lock:
                    lat.append(dt)
            except Exception:
                with lock:
                    errors[0] += 1
            n += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - t0
    return {
        "workers": len(urls),
        "clients": clients,
        "turns": len(lat),
        "errors": errors[0],
        "turns_per_s": round(len(lat) / elapsed, 2),
        "p50_ms": round(1000 * (pct(lat, 50) or 0)),
        "p95_ms": round(1000 * (pct(lat, 95) or 0)),
    }


class Bench:
    """PostgreSQL + Redis + up to two worker pairs, all on loopback."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        self.pg = Postgres()
        self.redis = Redis()
        self.servers: list[Server] = []
        self.creds = self.work / "credentials.yml"
        self.creds.write_text(
            "channels.rest_guarded.GuardedRestInput:\n"
            "channels.twilio_media.TwilioMediaStreamInput:\n"
            "  max_concurrent_calls: 32\n"
        )
        self.model = snapshot_model(self.work)

    def env(self, rasa_port: int, action_port: int) -> dict[str, str]:
        from tests.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER

        return stack_env(
            self.work,
            rasa_port,
            action_port,
            DB_DIALECT="postgresql",
            DATABASE_URL=self.pg.url,
            REMINDER_DB_URL=self.pg.url,
            LOCK_STORE_TYPE="redis",
            REDIS_HOST="127.0.0.1",
            REDIS_PORT=str(self.redis.port),
            REDIS_DB="0",
            REDIS_PASSWORD="",
            SQL_POOL_SIZE="10",
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_NUMBER=OUR_NUMBER,
            VOICE_STREAM_SECRET="bench-shared-secret",
        )

    def start_pair(self, i: int) -> Server:
        """Starts action server i and Rasa worker i; returns the Rasa server."""
        rasa_port, action_port = free_port(), free_port()
        env = self.env(rasa_port, action_port)
        self.servers.append(start_action_server(env, action_port, self.work / f"actions{i}.log"))
        rasa = start_rasa_server(
            env, rasa_port, self.work / f"rasa{i}.log", model=self.model, credentials=self.creds
        )
        self.servers.append(rasa)
        return rasa

    def __enter__(self) -> Bench:
        self.pg.start()
        self.redis.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in reversed(self.servers):
            s.stop()
        self.redis.close()
        self.pg.close()
        self.model.unlink(missing_ok=True)  # keep the logs, not an 80 MB model copy
        print(f"logs: {self.work}", flush=True)


def rest_figures(bench: Bench, first: Server) -> dict[str, Any]:
    """Turns per second and latency with one worker, then two."""
    seconds = 20.0 if quick() else 60.0
    clients = 8
    _post(f"{first.url}/webhooks/rest/webhook", "bench-warm", "hello")  # first-turn costs
    cpu0 = proc_cpu_s(first.proc.pid)
    one = rest_load([first.url], clients, seconds, "one")
    one["rasa_cpu_s_per_turn"] = round(
        (proc_cpu_s(first.proc.pid) - cpu0) / max(1, one["turns"]), 4
    )
    second = bench.start_pair(1)
    _post(f"{second.url}/webhooks/rest/webhook", "bench-warm2", "hello")
    two = rest_load([first.url, second.url], clients, seconds, "two")
    return {"one_worker": one, "two_workers": two, "seconds_each": seconds}


# -- 2. CPU per minute of call -------------------------------------------------------------------


def engine_cpu_per_call_minute() -> dict[str, float]:
    """CPU seconds that VAD, STT and TTS spend on one typical minute of a call."""
    import numpy as np

    from channels.voice.audio import pcm16_to_float
    from channels.voice.config import VoiceConfig
    from channels.voice.engines import get_engines
    from tests.speech import phone_line, piper_speech, silence

    eng = get_engines(VoiceConfig())
    eng.stt.warm_up()
    eng.tts.warm_up()
    utterances = [pcm16_to_float(phone_line(piper_speech(t))) for t in CALLER_TEXTS]
    speech_s = sum(len(u) for u in utterances) / 16000
    # 60 s of inbound audio: the caller's turns, the rest silence (VAD runs on all of it).
    pcm = b"".join(phone_line(piper_speech(t)) for t in CALLER_TEXTS)
    pcm += silence(max(0, int(60_000 - len(pcm) / 32)))
    audio = pcm16_to_float(pcm)[: 60 * 16000]
    stream = eng.vad.stream()
    t0 = self_cpu_s()
    for off in range(0, len(audio) - 512 + 1, 512):
        stream.prob(audio[off : off + 512])
    vad = self_cpu_s() - t0
    t0 = self_cpu_s()
    for u in utterances:
        eng.stt.transcribe(np.asarray(u, dtype=np.float32))
    stt = self_cpu_s() - t0
    t0 = self_cpu_s()
    out_s = 0.0
    for reply in BOT_REPLIES:
        wav = eng.tts.engine.synthesize(reply)  # the engine itself: no cache hits
        out_s += len(wav) / eng.tts.sample_rate
    tts = self_cpu_s() - t0
    return {
        "vad_cpu_s": round(vad, 2),
        "stt_cpu_s": round(stt, 2),
        "tts_cpu_s": round(tts, 2),
        "caller_speech_s": round(speech_s, 1),
        "bot_speech_s": round(out_s, 1),
    }


# -- 3. Phone calls one worker sustains ----------------------------------------------------------


def phone_capacity(rasa: Server) -> dict[str, Any]:
    """Ramps simulated callers on one worker while p95 (caller stops -> first audio) <= 1.2 s."""
    from tests.twilio import bench_phone

    steps = (1, 2, 4, 6) if quick() else (1, 2, 4, 6, 8, 12, 16)
    seconds = 30.0 if quick() else 60.0
    log = Path(rasa.log_path)
    asyncio.run(bench_phone._load(rasa.url, 1, 12.0, 4.0))  # warm-up call, not counted
    ramp: list[dict[str, Any]] = []
    sustained = 0
    for callers in steps:
        t0 = time.time()
        res = asyncio.run(bench_phone._load(rasa.url, callers, seconds, 6.0))
        server_ms = bench_phone._turns(log, t0)
        heard = res["heard_ms"]
        row = {
            "callers": callers,
            "turns": len(heard),
            "p95_heard_ms": round(pct(heard, 95) or 0),
            "p95_processing_ms": round(pct(server_ms, 95) or 0),
            "errors": len(res["errors"]),
        }
        ramp.append(row)
        ok = bool(heard) and row["p95_heard_ms"] <= P95_TARGET_MS and not res["errors"]
        print(f"  {callers:>3} callers: {row}", flush=True)
        if not ok:
            break
        sustained = callers
    return {
        "ramp": ramp,
        "sustained_calls_per_worker": sustained,
        "ramp_ended_below_limit": sustained == steps[-1],
        "step_seconds": seconds,
        "measure": "p95 caller stops speaking -> first bot audio (simulated Twilio call)",
    }


# -- 4. Capacity table ---------------------------------------------------------------------------


def capacity(
    rasa_cpu_per_turn: float, engines: dict[str, float], calls_per_worker: int
) -> dict[str, Any]:
    """Cores and workers for 10 / 100 / 1,000 calls, CPU-only and with STT on GPUs."""
    speech = engines["vad_cpu_s"] + engines["stt_cpu_s"] + engines["tts_cpu_s"]
    per_min = speech + TURNS_PER_CALL_MINUTE * rasa_cpu_per_turn
    no_stt = per_min - engines["stt_cpu_s"]
    rows = []
    for calls in (10, 100, 1000):
        cores = math.ceil(calls * per_min / 60 / CPU_HEADROOM)
        rows.append(
            {
                "calls": calls,
                "cpu_only_cores": cores,
                "workers_2_cores": max(
                    math.ceil(cores / 2), math.ceil(calls / max(1, calls_per_worker))
                ),
                "with_gpu_stt_cores": math.ceil(calls * no_stt / 60 / CPU_HEADROOM),
            }
        )
    return {
        "cpu_s_per_call_minute": round(per_min, 2),
        "cpu_s_per_call_minute_without_stt": round(no_stt, 2),
        "headroom": CPU_HEADROOM,
        "rows": rows,
    }


def main() -> dict[str, Any]:
    """Runs the scale benchmark and prints its figures."""
    results: dict[str, Any] = {"quick": quick()}
    with Bench() as bench:
        first = bench.start_pair(0)
        print("REST text turns (closed loop, 8 conversations):", flush=True)
        results["rest"] = rest_figures(bench, first)
        for key in ("one_worker", "two_workers"):
            print(f"  {key}: {results['rest'][key]}", flush=True)
        # The second pair stops here: the phone ramp measures one worker alone.
        for s in bench.servers[2:]:
            s.stop()
        print("Phone calls on one worker (simulated Twilio callers, a question every 6 s):")
        results["phone"] = phone_capacity(first)
    print("CPU seconds per minute of call (bundled models, this machine):", flush=True)
    results["engines"] = engine_cpu_per_call_minute()
    print(f"  {results['engines']}")
    table = capacity(
        results["rest"]["one_worker"]["rasa_cpu_s_per_turn"],
        results["engines"],
        results["phone"]["sustained_calls_per_worker"],
    )
    results["capacity"] = table
    print(
        f"Capacity (CPU s per call-minute {table['cpu_s_per_call_minute']}, "
        f"{int(CPU_HEADROOM * 100)} % busy cores):"
    )
    print(f"  {'calls':>6} {'CPU cores':>10} {'2-core workers':>15} {'cores, STT on GPU':>18}")
    for row in table["rows"]:
        print(
            f"  {row['calls']:>6} {row['cpu_only_cores']:>10} {row['workers_2_cores']:>15} "
            f"{row['with_gpu_stt_cores']:>18}"
        )
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
