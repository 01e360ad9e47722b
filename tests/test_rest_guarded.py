"""Request checks of the guarded REST channel."""

from __future__ import annotations

import pytest
from sanic.exceptions import InvalidUsage

from channels.rest_guarded import MAX_MESSAGE_CHARS, GuardedRestInput, check_message, check_sender


@pytest.mark.parametrize("sender", [None, "", "   ", 42, ["a"], "x" * 257])
def test_bad_senders_are_refused(sender: object) -> None:
    with pytest.raises(InvalidUsage):
        check_sender(sender)


@pytest.mark.parametrize("message", [None, 42, {"text": "hi"}, ["hi"]])
def test_non_string_messages_are_refused(message: object) -> None:
    with pytest.raises(InvalidUsage):
        check_message(message)


def test_long_messages_are_cut() -> None:
    assert check_message("a" * 10_000) == "a" * MAX_MESSAGE_CHARS
    assert check_message("") == ""
    assert check_sender("caller-1") == "caller-1"


def test_it_keeps_the_rest_url() -> None:
    assert GuardedRestInput.name() == "rest"
