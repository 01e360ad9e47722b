"""Check a worker's settings and stores before Rasa or the action server starts.

``python deploy/preflight.py [rasa|actions|all]`` exits 0 when every setting the process needs is
present and every store it uses answers; otherwise it prints one line per problem, each naming
the environment variable to fix, and exits 2. Server databases get ``PREFLIGHT_WAIT_S`` seconds
(default 30) to come up first, which covers a compose or Kubernetes start where the database
starts at the same time as the workers.

Why: Rasa's SQL tracker store waits forever, logging driver errors, when its database is down,
and an unset ``${VAR}`` in endpoints.yml stops Rasa with a YAML error. Both are clearer here.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
REDIS_LOCK_STORE = "channels.lock_store.AtomicRedisLockStore"
LOCK_TYPES = ("in_memory", REDIS_LOCK_STORE)


def endpoint_variables(path: Path = ROOT / "endpoints.yml") -> list[str]:
    """The ${VARS} that endpoints.yml uses outside comments, in order of appearance."""
    seen: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for name in VAR_RE.findall(line.split("#", 1)[0]):
            if name not in seen:
                seen.append(name)
    return seen


def masked(url: str) -> str:
    """A database URL with its password hidden."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def check_sql(setting: str, url: str, timeout_s: float) -> str | None:
    """None when the database at url answers ``SELECT 1`` within timeout_s, else a problem."""
    import sqlalchemy as sa

    if not url:
        return f"{setting} is empty: set it to an SQLAlchemy URL"
    if url.startswith("sqlite"):
        return None  # a file next to the process: created on first use
    try:
        kwargs = {"connect_args": {"connect_timeout": 5}} if "postgres" in url else {}
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, **kwargs)
    except Exception as exc:  # bad scheme, missing driver
        return f"{setting}={masked(url)} is not a usable database URL: {exc}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return None
        except Exception as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            if time.monotonic() >= deadline:
                return f"{setting}={masked(url)}: cannot connect to the database: {reason}"
            time.sleep(1)
        finally:
            engine.dispose()


def check_redis(env: Mapping[str, str], timeout_s: float) -> str | None:
    """None when Redis at REDIS_HOST:REDIS_PORT answers PING, else a problem."""
    import redis

    host, port = env.get("REDIS_HOST", ""), env.get("REDIS_PORT", "")
    try:
        port_no = int(port)
    except ValueError:
        return f"REDIS_PORT={port!r} is not a port number"
    try:
        db = int(env.get("REDIS_DB") or 0)
    except ValueError:
        return f"REDIS_DB={env.get('REDIS_DB')!r} is not a database number"
    client = redis.Redis(
        host=host,
        port=port_no,
        db=db,
        password=env.get("REDIS_PASSWORD") or None,
        socket_timeout=5,
        socket_connect_timeout=5,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()
            return None
        except (redis.RedisError, OSError) as exc:
            if time.monotonic() >= deadline:
                return (
                    f"REDIS_HOST={host} REDIS_PORT={port} (the Redis lock store): "
                    f"cannot reach Redis: {exc}"
                )
            time.sleep(1)
        finally:
            client.close()


def problems(
    role: str,
    env: Mapping[str, str] = os.environ,
    wait_s: float | None = None,
    endpoints: Path = ROOT / "endpoints.yml",
) -> list[str]:
    """Everything wrong with the settings of a ``rasa`` or ``actions`` process (or ``all``)."""
    wait = float(env.get("PREFLIGHT_WAIT_S", "30")) if wait_s is None else wait_s
    found: list[str] = []
    checks: list[Callable[[], str | None]] = []
    if role in ("rasa", "all"):
        missing = [v for v in endpoint_variables(endpoints) if v not in env]
        found += [f"{v} is not set; endpoints.yml needs it (see .env.example)" for v in missing]
        lock = env.get("LOCK_STORE_TYPE", "in_memory")
        if lock == "redis":
            found.append(
                f"LOCK_STORE_TYPE=redis: Rasa's own Redis lock store can give two workers the same"
                f" ticket and lose a message; use LOCK_STORE_TYPE={REDIS_LOCK_STORE} (same REDIS_*)"
            )
        elif "LOCK_STORE_TYPE" in env and lock not in LOCK_TYPES:
            found.append(f"LOCK_STORE_TYPE={lock!r}: use one of {', '.join(LOCK_TYPES)}")
        if "DATABASE_URL" in env:
            checks.append(lambda: check_sql("DATABASE_URL", env["DATABASE_URL"], wait))
        if lock == REDIS_LOCK_STORE:
            checks.append(lambda: check_redis(env, wait))
    if role in ("actions", "all"):
        url = env.get("REMINDER_DB_URL", "sqlite:///var/reminders.db")
        checks.append(lambda: check_sql("REMINDER_DB_URL", url, wait))
    for check in checks:
        problem = check()
        if problem:
            found.append(problem)
    return found


def main(argv: list[str] | None = None) -> int:
    """Prints problems to stderr; 0 when there are none, 2 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", nargs="?", default="all", choices=("rasa", "actions", "all"))
    parser.add_argument("--wait", type=float, default=None, help="seconds to wait for stores")
    args = parser.parse_args(argv)
    found = problems(args.role, wait_s=args.wait)
    for problem in found:
        print(f"preflight: {problem}", file=sys.stderr)
    if found:
        return 2
    print(f"preflight: {args.role} settings OK", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
