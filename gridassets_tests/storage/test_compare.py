"""The comparison of two warehouses over a range of days (the scale-out demo's check) finds a
missing partition, a doubled row and a changed value, and nothing where the two agree."""

from datetime import date

import pandas as pd

from gridassets.storage.compare import compare_tables
from gridassets.storage.copy import Partitioning
from gridassets.storage.delta import DeltaWarehouse
from gridassets_tests.storage.test_delta import frame, target

SCHEME = {"feeder_load": Partitioning("timestamp", "day")}
DAYS = ("2025-06-01", "2025-06-02")


def lake(path, frames: dict[str, pd.DataFrame]) -> DeltaWarehouse:
    store = DeltaWarehouse(path)
    for key, rows in frames.items():
        store.publish(target(key), rows, asset="feeder_load", run_id="r")
    return store


def test_equal_warehouses_compare_clean_and_each_difference_is_named(tmp_path):
    same = {k: frame(k, "w") for k in DAYS}
    expected = lake(tmp_path / "a", same)
    checked, problems = compare_tables(expected, lake(tmp_path / "b", same),
                                       date(2025, 6, 1), date(2025, 6, 2), SCHEME)
    assert problems == [] and "1 tables, 2 partitions, 96 rows" in checked

    doubled = frame(DAYS[1], "w")
    changed = frame(DAYS[0], "w")
    changed.loc[5, "load_mw"] += 1e-6
    other = lake(tmp_path / "c", {DAYS[0]: changed,
                                  DAYS[1]: pd.concat([doubled, doubled.head(1)])})
    _, problems = compare_tables(expected, other, date(2025, 6, 1), date(2025, 6, 2), SCHEME)
    assert "feeder_load 2025-06-02: 49 rows, the embedded build has 48" in problems
    missing = lake(tmp_path / "d", {DAYS[0]: frame(DAYS[0], "w")})
    _, problems = compare_tables(expected, missing, date(2025, 6, 1), date(2025, 6, 2), SCHEME)
    assert "feeder_load 2025-06-02: 0 rows, the embedded build has 48" in problems

    # A value off by more than 1e-9 (rows otherwise equal) is named with its column.
    other = lake(tmp_path / "e", {DAYS[0]: changed, DAYS[1]: frame(DAYS[1], "w")})
    _, problems = compare_tables(expected, other, date(2025, 6, 1), date(2025, 6, 2), SCHEME)
    assert problems == ["feeder_load.load_mw: 1 of 96 values differ"]
