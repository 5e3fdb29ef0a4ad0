"""Reading the landing zone: real files a utility drops into `<data dir>/landing/`.

Layout (contract):
    landing/circuits.csv, landing/transformers.csv            (or .parquet)
    landing/<table>/<YYYY-MM-DD>.csv                          (or .parquet), one file per UTC day

A file is read, checked whole against its `TableSpec` and returned as a clean frame with exactly the
spec's columns. The checks: every CSV row has as many fields as the header; required columns are
present, none twice; every value has the column's type (a CSV's text must parse as it; a Parquet
file's values arrive typed and must already be of it, except that whole numbers are accepted as text
ids); text is printable and matches its column's pattern (zones are NWS UGC codes); timestamps lie
inside the file's day, on the hour for hourly tables; no key appears twice. A daily file can also be
refused for holding far more rows than its day can (`row_limit`), before it is read whole, and any
file larger than its size limit (`MAX_DAILY_FILE_BYTES`, `MAX_REGISTRY_FILE_BYTES`) is refused before
a byte of it is read.

Anything wrong raises `LandingError` naming the file, the row and the column, and showing the value
as Python writes it (so a newline or a quote is visible), so the partition fails before anything is
written. Rows are counted from 1 after the header; blank lines are not counted. Value ranges are not
judged here: the raw asset checks do that on the stored data, where a person can inspect it.
"""

from __future__ import annotations

import csv
import decimal
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from gridassets.domain.schemas import Column, TableSpec

SUFFIXES = (".csv", ".parquet")
NULL_TOKENS = {"", "na", "nan", "null", "none"}
TRUE_TOKENS = {"true", "t", "yes", "y", "1"}
FALSE_TOKENS = {"false", "f", "no", "n", "0"}

# The kinds of typed (Parquet) value each column type accepts. Whole numbers are accepted as text
# because a numbering system's ids (circuit 1042) are often stored as integers; a fractional
# number, a true/false or a timestamp where an id is due is a column mix-up.
ACCEPTED_KINDS = {
    "str": {"text", "int"},
    "int": {"int", "float"},  # a float must still be whole; see _convert
    "float": {"int", "float"},
    "bool": {"bool"},
    "date": {"date", "timestamp"},
    "timestamp": {"timestamp"},
}
KIND_NAMES = {"text": "text", "bool": "true/false", "int": "a number", "float": "a number",
              "date": "a date", "timestamp": "a timestamp"}
DUE_NAMES = {"str": "text", "int": "a number", "float": "a number", "bool": "true/false",
             "date": "a date", "timestamp": "a timestamp"}

# Row limits of one day's file (`row_limit`). Hourly tables: twice the 24 rows per registry entity,
# plus room for ten entities the registry does not list (weather for neighbouring zones, units
# added since the registry was loaded): those rows are judged by the checks, not refused here.
# Event tables: an event every hour on every entity, plus a storm's worth, which no real day
# reaches. Either way a file of a wrong table or a runaway export is stopped before it fills memory.
HOURLY_MARGIN = 2
SPARE_HOURLY_ROWS = 24 * 10
EVENTS_PER_ENTITY = 24
SPARE_EVENT_ROWS = 1000

# Size limits, checked on the file's size before it is opened, so that a runaway export or a file
# dropped in the wrong place fails its partition instead of filling memory. A day of a large
# utility's telemetry (200,000 transformers x 24 hours, about 4.8 M rows) is about 400 MB as CSV;
# 2 GiB leaves five times that. A registry (circuits, transformers, zones) of 200,000 rows is
# about 30 MB. NWS gridpoint forecasts have their own limit (`nws_gridpoints.MAX_BYTES`).
MAX_DAILY_FILE_BYTES = 2 * 1024**3
MAX_REGISTRY_FILE_BYTES = 256 * 1024**2


class LandingError(ValueError):
    """A landing file is missing or malformed. The message names the file, row and column."""

    def __init__(self, path: Path | str, problem: str, *, row: int | None = None,
                 column: str | None = None) -> None:
        self.path = Path(path)
        self.row = row
        self.column = column
        self.problem = problem
        where = [str(self.path)]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {problem}")


class RowLimit(int):
    """A row limit that says where it comes from: `read_daily` quotes `reason` when it refuses."""

    reason: str

    def __new__(cls, value: int, reason: str = "") -> RowLimit:
        limit = super().__new__(cls, value)
        limit.reason = reason
        return limit


def row_limit(spec: TableSpec, entities: int) -> int:
    """The most rows one day's file of `spec` can reasonably hold, for a registry with `entities`
    of the spec's entity (transformers, circuits or zones).

    Hourly tables: HOURLY_MARGIN x 24 rows per entity, plus SPARE_HOURLY_ROWS; event tables:
    EVENTS_PER_ENTITY per entity plus SPARE_EVENT_ROWS. Returns a `RowLimit`, an int whose reason
    `read_daily` quotes. Raises ValueError for a table without entities or a negative count.
    """
    if spec.entity_column is None:
        raise ValueError(f"{spec.name} has no entity column to count")
    n = int(entities)
    if n < 0:
        raise ValueError(f"entities must not be negative; got {entities!r}")
    noun = spec.entity_column.removesuffix("_id")
    if spec.hourly:
        first, last = spec.valid_days or (0, 1)
        hours = 24 * (last - first)
        limit = HOURLY_MARGIN * hours * n + SPARE_HOURLY_ROWS * (last - first)
        basis = (f"{HOURLY_MARGIN} x {hours} hourly rows per {noun} + "
                 f"{SPARE_HOURLY_ROWS * (last - first)}")
    else:
        limit = EVENTS_PER_ENTITY * n + SPARE_EVENT_ROWS
        basis = f"{EVENTS_PER_ENTITY} events per {noun} + {SPARE_EVENT_ROWS}"
    plural = "" if n == 1 else "s"
    return RowLimit(limit, f"the registry has {n} {noun}{plural}: "
                           f"at most {limit} rows for one day ({basis})")


def registry_file(landing_dir: Path, spec: TableSpec) -> Path:
    """The registry file of `spec` (e.g. landing/circuits.csv); raises LandingError if absent."""
    return _one_file(Path(landing_dir) / spec.name, f"the {spec.name} registry")


def daily_file(landing_dir: Path, spec: TableSpec, day: date) -> Path:
    """The file of `spec` for `day` (landing/<table>/<day>.csv or .parquet)."""
    return _one_file(Path(landing_dir) / spec.name / day.isoformat(), f"{spec.name} for {day}")


def has_daily_file(landing_dir: Path, spec: TableSpec, day: date) -> bool:
    """Whether any file of `spec` for `day` has arrived (reading it may still fail)."""
    stem = Path(landing_dir) / spec.name / day.isoformat()
    return any(stem.with_name(stem.name + s).is_file() for s in SUFFIXES)


def read_registry(spec: TableSpec, landing_dir: Path) -> pd.DataFrame:
    """Read and check an unpartitioned registry file (circuits, transformers)."""
    path = registry_file(landing_dir, spec)
    _check_size(path, MAX_REGISTRY_FILE_BYTES, "MAX_REGISTRY_FILE_BYTES")
    return parse_frame(spec, _read_raw(path), path)


def read_daily(spec: TableSpec, landing_dir: Path, day: date, *,
               max_rows: int | None = None) -> pd.DataFrame:
    """Read and check the file of `spec` for one UTC day.

    `max_rows` (usually `row_limit(spec, <registry count>)`) refuses a file with more rows before
    it is read whole: a CSV is read no further than one row past it, a Parquet file's row count is
    taken from its metadata. None reads any size.

    Returns a frame with exactly the spec's columns. Raises LandingError when the file is missing,
    unreadable, larger than `MAX_DAILY_FILE_BYTES`, has more rows than `max_rows`, a CSV row with more or fewer fields than the header,
    lacks a required column, has a value of the wrong type or text of the wrong form, a timestamp
    outside `day` (or, for hourly tables, not on the hour), or a duplicate key.
    """
    path = daily_file(landing_dir, spec, day)
    _check_size(path, MAX_DAILY_FILE_BYTES, "MAX_DAILY_FILE_BYTES")
    return parse_frame(spec, _read_raw(path, max_rows), path, day=day)


def parse_frame(spec: TableSpec, raw: pd.DataFrame, path: Path | str,
                day: date | None = None, *, typed: bool | None = None) -> pd.DataFrame:
    """Check and convert a raw frame (as read from `path`) to the spec's columns and types.

    `typed` says whether the values arrived typed (Parquet), so that each must already be of its
    column's type, rather than as text to be parsed (CSV); by default it is judged from the suffix
    of `path`. Raises LandingError as `read_daily` describes.
    """
    if typed is None:
        typed = Path(path).suffix.lower() != ".csv"
    raw = raw.rename(columns=lambda c: str(c).strip())
    twice = sorted(set(raw.columns[raw.columns.duplicated()]))
    if twice:
        raise LandingError(path, f"column {twice[0]!r} appears twice; keep one")
    missing = [c.source_name for c in spec.columns if c.required and c.source_name not in raw]
    if missing:
        found = ", ".join(map(str, raw.columns)) or "none"
        raise LandingError(
            path, f"missing required column(s) {', '.join(missing)} (found: {found})"
        )
    out: dict[str, pd.Series] = {}
    for col in spec.columns:
        if col.source_name in raw:
            out[col.name] = _convert(col, raw[col.source_name], path, typed)
        else:
            out[col.name] = _default_series(col, len(raw))
    frame = pd.DataFrame(out, index=range(len(raw)))
    if day is not None and spec.time_column is not None:
        _check_inside_day(spec, frame, path, day)
    if day is not None and spec.valid_days is not None:
        _check_forecast(spec, frame, path, day)
    _check_unique(spec, frame, path)
    return frame


def _one_file(stem: Path, what: str) -> Path:
    found = [stem.with_name(stem.name + s) for s in SUFFIXES if stem.with_name(stem.name + s).is_file()]
    if not found:
        expected = " or ".join(str(stem.with_name(stem.name + s)) for s in SUFFIXES)
        raise LandingError(stem.with_name(stem.name + SUFFIXES[0]),
                           f"missing file: {what} is expected at {expected}")
    if len(found) > 1:
        raise LandingError(found[0], f"both {found[0].name} and {found[1].name} exist; keep one")
    return found[0]


def _check_size(path: Path, limit: int, name: str) -> None:
    """Raise LandingError naming the file, its size and the limit if it is larger than `limit`."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LandingError(path, f"cannot be read: {exc}") from None
    if size > limit:
        raise LandingError(path, f"is {size:,} bytes, larger than the limit of {limit:,} bytes "
                                 f"({name} in gridassets/domain/landing.py): split the file or "
                                 "check that it belongs here")


def _read_raw(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            if max_rows is not None:
                rows = pq.ParquetFile(path).metadata.num_rows
                if rows > max_rows:
                    raise _too_many(path, f"has {rows} rows", max_rows)
            return pd.read_parquet(path)
        return _read_csv(path, max_rows)
    except LandingError:
        raise
    except UnicodeDecodeError as exc:
        raise LandingError(path, f"cannot be read: not UTF-8 text ({exc})") from None
    except (csv.Error, OSError, ValueError) as exc:
        raise LandingError(path, f"cannot be read: {exc}") from None


def _read_csv(path: Path, max_rows: int | None) -> pd.DataFrame:
    """Every field as text, so that each value is judged (and reported) by our own rules.

    Read with the csv module rather than pandas, which silently pads a row with too few fields and,
    when the first row has one field too many, takes the first column as the index and shifts every
    value one column left.
    """
    limit = math.inf if max_rows is None else max_rows
    rows: list[list[str]] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        # Blank lines carry nothing; they are skipped and not counted as rows.
        records = csv.reader(fh, skipinitialspace=True)
        header = next((record for record in records if record), None)
        if header is None:
            raise LandingError(path, "the file is empty (no header row)")
        width = len(header)
        for record in records:
            if len(record) != width:
                if not record:
                    continue
                raise LandingError(path, _field_count_problem(len(record), width),
                                   row=len(rows) + 1)
            if len(rows) >= limit:
                raise _too_many(path, f"has more than {max_rows} rows", max_rows)
            rows.append(record)
    return pd.DataFrame(rows, columns=_column_names(header), dtype=object)


def _field_count_problem(fields: int, expected: int) -> str:
    hint = ("a stray comma, or a value with a comma that is not quoted?" if fields > expected
            else "a missing value? an empty value still needs its comma")
    return f"has {fields} field{'s' if fields != 1 else ''} where the header has {expected} ({hint})"


def _column_names(header: list[str]) -> list[str]:
    # A trailing comma on the header line makes a nameless column; named, it is ignored as an extra.
    return [name.strip() or f"(unnamed column {i + 1})" for i, name in enumerate(header)]


def _too_many(path: Path, count: str, max_rows: int) -> LandingError:
    reason = getattr(max_rows, "reason", None) or f"at most {int(max_rows)} rows for one day"
    return LandingError(path, f"{count}; {reason}")


def _row(index: int) -> int:
    """1-based data row number (the header is not counted)."""
    return int(index) + 1


def _is_null(series: pd.Series) -> pd.Series:
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        text = series.astype(str).str.strip().str.lower()
        return series.isna() | text.isin(NULL_TOKENS)
    return series.isna()


def _fail_first(path: Path | str, col: Column, bad: pd.Series, raw: pd.Series, problem: str) -> None:
    if bad.any():
        idx = bad[bad].index[0]
        raise LandingError(path, f"{problem} ({_shown(raw.loc[idx])!r}); {int(bad.sum())} such row(s)",
                           row=_row(idx), column=col.source_name)


def _shown(value: object) -> object:
    # numpy scalars print as np.float64(1.0); the engineer wants to see 1.0.
    return value.item() if isinstance(value, np.generic) else value


def _convert(col: Column, raw: pd.Series, path: Path | str, typed: bool = False) -> pd.Series:
    raw = raw.reset_index(drop=True)
    nulls = _is_null(raw)
    if not col.nullable:
        _fail_first(path, col, nulls, raw, "empty value in a column that must be filled")
    if typed:
        _check_kinds(col, raw, nulls, path)
    if col.dtype == "str":
        return _text(col, raw, nulls, path)
    if col.dtype in ("int", "float"):
        values = pd.to_numeric(raw.where(~nulls, None), errors="coerce")
        _fail_first(path, col, values.isna() & ~nulls, raw, "not a number")
        finite = values.isna() | np.isfinite(values.astype(float))
        _fail_first(path, col, ~finite, raw, "not a finite number")
        if col.dtype == "int":
            whole = values.isna() | (values.astype(float) % 1 == 0)
            _fail_first(path, col, ~whole, raw, "not a whole number")
            return values.astype("Int64") if col.nullable else values.astype("int64")
        return values.astype("float64")
    if col.dtype == "bool":
        text = raw.astype(str).str.strip().str.lower()
        ok = nulls | text.isin(TRUE_TOKENS | FALSE_TOKENS)
        _fail_first(path, col, ~ok, raw, "not true/false")
        return text.isin(TRUE_TOKENS).where(~nulls, None).astype(object if col.nullable else bool)
    if col.dtype in ("timestamp", "date"):
        values = _parse_times(raw.where(~nulls, None))
        _fail_first(path, col, values.isna() & ~nulls, raw,
                    "not an ISO 8601 date" if col.dtype == "date" else "not an ISO 8601 timestamp")
        if col.dtype == "date":
            return values.dt.date.where(values.notna(), None).astype(object)
        return values.astype("datetime64[ns]")
    raise TypeError(f"unknown dtype {col.dtype!r} for column {col.name}")


def _check_kinds(col: Column, raw: pd.Series, nulls: pd.Series, path: Path | str) -> None:
    """Typed values must be of the column's type: a Parquet boolean is not 0/1 MW."""
    kinds = _kinds(raw)
    wrong = ~nulls & ~kinds.isin(ACCEPTED_KINDS[col.dtype])
    if wrong.any():
        kind = kinds[wrong].iloc[0]
        same = wrong & (kinds == kind)
        _fail_first(path, col, same, raw,
                    f"{KIND_NAMES.get(kind, kind)} where {DUE_NAMES[col.dtype]} is due")


def _kinds(values: pd.Series) -> pd.Series:
    """The kind of each value: text, bool, int, float, date, timestamp, or its type's name."""
    types = pd.api.types
    for test, kind in ((types.is_bool_dtype, "bool"), (types.is_integer_dtype, "int"),
                       (types.is_float_dtype, "float"), (types.is_datetime64_any_dtype, "timestamp")):
        if test(values.dtype):
            return pd.Series(kind, index=values.index)
    if values.dtype != object and types.is_string_dtype(values.dtype):
        return pd.Series("text", index=values.index)
    return values.map(_kind_of)


def _kind_of(value: object) -> str:
    # bool before int (bool is an int), datetime before date (datetime is a date).
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating, decimal.Decimal)):
        return "float"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (datetime, np.datetime64)):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    return type(value).__name__


def _text(col: Column, raw: pd.Series, nulls: pd.Series, path: Path | str) -> pd.Series:
    """Text values with surrounding spaces trimmed, each checked against the column's rules."""
    # Only spaces are trimmed: a tab or newline around an id is refused below, not dropped quietly.
    values = raw.astype(object).where(~nulls, None).map(
        lambda v: None if v is None else str(v).strip(" ")).astype(object)
    # Ids repeat on every hour's row: judge each distinct value once.
    problems = {v: col.text_problem(v) for v in pd.unique(values.dropna())}
    found = values.map(problems)
    if found.notna().any():
        problem = found[found.notna()].iloc[0]
        _fail_first(path, col, found == problem, raw, problem)
    return values


def _parse_times(values: pd.Series) -> pd.Series:
    """Parse ISO 8601 values to naive UTC; values with an offset are converted, naive ones are UTC."""
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is not None:
            return values.dt.tz_convert("UTC").dt.tz_localize(None)
        return values
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None)


def _default_series(col: Column, n: int) -> pd.Series:
    if col.dtype == "timestamp":
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    if col.dtype == "float":
        fill = math.nan if col.default is None else float(col.default)
        return pd.Series(fill, index=range(n), dtype="float64")
    if col.dtype == "int":
        if col.default is None:
            return pd.Series(pd.NA, index=range(n), dtype="Int64")
        return pd.Series(int(col.default), index=range(n), dtype="int64")
    return pd.Series([col.default] * n, index=range(n), dtype=object)


def valid_window(spec: TableSpec, day: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) that the time column of `spec`'s file for `day` must lie in: the day itself,
    or for a forecast the days it covers."""
    first, last = spec.valid_days or (0, 1)
    midnight = pd.Timestamp(datetime.combine(day, datetime.min.time()))
    return midnight + timedelta(days=first), midnight + timedelta(days=last)


def _check_inside_day(spec: TableSpec, frame: pd.DataFrame, path: Path | str, day: date) -> None:
    col = spec.column(spec.time_column)
    start, end = valid_window(spec, day)
    ts = frame[col.name]
    outside = ts.notna() & ((ts < start) | (ts >= end))
    if outside.any():
        idx = outside[outside].index[0]
        where = (f"the file's day {day} (UTC)" if spec.valid_days is None else
                 f"the days the forecast issued at the end of {day} covers "
                 f"({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC)")
        raise LandingError(
            path,
            f"timestamp {ts.loc[idx]} is outside {where}; {int(outside.sum())} such row(s)",
            row=_row(idx), column=col.source_name,
        )
    if spec.hourly:
        off_hour = ts.notna() & (ts != ts.dt.floor("h"))
        if off_hour.any():
            idx = off_hour[off_hour].index[0]
            raise LandingError(path, f"timestamp {ts.loc[idx]} is not the start of a UTC hour",
                               row=_row(idx), column=col.source_name)


def _check_forecast(spec: TableSpec, frame: pd.DataFrame, path: Path | str, day: date) -> None:
    """A forecast file's rows belong to its issue day, were issued by its end (a forecast made
    later would look ahead), and say their lead time right. Fills issue_date where absent."""
    given = frame["issue_date"]
    issue = pd.Timestamp(day)
    wrong = given.notna() & (pd.to_datetime(given) != issue)
    if wrong.any():
        idx = wrong[wrong].index[0]
        raise LandingError(path, f"issue_date {given.loc[idx]} is not the file's day {day}",
                           row=_row(idx), column="issue_date")
    frame["issue_date"] = pd.Series([day] * len(frame), index=frame.index, dtype=object)
    end = issue + timedelta(days=1)
    late = frame["issued_at"] > end
    if late.any():
        idx = late[late].index[0]
        raise LandingError(path, f"issued_at {frame['issued_at'].loc[idx]} is after the end of the "
                                 f"issue day {day}: partition {day} may only hold forecasts made "
                                 "by then", row=_row(idx), column="issued_at")
    lead = (frame["valid_ts"] - end) / pd.Timedelta(hours=1) + 1
    off = frame["lead_h"].notna() & frame["valid_ts"].notna() & (frame["lead_h"] != lead)
    if off.any():
        idx = off[off].index[0]
        raise LandingError(path, f"lead_h {frame['lead_h'].loc[idx]} does not match valid_ts "
                                 f"{frame['valid_ts'].loc[idx]}: it is the hours from the end of "
                                 f"{day} to the end of the hour forecast ({lead.loc[idx]:.0f})",
                           row=_row(idx), column="lead_h")


def empty_frame(spec: TableSpec) -> pd.DataFrame:
    """No rows, the spec's columns and types."""
    return pd.DataFrame({c.name: _default_series(c, 0) for c in spec.columns})


def forecast_folder(landing_dir: Path, spec: TableSpec, day: date) -> Path:
    """landing/<table>/<day>/: NWS gridpoint forecasts (<office>/<x>,<y>.json) for `day`."""
    return Path(landing_dir) / spec.name / day.isoformat()


def read_forecast(spec: TableSpec, landing_dir: Path, day: date, *,
                  max_rows: int | None = None) -> pd.DataFrame:
    """The forecast issued at the end of `day`: landing/<table>/<day>.csv or .parquet, or a
    folder landing/<table>/<day>/ of NWS gridpoint files mapped to zones by landing/zones.csv.
    Neither there: no forecast for the day, an empty frame (forecasts are optional; the scores
    say per row when they had none). Raises LandingError as `read_daily` does, naming the file."""
    folder = forecast_folder(landing_dir, spec, day)
    if not folder.is_dir():
        if not any(folder.with_name(folder.name + suffix).is_file() for suffix in SUFFIXES):
            # No forecast landed for the day: an empty partition, and the scores of the day fall
            # back to what they use without one (tagged on every row). A late file is taken when
            # the partition is materialized again.
            return empty_frame(spec)
        return read_daily(spec, landing_dir, day, max_rows=max_rows)
    for suffix in SUFFIXES:
        flat = folder.with_name(folder.name + suffix)
        if flat.is_file():
            raise LandingError(flat, f"both {flat.name} and the folder {folder.name}/ exist; "
                                     "keep one")
    from gridassets.domain.schemas import ZONES

    zones = read_registry(ZONES, landing_dir)
    frames = [_gridpoint_rows(spec, folder, day, row) for row in zones.itertuples(index=False)]
    frame = pd.concat(frames, ignore_index=True)[spec.names]
    _check_unique(spec, frame, folder)
    return frame


def _gridpoint_rows(spec: TableSpec, folder: Path, day: date, zone) -> pd.DataFrame:
    import json

    from gridassets.domain import nws_gridpoints

    path = folder / zone.office / f"{zone.grid_x},{zone.grid_y}.json"
    if not path.is_file():
        raise LandingError(path, f"missing file: the gridpoint forecast of zone {zone.zone} "
                                 f"(zones.csv: {zone.office} {zone.grid_x},{zone.grid_y})")
    size = path.stat().st_size
    if size > nws_gridpoints.MAX_BYTES:
        raise LandingError(path, f"is {size:,} bytes; a gridpoint forecast is at most "
                                 f"{nws_gridpoints.MAX_BYTES:,}")
    try:
        doc = json.loads(path.read_bytes())
        found = nws_gridpoints.gridpoint_of(doc)
        if found != (zone.office, zone.grid_x, zone.grid_y):
            raise nws_gridpoints.GridpointError(
                f"the file is the forecast of {found[0]} {found[1]},{found[2]}, not of "
                f"{zone.office} {zone.grid_x},{zone.grid_y} (zone {zone.zone})")
        issued = nws_gridpoints.issued_at(doc)
        hours = nws_gridpoints.hourly(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LandingError(path, f"cannot be read: not JSON ({exc})") from None
    except (nws_gridpoints.GridpointError, RecursionError) as exc:
        raise LandingError(path, str(exc)) from None
    end = pd.Timestamp(day) + timedelta(days=1)
    if issued > end:
        raise LandingError(path, f"updateTime {issued} is after the end of the issue day {day}: "
                                 f"partition {day} may only hold forecasts made by then")
    start, stop = valid_window(spec, day)
    hours = hours[(hours["valid_ts"] >= start) & (hours["valid_ts"] < stop)]
    return hours.assign(
        issue_date=pd.Series([day] * len(hours), index=hours.index, dtype=object),
        zone=zone.zone, issued_at=issued,
        lead_h=((hours["valid_ts"] - end) / pd.Timedelta(hours=1) + 1).astype("int64"))


def _check_unique(spec: TableSpec, frame: pd.DataFrame, path: Path | str) -> None:
    key = list(spec.key)
    dup = frame.duplicated(subset=key, keep=False)
    if dup.any():
        rows = dup[dup].index[:2]
        first = frame.loc[rows[0], key].to_dict()
        raise LandingError(
            path,
            f"duplicate key {first} in rows {', '.join(str(_row(i)) for i in rows)} "
            f"({int(frame.duplicated(subset=key).sum())} duplicate row(s) in all)",
            row=_row(rows[-1]), column=", ".join(spec.column(k).source_name for k in key),
        )
