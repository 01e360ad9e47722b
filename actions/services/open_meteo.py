"""Open-Meteo forecast client: timeouts, retries with backoff, a short per-place cache.

``GET {OPEN_METEO_URL}/v1/forecast`` with current conditions and a 7-day daily forecast.
Env: OPEN_METEO_URL (default https://api.open-meteo.com), WEATHER_UNITS (metric|imperial),
WEATHER_TIMEOUT_S (default 4), WEATHER_CACHE_S (default 300).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://api.open-meteo.com"

# WMO weather interpretation codes, as Open-Meteo documents them, in words for the ear.
WMO_PHRASES: dict[int, str] = {
    0: "clear skies",
    1: "mostly clear skies",
    2: "partly cloudy skies",
    3: "overcast skies",
    45: "fog",
    48: "freezing fog",
    51: "light drizzle",
    53: "drizzle",
    55: "heavy drizzle",
    56: "light freezing drizzle",
    57: "freezing drizzle",
    61: "light rain",
    63: "rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "freezing rain",
    71: "light snow",
    73: "snow",
    75: "heavy snow",
    77: "snow grains",
    80: "light rain showers",
    81: "rain showers",
    82: "heavy rain showers",
    85: "light snow showers",
    86: "heavy snow showers",
    95: "thunderstorms",
    96: "thunderstorms with hail",
    99: "thunderstorms with heavy hail",
}


def weather_phrase(code: Any) -> str:
    """A WMO code in words; unknown codes get a neutral phrase."""
    try:
        return WMO_PHRASES.get(int(code), "mixed conditions")
    except (TypeError, ValueError):
        return "mixed conditions"


class WeatherUnavailable(RuntimeError):
    """The weather service could not be reached or answered nonsense."""


@dataclass(frozen=True)
class DayForecast:
    """One day of the daily forecast."""

    day: date
    code: int
    high: float
    low: float
    rain_chance: float | None


@dataclass(frozen=True)
class Forecast:
    """Current conditions plus the daily forecast, in the requested units."""

    temperature: float
    code: int
    wind_speed: float
    days: list[DayForecast]
    units: str  # metric | imperial
    timezone: str

    def on(self, day: date) -> DayForecast | None:
        """The forecast for a local date, or None when outside the forecast range."""
        return next((d for d in self.days if d.day == day), None)


def units_from_env() -> str:
    """WEATHER_UNITS: "imperial" or "metric" (default; anything else means metric)."""
    return (
        "imperial"
        if os.environ.get("WEATHER_UNITS", "").strip().lower() == "imperial"
        else ("metric")
    )


def parse_forecast(payload: Any, units: str) -> Forecast:
    """Read an Open-Meteo JSON body; raises WeatherUnavailable on any missing piece."""
    try:
        current = payload["current"]
        daily = payload["daily"]
        days = [
            DayForecast(
                day=date.fromisoformat(str(daily["time"][i])),
                code=int(daily["weather_code"][i]),
                high=float(daily["temperature_2m_max"][i]),
                low=float(daily["temperature_2m_min"][i]),
                rain_chance=(
                    float(daily["precipitation_probability_max"][i])
                    if daily.get("precipitation_probability_max")
                    and daily["precipitation_probability_max"][i] is not None
                    else None
                ),
            )
            for i in range(len(daily["time"]))
        ]
        return Forecast(
            temperature=float(current["temperature_2m"]),
            code=int(current["weather_code"]),
            wind_speed=float(current.get("wind_speed_10m") or 0.0),
            days=days,
            units=units,
            timezone=str(payload.get("timezone") or "UTC"),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise WeatherUnavailable(f"unexpected forecast shape: {exc!r}") from exc


class OpenMeteoClient:
    """Async client; one per process is enough (it keeps the cache)."""

    def __init__(
        self,
        base_url: str | None = None,
        timeout_s: float | None = None,
        connect_timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: float = 0.3,
        cache_s: float | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("OPEN_METEO_URL") or DEFAULT_URL).rstrip("/")
        self.timeout_s = timeout_s or float(os.environ.get("WEATHER_TIMEOUT_S", "4"))
        self.connect_timeout_s = min(connect_timeout_s, self.timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self.cache_s = (
            cache_s if cache_s is not None else float(os.environ.get("WEATHER_CACHE_S", "300"))
        )
        self._cache: dict[tuple[float, float, str], tuple[float, Forecast]] = {}

    async def forecast(
        self, latitude: float, longitude: float, units: str | None = None
    ) -> Forecast:
        """Current conditions and 7 days for a place; raises WeatherUnavailable."""
        units = units or units_from_env()
        key = (round(latitude, 2), round(longitude, 2), units)
        cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        params = {
            "latitude": f"{latitude:.4f}",
            "longitude": f"{longitude:.4f}",
            "current": "temperature_2m,weather_code,wind_speed_10m",
            "daily": "weather_code,temperature_2m_max,temperature_2m_min,"
            "precipitation_probability_max",
            "timezone": "auto",
            "forecast_days": "7",
        }
        if units == "imperial":
            params.update(temperature_unit="fahrenheit", wind_speed_unit="mph")
        payload = await self._get_json(f"{self.base_url}/v1/forecast", params)
        forecast = parse_forecast(payload, units)
        self._cache[key] = (time.monotonic() + self.cache_s, forecast)
        return forecast

    async def _get_json(self, url: str, params: dict[str, str]) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s, connect=self.connect_timeout_s)
        last_error: Exception | None = None
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(self.retries + 1):
                if attempt:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
                try:
                    async with session.get(url, params=params) as response:
                        if response.status >= 500:
                            last_error = WeatherUnavailable(f"HTTP {response.status}")
                            logger.warning(
                                "Open-Meteo HTTP %s (attempt %d)", response.status, attempt + 1
                            )
                            continue
                        if response.status != 200:
                            body = (await response.text())[:200]
                            raise WeatherUnavailable(f"HTTP {response.status}: {body}")
                        try:
                            return await response.json(content_type=None)
                        except ValueError as exc:
                            raise WeatherUnavailable(f"malformed JSON: {exc}") from exc
                except asyncio.TimeoutError as exc:
                    # A slow service stays slow: do not multiply the wait by retrying.
                    raise WeatherUnavailable(f"timed out after {self.timeout_s} s") from exc
                except aiohttp.ClientError as exc:
                    last_error = exc
                    logger.warning("Open-Meteo connection error (attempt %d): %r", attempt + 1, exc)
        raise WeatherUnavailable(f"gave up after {self.retries + 1} attempts: {last_error!r}")


_client: OpenMeteoClient | None = None


def get_client() -> OpenMeteoClient:
    """The process-wide client (reads env on first use)."""
    global _client
    if _client is None:
        _client = OpenMeteoClient()
    return _client
