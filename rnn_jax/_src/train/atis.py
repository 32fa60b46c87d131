"""An ATIS-style corpus from a grammar: flight requests with BIO slot labels and an intent.

ATIS (Hemphill et al. 1990) cannot be downloaded here, so this module writes sentences of the
same kind from templates: six intents (``flight``, ``airfare``, ``flight_time``, ``airline``,
``ground_service``, ``quantity``; ``flight`` is the most common, as in ATIS), slots in ATIS's
names (``fromloc.city_name``, ``toloc.city_name``, ``stoploc.city_name``, ``city_name``,
``depart_date.day_name``, ``depart_date.month_name``, ``depart_date.day_number``,
``depart_time.period_of_day``, ``depart_time.time``, ``arrive_time.time``, ``airline_name``,
``class_type``, ``round_trip``, ``cost_relative``). Several phrasings per intent put the same
city in different roles: "i want to leave taipei on november 2nd" (departure) against "i want
to arrive taipei on november 2nd" (arrival), and "boston to denver" where only the word after
the first city tells its role (a bidirectional tagger's advantage).

Splits (:func:`atis_corpus`): ``train`` and ``test`` draw cities from :data:`TRAIN_CITIES`;
``test_unseen`` fills every city slot from :data:`UNSEEN_CITIES`, names never in training,
which a 1-of-N encoding can only read as the shared "other" word. With ``far=True`` each
sentence ends in 12 to 24 more words of intent-neutral constraints ("on united", "in the
evening", ...), so that the words deciding the intent lie far from the end.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

TRAIN_CITIES = (
    "taipei", "boston", "denver", "atlanta", "dallas", "pittsburgh", "baltimore", "philadelphia",
    "san francisco", "oakland", "washington", "new york", "newark", "chicago", "detroit",
    "cleveland", "milwaukee", "minneapolis", "st. louis", "kansas city", "memphis", "nashville",
    "houston", "san antonio", "phoenix", "las vegas", "los angeles", "san diego", "seattle",
    "portland", "salt lake city", "miami", "orlando", "tampa", "charlotte", "montreal", "toronto",
    "vancouver", "london", "paris", "frankfurt", "tokyo", "osaka", "seoul", "hong kong",
    "singapore", "sydney", "mexico city")
UNSEEN_CITIES = (
    "kaohsiung", "tainan", "indianapolis", "columbus", "cincinnati", "sacramento", "tucson",
    "albuquerque", "new orleans", "buenos aires", "rio de janeiro", "tel aviv", "cape town",
    "san jose", "oklahoma city", "ho chi minh city")
AIRLINES = ("united", "delta", "american", "continental", "us air", "alaska airlines",
            "china airlines", "eva air", "lufthansa", "air canada", "klm", "southwest")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
DAY_NUMBERS = tuple(f"{n}{'th' if 10 <= n <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
                    for n in range(1, 32))
PERIODS = ("morning", "afternoon", "evening", "night")
CLASSES = ("first class", "business class", "economy", "coach")
TRIPS = ("round trip", "one way")
COSTS = ("cheapest", "least expensive", "lowest")
TIMES = tuple(f"{h} {m}" for h in range(1, 13) for m in ("am", "pm")) + ("noon",)
INTENTS = ("flight", "airfare", "flight_time", "airline", "ground_service", "quantity")
_INTENT_P = (0.55, 0.15, 0.10, 0.08, 0.07, 0.05)

# Templates: words, and {slot} places filled by _FILL. Role words decide a city's label.
_TEMPLATES = {
    "flight": (
        "{want} fly from {from} to {to} {when}", "{want} fly to {to} from {from} {when}",
        "show me flights from {from} to {to} {when}", "{from} to {to} {when}",
        "flights leaving {from} {when} and arriving in {to}", "{want} leave {from} {when}",
        "{want} arrive {to} {when}", "{want} arrive in {to} {when} from {from}",
        "i need a flight {when} from {from} arriving in {to} before {arrive_time}",
        "list flights between {from} and {to} on {airline}",
        "what flights go from {from} to {to} with a stop in {stop}",
        "{to} from {from} {when} please", "i would like to go to {to} leaving {from} {when}",
        "show me the {cost} flight from {from} to {to} {when}",
        "give me {trip} flights out of {from} into {to} {when}",
        "flights departing {from} after {depart_time} {when} going to {to}"),
    "airfare": (
        "what is the fare from {from} to {to}", "how much is a {class} ticket from {from} to {to}",
        "show me the {trip} fares to {to} from {from} {when}",
        "{cost} fare to {to} leaving {from}", "what are the fares on {airline} from {from} to {to}",
        "how much does it cost to fly {from} to {to} {when}"),
    "flight_time": (
        "what time does the {airline} flight from {from} arrive in {to}",
        "when do flights leave {from} for {to} {when}",
        "what are the departure times from {from} to {to} {when}",
        "what time do flights arrive in {to} from {from}"),
    "airline": (
        "which airlines fly from {from} to {to}", "what airline flies to {to} {when}",
        "which airlines go from {from} to {to} with a stop in {stop}",
        "what airlines serve {city}"),
    "ground_service": (
        "what ground transportation is there in {city}", "is there a rental car in {city}",
        "how do i get from the airport to downtown {city}",
        "show me ground transportation in {city} {when}"),
    "quantity": (
        "how many flights does {airline} have from {from} to {to}",
        "how many flights go to {to} {when}", "how many airlines fly from {from} to {to}"),
}
_WANTS = ("i want to", "i would like to", "i need to", "i'd like to", "we want to")
_TAILS = ("on {airline}", "in {class}", "on {day}", "in the {period}", "with a stop in {stop}",
          "and i would like a {trip} ticket", "leaving after {depart_time}", "if possible",
          "and it should be the {cost} one", "on {month} {day_number}", "please")


class AtisSentence(NamedTuple):
    words: tuple[str, ...]
    labels: tuple[str, ...]      # BIO slot label of each word
    intent: str


class AtisCorpus(NamedTuple):
    train: tuple[AtisSentence, ...]
    test: tuple[AtisSentence, ...]
    test_unseen: tuple[AtisSentence, ...]   # every city slot holds a city unseen in training


SLOTS = ("fromloc.city_name", "toloc.city_name", "stoploc.city_name", "city_name",
         "depart_date.day_name", "depart_date.month_name", "depart_date.day_number",
         "depart_time.period_of_day", "depart_time.time", "arrive_time.time", "airline_name",
         "class_type", "round_trip", "cost_relative")
SLOT_LABELS = ("O",) + tuple(f"{p}-{s}" for s in SLOTS for p in "BI")   # every BIO label


_CITY_SLOT = {"from": "fromloc.city_name", "to": "toloc.city_name",
              "stop": "stoploc.city_name", "city": "city_name"}


def _slot(phrase: str, name: str) -> list[tuple[str, str]]:
    words = phrase.split()
    return [(w, ("B-" if i == 0 else "I-") + name) for i, w in enumerate(words)]


def _when(r: np.random.Generator, pick) -> list[tuple[str, str]]:
    """An optional date and time of departure."""
    out: list[tuple[str, str]] = []
    kind = r.integers(4)
    if kind == 1:
        out = [("on", "O")] + _slot(pick(DAYS), "depart_date.day_name")
    elif kind == 2:
        out = ([("on", "O")] + _slot(pick(MONTHS), "depart_date.month_name")
               + _slot(pick(DAY_NUMBERS), "depart_date.day_number"))
    if r.random() < 0.3:
        out += [("in", "O"), ("the", "O")] + _slot(pick(PERIODS), "depart_time.period_of_day")
    return out


def _fill(template: str, r: np.random.Generator, cities: tuple[str, ...]) -> list[tuple[str, str]]:
    pick = lambda xs: xs[int(r.integers(len(xs)))]   # noqa: E731
    roles = iter(r.permutation(len(cities))[:3])      # from, to and stop cities all differ
    city = {}
    out: list[tuple[str, str]] = []
    for piece in template.split():
        if not piece.startswith("{"):
            out.append((piece, "O"))
            continue
        key = piece[1:-1]
        if key in ("from", "to", "stop", "city"):
            if key not in city:
                city[key] = cities[next(roles)]
            out += _slot(city[key], _CITY_SLOT[key])
        elif key == "want":
            out += [(w, "O") for w in pick(_WANTS).split()]
        elif key == "when":
            out += _when(r, pick)
        else:
            name, values = {
                "airline": ("airline_name", AIRLINES), "class": ("class_type", CLASSES),
                "trip": ("round_trip", TRIPS), "cost": ("cost_relative", COSTS),
                "day": ("depart_date.day_name", DAYS), "period": ("depart_time.period_of_day",
                                                                  PERIODS),
                "month": ("depart_date.month_name", MONTHS),
                "day_number": ("depart_date.day_number", DAY_NUMBERS),
                "depart_time": ("depart_time.time", TIMES),
                "arrive_time": ("arrive_time.time", TIMES)}[key]
            out += _slot(pick(values), name)
    return out


def sentence(r: np.random.Generator, cities: tuple[str, ...] = TRAIN_CITIES,
             far: bool = False) -> AtisSentence:
    """One sentence drawn with ``r``, its cities from ``cities``."""
    intent = INTENTS[int(r.choice(len(INTENTS), p=_INTENT_P))]
    options = _TEMPLATES[intent]
    pairs = _fill(options[int(r.integers(len(options)))], r, cities)
    if far:
        n, added = int(r.integers(12, 25)), 0
        while added < n:
            tail = _fill(_TAILS[int(r.integers(len(_TAILS)))], r, cities)
            pairs, added = pairs + tail, added + len(tail)
    words, labels = zip(*pairs)
    return AtisSentence(tuple(words), tuple(labels), intent)


def atis_corpus(seed: int = 0, *, train: int = 4000, test: int = 1000,
                far: bool = False) -> AtisCorpus:
    """The three splits, drawn from seeds derived from ``seed``; no test sentence (as a word
    sequence) occurs in ``train``."""
    def draw(stream: int, n: int, cities, exclude=frozenset()) -> tuple[AtisSentence, ...]:
        r = np.random.default_rng((seed, stream, int(far)))
        out: list[AtisSentence] = []
        while len(out) < n:
            s = sentence(r, cities, far)
            if s.words not in exclude:
                out.append(s)
        return tuple(out)

    tr = draw(0, train, TRAIN_CITIES)
    seen = frozenset(s.words for s in tr)
    return AtisCorpus(tr, draw(1, test, TRAIN_CITIES, seen), draw(2, test, UNSEEN_CITIES, seen))


def tagged(words: str, labels: tuple[str, ...]) -> str:
    """``"word/label ..."`` with ``O`` labels left out, for printing."""
    return " ".join(w if lab == "O" else f"{w}/{lab}" for w, lab in zip(words.split(), labels))
