"""Coqui's real `tts-server` (in its own venv) serving a tiny random VITS on a loopback port."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port

COQUI_VENV = ROOT / ".venv-coqui"


@pytest.fixture(scope="session")
def coqui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running Coqui tts-server."""
    subprocess.run([str(ROOT / "scripts" / "coqui-venv.sh")], check=True)
    model_dir = tmp_path_factory.mktemp("tiny_vits")
    python = str(COQUI_VENV / "bin" / "python")
    maker = str(Path(__file__).with_name("make_tiny_vits.py"))
    subprocess.run([python, maker, str(model_dir)], check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    log = (model_dir / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(COQUI_VENV / "bin" / "tts-server"),
            "--model_path",
            str(model_dir / "model.pth"),
            "--config_path",
            str(model_dir / "config.json"),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=model_dir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (model_dir / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url + "/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "tts-server did not start"
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
