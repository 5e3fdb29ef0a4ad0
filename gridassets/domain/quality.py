"""Data-quality rules for the raw tables: schema, value ranges, completeness and duplicates.

Each rule takes a frame and its `TableSpec` and returns a `CheckOutcome` with a one-line summary a
person can act on and a few example rows. The raw assets run them as blocking asset checks, so a
failed rule stops the data before it reaches features and models.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from gridassets.domain.schemas import Column, TableSpec

# Share of the registry's entities (transformers, circuits, zones) that must report each day.
MIN_COVERAGE = 0.95
MAX_EXAMPLES = 5

_DTYPE_OK = {
    "str": lambda s: s.dtype == object or pd.api.types.is_string_dtype(s),
    "int": pd.api.types.is_integer_dtype,
    "float": lambda s: pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s),
    "bool": lambda s: pd.api.types.is_bool_dtype(s) or s.dtype == object,
    "date": lambda s: s.dtype == object or pd.api.types.is_datetime64_dtype(s),
    "timestamp": pd.api.types.is_datetime64_dtype,
}


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    summary: str
    details: dict = field(default_factory=dict)


def check_schema(frame: pd.DataFrame, spec: TableSpec) -> CheckOutcome:
    """The frame has the spec's columns, of the right types, no empty required values, and text
    of the form its column requires (printable; zones NWS UGC codes), as the landing reader does
    for files: frames from elsewhere (the simulator, a warehouse) are held to the same contract."""
    problems: list[str] = []
    missing = [c for c in spec.names if c not in frame.columns]
    extra = [c for c in frame.columns if c not in spec.names]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    for col in spec.columns:
        if col.name not in frame.columns:
            continue
        series = frame[col.name]
        if len(series) and series.notna().any() and not _DTYPE_OK[col.dtype](series):
            problems.append(f"{col.name} is {series.dtype}, expected {col.dtype}")
        if not col.nullable:
            nulls = int(series.isna().sum())
            if nulls:
                problems.append(f"{col.name} has {nulls} empty value(s)")
        if col.dtype == "str":
            problems.extend(_text_problems(series, col))
    if problems:
        return CheckOutcome(False, "; ".join(problems), {"problems": problems})
    return CheckOutcome(True, f"{len(spec.names)} columns as specified", {"rows": len(frame)})


def _text_problems(series: pd.Series, col: Column) -> list[str]:
    """One line per kind of bad text in `series`: count and the first offending value (repr)."""
    values = series.dropna()
    # Ids repeat on every hour's row: judge each distinct value once.
    judged = {v: (col.text_problem(v) if isinstance(v, str) else "not text") for v in values.unique()}
    found = values.map(judged)
    lines = []
    for problem in found.dropna().unique():
        bad = (found == problem).to_numpy()
        first = values.to_numpy()[bad][0]
        # numpy scalars print as np.int64(2); show the value as it is.
        first = first.item() if isinstance(first, np.generic) else first
        lines.append(f"{col.name}: {int(bad.sum())} value(s) {problem}, e.g. {first!r}")
    return lines


def check_ranges(frame: pd.DataFrame, spec: TableSpec) -> CheckOutcome:
    """Every value inside its column's plausible range (and outages end after they start)."""
    problems: list[str] = []
    examples: list[str] = []
    for col in spec.columns:
        if col.name not in frame.columns or col.dtype not in ("int", "float"):
            continue
        values = pd.to_numeric(frame[col.name], errors="coerce").astype(float)
        bad = pd.Series(False, index=frame.index)
        if col.min is not None:
            bad |= values < col.min
        if col.max is not None:
            bad |= values > col.max
        bad |= np.isinf(values)
        if bad.any():
            lo, hi = values[bad].min(), values[bad].max()
            problems.append(
                f"{col.name}: {int(bad.sum())} value(s) outside [{col.min}, {col.max}] "
                f"(from {lo:g} to {hi:g})"
            )
            examples.extend(_examples(frame[bad], spec))
    if {"start_ts", "end_ts"} <= set(frame.columns):
        backwards = frame["end_ts"].notna() & (frame["end_ts"] < frame["start_ts"])
        if backwards.any():
            problems.append(f"{int(backwards.sum())} outage(s) end before they start")
            examples.extend(_examples(frame[backwards], spec))
    if problems:
        return CheckOutcome(False, "; ".join(problems),
                            {"problems": problems, "examples": examples[:MAX_EXAMPLES]})
    return CheckOutcome(True, "all values inside their ranges", {"rows": len(frame)})


def check_duplicates(frame: pd.DataFrame, spec: TableSpec) -> CheckOutcome:
    """No two rows share the spec's key."""
    key = [k for k in spec.key if k in frame.columns]
    dup = frame.duplicated(subset=key, keep=False)
    if dup.any():
        n = int(frame.duplicated(subset=key).sum())
        return CheckOutcome(False, f"{n} duplicate row(s) on {tuple(key)}",
                            {"examples": _examples(frame[dup], spec)})
    return CheckOutcome(True, f"keys {tuple(key)} unique", {"rows": len(frame)})


def check_completeness(frame: pd.DataFrame, spec: TableSpec, days: Sequence[date],
                       expected: Collection[str] | None, allow_unknown: bool = False
                       ) -> CheckOutcome:
    """Hourly tables: 24 rows per entity per day, and at least MIN_COVERAGE of the registry's
    entities reporting each day. Event tables: every id is known to the registry.

    `allow_unknown` accepts entities the registry does not list (weather for a neighbouring zone).
    """
    entity = spec.entity_column
    if entity is None or entity not in frame.columns:
        return CheckOutcome(True, "no completeness rule for this table")
    known = set(map(str, expected)) if expected is not None else None
    if not spec.hourly:
        if known is None or frame.empty:
            return CheckOutcome(True, f"{len(frame)} event(s)")
        unknown = sorted(set(frame[entity].astype(str)) - known)
        if unknown:
            return CheckOutcome(False, f"{len(unknown)} {entity} value(s) not in the registry",
                                {"unknown": unknown[:MAX_EXAMPLES]})
        return CheckOutcome(True, f"{len(frame)} event(s), all on known {entity}s")

    if spec.valid_days is not None:
        return _forecast_completeness(frame, spec, days, known)
    problems: list[str] = []
    details: dict = {}
    ts = pd.to_datetime(frame[spec.time_column])
    counts = (
        frame.assign(_day=ts.dt.date).groupby([entity, "_day"], observed=True).size()
    )
    short = counts[counts != 24]
    if len(short):
        problems.append(f"{len(short)} {entity}-day(s) without exactly 24 hourly rows")
        details["incomplete"] = [
            f"{e} {d}: {n} rows" for (e, d), n in short.head(MAX_EXAMPLES).items()
        ]
    if known:
        reporting: dict[date, set[str]] = {}
        for (name, day) in counts.index:
            reporting.setdefault(day, set()).add(str(name))
        coverage = []
        for day in days:
            present = reporting.get(day, set())
            share = len(present & known) / len(known)
            coverage.append(share)
            if share < MIN_COVERAGE:
                missing = sorted(known - present)
                problems.append(
                    f"{day}: only {share:.1%} of {len(known)} registry {entity}s reported "
                    f"(at least {MIN_COVERAGE:.0%} required); missing e.g. {missing[:MAX_EXAMPLES]}"
                )
        details["min_coverage"] = round(min(coverage), 4) if coverage else None
        unknown = [] if allow_unknown else sorted(set(frame[entity].astype(str)) - known)
        if unknown:
            problems.append(f"{len(unknown)} {entity} value(s) not in the registry, e.g. "
                            f"{unknown[:MAX_EXAMPLES]}")
    if problems:
        return CheckOutcome(False, "; ".join(problems), details)
    return CheckOutcome(True, f"24 hourly rows per {entity} per day", details)


def _forecast_completeness(frame: pd.DataFrame, spec: TableSpec, days: Sequence[date],
                           known: set[str] | None) -> CheckOutcome:
    """A forecast: per issue day and zone, consecutive hours from the first hour of the next day,
    at least the whole day ahead (24); at least MIN_COVERAGE of the registry's zones forecast."""
    entity, issue = spec.entity_column, spec.partition_column
    if frame.empty:
        return CheckOutcome(True, "no forecast for these day(s): the scores fall back to what they "
                                  "use without one, and say so on every row", {"hours_min": 0})
    problems: list[str] = []
    first = pd.to_datetime(frame[issue]) + pd.Timedelta(days=spec.valid_days[0])
    step = (pd.to_datetime(frame[spec.time_column]) - first) / pd.Timedelta(hours=1)
    per = frame.assign(_issue=pd.to_datetime(frame[issue]).dt.date, _h=step).groupby(
        ["_issue", entity], observed=True)["_h"].agg(["min", "max", "count"])
    broken = per[(per["min"] != 0) | (per["max"] != per["count"] - 1)]
    if len(broken):
        problems.append(f"{len(broken)} zone forecast(s) with missing hours (each must run hour by "
                        "hour from 00:00 UTC of the day after its issue day)")
    short = per[per["count"] < 24]
    if len(short):
        problems.append(f"{len(short)} zone forecast(s) shorter than the 24 hours of the day ahead")
    details: dict = {"incomplete": [f"{z} issued {d}: {int(r['count'])} hours"
                                    for (d, z), r in pd.concat([broken, short]).head(
                                        MAX_EXAMPLES).iterrows()],
                     "hours_min": int(per["count"].min()) if len(per) else 0}
    if known:
        for day in days:
            present = set(per.loc[day].index.astype(str)) if day in per.index.get_level_values(0) \
                else set()
            share = len(present & known) / len(known)
            if share < MIN_COVERAGE:
                missing = sorted(known - present)
                problems.append(f"{day}: only {share:.1%} of {len(known)} registry zones forecast "
                                f"(at least {MIN_COVERAGE:.0%} required); missing e.g. "
                                f"{missing[:MAX_EXAMPLES]}")
    if problems:
        return CheckOutcome(False, "; ".join(problems), details)
    return CheckOutcome(True, f"every {entity} forecast hour by hour for at least the day ahead",
                        details)


def _examples(rows: pd.DataFrame, spec: TableSpec) -> list[str]:
    cols = [c for c in spec.names if c in rows.columns]
    return [
        ", ".join(f"{c}={row[c]}" for c in cols)
        for _, row in rows.head(MAX_EXAMPLES).iterrows()
    ]
