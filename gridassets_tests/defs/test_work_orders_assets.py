"""The work orders at work on the demo warehouse of either backend: two consecutive days, the
second carrying the first's open orders over; a day whose day before lost its orders refused;
and `python -m gridassets run` exporting them."""

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from gridassets.defs.resources import GridSettings, build_resources
from gridassets.defs.scores.work_orders import work_orders
from gridassets.domain import work_orders as wo
from gridassets.storage.backend import open_warehouse
from gridassets.storage.publish import PartitionWindow, Slice
from gridassets_tests.conftest import TEST_FLEET, TEST_SCORE_DAYS, TEST_WINDOW, read_warehouse
from gridassets_tests.defs.test_model_assets import copy_demo

LAST_DAY = pd.Timestamp(TEST_WINDOW[1])
FIRST_SCORED = LAST_DAY - pd.Timedelta(days=TEST_SCORE_DAYS - 1)


@pytest.fixture
def settings(tmp_path, backend, request) -> GridSettings:
    data = copy_demo(request, backend, tmp_path / "data")
    return GridSettings(data_dir=str(data), backend=backend, **TEST_FLEET)


def materialize(settings, day: pd.Timestamp, **kw) -> dg.ExecuteInProcessResult:
    return dg.materialize([work_orders], resources=build_resources(settings),
                          partition_key=f"{day:%Y-%m-%d}", **kw)


def csv(settings, day: pd.Timestamp) -> pd.DataFrame:
    return pd.read_csv(settings.resolve().outputs_dir / "work_orders" / f"{day:%Y-%m-%d}.csv",
                       dtype={"transformer_id": str, "circuit_id": str})


def stored(settings, day: pd.Timestamp) -> pd.DataFrame:
    with read_warehouse(settings) as con:
        return con.execute("select * from scores.work_orders where date = ? order by priority",
                           [day]).fetchdf()


def subjects(frame: pd.DataFrame) -> pd.Series:
    return frame["kind"] + "/" + frame["transformer_id"].where(
        frame["kind"] == wo.INSPECT, frame["circuit_id"])


def test_two_days_export_orders_and_carry_the_first_days_over(settings):
    first, second = FIRST_SCORED, FIRST_SCORED + pd.Timedelta(days=1)
    result = materialize(settings, first)  # the day before has no list: every order is new
    assert result.success
    day1 = csv(settings, first)
    assert len(day1) and list(day1.columns) == list(wo.COLUMNS)
    assert set(day1["status"]) == {wo.NEW} and set(day1["open_since"]) == {f"{first:%Y-%m-%d}"}
    assert list(day1["priority"]) == list(range(1, len(day1) + 1))
    assert day1["customer_minutes_7d"].is_monotonic_decreasing
    assert set(day1["kind"]) & {wo.INSPECT} and set(day1["kind"]) - {wo.INSPECT}
    with read_warehouse(settings) as con:
        hi = con.execute("select count(*) from scores.transformer_risk where date = ? and "
                         "health_index in ('HI4', 'HI5')", [first]).fetchall()[0][0]
    assert (day1["kind"] == wo.INSPECT).sum() == hi
    assert list(stored(settings, first)["order_id"]) == list(day1["order_id"])

    result = materialize(settings, second)
    assert result.success
    day2 = csv(settings, second)
    again = day2[subjects(day2).isin(set(subjects(day1)))]
    assert len(again), "no order of the first day is still asked for the next"
    assert set(again["status"]) == {wo.CARRIED_OVER}
    assert set(again["open_since"]) == {f"{first:%Y-%m-%d}"} and set(again["days_open"]) == {2}
    ids = dict(zip(subjects(day1), day1["order_id"]))
    assert list(again["order_id"]) == [ids[s] for s in subjects(again)]
    fresh = day2[~subjects(day2).isin(set(subjects(day1)))]
    assert set(fresh["status"]) <= {wo.NEW}
    assert all(i.startswith(f"WO-{second:%Y-%m-%d}-") for i in fresh["order_id"])

    [materialization] = result.asset_materializations_for_node("work_orders")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["orders"] == len(day2) and meta["carried_over_orders"] == len(again)
    assert meta["new_orders"] == len(fresh)
    assert meta["closed_orders"] == len(set(subjects(day1)) - set(subjects(day2)))
    assert sum(n for c in meta["by_kind"].values() for n in c.values()) == len(day2)
    assert "| priority | order_id |" in meta["preview"]
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]


def test_a_day_whose_day_before_lost_its_orders_is_refused(settings):
    day = LAST_DAY
    before = day - pd.Timedelta(days=1)
    kept = stored(settings, day)
    assert len(kept)
    start = datetime(before.year, before.month, before.day)
    open_warehouse(settings.resolve()).publish(
        Slice("scores", "work_orders", "date", windows=(PartitionWindow(
            f"{before:%Y-%m-%d}", start, start + timedelta(days=1)),)),
        kept.iloc[0:0], asset="work_orders", run_id="test")  # the day before's orders deleted

    result = materialize(settings, day, raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert (f"work_orders {day:%Y-%m-%d}: no work_orders for {before:%Y-%m-%d}, whose list asks "
            "for") in message
    assert f"materialize work_orders for {before:%Y-%m-%d} first" in message
    pd.testing.assert_frame_equal(stored(settings, day), kept)
    assert not (settings.resolve().outputs_dir / "work_orders").exists()


@pytest.mark.duckdb_only
def test_the_run_command_builds_and_exports_the_orders(demo_data, backend):
    data, stdout = demo_data
    settings = GridSettings(data_dir=str(data), backend=backend, **TEST_FLEET)
    with read_warehouse(settings) as con:
        days = [d for (d,) in con.execute(
            "select distinct date from scores.work_orders order by 1").fetchall()]
    assert days == list(pd.date_range(FIRST_SCORED, LAST_DAY))
    last = csv(settings, LAST_DAY)
    assert list(last["order_id"]) == list(stored(settings, LAST_DAY)["order_id"])
    assert (last["status"] == wo.CARRIED_OVER).any()
    assert (pd.to_datetime(last["open_since"]) < LAST_DAY).any()
    assert "work orders" in stdout
