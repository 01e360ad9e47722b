"""Weather against a loopback server serving real Open-Meteo JSON; the weather form."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from werkzeug import Request, Response

from actions.services.open_meteo import OpenMeteoClient, WeatherUnavailable, weather_phrase
from actions.weather import APOLOGY, ActionTellWeather, ValidateWeatherForm, weather_day
from tests.actions.conftest import ent, fixed_clock, make_tracker, slot_events, texts

UTC = timezone.utc
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # Saturday, 14:00 in Paris
PARIS = json.loads((Path(__file__).parent / "data" / "open_meteo_paris.json").read_text())


def client_for(server: HTTPServer, **kw: Any) -> OpenMeteoClient:
    return OpenMeteoClient(base_url=server.url_for("/").rstrip("/"), **kw)


async def ask(action: ActionTellWeather, tracker: Tracker, domain: dict) -> tuple[list[str], dict]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, domain)
    return texts(dispatcher), slot_events(events)


def weather_tracker(place: str | None = "paris", day: str | None = None, **kw: Any) -> Tracker:
    slots = {"location": place, "date": day, **kw.pop("slots", {})}
    text = "what's the weather" + (f" in {place}" if place else "") + (f" {day}" if day else "")
    return make_tracker(text, "ask_weather", slots=slots, **kw)


async def test_current_weather(httpserver: HTTPServer, domain: dict) -> None:
    httpserver.expect_request("/v1/forecast").respond_with_json(PARIS)
    action = ActionTellWeather(client=client_for(httpserver), clock=fixed_clock(NOW))
    said, slots = await ask(action, weather_tracker(), domain)
    assert said == [
        "Right now in Paris, it's twelve degrees and light rain, with a high of fifteen and a "
        "low of eight today, and a sixty percent chance of rain."
    ]
    assert slots == {"location": None, "date": None, "default_location": "Paris"}
    request, _ = httpserver.log[0]
    args = request.args
    assert args["latitude"] == "48.8534" and args["longitude"] == "2.3488"
    assert args["current"] == "temperature_2m,weather_code,wind_speed_10m"
    assert args["daily"] == (
        "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max"
    )
    assert args["timezone"] == "auto" and "temperature_unit" not in args


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (
            "tomorrow",
            "Tomorrow in Paris, expect overcast skies, with a high of nineteen and a low of ten "
            "degrees.",
        ),
        (
            "on tuesday",
            "On Tuesday in Paris, expect thunderstorms, with a high of twenty and a low of "
            "thirteen degrees, and a ninety percent chance of rain.",
        ),
        (
            "friday",
            "On Friday in Paris, expect light snow, with a high of one and a low of minus three "
            "degrees, and a thirty percent chance of rain.",
        ),
    ],
)
async def test_forecast_for_a_day(
    day: str, expected: str, httpserver: HTTPServer, domain: dict
) -> None:
    httpserver.expect_request("/v1/forecast").respond_with_json(PARIS)
    action = ActionTellWeather(client=client_for(httpserver), clock=fixed_clock(NOW))
    said, _ = await ask(action, weather_tracker(day=day), domain)
    assert said == [expected]


async def test_day_missed_by_the_nlu_is_read_from_the_question(
    httpserver: HTTPServer, domain: dict
) -> None:
    httpserver.expect_request("/v1/forecast").respond_with_json(PARIS)
    action = ActionTellWeather(client=client_for(httpserver), clock=fixed_clock(NOW))
    tracker = make_tracker(
        "will it rain in paris tomorrow", "ask_weather", slots={"location": "Paris"}
    )
    said, _ = await ask(action, tracker, domain)
    assert said[0].startswith("Tomorrow in Paris")


async def test_too_far_ahead(httpserver: HTTPServer, domain: dict) -> None:
    action = ActionTellWeather(client=client_for(httpserver), clock=fixed_clock(NOW))
    tracker = weather_tracker(day="next saturday")
    said, _ = await ask(action, tracker, domain)
    assert said == ["I can only see the weather about a week ahead."]


async def test_imperial_units(
    httpserver: HTTPServer, domain: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEATHER_UNITS", "imperial")
    httpserver.expect_request("/v1/forecast").respond_with_json(PARIS)
    action = ActionTellWeather(client=client_for(httpserver), clock=fixed_clock(NOW))
    said, _ = await ask(action, weather_tracker(), domain)
    assert said[0].startswith("Right now in Paris")
    args = httpserver.log[0][0].args
    assert (args["temperature_unit"], args["wind_speed_unit"]) == ("fahrenheit", "mph")


async def test_slow_service_times_out_with_an_apology(httpserver: HTTPServer, domain: dict) -> None:
    def slow(_: Request) -> Response:
        time.sleep(3)
        return Response(json.dumps(PARIS), content_type="application/json")

    httpserver.expect_request("/v1/forecast").respond_with_handler(slow)
    action = ActionTellWeather(client=client_for(httpserver, timeout_s=0.5), clock=fixed_clock(NOW))
    started = time.monotonic()
    said, _ = await ask(action, weather_tracker(), domain)
    assert time.monotonic() - started < 2.5  # generous: the timeout is 0.5 s
    assert said == [APOLOGY]
    # Let the (single-threaded) server finish the slow answer before the next test.
    while not httpserver.log and time.monotonic() - started < 10:
        await asyncio.sleep(0.05)


async def test_500_then_success_is_retried(httpserver: HTTPServer, domain: dict) -> None:
    httpserver.expect_oneshot_request("/v1/forecast").respond_with_data("oops", status=500)
    httpserver.expect_request("/v1/forecast").respond_with_json(PARIS)
    action = ActionTellWeather(
        client=client_for(httpserver, backoff_s=0.01), clock=fixed_clock(NOW)
    )
    said, _ = await ask(action, weather_tracker(), domain)
    assert said[0].startswith("Right now in Paris, it's twelve degrees")
    assert len(httpserver.log) == 2


async def test_500_always_is_an_apology(httpserver: HTTPServer, domain: dict, caplog) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/v1/forecast").respond_with_data("oops", status=502)
    action = ActionTellWeather(
        client=client_for(httpserver, backoff_s=0.01), clock=fixed_clock(NOW)
    )
    said, _ = await ask(action, weather_tracker(), domain)
    assert said == [APOLOGY]
    assert len(httpserver.log) == 3
    assert "Weather for Paris unavailable" in caplog.text


@pytest.mark.parametrize(
    "body",
    ["{not json", json.dumps({"error": True, "reason": "bad"}), json.dumps({**PARIS, "daily": {}})],
)
async def test_malformed_answers_are_an_apology(
    body: str, httpserver: HTTPServer, domain: dict
) -> None:
    httpserver.expect_request("/v1/forecast").respond_with_data(
        body, content_type="application/json"
    )
    action = ActionTellWeather(client=client_for(httpserver), clock=fixed_clock(NOW))
    said, _ = await ask(action, weather_tracker(), domain)
    assert said == [APOLOGY]


async def test_connection_refused_is_an_apology(domain: dict) -> None:
    client = OpenMeteoClient(base_url="http://127.0.0.1:9", backoff_s=0.01)
    action = ActionTellWeather(client=client, clock=fixed_clock(NOW))
    said, _ = await ask(action, weather_tracker(), domain)
    assert said == [APOLOGY]


async def test_forecasts_are_cached_per_place(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/forecast").respond_with_json(PARIS)
    client = client_for(httpserver)
    first = await client.forecast(48.85, 2.35)
    second = await client.forecast(48.85, 2.35)
    assert first == second and len(httpserver.log) == 1
    await client.forecast(52.52, 13.41)
    assert len(httpserver.log) == 2


async def test_client_raises_weather_unavailable_on_4xx(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/forecast").respond_with_json({"error": True}, status=400)
    with pytest.raises(WeatherUnavailable):
        await client_for(httpserver).forecast(1.0, 2.0)


async def test_unknown_place(domain: dict) -> None:
    action = ActionTellWeather(
        client=OpenMeteoClient(base_url="http://127.0.0.1:9"), clock=fixed_clock(NOW)
    )
    said, _ = await ask(action, weather_tracker("xyzzy"), domain)
    assert said == ["I don't know where Xyzzy is."]


async def test_default_location_when_none_said(httpserver: HTTPServer, domain: dict) -> None:
    httpserver.expect_request("/v1/forecast").respond_with_json(PARIS)
    action = ActionTellWeather(client=client_for(httpserver), clock=fixed_clock(NOW))
    said, _ = await ask(action, weather_tracker(None, slots={"default_location": "Paris"}), domain)
    assert said[0].startswith("Right now in Paris")


def test_weather_phrases() -> None:
    assert weather_phrase(0) == "clear skies"
    assert weather_phrase(61) == "light rain"
    assert weather_phrase(95) == "thunderstorms"
    assert weather_phrase(12345) == "mixed conditions"
    assert weather_phrase(None) == "mixed conditions"


@pytest.mark.parametrize(
    ("text", "days", "label"),
    [
        (None, None, None),
        ("what's the weather", None, None),
        ("today", 0, "today"),
        ("tonight", 0, "today"),
        ("tomorrow", 1, "tomorrow"),
        ("the day after tomorrow", 2, "on Monday"),
        ("on monday", 2, "on Monday"),
        ("saturday", 0, "today"),
        ("next saturday", 7, "on Saturday"),
        ("this weekend", 0, "today"),
    ],
)
def test_weather_day(text: str | None, days: int | None, label: str | None) -> None:
    today = date(2024, 6, 1)  # Saturday
    day, said = weather_day(text, today)
    assert said == label
    assert (day - today).days == days if day else days is None


# --- the form ----------------------------------------------------------------------------
async def validate(tracker: Tracker, domain: dict) -> tuple[list[str], dict]:
    dispatcher = CollectingDispatcher()
    events = await ValidateWeatherForm().run(dispatcher, tracker, domain)
    return texts(dispatcher), slot_events(events)


async def test_form_uses_default_location(domain: dict) -> None:
    tracker = make_tracker(
        "what's the weather like", "ask_weather", slots={"default_location": "Tokyo"}
    )
    said, slots = await validate(tracker, domain)
    assert said == [] and slots == {"location": "Tokyo"}


async def test_form_asks_when_there_is_no_place(domain: dict) -> None:
    said, slots = await validate(make_tracker("what's the weather like", "ask_weather"), domain)
    assert said == [] and slots == {}


async def test_form_finds_a_place_the_nlu_missed(domain: dict) -> None:
    tracker = make_tracker("how's the weather in sao paulo today", "ask_weather")
    _, slots = await validate(tracker, domain)
    assert slots == {"location": "São Paulo"}


async def test_form_rejects_unknown_places(domain: dict) -> None:
    tracker = make_tracker(
        "weather in xyzzy", "ask_weather", [ent("location", "xyzzy")], slots={"location": "xyzzy"}
    )
    tracker.events.append({"event": "slot", "name": "location", "value": "xyzzy"})
    said, slots = await validate(tracker, domain)
    assert said == ["I don't know where Xyzzy is."]
    assert slots == {"location": None}


async def test_form_reads_a_bare_answer(domain: dict) -> None:
    tracker = make_tracker("uh berlin please", "inform", slots={"requested_slot": "location"})
    _, slots = await validate(tracker, domain)
    assert slots == {"location": "Berlin"}


async def test_form_answer_without_a_place(domain: dict) -> None:
    tracker = make_tracker("i don't know", "inform", slots={"requested_slot": "location"})
    said, slots = await validate(tracker, domain)
    assert said == ["Sorry, I didn't catch a place I know."]
    assert slots == {"location": None}


async def test_form_lets_other_intents_through(domain: dict) -> None:
    tracker = make_tracker("what time is it", "ask_time", slots={"requested_slot": "location"})
    said, slots = await validate(tracker, domain)
    assert said == [] and slots == {}
