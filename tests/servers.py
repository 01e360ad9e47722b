"""Start the real Rasa and action servers on free loopback ports for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def latest_model(models_dir: Path = ROOT / "models") -> Path:
    """The newest trained model, training one first when there is none."""
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
        subprocess.run(
            [str(BIN / "rasa"), "train", "--out", str(models_dir)], cwd=ROOT, env=env, check=True
        )
        models = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1]


@dataclass
class Server:
    """A server process started for a test, with its URL and log file."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        """The server's output so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Stops the process (SIGTERM, then SIGKILL) and waits for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


def wait_healthy(server: Server, path: str = "/", timeout: float = 300) -> None:
    """Waits until GET url+path answers 200, failing fast with the log if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited ({server.proc.returncode}):\n{server.log()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    server.stop()
    raise TimeoutError(f"{server.name} not healthy after {timeout} s:\n{server.log()[-4000:]}")


def stack_env(workdir: Path, rasa_port: int, action_port: int, **extra: str) -> dict[str, str]:
    """Environment for a Rasa + action server pair whose stores live in workdir."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        DB_DIALECT="sqlite",
        DATABASE_URL=f"sqlite:///{workdir / 'tracker.db'}",
        REMINDER_DB_URL=f"sqlite:///{workdir / 'reminders.db'}",
        ACTION_ENDPOINT_URL=f"http://127.0.0.1:{action_port}/webhook",
        RASA_URL=f"http://127.0.0.1:{rasa_port}",
        SANIC_HOST="127.0.0.1",
        LOCK_STORE_TYPE="in_memory",
        REDIS_HOST="localhost",
        REDIS_PORT="6379",
        REDIS_DB="1",
        REDIS_PASSWORD="",
    )
    env.update(extra)
    return env


def _spawn(name: str, args: list[str], env: Mapping[str, str], log_path: Path, url: str) -> Server:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    proc = subprocess.Popen(args, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT)
    return Server(name=name, proc=proc, url=url, log_path=log_path)


def start_action_server(env: Mapping[str, str], port: int, log_path: Path) -> Server:
    """`rasa run actions` on 127.0.0.1:port; returns once /health answers."""
    server = _spawn(
        "action server",
        [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(port)],
        env,
        log_path,
        f"http://127.0.0.1:{port}",
    )
    wait_healthy(server, "/health")
    return server


def start_rasa_server(
    env: Mapping[str, str],
    port: int,
    log_path: Path,
    model: Path | None = None,
    credentials: Path = ROOT / "credentials.yml",
    endpoints: Path = ROOT / "endpoints.yml",
) -> Server:
    """`rasa run --enable-api` on 127.0.0.1:port with the given model; returns once healthy."""
    args = [
        str(BIN / "rasa"),
        "run",
        "--enable-api",
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        str(model or latest_model()),
        "--credentials",
        str(credentials),
        "--endpoints",
        str(endpoints),
    ]
    server = _spawn("rasa server", args, env, log_path, f"http://127.0.0.1:{port}")
    wait_healthy(server, "/")
    return server
