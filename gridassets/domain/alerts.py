"""Parsing weather-alert files into storm alerts the weather-alert sensor can act on.

Accepted shapes (one file holds one of them):

* The National Weather Service alerts API GeoJSON: a ``Feature`` or a ``FeatureCollection`` of them,
  with the CAP fields under ``properties`` (``id``, ``messageType``, ``references``, ``event``,
  ``severity``, ``sent``, ``onset``, ``ends``, ``expires``, ``geocode.UGC``, ``parameters.VTEC``,
  ``parameters.maxWindGust`` ...). Zones come from ``geocode.UGC`` only; the geometry is not read.
* A minimal form: ``{"id", "event", "onset", "expires", "zones", "max_wind_gust_mph", "precip_mm"?,
  "messageType"?, "references"?, "ends"?, "severity"?}``, one object or a JSON array of them (an
  array may also hold NWS Features).

The file's content is untrusted. Size and nesting depth are checked on the raw bytes before JSON
parsing (so a hostile file cannot exhaust memory or recursion), text fields are cut to a bounded
length, and identifiers only leave this module through `sanitize_key`, so nothing in a file can
become a path or SQL.

Decisions, so that the sensor and the storm assets agree on them:

* Storm identity. A storm is a VTEC event (office, phenomenon, significance, event tracking number,
  year), so the NEW, CON, EXT, CAN ... messages of one event share ``storm_id``, e.g.
  ``ktfx-hw-w-0033-2025``. When a message carries several VTEC strings, the first whose action is
  not CAN, EXP or UPG is used (those three describe an event that ends, while the others describe
  the event the message is about); if all of them end an event, the first one. The year is that of
  the VTEC begin time; events already in effect carry ``000000T0000Z`` there, and then the year of
  ``onset``, else of ``sent``, is used (``storm_year_guessed``). Near New Year an event issued in
  December and continued in January would then get a second storm id; the sensor gives such a
  message the storm of a message it references when that is the same event of another year.
  Without VTEC (the minimal form, or NWS products that have none) the storm is the sanitized message
  id, except that an Update or Cancel with references belongs to the storm of its first reference
  (writers of the minimal form list the original alert first).
* Grid relevance: the wind, thunderstorm, tornado, winter (snow, ice, blizzard) and tropical
  products in `GRID_EVENT_DEFAULT_GUST_MPH`, watches included, because a watch is when crews are
  staged. Not relevant: marine products (Gale, Storm, Small Craft ... cover waters, not feeders),
  floods, fire weather, air quality, and extreme heat or cold: heat and cold drive load, which the
  daily forecasts cover; they do not break lines the way wind and ice do.
* Gust: ``parameters.maxWindGust`` (``"70 MPH"``, ``"45 KT"``; a bare number is mph), else the
  largest gust the description mentions ("gusts up to 60 to 65 mph" -> 65; "gusts over 60 mph
  expected and greater than 75 mph possible" -> 75), else the event's default in
  `GRID_EVENT_DEFAULT_GUST_MPH` (0 for other events). Knots and km/h are converted to mph.
  A segment may speak of two events of one kind for the same zones, one in effect and one to
  come ("For the first High Wind Warning, ... gusts up to 70 mph. For the second High Wind
  Warning, ... gusts up to 80 mph"); the API gives it once per event, with the same description.
  Each message then takes the gust of its own event: the events sharing the description are
  ordered by their VTEC begin time (an event in effect first), and the first takes the "first"
  sentences (`event_order`). A lone message of such a segment is the first when its event is in
  effect; when that cannot be told, the largest gust mentioned counts.
* Precipitation: the minimal form's ``precip_mm``. NWS products state snow depth and ice accretion
  in prose, which are not precipitation totals, so ``precip_mm`` is None for them rather than a
  guess.
* Times must carry a UTC offset; a naive time is ambiguous local time and makes the alert unusable.
  ``ends`` falls back to ``parameters.eventEndingTime`` when ``ends`` is null.
* Messages whose CAP ``status`` is not ``Actual`` (Test, Exercise, System, Draft) are ignored.
* An empty FeatureCollection (what the API serves when nothing is active) is a valid file with no
  alerts. A bare empty JSON array is not: nothing in it says it is an alert file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import accumulate
from typing import Any

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 32  # JSON nesting limit, checked on the raw text before json.loads

MAX_KEY_CHARS = 80  # sanitize_key output; a CAP "urn:oid:..." id plus its hash suffix fits
MAX_ID_CHARS = 256
MAX_EVENT_CHARS = 120
MAX_HEADLINE_CHARS = 500
MAX_LABEL_CHARS = 40  # severity, certainty, urgency
MAX_TIME_CHARS = 64
MAX_ZONES = 5000  # a large watch names a few hundred zones
MAX_REFERENCES = 1000
MAX_DESCRIPTION_SCAN_CHARS = 20_000  # gust figures sit in the first paragraphs
MAX_GUST_MPH = 300.0  # above any measured gust: a larger number is a typo or hostile
MAX_PRECIP_MM = 5000.0

MESSAGE_TYPES = ("Alert", "Update", "Cancel")
VTEC_ACTIONS = ("NEW", "CON", "EXT", "EXA", "EXB", "UPG", "CAN", "EXP", "COR", "ROU")
# Actions that end an event; a message about the event that goes on is preferred over them.
_ENDING_ACTIONS = frozenset({"CAN", "EXP", "UPG"})

# Grid-relevant NWS events (lower-case) and the gust assumed when the alert states none, in mph.
# The numbers are the NWS criteria of each product (High Wind: gusts of 58 mph or more; Wind
# Advisory: 45; severe thunderstorm: 58; blizzard: 35; tropical storm 39, hurricane 74), or a
# modest figure for winter products, whose damage comes from snow and ice load more than wind.
GRID_EVENT_DEFAULT_GUST_MPH: dict[str, float] = {
    "high wind warning": 58.0,
    "high wind watch": 58.0,
    "extreme wind warning": 115.0,
    "wind advisory": 45.0,
    "severe thunderstorm warning": 58.0,
    "severe thunderstorm watch": 58.0,
    "severe weather statement": 58.0,
    "tornado warning": 65.0,
    "tornado watch": 65.0,
    "blizzard warning": 35.0,
    "blizzard watch": 35.0,
    "winter storm warning": 30.0,
    "winter storm watch": 30.0,
    "winter weather advisory": 25.0,
    "ice storm warning": 25.0,
    "lake effect snow warning": 30.0,
    "snow squall warning": 30.0,
    "hurricane warning": 74.0,
    "hurricane watch": 74.0,
    "typhoon warning": 74.0,
    "typhoon watch": 74.0,
    "tropical storm warning": 39.0,
    "tropical storm watch": 39.0,
}
OTHER_EVENT_DEFAULT_GUST_MPH = 0.0

_TO_MPH = {"mph": 1.0, "kt": 1.150779, "km/h": 0.621371, "m/s": 2.236936}
_UNIT_ALIASES = {
    "mph": "mph", "mi/h": "mph", "miles per hour": "mph",
    "kt": "kt", "kts": "kt", "knot": "kt", "knots": "kt",
    "km/h": "km/h", "kmh": "km/h", "kph": "km/h",
    "m/s": "m/s",
}
_UNIT = r"(mph|mi/h|miles per hour|kts?|knots?|km/h|kmh|kph|m/s)"

_UGC = re.compile(r"[A-Z]{2}[CZ]\d{3}")
_VTEC = re.compile(
    r"/([OTEX])\.(" + "|".join(VTEC_ACTIONS) + r")\.([A-Z]{4})\.([A-Z]{2})\.([A-Z])\.(\d{4})"
    r"\.(\d{6}T\d{4}Z)-(\d{6}T\d{4}Z)/"
)
_GUST_PARAMETER = re.compile(r"\s*(\d{1,4}(?:\.\d+)?)\s*" + _UNIT + r"?\s*", re.IGNORECASE)
# "gust", "gusts", "gusting", "gusty" as whole words ("Augusta" is a place, not a gust).
_GUST_WORD = re.compile(r"\bgust(?:s|ing|y)?\b", re.IGNORECASE)
# A speed or range of speeds with its unit: "65 mph", "60 to 65 mph", "50-60 kt", "75mph".
_SPEED = re.compile(
    r"\b(\d{1,3})(?:\s*(?:to|-|or|and)\s*(\d{1,3}))?\s*" + _UNIT + r"(?![a-z])", re.IGNORECASE
)
# "70 mph wind gusts": the speed before the word.
_SPEED_BEFORE_GUST = re.compile(
    r"\b(\d{1,3})\s*" + _UNIT + r"\s+(?:wind\s+)?gusts?\b", re.IGNORECASE
)
# The text after "gusts" that still speaks of them: up to the end of the sentence or bullet.
_GUST_CLAUSE_END = re.compile(r"\.(?:\s|$)|\*|\n\s*\n|;")
_GUST_CLAUSE_CHARS = 100

# "For the first High Wind Warning, ..." (`description_parts`).
_ORDINALS = {"first": 1, "second": 2, "third": 3}
_ORDINAL_PART = re.compile(r"\bfor the (first|second|third)\b", re.IGNORECASE)

# Depth check helpers: JSON strings are removed first, since brackets inside them do not nest.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class AlertFileError(ValueError):
    """The whole alert file is unusable; ``str(error)`` says why, for a person to read."""


@dataclass(frozen=True)
class Alert:
    """One usable alert message. Times are timezone-aware UTC; text fields are length-bounded."""

    message_id: str  # CAP identifier of this message
    storm_id: str  # the storm (VTEC event) it belongs to, a `sanitize_key` result
    message_type: str  # "Alert" | "Update" | "Cancel"
    vtec_action: str | None
    event: str
    severity: str | None
    certainty: str | None
    urgency: str | None
    sent: datetime | None
    onset: datetime | None
    ends: datetime | None
    expires: datetime | None
    zones: tuple[str, ...]  # UGC codes, upper-case, e.g. "MTZ309", "WAC033"
    max_wind_gust_mph: float
    gust_source: str  # "parameter" | "description" | "default"
    precip_mm: float | None
    references: tuple[str, ...]  # message ids this one updates or cancels
    headline: str | None
    grid_relevant: bool
    # The VTEC begin time was 000000T0000Z (event already in effect), so the year in storm_id was
    # taken from onset or sent and may be the wrong one near New Year (see the module docstring).
    storm_year_guessed: bool = False

    @property
    def is_cancel(self) -> bool:
        """True if the message calls its event off.

        The NWS sometimes sends a VTEC CAN segment with messageType "Alert" (seen in real data), so
        the VTEC action counts as much as the CAP message type.
        """
        return self.message_type == "Cancel" or self.vtec_action == "CAN"

    @property
    def end_time(self) -> datetime | None:
        """The later of ``ends`` and ``expires``: until then the alert still says something."""
        times = [t for t in (self.ends, self.expires) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True)
class IgnoredAlert:
    """An entry of a file that did not become an `Alert`, and why."""

    message_id: str | None
    event: str | None
    reason: str


@dataclass(frozen=True)
class ParsedFile:
    """What a file held: its usable alerts and the entries ignored, both in file order."""

    alerts: tuple[Alert, ...]
    ignored: tuple[IgnoredAlert, ...]


class _Unusable(Exception):
    """One entry of a file is malformed; the message is the reason recorded for it."""


class _NotActual(Exception):
    """One entry is a test, exercise, system or draft message: well-formed but not a real alert."""


# --------------------------------------------------------------------------------------------
# Public functions


def parse_alert_bytes(
    data: bytes, *, max_bytes: int = MAX_FILE_BYTES, max_depth: int = MAX_DEPTH
) -> ParsedFile:
    """Parse the raw bytes of one alert file.

    Takes the file's bytes (the caller should also check the file's size before reading it) and
    returns a `ParsedFile`: every entry of the file is either an `Alert` or an `IgnoredAlert`
    with the reason (a malformed entry of a collection, or a non-Actual message).

    Raises `AlertFileError` when the file as a whole is unusable: empty, larger than `max_bytes`,
    not UTF-8, not JSON, nested deeper than `max_depth`, not an alert shape, a single alert that is
    malformed, or a collection in which every entry is malformed.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"parse_alert_bytes takes bytes, not {type(data).__name__}")
    size = len(data)
    if size > max_bytes:
        raise AlertFileError(
            f"the file is {size} bytes, larger than the limit of {max_bytes} bytes"
        )
    if size == 0:
        raise AlertFileError("the file is empty")
    try:
        # utf-8-sig: a leading byte-order mark, as some Windows tools write, is not an error.
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise AlertFileError(
            f"the file is not UTF-8 text (invalid byte at offset {e.start})"
        ) from None
    if not text.strip():
        raise AlertFileError("the file is empty (only whitespace)")
    depth = _json_depth(text)
    if depth > max_depth:
        raise AlertFileError(
            f"the JSON is nested {depth} levels deep, deeper than the limit of {max_depth}"
        )
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, OverflowError) as e:
        raise AlertFileError(f"the file is not valid JSON: {_clip(str(e), 200)}") from None
    return _parse_document(document)


def sanitize_key(text: str) -> str:
    """A key safe as a Dagster partition key and as a file name, derived from `text`.

    Returns only ``[a-z0-9-]``, at most `MAX_KEY_CHARS` characters, never empty and never starting
    or ending with "-" (so never "." or ".."). Text that is already such a key is returned
    unchanged; otherwise (characters dropped or changed, or cut to length) a 10-hex-digit hash of
    the original text is appended, so different inputs keep different keys. Deterministic.
    Raises TypeError if `text` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"sanitize_key takes a string, not {type(text).__name__}")
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if cleaned == text and 0 < len(cleaned) <= MAX_KEY_CHARS:
        return cleaned
    # surrogatepass: JSON text may carry lone surrogates, which plain UTF-8 cannot encode.
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    head = cleaned[: MAX_KEY_CHARS - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}" if head else f"key-{digest}"


def classify(alert: Alert, our_zones: Collection[str], now: datetime) -> str | None:
    """Decide whether `alert` should start (or update, or cancel) a storm run.

    Takes the alert, the UGC zones of our circuits, and the current time (timezone-aware).
    Returns None if the alert is for us, otherwise the reason it is ignored, checked in this
    order: not a grid-relevant event; no zone of ours (its zones are named); expired (the later
    of ``ends`` and ``expires`` is not after `now`); a window that ends before it starts
    (``onset`` not before that end: nothing can be scored over it). A cancel of a grid-relevant event that touches our zones is always
    for us, whatever its times say, because it marks its storm cancelled (the sensor still
    ignores a cancel of a storm it never received). Raises ValueError if `now` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("classify needs a timezone-aware `now`")
    if not alert.grid_relevant:
        return f"not a grid-relevant event: {alert.event!r}"
    ours = {str(z).strip().upper() for z in our_zones}
    if not alert.zones:
        return "no zone of ours: the alert names no UGC zone"
    if not ours.intersection(alert.zones):
        return f"no zone of ours: its zones are {_list_zones(alert.zones)}"
    if alert.is_cancel:
        return None
    end = alert.end_time
    if end is not None and end <= now:
        return (
            f"expired at {end.isoformat()} (now is {now.astimezone(timezone.utc).isoformat()})"
        )
    if end is not None and alert.onset is not None and alert.onset >= end:
        return (
            f"onset {alert.onset.isoformat()} is not before its end {end.isoformat()} (the later "
            "of ends and expires): the alert's window ends before it starts"
        )
    return None


def printable(text: str) -> str:
    """`text` safe to write into a log line, a note or an error file: control characters (newline,
    carriage return, escape, ...) and other unprintable characters become their backslash escapes
    (``\\n``, ``\\x1b``), and characters that are not valid Unicode (a file name's undecodable
    bytes) become ``\\udcXX``; printable text, accented letters included, is unchanged.

    File names and alert text are untrusted: written raw, a name like "a\\nFORGED line.json" would
    start a forged line of the sensor's log. Non-text values are formatted with `str` first.
    """
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable():
        return text
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def is_grid_relevant(event: str) -> bool:
    """True if an event name (e.g. "High Wind Warning") is one the grid's storm runs care about."""
    return _normalize_event(event) in GRID_EVENT_DEFAULT_GUST_MPH


def default_gust_mph(event: str) -> float:
    """The gust assumed for `event` when the alert states none (0 for non-grid events), in mph."""
    return GRID_EVENT_DEFAULT_GUST_MPH.get(_normalize_event(event), OTHER_EVENT_DEFAULT_GUST_MPH)


def parse_gust(text: str) -> float:
    """Mph from a gust value such as "70 MPH", "45 KT", "100 km/h" or "60" (a bare number is mph).

    Raises ValueError with the reason if the text is not such a value or is out of range.
    """
    m = _GUST_PARAMETER.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{_clip(repr(text), 60)} is not a speed like '70 MPH' or '45 KT'")
    value = float(m.group(1)) * _TO_MPH[_UNIT_ALIASES[(m.group(2) or "mph").lower()]]
    return _check_gust(value, text)


def gust_from_description(text: str, event: int | None = None) -> float | None:
    """The largest gust, in mph, that a description mentions, or None if it mentions none.

    Reads phrases such as "gusts up to 65 mph", "gusts 50 to 60 mph", "gusts as high as 70 mph",
    "gusts to 45 kt" and "70 mph wind gusts"; a range counts by its upper end. `event` (1, 2, 3)
    reads only the sentences about that one of several events the description speaks of
    (`description_parts`), the whole text when it has none or they mention no gust.
    """
    if not isinstance(text, str):
        return None
    if event is not None:
        part = description_parts(text).get(event)
        found = _largest_gust(part) if part else None
        if found is not None:
            return found
    return _largest_gust(text)


def description_parts(text: str) -> dict[int, str]:
    """The sentences of a description about each of several events of one kind, by their order:
    "For the first High Wind Warning, ... For the second High Wind Warning, ..." gives {1: "High
    Wind Warning, ...", 2: "..."} (a part runs to the next such phrase or bullet). {} when the
    text does not speak of at least two."""
    if not isinstance(text, str):
        return {}
    text = text[:MAX_DESCRIPTION_SCAN_CHARS]
    marks = list(_ORDINAL_PART.finditer(text))
    if len({m.group(1).lower() for m in marks}) < 2:
        return {}
    parts: dict[int, list[str]] = {}
    for i, m in enumerate(marks):
        part = text[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        bullet = part.find("*")  # the next bullet ("* WHERE...") speaks of all of them again
        parts.setdefault(_ORDINALS[m.group(1).lower()], []).append(
            part if bullet < 0 else part[:bullet])
    return {k: " ".join(v) for k, v in parts.items()}


def event_order(entries: list[Any]) -> dict[int, int]:
    """Which of the events its description speaks of each NWS Feature of `entries` is, by
    position in `entries`: {position: 1 for the first, 2 for the second ...}.

    Only Features without ``maxWindGust`` whose description speaks of several events
    (`description_parts`) are ordered. Those with the same description are the same segment's
    events: ordered by their VTEC begin time, an event already in effect (begin
    ``000000T0000Z``) first, then by event number. A lone one is the first when its event is in
    effect; otherwise, or when there are more events than the text speaks of, it is left out.
    """
    segments: dict[str, dict[tuple[str, ...], tuple[str, str]]] = {}
    members: dict[int, tuple[str, tuple[str, ...]]] = {}
    for position, entry in enumerate(entries):
        p = entry.get("properties") if isinstance(entry, dict) else None
        parameters = p.get("parameters") if isinstance(p, dict) else None
        if not isinstance(parameters, dict) or parameters.get("maxWindGust") not in (None, []):
            continue
        text = p.get("description")
        if not isinstance(text, str) or not description_parts(text):
            continue
        vtec = _choose_vtec(_vtecs(parameters.get("VTEC")))
        if vtec is None:
            continue
        event = (vtec["office"], vtec["phenomenon"], vtec["significance"], vtec["number"])
        begin = "" if vtec["begin"] == "000000T0000Z" else vtec["begin"]
        segments.setdefault(text, {})[event] = (begin, vtec["number"])
        members[position] = (text, event)
    order: dict[int, int] = {}
    for position, (text, event) in members.items():
        events = sorted(segments[text], key=segments[text].__getitem__)
        if len(events) == 1:
            if segments[text][event][0] == "":
                order[position] = 1
        elif len(events) <= len(description_parts(text)):
            order[position] = events.index(event) + 1
    return order


def _largest_gust(text: str) -> float | None:
    text = text[:MAX_DESCRIPTION_SCAN_CHARS]
    speeds: list[float] = []
    for word in _GUST_WORD.finditer(text):
        clause = text[word.end(): word.end() + _GUST_CLAUSE_CHARS]
        stop = _GUST_CLAUSE_END.search(clause)
        if stop is not None:
            clause = clause[: stop.start()]
        for m in _SPEED.finditer(clause):
            top = max(int(m.group(1)), int(m.group(2) or 0))
            speeds.append(top * _TO_MPH[_UNIT_ALIASES[m.group(3).lower()]])
    for m in _SPEED_BEFORE_GUST.finditer(text):
        speeds.append(int(m.group(1)) * _TO_MPH[_UNIT_ALIASES[m.group(2).lower()]])
    speeds = [s for s in speeds if 0 < s <= MAX_GUST_MPH]
    return round(max(speeds), 1) if speeds else None


# --------------------------------------------------------------------------------------------
# File shapes


def _parse_document(document: Any) -> ParsedFile:
    if isinstance(document, dict):
        kind = _object_kind(document)
        if kind == "collection":
            features = document.get("features")
            if not isinstance(features, list):
                raise AlertFileError(
                    "the FeatureCollection has no 'features' list "
                    f"(it is {_json_type(features)})"
                )
            if not features:
                return ParsedFile((), ())
            return _parse_entries(features, what="features")
        if kind == "feature":
            if not isinstance(document.get("properties"), dict):
                raise AlertFileError(
                    "the GeoJSON Feature has no 'properties' object, so it is not an alert"
                )
            return _parse_single(document)
        if kind == "minimal":
            return _parse_single(document)
        raise AlertFileError(
            "the JSON object is not an alert: it has none of the fields of an NWS alert "
            "('type', 'properties', 'features') or of the minimal form ('id', 'event', 'zones')"
        )
    if isinstance(document, list):
        if not document:
            raise AlertFileError("the JSON array is empty: there is no alert in it")
        if not any(isinstance(item, dict) for item in document):
            kinds = sorted({_json_type(item) for item in document})
            raise AlertFileError(
                f"the JSON array holds {' and '.join(kinds)}, not alert objects"
            )
        return _parse_entries(document, what="items")
    raise AlertFileError(f"the JSON document is {_json_type(document)}, not an alert")


def _object_kind(obj: Mapping[str, Any]) -> str | None:
    kind = obj.get("type")
    if kind == "FeatureCollection" or ("features" in obj and "properties" not in obj):
        return "collection"
    if kind == "Feature" or "properties" in obj:
        return "feature"
    if any(key in obj for key in ("id", "event", "zones")):
        return "minimal"
    return None


def _parse_single(obj: Mapping[str, Any]) -> ParsedFile:
    try:
        return ParsedFile((_parse_entry(obj, event_order([obj]).get(0)),), ())
    except _Unusable as e:
        raise AlertFileError(f"the alert{_id_suffix(obj)} is unusable: {e}") from None
    except _NotActual as e:
        return ParsedFile((), (IgnoredAlert(_peek_id(obj), _peek_event(obj), str(e)),))


def _parse_entries(entries: list[Any], *, what: str) -> ParsedFile:
    alerts: list[Alert] = []
    ignored: list[IgnoredAlert] = []
    malformed: list[str] = []
    order = event_order(entries)
    for position, entry in enumerate(entries, start=1):
        try:
            alerts.append(_parse_entry(entry, order.get(position - 1)))
        except _Unusable as e:
            reason = str(e)
            ignored.append(IgnoredAlert(_peek_id(entry), _peek_event(entry), reason))
            malformed.append(f"#{position}{_id_suffix(entry)}: {reason}")
        except _NotActual as e:
            ignored.append(IgnoredAlert(_peek_id(entry), _peek_event(entry), str(e)))
    if len(malformed) == len(entries):
        shown = "; ".join(malformed[:3])
        if len(malformed) > 3:
            shown += f"; and {len(malformed) - 3} more"
        raise AlertFileError(f"none of the {len(entries)} {what} is a usable alert: {shown}")
    return ParsedFile(tuple(alerts), tuple(ignored))


def _parse_entry(entry: Any, event: int | None = None) -> Alert:
    if not isinstance(entry, dict):
        raise _Unusable(f"it is {_json_type(entry)}, not an alert object")
    kind = _object_kind(entry)
    if kind == "feature":
        properties = entry.get("properties")
        if not isinstance(properties, dict):
            raise _Unusable("the Feature has no 'properties' object")
        return _parse_nws(properties, event)
    if kind == "minimal":
        return _parse_minimal(entry)
    if kind == "collection":
        raise _Unusable("a FeatureCollection inside a collection is not an alert")
    raise _Unusable("the object has none of the fields of an alert ('id', 'event', 'zones')")


# --------------------------------------------------------------------------------------------
# The two alert forms


def _parse_nws(p: Mapping[str, Any], event_number: int | None = None) -> Alert:
    """`event_number`: which of the events its description speaks of the message is
    (`event_order`), or None."""
    message_id = _message_id(p.get("id"))
    event = _event(p.get("event"))
    _check_status(p.get("status"))
    message_type = _message_type(p.get("messageType"))
    parameters = p.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise _Unusable(f"'parameters' is {_json_type(parameters)}, not an object")
    sent = _time(p, "sent")
    onset = _time(p, "onset")
    expires = _time(p, "expires")
    ends = _time(p, "ends")
    if ends is None:
        ending = _first_parameter(parameters, "eventEndingTime")
        ends = _parse_time(ending, "eventEndingTime") if ending is not None else None
    geocode = p.get("geocode")
    if geocode is not None and not isinstance(geocode, dict):
        raise _Unusable(f"'geocode' is {_json_type(geocode)}, not an object")
    zones = _zones((geocode or {}).get("UGC"), "geocode.UGC", required=False)
    references = _references(p.get("references"), "references")
    references += _expired_references(parameters.get("expiredReferences"))
    references = tuple(dict.fromkeys(references))

    gust_values = parameters.get("maxWindGust")
    if gust_values not in (None, []):
        gust = _gust_parameter(gust_values, "parameters.maxWindGust")
        gust_source = "parameter"
    else:
        gust = gust_from_description(p.get("description"), event_number)
        gust_source = "description"
        if gust is None:
            gust, gust_source = default_gust_mph(event), "default"

    vtecs = _vtecs(parameters.get("VTEC"))
    chosen = _choose_vtec(vtecs)
    storm_id = (
        _vtec_storm_id(chosen, onset, sent) if chosen is not None else None
    ) or _fallback_storm_id(message_id, message_type, references)
    return Alert(
        message_id=message_id,
        storm_id=storm_id,
        message_type=message_type,
        vtec_action=chosen["action"] if chosen is not None else None,
        event=event,
        severity=_label(p.get("severity")),
        certainty=_label(p.get("certainty")),
        urgency=_label(p.get("urgency")),
        sent=sent,
        onset=onset,
        ends=ends,
        expires=expires,
        zones=zones,
        max_wind_gust_mph=gust,
        gust_source=gust_source,
        precip_mm=None,
        references=references,
        headline=_text(p.get("headline"), MAX_HEADLINE_CHARS),
        grid_relevant=is_grid_relevant(event),
        storm_year_guessed=chosen is not None and chosen["begin"] == "000000T0000Z",
    )


def _parse_minimal(obj: Mapping[str, Any]) -> Alert:
    message_id = _message_id(obj.get("id"))
    event = _event(obj.get("event"))
    _check_status(obj.get("status"))
    message_type = _message_type(obj.get("messageType"))
    onset = _time(obj, "onset")
    expires = _time(obj, "expires")
    if expires is None:
        raise _Unusable("'expires' is missing: the minimal form needs it")
    zones = _zones(obj.get("zones"), "zones", required=True)
    references = tuple(dict.fromkeys(_references(obj.get("references"), "references")))
    gust_value = obj.get("max_wind_gust_mph")
    if gust_value is None:
        gust, gust_source = default_gust_mph(event), "default"
    else:
        gust, gust_source = _gust_value(gust_value, "max_wind_gust_mph"), "parameter"
    return Alert(
        message_id=message_id,
        storm_id=_fallback_storm_id(message_id, message_type, references),
        message_type=message_type,
        vtec_action=None,
        event=event,
        severity=_label(obj.get("severity")),
        certainty=_label(obj.get("certainty")),
        urgency=_label(obj.get("urgency")),
        sent=_time(obj, "sent"),
        onset=onset,
        ends=_time(obj, "ends"),
        expires=expires,
        zones=zones,
        max_wind_gust_mph=gust,
        gust_source=gust_source,
        precip_mm=_precip(obj.get("precip_mm")),
        references=references,
        headline=_text(obj.get("headline"), MAX_HEADLINE_CHARS),
        grid_relevant=is_grid_relevant(event),
    )


# --------------------------------------------------------------------------------------------
# Fields


def _message_id(value: Any) -> str:
    if value is None:
        raise _Unusable("missing id")
    if not isinstance(value, str):
        raise _Unusable(f"id is {_json_type(value)}, not text")
    value = value.strip()
    if not value:
        raise _Unusable("missing id (it is empty)")
    if len(value) > MAX_ID_CHARS:
        raise _Unusable(f"id is {len(value)} characters long, longer than {MAX_ID_CHARS}")
    if not value.isprintable():
        raise _Unusable(f"id {_clip(repr(value), 80)} contains control characters")
    return value


def _event(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Unusable("missing event name")
    return _clip(printable(" ".join(value.split())), MAX_EVENT_CHARS)


def _check_status(value: Any) -> None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "actual"):
        return
    raise _NotActual(f"status is {_clip(repr(value), 40)}, not 'Actual'")


def _message_type(value: Any) -> str:
    if value is None:
        return "Alert"
    if isinstance(value, str):
        for known in MESSAGE_TYPES:
            if value.strip().lower() == known.lower():
                return known
    raise _Unusable(
        f"messageType {_clip(repr(value), 40)} is not one of {', '.join(MESSAGE_TYPES)}"
    )


def _time(obj: Mapping[str, Any], field: str) -> datetime | None:
    value = obj.get(field)
    return None if value is None else _parse_time(value, field)


def _parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise _Unusable(f"{field} is {_json_type(value)}, not an ISO 8601 time")
    shown = _clip(repr(value), 60)
    if len(value) > MAX_TIME_CHARS:
        raise _Unusable(f"{field} {shown} is not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Unusable(f"{field} {shown} is not an ISO 8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Unusable(f"{field} {shown} has no UTC offset (ambiguous local time)")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise _Unusable(f"{field} {shown} is out of range") from None


def _zones(value: Any, field: str, *, required: bool) -> tuple[str, ...]:
    if value is None:
        if required:
            raise _Unusable(f"'{field}' is missing: the minimal form needs a list of UGC codes")
        return ()
    if not isinstance(value, list):
        raise _Unusable(f"{field} is {_json_type(value)}, not a list of UGC codes")
    if len(value) > MAX_ZONES:
        raise _Unusable(f"{field} names {len(value)} zones, more than {MAX_ZONES}")
    zones: list[str] = []
    for code in value:
        normalized = code.strip().upper() if isinstance(code, str) else None
        if normalized is None or not _UGC.fullmatch(normalized):
            raise _Unusable(
                f"zone code {_clip(repr(code), 40)} is not a UGC code like 'MTZ309' or 'WAC033'"
            )
        zones.append(normalized)
    return tuple(dict.fromkeys(zones))


def _references(value: Any, field: str) -> tuple[str, ...]:
    """Identifiers from CAP references: objects with an 'identifier', or plain id strings."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Unusable(f"{field} is {_json_type(value)}, not a list")
    if len(value) > MAX_REFERENCES:
        raise _Unusable(f"{field} has {len(value)} entries, more than {MAX_REFERENCES}")
    ids: list[str] = []
    for position, item in enumerate(value, start=1):
        identifier = item.get("identifier") if isinstance(item, dict) else item
        if not isinstance(identifier, str):
            raise _Unusable(f"{field} entry {position} has no identifier")
        try:
            ids.append(_message_id(identifier))
        except _Unusable as e:
            raise _Unusable(f"{field} entry {position}: {e}") from None
    return tuple(ids)


def _expired_references(value: Any) -> tuple[str, ...]:
    """Identifiers from NWS expiredReferences: strings of space-separated 'sender,id,sent'."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Unusable(f"parameters.expiredReferences is {_json_type(value)}, not a list")
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise _Unusable("parameters.expiredReferences holds something other than text")
        for triple in item.split():
            parts = triple.split(",")
            if len(parts) != 3 or not parts[1]:
                raise _Unusable(
                    f"parameters.expiredReferences entry {_clip(repr(triple), 60)} "
                    "is not 'sender,identifier,sent'"
                )
            ids.append(_message_id(parts[1]))
            if len(ids) > MAX_REFERENCES:
                raise _Unusable(
                    f"parameters.expiredReferences has more than {MAX_REFERENCES} entries"
                )
    return tuple(ids)


def _first_parameter(parameters: Mapping[str, Any], name: str) -> Any:
    value = parameters.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _gust_parameter(values: Any, field: str) -> float:
    """The largest of the NWS parameter's values (it is a list, usually of one)."""
    items = values if isinstance(values, list) else [values]
    return max(_gust_value(item, field) for item in items)


def _gust_value(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise _Unusable(f"{field} is a boolean, not a speed")
    if isinstance(value, (int, float)):
        try:
            return _check_gust(float(value), value)
        except ValueError as e:
            raise _Unusable(f"{field}: {e}") from None
    try:
        return parse_gust(value)
    except ValueError as e:
        raise _Unusable(f"{field}: {e}") from None


def _check_gust(mph: float, shown: Any) -> float:
    if not math.isfinite(mph) or not 0 <= mph <= MAX_GUST_MPH:
        raise ValueError(
            f"{_clip(repr(shown), 60)} is outside 0 to {MAX_GUST_MPH:.0f} mph"
        )
    return round(mph, 1)


def _precip(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Unusable(f"precip_mm {_clip(repr(value), 40)} is not a number")
    if not math.isfinite(value) or not 0 <= value <= MAX_PRECIP_MM:
        raise _Unusable(f"precip_mm {value!r} is outside 0 to {MAX_PRECIP_MM:.0f}")
    return float(value)


def _label(value: Any) -> str | None:
    return _text(value, MAX_LABEL_CHARS)


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = printable(" ".join(value.split()))
    return _clip(value, limit) if value else None


# --------------------------------------------------------------------------------------------
# Storm identity


def _vtecs(value: Any) -> list[dict[str, str]]:
    """The P-VTEC strings of an alert, in order. Strings of another form (H-VTEC) are skipped."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        if not isinstance(item, str):
            continue
        for m in _VTEC.finditer(item[:1000]):
            found.append({
                "action": m.group(2), "office": m.group(3), "phenomenon": m.group(4),
                "significance": m.group(5), "number": m.group(6), "begin": m.group(7),
            })
    return found


def _choose_vtec(vtecs: list[dict[str, str]]) -> dict[str, str] | None:
    for vtec in vtecs:
        if vtec["action"] not in _ENDING_ACTIONS:
            return vtec
    return vtecs[0] if vtecs else None


def _vtec_storm_id(
    vtec: Mapping[str, str], onset: datetime | None, sent: datetime | None
) -> str | None:
    begin = vtec["begin"]
    if begin != "000000T0000Z":
        year = 2000 + int(begin[:2])
    elif onset is not None:
        year = onset.year
    elif sent is not None:
        year = sent.year
    else:
        return None
    key = "-".join(
        (vtec["office"], vtec["phenomenon"], vtec["significance"], vtec["number"], str(year))
    )
    return sanitize_key(key.lower())


def _fallback_storm_id(message_id: str, message_type: str, references: tuple[str, ...]) -> str:
    if message_type in ("Update", "Cancel") and references:
        return sanitize_key(references[0])
    return sanitize_key(message_id)


# --------------------------------------------------------------------------------------------
# Small helpers


def _json_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON text, counted without parsing it."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_BRACKET_STEP.__getitem__, brackets))))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _normalize_event(event: str) -> str:
    return " ".join(event.split()).lower() if isinstance(event, str) else ""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _peek_id(entry: Any) -> str | None:
    """The entry's id for the record of an ignored entry, if it has a usable one."""
    if not isinstance(entry, dict):
        return None
    source = entry.get("properties") if isinstance(entry.get("properties"), dict) else entry
    try:
        return _message_id(source.get("id"))
    except _Unusable:
        return None


def _peek_event(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    source = entry.get("properties") if isinstance(entry.get("properties"), dict) else entry
    try:
        return _event(source.get("event"))
    except _Unusable:
        return None


def _id_suffix(entry: Any) -> str:
    message_id = _peek_id(entry)
    return f" {_clip(message_id, 100)}" if message_id else ""


def _list_zones(zones: Iterable[str], shown: int = 8) -> str:
    zones = list(zones)
    text = ", ".join(zones[:shown])
    return text + (f" and {len(zones) - shown} more" if len(zones) > shown else "")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
