"""One real action server + Rasa server for the whole e2e session, stores in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import (
    Server,
    free_port,
    latest_model,
    stack_env,
    start_action_server,
    start_rasa_server,
)


class Stack:
    """A running Rasa + action server pair and the environment they were started with."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.rasa_port = free_port()
        self.action_port = free_port()
        self.env = stack_env(workdir, self.rasa_port, self.action_port)
        self.model = latest_model()
        self.actions: Server | None = None
        self.rasa: Server | None = None

    def start_actions(self) -> Server:
        """Starts (or restarts) the action server."""
        self.actions = start_action_server(self.env, self.action_port, self.workdir / "actions.log")
        return self.actions

    def start_rasa(self) -> Server:
        """Starts (or restarts) the Rasa server."""
        self.rasa = start_rasa_server(
            self.env, self.rasa_port, self.workdir / "rasa.log", model=self.model
        )
        return self.rasa

    @property
    def url(self) -> str:
        """Base URL of the Rasa server."""
        return f"http://127.0.0.1:{self.rasa_port}"

    def stop(self) -> None:
        """Stops both servers."""
        for server in (self.rasa, self.actions):
            if server:
                server.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared running stack; tests must not stop it (use `own_stack` for that)."""
    s = Stack(tmp_path_factory.mktemp("stack"))
    try:
        s.start_actions()
        s.start_rasa()
        yield s
    finally:
        s.stop()


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A private, not yet started stack that a test may stop and restart."""
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.stop()
