"""Fixtures: the channel on an in-process Sanic server, the simulator, the fake REST API, and a
real Rasa server + action server for end-to-end tests."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

import channels  # noqa: F401 - applies the Sanic/3.11 WebSocket patch
from channels.twilio.config import TwilioMediaConfig
from channels.twilio_media import TwilioMediaStreamInput
from tests.twilio.fake_rest import FakeTwilioRest
from tests.twilio.simulator import TwilioSimulator

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
OUR_NUMBER = "+15005550006"
API_TOKEN = "outbound-test-token"
_names = itertools.count()
# Several Sanic apps start in one process: test mode keeps Sanic's touch-up re-runnable.
Sanic.test_mode = True


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ChannelServer:
    """The channel served by Sanic on loopback, with a recording message handler."""

    base_url: str
    channel: TwilioMediaStreamInput
    messages: list[UserMessage] = field(default_factory=list)
    handler: Callable[[UserMessage], Awaitable[Any]] | None = None


async def _serve_channel(
    settings: dict[str, Any], handler: Callable[[UserMessage], Awaitable[Any]] | None = None
) -> tuple[ChannelServer, Any]:
    port = free_port()
    cfg = TwilioMediaConfig.from_dict(
        {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "number": OUR_NUMBER,
            "outbound_api_token": API_TOKEN,
            "stream_secret": "stream-secret-for-tests",
            **settings,
        },
        env={},
    )
    channel = TwilioMediaStreamInput(cfg)
    server = ChannelServer(f"http://127.0.0.1:{port}", channel, handler=handler)

    async def on_new_message(message: UserMessage) -> None:
        server.messages.append(message)
        if server.handler is not None:
            await server.handler(message)

    app = Sanic(f"twilio_test_{next(_names)}")
    app.config.WEBSOCKET_PING_INTERVAL = None
    app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/twilio_media")
    srv = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await srv.startup()
    await srv.before_start()
    await srv.after_start()
    return server, srv


@pytest.fixture
async def serve_channel() -> AsyncIterator[Callable[..., Awaitable[ChannelServer]]]:
    """Factory: ``await serve_channel({...settings})`` -> a running ChannelServer."""
    running: list[Any] = []

    async def start(
        settings: dict[str, Any] | None = None,
        handler: Callable[[UserMessage], Awaitable[Any]] | None = None,
    ) -> ChannelServer:
        server, srv = await _serve_channel(settings or {}, handler)
        running.append(srv)
        return server

    yield start
    for srv in running:
        await srv.before_stop()
        srv.close()
        await srv.wait_closed()
        await srv.after_stop()


@pytest.fixture
async def sim_for() -> AsyncIterator[Callable[..., Awaitable[TwilioSimulator]]]:
    """Factory: a simulator for a ChannelServer (optionally behind a public base URL)."""
    sims: list[TwilioSimulator] = []

    async def make(server: ChannelServer, public_base_url: str | None = None) -> TwilioSimulator:
        sim = TwilioSimulator(
            local_base_url=server.base_url,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            number=OUR_NUMBER,
            public_base_url=public_base_url,
        )
        await sim.__aenter__()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        await sim.__aexit__(None, None, None)


@pytest.fixture
async def fake_rest() -> AsyncIterator[Callable[[TwilioSimulator], Awaitable[FakeTwilioRest]]]:
    """Factory: the fake Twilio REST API bound to a simulator."""
    fakes: list[FakeTwilioRest] = []

    async def make(sim: TwilioSimulator) -> FakeTwilioRest:
        fake = FakeTwilioRest(sim)
        await fake.start()
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        await fake.stop()


def one_machine_env() -> dict[str, str]:
    """Defaults for endpoints.yml variables that ``tests.servers.stack_env`` may not set
    (the in-memory lock store of one machine); values already in the environment win."""
    defaults = {
        "LOCK_STORE_TYPE": "in_memory",
        "REDIS_HOST": "",
        "REDIS_PORT": "",
        "REDIS_DB": "",
        "REDIS_PASSWORD": "",
    }
    return {k: os.environ.get(k, v) for k, v in defaults.items()}


async def wait_http(url: str, timeout: float) -> bool:
    """Polls ``url`` until it answers 200."""
    import aiohttp

    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    return False
