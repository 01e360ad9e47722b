"""The Python 3.11 patch for Sanic 21.12's WebSocket recv(), on a real Sanic server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import websockets

from channels import sanic_compat
from tests.servers import ROOT, free_port

ECHO_APP = textwrap.dedent(
    """
    import sys
    import channels  # applies the patch
    from sanic import Sanic

    app = Sanic("compat_echo")

    @app.websocket("/ws")
    async def echo(request, ws):
        while True:
            msg = await ws.recv()
            await ws.send(msg)

    app.run(host="127.0.0.1", port=int(sys.argv[1]), access_log=False, motd=False)
    """
)


async def test_wait_accepts_bare_coroutines() -> None:
    async def value(x: int) -> int:
        return x

    done, pending = await sanic_compat._wait_wrapping_coroutines([value(1), value(2)])
    assert not pending
    assert sorted(t.result() for t in done) == [1, 2]


def test_patch_is_applied_on_import_of_channels() -> None:
    from sanic.server.websockets import impl

    import channels  # noqa: F401

    assert impl.asyncio.wait is sanic_compat._wait_wrapping_coroutines
    assert sanic_compat.apply() is True  # idempotent
    assert asyncio.wait is not sanic_compat._wait_wrapping_coroutines  # global asyncio untouched


async def test_websocket_round_trip_on_a_real_sanic_server() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_APP, str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "echo server did not start"
                await asyncio.sleep(0.2)
        try:
            for msg in ("hello", b"\x00\x01binary"):
                await ws.send(msg)
                assert await asyncio.wait_for(ws.recv(), 5) == msg
        finally:
            await ws.close()
    finally:
        proc.terminate()
        proc.wait(10)
