"""The deploy/ files agree with the project: every endpoints.yml variable is set, names match."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from deploy.preflight import endpoint_variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def compose() -> dict:
    """deploy/compose.yaml with its YAML anchors resolved."""
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_every_worker_gets_every_endpoints_variable() -> None:
    services = compose()["services"]
    workers = [name for name in services if name.startswith(("rasa-", "actions-"))]
    assert sorted(workers) == ["actions-1", "actions-2", "rasa-1", "rasa-2"]
    needed = endpoint_variables(ROOT / "endpoints.yml")
    assert {"LOCK_STORE_TYPE", "REDIS_HOST", "DATABASE_URL"} <= set(needed)
    for name in workers:
        env = services[name]["environment"]
        missing = [v for v in needed if v not in env]
        assert not missing, (name, missing)
        assert (
            env["LOCK_STORE_TYPE"] == "channels.lock_store.AtomicRedisLockStore"
            and env["DB_DIALECT"] == "postgresql"
        )
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["REMINDER_DB_URL"].startswith("postgresql://")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_image_defaults_cover_endpoints_yml() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    env_block = " ".join(re.findall(r"^ENV (.*?)(?:\n(?!\s)|\Z)", dockerfile, re.M | re.S))
    for var in endpoint_variables(ROOT / "endpoints.yml"):
        assert f"{var}=" in env_block, var
    assert "LOCK_STORE_TYPE=in_memory" in env_block  # one container alone: no Redis needed


def test_nginx_balances_the_compose_workers_and_upgrades_websockets() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    for name, port in (
        ("rasa-1", 5005),
        ("rasa-2", 5005),
        ("actions-1", 5055),
        ("actions-2", 5055),
    ):
        assert f"server {name}:{port}" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_read_timeout 3600s;" in conf
    assert compose()["services"]["proxy"]["volumes"] == ["./nginx.conf:/etc/nginx/nginx.conf:ro"]


def test_entrypoint_is_executable_and_runs_preflight() -> None:
    entry = DEPLOY / "entrypoint.sh"
    assert os.access(entry, os.X_OK)
    text = entry.read_text()
    assert "deploy/preflight.py rasa" in text and "deploy/preflight.py actions" in text


def test_docker_compose_accepts_the_file() -> None:
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": "x",
        "REDIS_PASSWORD": "y",
        "RASA_TOKEN": "z",
        "VOICE_STREAM_SECRET": "s",
    }
    result = subprocess.run(
        ["docker-compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
