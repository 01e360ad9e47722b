"""Several workers on real engines: 2 Rasa + 2 action servers on one PostgreSQL and one Redis.

The tests share one stack (see conftest.py); a test that kills a server leaves it to the next
test's ``stack`` fixture to start it again. Order matters only for speed, never for results.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from actions.services.reminder_store import DELIVERED, ReminderStore
from tests.browser.helpers import Client
from tests.e2e.helpers import post_raw, say
from tests.scale.conftest import ScaleStack, scale_env
from tests.servers import ROOT, free_port, start_action_server

pytestmark = [pytest.mark.scale, pytest.mark.slow]


def sender(prefix: str = "scale") -> str:
    """A fresh conversation id (also a valid browser session id)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def tracker(base_url: str, who: str) -> dict[str, Any]:
    """The full tracker of a conversation, as any worker reads it from PostgreSQL."""
    url = f"{base_url}/conversations/{who}/tracker?include_events=ALL"
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def user_texts(t: dict[str, Any]) -> list[str]:
    """The user messages of a tracker, in order."""
    return [e.get("text") or "" for e in t["events"] if e["event"] == "user"]


def bot_texts(t: dict[str, Any]) -> list[str]:
    """The bot utterances of a tracker, in order, lower-cased."""
    return [(e.get("text") or "").lower() for e in t["events"] if e["event"] == "bot"]


def test_turns_alternating_between_workers_keep_slots_and_history(stack: ScaleStack) -> None:
    who = sender()
    question = say(stack.url(0), "remind me to water the plants tomorrow at nine am", who)
    assert "remind you" in question and "?" in question, question
    mid = tracker(stack.url(1), who)  # the other worker sees the first turn's slots
    assert "water the plants" in str(mid["slots"].get("reminder_text") or "").lower(), mid["slots"]
    confirmation = say(stack.url(1), "yes", who)
    assert "water the plants" in confirmation and "won't" not in confirmation, confirmation
    listing = say(stack.url(0), "what are my reminders", who)
    assert "water the plants" in listing, listing
    t = tracker(stack.url(1), who)
    assert user_texts(t) == [
        "remind me to water the plants tomorrow at nine am",
        "yes",
        "what are my reminders",
    ]
    assert t["latest_input_channel"] == "rest"


def test_twenty_concurrent_messages_for_one_sender_run_once_each_in_order(
    stack: ScaleStack,
) -> None:
    import redis

    who = sender()
    texts = [f"hi there {i}" for i in range(20)]
    statuses: list[int | None] = [None] * len(texts)
    start = time.monotonic() + 0.5

    def send(i: int) -> None:
        time.sleep(max(0.0, start + 0.05 * i - time.monotonic()))  # 50 ms apart, both workers
        body = json.dumps({"sender": who, "message": texts[i]}).encode()
        statuses[i], _ = post_raw(f"{stack.url(i % 2)}/webhooks/rest/webhook", body, timeout=180)

    client = redis.Redis(host="127.0.0.1", port=stack.redis.port)
    key = f"voice:lock:{who}"  # Rasa's RedisLockStore key with endpoints.yml's key_prefix
    seen_lock = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if client.exists(key):
                seen_lock.set()
            time.sleep(0.01)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(texts))]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join(240)
    done.set()
    watcher.join(5)
    assert statuses == [200] * len(texts)
    assert seen_lock.is_set()  # the conversation's lock lived in the shared Redis
    assert client.keys(key) == []  # and was released after the last turn
    t = tracker(stack.url(0), who)
    got = user_texts(t)
    assert sorted(got) == sorted(texts)  # each message exactly once: none lost, none doubled
    # Each worker takes its requests in arrival order, and the Redis lock queues them in that
    # order (across workers the order is whichever worker issued its ticket first).
    for worker in (0, 1):
        sent = [x for i, x in enumerate(texts) if i % 2 == worker]
        assert [x for x in got if x in sent] == sent, got
    # Turns never interleave: after each user message, the bot's actions and one action_listen.
    turns: list[list[str]] = []
    for e in t["events"]:
        if e["event"] == "user":
            turns.append([])
        elif e["event"] == "action" and turns:
            turns[-1].append(e["name"])
    assert len(turns) == len(texts)
    for actions in turns:
        assert actions and actions[-1] == "action_listen", actions
        assert actions.count("action_listen") == 1, actions
    stamps = Counter((e["event"], e.get("timestamp"), e.get("name")) for e in t["events"])
    assert max(stamps.values()) == 1  # no event stored twice


async def test_browser_reconnecting_to_another_worker_resumes_its_conversation(
    stack: ScaleStack,
) -> None:
    sid = sender("browser")
    first = await Client.connect(stack.ws_url(0))
    try:
        ready = await first.hello(sid)
        assert ready["session_id"] == sid
        await first.send({"type": "text", "text": "remind me to call the bank tomorrow at 9 am"})
        asked = await first.wait_for("bot_text", 120)
        assert "remind you" in asked["text"].lower(), asked
    finally:
        await first.close()
    second = await Client.connect(stack.ws_url(1))
    try:
        ready = await second.hello(sid)
        assert ready["session_id"] == sid
        await second.send({"type": "text", "text": "yes"})
        confirmed = await second.wait_for("bot_text", 120)
        assert "call the bank" in confirmed["text"].lower(), confirmed
    finally:
        await second.close()
    texts = user_texts(tracker(stack.url(0), sid))
    assert texts[-2:] == ["remind me to call the bank tomorrow at 9 am", "yes"]


async def test_redis_away_turns_fail_with_a_spoken_apology_and_recover(
    stack: ScaleStack,
) -> None:
    sid = sender("redis")
    client = await Client.connect(stack.ws_url(1))
    try:
        await client.hello(sid)
        await client.send({"type": "text", "text": "remind me to buy milk tomorrow at 9 am"})
        asked = await client.wait_for("bot_text", 120)
        assert "remind you" in asked["text"].lower()
        stack.redis.stop()
        try:
            await client.send({"type": "text", "text": "yes"})
            error = await client.wait_for("error", 60)
            assert error["code"] == "rasa_failed" and error["fatal"] is False, error
            start = await client.wait_for("audio_start", 60)
            await client.wait_for("audio_end", 60, id=start["id"])
            assert client.audio[start["id"]] > 8000  # the apology was spoken
            # Through REST the turn fails too, without taking the worker down.
            status, _ = post_raw(
                f"{stack.url(0)}/webhooks/rest/webhook",
                json.dumps({"sender": sid, "message": "yes"}).encode(),
            )
            assert status in (200, 500)
            assert stack.rasa[0] and stack.rasa[0].proc.poll() is None
        finally:
            stack.redis.start()
        await client.send({"type": "text", "text": "yes"})
        confirmed = await client.wait_for("bot_text", 120)
        assert "buy milk" in confirmed["text"].lower(), confirmed
    finally:
        await client.close()
    texts = user_texts(tracker(stack.url(0), sid))
    assert texts == ["remind me to buy milk tomorrow at 9 am", "yes"]  # failed turns left no trace


def test_killing_a_worker_mid_conversation_the_other_continues_it(stack: ScaleStack) -> None:
    who = sender()
    question = say(stack.url(0), "remind me to feed the cat tomorrow at nine am", who)
    assert "remind you" in question, question
    stack.kill_rasa(0)
    confirmation = say(stack.url(1), "yes", who)
    assert "feed the cat" in confirmation and "won't" not in confirmation, confirmation
    assert "feed the cat" in say(stack.url(1), "what are my reminders", who)


def _delivering(stack: ScaleStack, i: int) -> int:
    server = stack.actions[i]
    return server.log().count("Delivering reminder") if server else 0


def test_fifty_reminders_due_together_are_delivered_exactly_once(stack: ScaleStack) -> None:
    store = ReminderStore(stack.pg.url)
    run = uuid.uuid4().hex[:6]
    senders = [f"rem-{run}-{i}" for i in range(10)]
    now = datetime.now(timezone.utc)
    due = now.replace(microsecond=0) + timedelta(seconds=3)
    expected = {f"check box {i}" for i in range(50)}
    ids = [store.add(senders[i % 10], f"check box {i}", due, "UTC", now).id for i in range(50)]

    def states() -> Counter[str]:
        return Counter(store.get(i).state for i in ids)  # type: ignore[union-attr]

    # Both action servers take part; then one dies in the middle.
    deadline = time.monotonic() + 90
    while not (_delivering(stack, 0) and _delivering(stack, 1)):
        assert time.monotonic() < deadline, (states(), stack.logs())
        time.sleep(0.1)
    stack.kill_actions(0)
    assert states()[DELIVERED] < 50  # killed in the middle, not after the work was done
    deadline = time.monotonic() + 150
    while states()[DELIVERED] < 50:
        assert time.monotonic() < deadline, (states(), stack.logs())
        time.sleep(0.5)

    def spoken() -> Counter[str]:
        said: Counter[str] = Counter()
        for who in senders:
            for text in bot_texts(tracker(stack.url(1), who)):
                m = re.search(r"(check box \d+)", text)
                if m:
                    said[m.group(1)] += 1
        return said

    first = spoken()
    assert set(first) == expected and set(first.values()) == {1}, first
    # Restart everything: nothing is lost or repeated.
    stack.stop_all()
    stack.ensure_up()
    time.sleep(3)  # several polls of both dispatchers
    assert states() == Counter({DELIVERED: 50})
    assert spoken() == first


def _preflight(env: dict[str, str], role: str, wait: float = 2) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "preflight.py"), role, "--wait", str(wait)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_postgresql_unreachable_at_start_names_the_setting(
    stack: ScaleStack, tmp_path: Path
) -> None:
    dead = f"postgresql://rasa:s3cret@127.0.0.1:{free_port()}/rasa"
    env = {**stack.envs[0], "DATABASE_URL": dead, "REMINDER_DB_URL": dead}
    started = time.monotonic()
    result = _preflight(env, "all")
    assert result.returncode == 2
    assert "DATABASE_URL=postgresql://rasa:***@127.0.0.1" in result.stderr, result.stderr
    assert "REMINDER_DB_URL=postgresql://rasa:***@127.0.0.1" in result.stderr
    assert "cannot connect" in result.stderr and "s3cret" not in result.stderr
    assert time.monotonic() - started < 45
    # The action server itself starts, says which setting is wrong, and keeps trying.
    port = free_port()
    server = start_action_server(
        scale_env(tmp_path, stack.pg, stack.redis, free_port(), port) | {"REMINDER_DB_URL": dead},
        port,
        tmp_path / "actions-dead-db.log",
    )
    try:
        deadline = time.monotonic() + 30
        while "REMINDER_DB_URL=postgresql://rasa:***@" not in server.log():
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.3)
        assert "s3cret" not in server.log()
    finally:
        server.stop()
    # Unset variables and a wrong lock store type are named too; the real stack passes.
    bare = {k: v for k, v in stack.envs[0].items() if k != "LOCK_STORE_TYPE"}
    assert "LOCK_STORE_TYPE is not set" in _preflight(bare, "rasa").stderr
    wrong = {**stack.envs[0], "REDIS_PORT": str(free_port())}
    assert "REDIS_PORT" in _preflight(wrong, "rasa").stderr
    racy = {**stack.envs[0], "LOCK_STORE_TYPE": "redis"}
    assert "channels.lock_store.AtomicRedisLockStore" in _preflight(racy, "rasa").stderr
    ok = _preflight(stack.envs[0], "all")
    assert ok.returncode == 0, ok.stderr


def test_endpoints_default_lock_store_is_in_memory_with_redis_keys_present() -> None:
    env = {
        "ACTION_ENDPOINT_URL": "http://127.0.0.1:1/webhook",
        "DB_DIALECT": "sqlite",
        "DATABASE_URL": "sqlite://",
        "LOCK_STORE_TYPE": "in_memory",
        "REDIS_HOST": "localhost",
        "REDIS_PORT": "6379",
        "REDIS_DB": "0",
        "REDIS_PASSWORD": "",
    }
    code = (
        "from rasa.core.utils import AvailableEndpoints\n"
        "from rasa.core.lock_store import LockStore\n"
        "e = AvailableEndpoints.read_endpoints('endpoints.yml')\n"
        "print(type(LockStore.create(e.lock_store)).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "RASA_TELEMETRY_ENABLED": "false", **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.stdout.strip().splitlines()[-1] == "InMemoryLockStore", result.stderr[-2000:]
