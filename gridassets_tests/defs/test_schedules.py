"""The schedules keep the graph current: the day after a day closes, its partition runs; on
Monday the new week's models train; everything is on by default."""

from datetime import datetime, timezone

import dagster as dg
import pytest

from gridassets.definitions import defs


def tick(name: str, when: datetime) -> list[dg.RunRequest]:
    schedule = defs.resolve_schedule_def(name)
    # An ephemeral instance: a disposed test instance would stay behind in Dagster's definitions
    # load context and break later tests that load definitions.
    context = dg.build_schedule_context(instance=dg.DagsterInstance.ephemeral(),
                                        scheduled_execution_time=when)
    return list(schedule.evaluate_tick(context).run_requests or [])


@pytest.mark.parametrize(
    "name, when, partition",
    [
        ("daily_graph_after_day_closes", datetime(2025, 6, 2, 1, 30, tzinfo=timezone.utc),
         "2025-06-01"),
        ("weekly_models_monday", datetime(2025, 6, 2, 3, 0, tzinfo=timezone.utc), "2025-06-02"),
    ],
)
def test_partitioned_schedules_request_the_right_partition(name, when, partition):
    [request] = tick(name, when)
    assert request.partition_key == partition


def test_the_daily_job_covers_every_daily_asset_and_nothing_weekly():
    job = defs.resolve_job_def("daily_graph")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"feeder_load", "transformer_health_features", "transformer_risk",
            "prioritized_circuits"} <= keys
    assert not keys & {"maintenance_model", "outage_model", "circuits", "storm_alerts"}


# Off until an operator switches it on: it updates the day-ahead models of the day before, which
# a fresh deployment does not have yet (docs/models.md, "The intraday refresh").
STOPPED_BY_DEFAULT = {"intraday_load_forecast_hourly"}


def test_schedules_and_sensors_run_by_default():
    for schedule in defs.schedules:
        expected = (dg.DefaultScheduleStatus.STOPPED if schedule.name in STOPPED_BY_DEFAULT
                    else dg.DefaultScheduleStatus.RUNNING)
        assert defs.resolve_schedule_def(schedule.name).default_status == expected, schedule.name
    assert STOPPED_BY_DEFAULT <= {s.name for s in defs.schedules}
    for sensor in defs.sensors:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, sensor.name


def test_daily_outputs_declare_their_freshness():
    graph = defs.resolve_asset_graph()
    for name in ("prioritized_circuits", "transformer_risk", "circuit_outage_risk",
                 "maintenance_model"):
        assert graph.get(dg.AssetKey(name)).freshness_policy is not None, name
