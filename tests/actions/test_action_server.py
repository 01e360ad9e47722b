"""`rasa run actions` starts cleanly, registers every action, and runs the dispatcher inside."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from actions.services.reminder_store import ReminderStore

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_action_server_runs_the_dispatcher(
    tmp_path: Path, httpserver: HTTPServer, domain: dict
) -> None:
    db = tmp_path / "var" / "reminders.db"
    store = ReminderStore(f"sqlite:///{db}")
    now = datetime.now(timezone.utc)
    due = store.add("user-42", "stretch", now - timedelta(seconds=5), "UTC", now)
    httpserver.expect_request(
        "/conversations/user-42/trigger_intent", method="POST"
    ).respond_with_json({"tracker": {"sender_id": "user-42"}, "messages": []})
    port = free_port()
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "REMINDER_DB_URL": f"sqlite:///{db}",
        "RASA_URL": httpserver.url_for("/").rstrip("/"),
        "SANIC_HOST": "127.0.0.1",
    }
    log = tmp_path / "actions.log"
    rasa = Path(sys.executable).parent / "rasa"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(rasa), "run", "actions", "--actions", "actions", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        actions = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                actions = get_json(f"http://127.0.0.1:{port}/actions")
                break
            except OSError:
                time.sleep(0.5)
        assert actions is not None, log.read_text()
        assert set(domain["actions"]) <= {a["name"] for a in actions}  # type: ignore[union-attr]
        while time.monotonic() < deadline and not httpserver.log:
            time.sleep(0.2)
        assert httpserver.log, log.read_text()
        body = json.loads(httpserver.log[0][0].data)
        assert body == {"name": "EXTERNAL_reminder", "entities": {"reminder_id": due.id}}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "Reminder dispatcher started" in text
    assert "Reminder dispatcher stopped" in text
    assert "Traceback" not in text, text
