"""Are two warehouses equal over a range of days? Partition by partition, row by row.

Used by the scale-out demo and its tests: the days a scale-out backfill made must be the days the
embedded build made, each partition present exactly once. For every partitioned table of the graph
(daily tables over the days, weekly ones over the weeks the days fall in) the rows of each
partition are read from both, sorted by every column, and compared: the same number of rows, the
same columns in the same order, equal values (floats within 1e-9, relative or absolute). Columns
that say when a row was written, not what it holds (`trained_at`), and the checksum of a model
file's bytes (`artifact_sha256`: pickled scikit-learn trees carry uninitialised padding, so the
same model's file differs from one training to the next) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from gridassets.settings import Settings
from gridassets.storage.backend import Warehouse, open_warehouse
from gridassets.storage.copy import Partitioning, partitioning_from_definitions

NOT_CONTENT = {"trained_at", "artifact_sha256"}
TOLERANCE = 1e-9


def _keys(scheme: Partitioning, first: date, last: date) -> list[str] | None:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if scheme.period == "day":
        return [d.isoformat() for d in days]
    if scheme.period == "week":
        return sorted({(d - timedelta(days=d.weekday())).isoformat() for d in days})
    return None  # storms: not a function of days


def _tables(store: Warehouse) -> dict[str, str]:
    """table name -> schema.table."""
    return {qualified.split(".", 1)[1]: qualified for qualified in store.tables()}


def _read(store: Warehouse, qualified: str, scheme: Partitioning, keys: Sequence[str]
          ) -> pd.DataFrame:
    with store.connect(read_only=True) as con:
        frame = con.execute(
            f"select {scheme.key_sql()} as _key, * from {qualified} "  # sql-identifier: a table the warehouse lists
            f"where {scheme.key_sql()} in (select unnest(?::varchar[]))", [list(keys)]).df()
    return frame.drop(columns=[c for c in frame.columns if c in NOT_CONTENT])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), kind="mergesort",
                             na_position="last").reset_index(drop=True)


def _unequal(a: pd.Series, b: pd.Series) -> int:
    if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
        x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        close = np.isclose(x, y, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True)
        return int((~close).sum())
    same = (a == b) | (a.isna() & b.isna())
    return int((~same).sum())


def compare_tables(expected: Warehouse, actual: Warehouse, first: date, last: date,
                   partitioning: dict[str, Partitioning] | None = None
                   ) -> tuple[str, list[str]]:
    """(what was checked, problems) for every partitioned table over [first, last]."""
    partitioning = partitioning or partitioning_from_definitions()
    want, have = _tables(expected), _tables(actual)
    problems: list[str] = []
    tables = partitions = rows = 0
    for name, scheme in sorted(partitioning.items()):
        keys = _keys(scheme, first, last)
        if keys is None or name not in want:
            continue
        if name not in have:
            problems.append(f"{name}: missing")
            continue
        a = _read(expected, want[name], scheme, keys)
        b = _read(actual, have[name], scheme, keys)
        tables += 1
        if list(a.columns) != list(b.columns):
            problems.append(f"{name}: columns {list(b.columns)} instead of {list(a.columns)}")
            continue
        counts_a, counts_b = a["_key"].value_counts(), b["_key"].value_counts()
        for key in sorted(set(counts_a.index) | set(counts_b.index)):
            n_a, n_b = int(counts_a.get(key, 0)), int(counts_b.get(key, 0))
            if n_a != n_b:
                problems.append(f"{name} {key}: {n_b:,} rows, the embedded build has {n_a:,}")
        partitions += len(counts_a)
        rows += len(a)
        if len(a) != len(b):
            continue
        a, b = _sorted(a), _sorted(b)
        for column in a.columns:
            bad = _unequal(a[column], b[column])
            if bad:
                problems.append(f"{name}.{column}: {bad:,} of {len(a):,} values differ")
    checked = (f"{tables} tables, {partitions} partitions, {rows:,} rows compared over "
               f"{first}..{last}")
    return checked, problems


def compare_days(expected_dir: Path, actual_dir: Path, first: date, last: date
                 ) -> tuple[str, list[str]]:
    """compare_tables on the Delta warehouses of two data folders."""
    def store(folder: Path) -> Warehouse:
        return open_warehouse(Settings(data_dir=Path(folder), backend="delta"))

    return compare_tables(store(expected_dir), store(actual_dir), first, last)
