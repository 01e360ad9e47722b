"""Throw-away PostgreSQL and Redis servers on loopback, for the scale tests and bench.

PostgreSQL: ``initdb`` into a fresh temp dir (as the ``postgres`` user when we are root, since
PostgreSQL refuses to run as root), ``pg_ctl start`` on a free port, listening on 127.0.0.1 only
with its socket in the temp dir; trust auth, fsync off. Redis: ``redis-server --port N --save ''
--bind 127.0.0.1`` with no persistence. Both can be stopped and started again on the same port
(to test a database or lock store going away), and are removed by ``close()``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import free_port


class EngineMissing(RuntimeError):
    """PostgreSQL or Redis is not installed (run scripts/system-deps.sh)."""


def pg_bindir() -> Path:
    """The directory of PostgreSQL's server binaries (Debian: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise EngineMissing("PostgreSQL is not installed: run scripts/system-deps.sh (postgresql)")


def wait_port(port: int, timeout: float = 30.0) -> bool:
    """True once 127.0.0.1:port accepts connections, False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


class Postgres:
    """A private PostgreSQL cluster in a temp dir; database ``rasa`` created at start."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bindir = pg_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="scale-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self._user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL will not run as root: hand the dir to postgres
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                entry = pwd.getpwnam("nobody")
            self._user = entry.pw_name
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``rasa`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/rasa"

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._user:
            args = ["runuser", "-u", self._user, "--", *args]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n"
                + (self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "")
            )
        return result

    def start(self) -> None:
        """Starts the server and waits until it accepts connections; creates ``rasa``."""
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c shared_buffers=64MB"
        )
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                   "-o", opts, "-w", "-t", "60", "start"])  # fmt: skip
        self._ensure_db()

    def _ensure_db(self) -> None:
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=5
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = 'rasa'")
                if cur.fetchone() is None:
                    cur.execute("CREATE DATABASE rasa")
        finally:
            conn.close()

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (``fast``: disconnects clients; ``immediate``: like a crash)."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                   "stop"], check=False)  # fmt: skip

    def query(self, sql: str, *params: object) -> list[tuple]:
        """Runs one statement on ``rasa`` and returns its rows (empty for no result)."""
        import psycopg2

        conn = psycopg2.connect(self.url, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def close(self) -> None:
        """Stops the server and removes its files."""
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """A redis-server on 127.0.0.1 with no persistence, startable again on the same port."""

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise EngineMissing("Redis is not installed: run scripts/system-deps.sh (redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="scale-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
        )  # fmt: skip
        if not wait_port(self.port, 20):
            self.stop()
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stops the server (its data is gone: locks are short-lived by design)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        """Stops the server and removes its files."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
