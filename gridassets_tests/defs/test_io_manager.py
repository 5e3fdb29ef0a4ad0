"""The IO manager writes a partition fully or not at all, into a real warehouse of either backend
(the DuckDB file, Delta tables)."""

import dagster as dg
import pandas as pd
import pytest
from deltalake import DeltaTable

from gridassets.defs.io_manager import WarehouseIOManager
from gridassets.defs.partitions import daily_partitions
from gridassets.defs.resources import GridSettings
from gridassets_tests.conftest import read_warehouse

DAY = "2025-06-01"


def make_asset(frame_for_day):
    @dg.asset(name="feeder_load", partitions_def=daily_partitions,
              metadata={"partition_expr": "timestamp", "schema": "raw"})
    def feeder_load(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return frame_for_day(context.partition_key)

    return feeder_load


def day_frame(day: str, load: float = 1.0, **extra) -> pd.DataFrame:
    frame = pd.DataFrame({
        "circuit_id": "C1",
        "timestamp": pd.date_range(day, periods=24, freq="h"),
        "load_mw": load,
    })
    for k, v in extra.items():
        frame[k] = v
    return frame


def run(settings: GridSettings, frame_for_day, partition=DAY, raise_on_error=True):
    return dg.materialize(
        [make_asset(frame_for_day)], partition_key=partition,
        resources={"io_manager": WarehouseIOManager(settings=settings)},
        raise_on_error=raise_on_error,
    )


def rows(settings, sql="select load_mw, count(*) from raw.feeder_load group by 1 order by 1"):
    with read_warehouse(settings) as con:
        return con.execute(sql).fetchall()


def kept(settings: GridSettings) -> tuple[list, int | None]:
    """What a failed write must leave as it was: every row of raw.feeder_load, ordered, and on
    the Delta backend the table's version (None on DuckDB)."""
    resolved = settings.resolve()
    version = None
    if resolved.backend == "delta":
        version = DeltaTable(str(resolved.lake_dir / "raw" / "feeder_load")).version()
    return rows(settings, "select * from raw.feeder_load order by all"), version


def test_rewrite_replaces_a_partition_without_duplicates(settings):
    run(settings, lambda d: day_frame(d, 1.0))
    run(settings, lambda d: day_frame(d, 2.0))
    run(settings, lambda d: day_frame(d, 3.0), partition="2025-06-02")
    assert rows(settings) == [(2.0, 24), (3.0, 24)]
    types = rows(settings, "select data_type from information_schema.columns "
                           "where table_name = 'feeder_load' and column_name = 'timestamp'")
    assert types == [("TIMESTAMP",)]


@pytest.mark.parametrize(
    "bad_frame, words",
    [
        # the insert itself fails after the delete ran: a value DuckDB cannot cast
        (lambda d: day_frame(d, 1.0).assign(load_mw="not a number"), "Conversion Error"),
        # a value that does not fit the stored column's type
        (lambda d: day_frame(d, 5.0).assign(load_mw=[[1.0, 2.0]] * 24), "Conversion Error"),
        # a row outside the partition would never be deleted on a rewrite
        (lambda d: pd.concat([day_frame(d, 5.0), day_frame("2025-06-05", 5.0)]),
         "fall outside the partition being written"),
    ],
    ids=["failed-insert", "wrong-type", "rows-outside-partition"],
)
def test_failed_write_leaves_the_partition_untouched(settings, bad_frame, words):
    run(settings, lambda d: day_frame(d, 1.0))
    before = kept(settings)
    result = run(settings, bad_frame, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert words in failure.message or words in str(failure.cause)
    assert rows(settings) == [(1.0, 24)]
    assert kept(settings) == before


def test_empty_partition_creates_the_table_and_clears_old_rows(settings):
    run(settings, lambda d: day_frame(d, 1.0).head(0))
    assert rows(settings) == []
    run(settings, lambda d: day_frame(d, 1.0))
    run(settings, lambda d: day_frame(d, 1.0).head(0))
    assert rows(settings) == []


def test_a_new_column_is_added_and_older_partitions_keep_theirs(settings):
    run(settings, lambda d: day_frame(d, 1.0))
    run(settings, lambda d: day_frame(d, 2.0, quality="measured"), partition="2025-06-02")
    quality = "select quality, count(*) from raw.feeder_load group by 1 order by 1"
    assert rows(settings, quality) == [("measured", 24), (None, 24)]


def test_an_empty_first_write_stores_a_timestamp_column_later_writes_fit(settings):
    # An empty frame's columns carry no type (they arrive as text): the slice is still judged
    # as time, and the table is created with a timestamp partition column.
    empty = lambda d: pd.DataFrame({"circuit_id": pd.Series(dtype=object),  # noqa: E731
                                    "timestamp": pd.Series(dtype=object),
                                    "load_mw": pd.Series(dtype=float)})
    run(settings, empty)
    types = rows(settings, "select data_type from information_schema.columns "
                           "where table_name = 'feeder_load' and column_name = 'timestamp'")
    assert types == [("TIMESTAMP",)]
    run(settings, lambda d: day_frame(d, 1.0))
    run(settings, empty)
    assert rows(settings) == []
