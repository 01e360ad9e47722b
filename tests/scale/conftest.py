"""One session-wide scale stack: PostgreSQL + Redis, two Rasa workers, two action servers.

Every process listens on 127.0.0.1 only and is stopped at the end of the session (and each
server at most ~20 s after a SIGTERM). Worker i talks to action server i; action server i
delivers reminders through Rasa worker i. All four share one PostgreSQL database (trackers and
reminders) and one Redis (Rasa's lock store), configured by environment only.
"""

from __future__ import annotations

import shutil
import signal
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.scale.engines import Postgres, Redis
from tests.servers import (
    ROOT,
    Server,
    free_port,
    latest_model,
    stack_env,
    start_action_server,
    start_rasa_server,
)

# The voice channels' speech engines are loaded lazily by the channel; tiny defaults keep
# two workers within this machine's memory.
CREDENTIALS = """\
channels.rest_guarded.GuardedRestInput:
channels.browser_voice.BrowserVoiceInput:
  greet: false
"""


def scale_env(
    workdir: Path, pg: Postgres, redis: Redis, rasa_port: int, action_port: int
) -> dict[str, str]:
    """Environment of one worker pair: the documented variables, nothing else."""
    return stack_env(
        workdir,
        rasa_port,
        action_port,
        DB_DIALECT="postgresql",
        DATABASE_URL=pg.url,
        REMINDER_DB_URL=pg.url,
        LOCK_STORE_TYPE="channels.lock_store.AtomicRedisLockStore",
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=str(redis.port),
        REDIS_DB="0",
        REDIS_PASSWORD="",
        REMINDER_POLL_SECONDS="0.5",
        REMINDER_LEASE_SECONDS="8",
        REMINDER_CLAIM_BATCH="3",
        SQL_POOL_SIZE="5",
        SQL_MAX_OVERFLOW="10",
    )


def snapshot_model(workdir: Path) -> Path:
    """A private copy of the newest model, so a retrain during the session cannot disturb it."""
    for _ in range(30):
        source = latest_model()
        target = workdir / "model.tar.gz"
        shutil.copyfile(source, target)
        try:
            with tarfile.open(target) as tar:
                tar.getmembers()  # reads to the end: a half-written model fails here
            return target
        except (tarfile.TarError, EOFError, OSError):
            time.sleep(10)  # the model is being written right now
    raise RuntimeError("no complete trained model in models/")


class ScaleStack:
    """N Rasa workers and N action servers on one PostgreSQL and one Redis."""

    def __init__(self, workdir: Path, pg: Postgres, redis: Redis, pairs: int = 2) -> None:
        self.workdir = workdir
        self.pg = pg
        self.redis = redis
        self.model = snapshot_model(workdir)
        self.credentials = workdir / "credentials.yml"
        self.credentials.write_text(CREDENTIALS)
        self.rasa_ports = [free_port() for _ in range(pairs)]
        self.action_ports = [free_port() for _ in range(pairs)]
        self.envs = [
            scale_env(workdir, pg, redis, r, a)
            for r, a in zip(self.rasa_ports, self.action_ports, strict=True)
        ]
        self.rasa: list[Server | None] = [None] * pairs
        self.actions: list[Server | None] = [None] * pairs

    def url(self, i: int) -> str:
        """Base URL of Rasa worker i."""
        return f"http://127.0.0.1:{self.rasa_ports[i]}"

    def ws_url(self, i: int) -> str:
        """Browser voice WebSocket of Rasa worker i."""
        return f"ws://127.0.0.1:{self.rasa_ports[i]}/webhooks/browser_voice/websocket"

    def start_rasa(self, i: int) -> Server:
        """Starts Rasa worker i (returns once it answers)."""
        self.rasa[i] = start_rasa_server(
            self.envs[i],
            self.rasa_ports[i],
            self.workdir / f"rasa{i}.log",
            model=self.model,
            credentials=self.credentials,
            endpoints=ROOT / "endpoints.yml",
        )
        return self.rasa[i]  # type: ignore[return-value]

    def start_actions(self, i: int) -> Server:
        """Starts action server i (returns once /health answers)."""
        self.actions[i] = start_action_server(
            self.envs[i], self.action_ports[i], self.workdir / f"actions{i}.log"
        )
        return self.actions[i]  # type: ignore[return-value]

    def ensure_up(self) -> None:
        """Starts, in parallel, every server that is not running."""
        jobs = [
            (self.start_actions, i)
            for i, s in enumerate(self.actions)
            if s is None or s.proc.poll() is not None
        ] + [
            (self.start_rasa, i)
            for i, s in enumerate(self.rasa)
            if s is None or s.proc.poll() is not None
        ]
        if not jobs:
            return
        with ThreadPoolExecutor(len(jobs)) as pool:
            for future in [pool.submit(fn, i) for fn, i in jobs]:
                future.result()

    def kill_rasa(self, i: int) -> None:
        """SIGKILLs Rasa worker i (a crash: no clean shutdown)."""
        server = self.rasa[i]
        if server:
            server.stop(signal.SIGKILL)

    def kill_actions(self, i: int) -> None:
        """SIGKILLs action server i."""
        server = self.actions[i]
        if server:
            server.stop(signal.SIGKILL)

    def stop_all(self) -> None:
        """Stops every server (SIGTERM, then SIGKILL), in parallel."""
        servers = [s for s in self.rasa + self.actions if s is not None]
        if servers:
            with ThreadPoolExecutor(len(servers)) as pool:
                list(pool.map(lambda s: s.stop(), servers))

    def logs(self) -> str:
        """The tail of every server's log, for failure messages."""
        parts = []
        for s in self.rasa + self.actions:
            if s is not None:
                parts.append(f"--- {s.name} {s.url}\n{s.log()[-3000:]}")
        return "\n".join(parts)


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    """A throw-away PostgreSQL 15 on a free loopback port."""
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    """A throw-away Redis on a free loopback port."""
    server = Redis()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def scale(
    tmp_path_factory: pytest.TempPathFactory, pg: Postgres, redis_server: Redis
) -> Iterator[ScaleStack]:
    """The shared 2 x Rasa + 2 x action server stack; each test calls ensure_up() first."""
    stack = ScaleStack(tmp_path_factory.mktemp("scale"), pg, redis_server)
    try:
        stack.ensure_up()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
def stack(scale: ScaleStack) -> ScaleStack:
    """The shared stack with every server running (restarts what a previous test killed)."""
    if scale.redis.proc is None:
        scale.redis.start()
    scale.ensure_up()
    return scale
