"""Rasa figures: training time, server start time, and /model/parse latency over HTTP."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.servers import BIN, ROOT, free_port, latest_model, stack_env, start_rasa_server

PHRASES = [
    "what time is it in tokyo",
    "um what's the weather like tomorrow in berlin",
    "remind me to call my mom at five pm",
    "what can you do",
    "cancel the dentist reminder",
    "hello there",
    "tell me a joke",
    "what's today's date",
]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def time_training(out_dir: Path) -> float:
    """Seconds for a forced `rasa train` of the project into out_dir."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.monotonic()
    subprocess.run(
        [str(BIN / "rasa"), "train", "--force", "--out", str(out_dir)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - start


def main(requests: int = 300) -> dict[str, float]:
    """Measures and prints the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train_s = time_training(work / "models")
        print(f"rasa train (forced, 2 cores):         {train_s:6.1f} s")
        port = free_port()
        env = stack_env(work, port, free_port())
        start = time.monotonic()
        server = start_rasa_server(
            env, port, work / "rasa.log", model=latest_model(work / "models")
        )
        start_s = time.monotonic() - start
        print(f"rasa run start to healthy:            {start_s:6.1f} s")
        try:
            latencies = []
            for i in range(requests):
                body = json.dumps({"text": PHRASES[i % len(PHRASES)]}).encode()
                req = urllib.request.Request(f"{server.url}/model/parse", data=body)
                t0 = time.perf_counter()
                with urllib.request.urlopen(req, timeout=10) as resp:
                    resp.read()
                latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            server.stop()
    figures = {
        "train_s": round(train_s, 1),
        "server_start_s": round(start_s, 1),
        "parse_p50_ms": round(statistics.median(latencies), 1),
        "parse_p95_ms": round(percentile(latencies, 95), 1),
    }
    print(
        f"/model/parse over HTTP ({requests} requests): p50 {figures['parse_p50_ms']} ms, "
        f"p95 {figures['parse_p95_ms']} ms"
    )
    return figures


if __name__ == "__main__":
    main()
