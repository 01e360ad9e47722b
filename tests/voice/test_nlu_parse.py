"""Semantic endpointing's NLU parse over a real trained model, off the event loop."""

from __future__ import annotations

import os
from types import SimpleNamespace

from channels.voice.nlu_parse import rasa_parser
from tests.servers import latest_model


async def test_parses_with_the_loaded_model() -> None:
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    from rasa.core.agent import load_agent

    agent = await load_agent(model_path=str(latest_model()))
    parse = rasa_parser(SimpleNamespace(ctx=SimpleNamespace(agent=agent)))
    parsed = await parse("what time is it in tokyo")
    assert parsed["intent"]["name"] == "ask_time"
    assert parsed["intent"]["confidence"] > 0.5
    assert {e["entity"]: e["value"] for e in parsed["entities"]}.get("location") == "tokyo"


async def test_answers_nothing_while_no_model_is_loaded() -> None:
    assert await rasa_parser(SimpleNamespace(ctx=SimpleNamespace(agent=None)))("hi") == {}
