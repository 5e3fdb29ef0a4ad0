"""Reading the landing zone: real files a utility drops into `<data dir>/landing/`.

Layout (contract):
    landing/circuits.csv, landing/transformers.csv            (or .parquet)
    landing/<table>/<YYYY-MM-DD>.csv                          (or .parquet), one file per UTC day

A file is read whole, checked against its `TableSpec` (columns present, values of the right type,
timestamps inside the file's day and on the hour for hourly tables, no duplicate keys) and returned
as a clean frame with exactly the spec's columns. Anything wrong raises `LandingError` naming the
file, the row and the column, so the partition fails before anything is written. Value ranges are not
judged here: the raw asset checks do that on the stored data, where a person can inspect it.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from gridassets.domain.schemas import Column, TableSpec

SUFFIXES = (".csv", ".parquet")
NULL_TOKENS = {"", "na", "nan", "null", "none"}
TRUE_TOKENS = {"true", "t", "yes", "y", "1"}
FALSE_TOKENS = {"false", "f", "no", "n", "0"}


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


def registry_file(landing_dir: Path, spec: TableSpec) -> Path:
    """The registry file of `spec` (e.g. landing/circuits.csv); raises LandingError if absent."""
    return _one_file(Path(landing_dir) / spec.name, f"the {spec.name} registry")


def daily_file(landing_dir: Path, spec: TableSpec, day: date) -> Path:
    """The file of `spec` for `day` (landing/<table>/<day>.csv or .parquet)."""
    return _one_file(Path(landing_dir) / spec.name / day.isoformat(), f"{spec.name} for {day}")


def read_registry(spec: TableSpec, landing_dir: Path) -> pd.DataFrame:
    """Read and check an unpartitioned registry file (circuits, transformers)."""
    path = registry_file(landing_dir, spec)
    return parse_frame(spec, _read_raw(path), path)


def read_daily(spec: TableSpec, landing_dir: Path, day: date) -> pd.DataFrame:
    """Read and check the file of `spec` for one UTC day.

    Returns a frame with exactly the spec's columns. Raises LandingError when the file is missing,
    unreadable, lacks a required column, has a value of the wrong type, a timestamp outside `day`
    (or, for hourly tables, not on the hour), or a duplicate key.
    """
    path = daily_file(landing_dir, spec, day)
    return parse_frame(spec, _read_raw(path), path, day=day)


def parse_frame(spec: TableSpec, raw: pd.DataFrame, path: Path | str,
                day: date | None = None) -> pd.DataFrame:
    """Check and convert a raw frame (as read from `path`) to the spec's columns and types."""
    raw = raw.rename(columns=lambda c: str(c).strip())
    missing = [c.source_name for c in spec.columns if c.required and c.source_name not in raw]
    if missing:
        found = ", ".join(map(str, raw.columns)) or "none"
        raise LandingError(
            path, f"missing required column(s) {', '.join(missing)} (found: {found})"
        )
    out: dict[str, pd.Series] = {}
    for col in spec.columns:
        if col.source_name in raw:
            out[col.name] = _convert(col, raw[col.source_name], path)
        else:
            out[col.name] = _default_series(col, len(raw))
    frame = pd.DataFrame(out, index=range(len(raw)))
    if day is not None and spec.time_column is not None:
        _check_inside_day(spec, frame, path, day)
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


def _read_raw(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        # Everything as text, so that each value is judged (and reported) by our own rules.
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise LandingError(path, "the file is empty (no header row)") from None
    except pd.errors.ParserError as exc:
        shape = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if shape:
            expected, line, saw = map(int, shape.groups())
            # Line 1 is the header, so data row n is line n + 1.
            raise LandingError(path, f"has {saw} fields where the header has {expected} "
                               "(a stray comma or quote?)", row=line - 1) from None
        raise LandingError(path, f"cannot be read: {exc}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise LandingError(path, f"cannot be read: {exc}") from None


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
        raise LandingError(path, f"{problem} ({raw.loc[idx]!r}); {int(bad.sum())} such row(s)",
                           row=_row(idx), column=col.source_name)


def _convert(col: Column, raw: pd.Series, path: Path | str) -> pd.Series:
    raw = raw.reset_index(drop=True)
    nulls = _is_null(raw)
    if not col.nullable:
        _fail_first(path, col, nulls, raw, "empty value in a column that must be filled")
    if col.dtype == "str":
        values = raw.astype(object).where(~nulls, None)
        return values.map(lambda v: None if v is None else str(v).strip()).astype(object)
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


def _check_inside_day(spec: TableSpec, frame: pd.DataFrame, path: Path | str, day: date) -> None:
    col = spec.column(spec.time_column)
    start = pd.Timestamp(datetime.combine(day, datetime.min.time()))
    end = start + timedelta(days=1)
    ts = frame[col.name]
    outside = ts.notna() & ((ts < start) | (ts >= end))
    if outside.any():
        idx = outside[outside].index[0]
        raise LandingError(
            path,
            f"timestamp {ts.loc[idx]} is outside the file's day {day} (UTC); "
            f"{int(outside.sum())} such row(s)",
            row=_row(idx), column=col.source_name,
        )
    if spec.hourly:
        off_hour = ts.notna() & (ts != ts.dt.floor("h"))
        if off_hour.any():
            idx = off_hour[off_hour].index[0]
            raise LandingError(path, f"timestamp {ts.loc[idx]} is not the start of a UTC hour",
                               row=_row(idx), column=col.source_name)


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
