"""Telemetry integrity through real runs: a replayed day and a frozen oil sensor written into
landing files (clean simulator days, tampered by hand) are flagged with reasons, kept out of the
features, written to the security team's CSV and log, and warned about in the UI's check; nothing
else is flagged. Both backends."""

import json
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from gridassets.defs.features.assets import transformer_daily_stats
from gridassets.defs.fleet.assets import circuits, transformers
from gridassets.defs.integrity.assets import telemetry_integrity, telemetry_signals
from gridassets.defs.raw.assets import raw_assets
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.domain.export import write_daily, write_registry
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import CIRCUITS, RAW_TABLES, TRANSFORMER_TELEMETRY, TRANSFORMERS
from gridassets_tests.conftest import SMALL_FLEET, read_warehouse

FIRST, LAST = date(2025, 3, 1), date(2025, 3, 10)
REPLAYED_DAY, SOURCE_DAY = LAST, date(2025, 3, 6)
FROZEN_FROM = date(2025, 3, 8)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@pytest.fixture
def landing(tmp_path, backend) -> tuple[GridSettings, str, str]:
    """Clean simulated days as landing files; one unit's last day replays an earlier one and
    another's oil sensor freezes for the last three days."""
    settings = GridSettings(source="landing", data_dir=str(tmp_path / "data"), backend=backend,
                            **SMALL_FLEET)
    folder = settings.resolve().landing_dir
    sim = FleetSimulator(FleetConfig(threats=False, **SMALL_FLEET))
    write_registry(CIRCUITS, sim.circuits(), folder)
    write_registry(TRANSFORMERS, sim.transformers(), folder)
    telemetry = {d: sim.transformer_telemetry(d) for d in days(FIRST, LAST)}
    busy = telemetry[LAST].groupby("transformer_id")["load_pct"].mean().sort_values()
    replayed, frozen = busy.index[-1], busy.index[-2]

    day = telemetry[REPLAYED_DAY]
    source = telemetry[SOURCE_DAY]
    resent = source[source["transformer_id"] == replayed].assign(
        timestamp=lambda f: f["timestamp"] + pd.Timedelta(days=(REPLAYED_DAY - SOURCE_DAY).days))
    telemetry[REPLAYED_DAY] = pd.concat([day[day["transformer_id"] != replayed], resent],
                                        ignore_index=True)
    stuck = float(telemetry[FROZEN_FROM].query("transformer_id == @frozen")["oil_temp_c"].iloc[0])
    for d in days(FROZEN_FROM, LAST):
        t = telemetry[d]
        t.loc[t["transformer_id"] == frozen, "oil_temp_c"] = stuck
    for d in days(FIRST, LAST):
        for spec in RAW_TABLES:
            frame = telemetry[d] if spec is TRANSFORMER_TELEMETRY else getattr(sim, spec.name)(d)
            write_daily(spec, frame, folder, d)
    return settings, replayed, frozen


def run(settings: GridSettings, assets, first: date, last: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, resources=build_resources(settings), tags={
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat()})


def test_a_replayed_day_and_a_frozen_oil_sensor_in_landing_files_are_flagged(landing):
    settings, replayed, frozen = landing
    assert dg.materialize([circuits, transformers], resources=build_resources(settings)).success
    assert run(settings, raw_assets, FIRST, LAST).success
    assert run(settings, [telemetry_signals], FIRST, LAST).success
    result = run(settings, [telemetry_integrity], FIRST, LAST)
    assert result.success
    warning = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_flags")
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN

    with read_warehouse(settings) as con:
        flagged = con.execute(
            'select device_id, cast(date as date) as day, "check", reason, quarantine '
            "from integrity.telemetry_integrity where flagged order by day, device_id").fetchdf()
    found = {(r.device_id, r.day.date() if hasattr(r.day, "date") else r.day, r.check)
             for r in flagged.itertuples()}
    assert found == {(replayed, REPLAYED_DAY, "repeat"),
                     *((frozen, d, "frozen") for d in days(FROZEN_FROM, LAST))}, flagged
    reasons = dict(zip(flagged["device_id"] + flagged["check"], flagged["reason"]))
    assert f"repeat {SOURCE_DAY} hour by hour" in reasons[replayed + "repeat"]
    assert "a replayed day" in reasons[replayed + "repeat"]
    assert "oil temperature stuck at" in reasons[frozen + "frozen"]

    # the security team's CSV and log for the last day
    outputs = settings.resolve().outputs_dir / "integrity"
    sheet = pd.read_csv(outputs / f"{LAST}.csv")
    assert set(sheet["device_id"]) == {replayed, frozen}
    assert {"date", "device_type", "check", "score", "reason", "quarantine"} <= set(sheet.columns)
    lines = [json.loads(x) for x in (settings.resolve().ops_dir / "integrity.log")
             .read_text().splitlines()]
    assert [x["date"] for x in lines] == [str(d) for d in days(FROZEN_FROM, LAST)]
    assert lines[-1]["flagged_devices"] == 2

    # quarantine: the replayed day is left out whole, the frozen days' oil readings only
    assert run(settings, [transformer_daily_stats], FIRST, LAST).success
    with read_warehouse(settings) as con:
        stats = con.execute(
            "select transformer_id, cast(date as date) as day, hours, oil_mean_c, load_mean_pct "
            "from features.transformer_daily_stats where transformer_id in (?, ?)",
            [replayed, frozen]).fetchdf()
    by = {(r.transformer_id, pd.Timestamp(r.day).date()): r for r in stats.itertuples()}
    assert (replayed, REPLAYED_DAY) not in by and (replayed, REPLAYED_DAY - timedelta(1)) in by
    for d in days(FROZEN_FROM, LAST):
        assert pd.isna(by[(frozen, d)].oil_mean_c) and by[(frozen, d)].load_mean_pct > 0
    assert pd.notna(by[(frozen, FROZEN_FROM - timedelta(1))].oil_mean_c)


def test_features_refuse_a_day_integrity_has_not_judged(landing):
    settings, _, _ = landing
    assert dg.materialize([circuits, transformers], resources=build_resources(settings)).success
    assert run(settings, raw_assets, FIRST, FIRST).success
    result = dg.materialize([transformer_daily_stats], resources=build_resources(settings),
                            partition_key=FIRST.isoformat(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "no telemetry_integrity for 2025-03-01" in str(failure.event_specific_data.error)


def test_a_run_of_many_days_judges_each_day_against_the_days_before_it_in_the_run(landing):
    """A day's references come from the days before it, published or earlier in the same run:
    the signals of one ten-day run equal those of ten one-day runs in turn."""
    settings, _, _ = landing
    assert dg.materialize([circuits, transformers], resources=build_resources(settings)).success
    assert run(settings, raw_assets, FIRST, LAST).success

    def signals() -> pd.DataFrame:
        with read_warehouse(settings) as con:
            return con.execute("select * from integrity.telemetry_signals "
                               "order by date, device_type, device_id").fetchdf()

    assert run(settings, [telemetry_signals], FIRST, LAST).success
    in_one_run = signals()
    last = in_one_run[(in_one_run["date"] == pd.Timestamp(LAST))
                      & (in_one_run["device_type"] == "transformer")]
    # the last day has its references, all from days of the same run
    assert last["thermal_reference_c"].notna().mean() > 0.9, last
    for d in days(FIRST, LAST):
        assert run(settings, [telemetry_signals], d, d).success
    pd.testing.assert_frame_equal(in_one_run, signals())
