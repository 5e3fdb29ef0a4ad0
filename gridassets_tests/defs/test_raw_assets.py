"""Raw assets materialized for real into a temporary warehouse (either backend), in both source
modes."""

from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from deltalake import DeltaTable

from gridassets.defs.fleet.assets import circuits, transformers
from gridassets.defs.raw.assets import raw_assets
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.domain.export import write_daily, write_registry
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import CIRCUITS, RAW_TABLES, TRANSFORMERS
from gridassets_tests.conftest import RAW, SMALL_FLEET, read_warehouse

ALL = [circuits, transformers, *raw_assets]


def run(resources, instance=None, **kw) -> dg.ExecuteInProcessResult:
    return dg.materialize(raw_assets, resources=resources, instance=instance, **kw)


def table(settings: GridSettings, name: str) -> pd.DataFrame:
    with read_warehouse(settings) as con:
        frame = con.execute(f"select * from raw.{name}").fetchdf()
    key = [c for c in frame.columns if c.endswith("_id") or c == "zone"][:1]
    time_col = [c for c in ("timestamp", "start_ts", "failed_at") if c in frame.columns][:1]
    if "issue_date" in frame.columns:
        key, time_col = ["issue_date", "zone"], ["valid_ts"]
    return frame.sort_values(key + time_col).reset_index(drop=True)


def counts_by_day(settings: GridSettings, name: str, time_col: str) -> dict:
    with read_warehouse(settings) as con:
        rows = con.execute(
            f"select cast({time_col} as date), count(*) from raw.{name} group by 1 order by 1"
        ).fetchall()
    return dict(rows)


def test_a_partition_is_written_checked_and_read_back(settings, resources):
    result = run(resources, partition_key="2025-06-01")
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 * len(RAW) and all(c.passed for c in checks)
    telemetry = table(settings, "transformer_telemetry")
    assert len(telemetry) == SMALL_FLEET["n_transformers"] * 24
    assert telemetry["timestamp"].min() == pd.Timestamp("2025-06-01 00:00")
    assert telemetry["timestamp"].max() == pd.Timestamp("2025-06-01 23:00")
    assert len(table(settings, "feeder_load")) == SMALL_FLEET["n_circuits"] * 24


def test_materializing_twice_leaves_no_duplicates(settings, resources):
    run(resources, partition_key="2025-06-01")
    first = {name: table(settings, name) for name in RAW}
    run(resources, partition_key="2025-06-01")
    for name in RAW:
        pd.testing.assert_frame_equal(table(settings, name), first[name])


def test_a_range_runs_as_one_run(settings, resources, instance):
    result = run(resources, instance=instance, tags={
        "dagster/asset_partition_range_start": "2025-06-01",
        "dagster/asset_partition_range_end": "2025-06-03",
    })
    assert result.success
    assert len(instance.get_runs()) == 1
    per_day = counts_by_day(settings, "feeder_load", "timestamp")
    assert list(per_day) == [date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)]
    assert set(per_day.values()) == {SMALL_FLEET["n_circuits"] * 24}


def test_partitions_are_identical_whatever_order_they_are_built_in(tmp_path, backend):
    forward = GridSettings(data_dir=str(tmp_path / "a"), backend=backend, **SMALL_FLEET)
    backward = GridSettings(data_dir=str(tmp_path / "b"), backend=backend, **SMALL_FLEET)
    for day in ("2025-06-01", "2025-06-02", "2025-06-03"):
        run(build_resources(forward), partition_key=day)
    for day in ("2025-06-03", "2025-06-01", "2025-06-02"):
        run(build_resources(backward), partition_key=day)
    for name in RAW:
        pd.testing.assert_frame_equal(table(forward, name), table(backward, name))


def delta_version(settings: GridSettings, name: str) -> int | None:
    """The Delta version of raw.`name` (None on the DuckDB backend): a refused write adds none."""
    resolved = settings.resolve()
    if resolved.backend != "delta":
        return None
    return DeltaTable(str(resolved.lake_dir / "raw" / name)).version()


def test_registry_assets_store_the_fleet(settings, resources):
    assert dg.materialize([circuits, transformers], resources=resources).success
    with read_warehouse(settings) as con:
        n_circuits = con.execute("select count(*) from fleet.circuits").fetchall()[0][0]
        zones = {z for (z,) in con.execute("select distinct zone from fleet.circuits").fetchall()}
    assert n_circuits == SMALL_FLEET["n_circuits"]
    assert zones <= set(FleetConfig().zones)


# --- landing mode -------------------------------------------------------------------------

DAYS = [date(2025, 6, 1), date(2025, 6, 2)]


def export(landing: Path) -> FleetSimulator:
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    write_registry(CIRCUITS, sim.circuits(), landing)
    write_registry(TRANSFORMERS, sim.transformers(), landing)
    for day in DAYS:
        for spec in RAW_TABLES:
            write_daily(spec, getattr(sim, spec.name)(day), landing, day)
    return sim


@pytest.fixture
def landing_settings(tmp_path, backend) -> GridSettings:
    settings = GridSettings(source="landing", data_dir=str(tmp_path / "data"), backend=backend)
    export(settings.resolve().landing_dir)
    return settings


def test_landing_files_load_like_the_synthetic_source(landing_settings, tmp_path, backend):
    resources = build_resources(landing_settings)
    assert dg.materialize(ALL, resources=resources, partition_key="2025-06-01",
                          selection=RAW).success
    assert dg.materialize([circuits, transformers], resources=resources).success
    synthetic = GridSettings(data_dir=str(tmp_path / "synthetic"), backend=backend, **SMALL_FLEET)
    run(build_resources(synthetic), partition_key="2025-06-01")
    for name in ("feeder_load", "weather_observations", "transformer_telemetry"):
        landed, generated = table(landing_settings, name), table(synthetic, name)
        pd.testing.assert_frame_equal(landed, generated, check_exact=False, rtol=1e-5,
                                      check_dtype=False)


def test_a_malformed_file_fails_the_partition_and_keeps_earlier_rows(landing_settings):
    resources = build_resources(landing_settings)
    assert run(resources, partition_key="2025-06-01").success
    before = table(landing_settings, "feeder_load"), delta_version(landing_settings, "feeder_load")

    path = landing_settings.resolve().landing_dir / "feeder_load" / "2025-06-01.csv"
    lines = path.read_text().splitlines()
    cells = lines[7].split(",")
    cells[2] = "12,5"  # a decimal comma: one column too many on data row 7
    lines[7] = ",".join(cells)
    lines[9] = lines[9].rsplit(",", 1)[0] + ",n/a"
    path.write_text("\n".join(lines) + "\n")

    result = dg.materialize([next(a for a in raw_assets if a.key.path == ["feeder_load"])],
                            resources=resources, partition_key="2025-06-01", raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert str(path) in message
    assert "row 7: has 4 fields where the header has 3" in message
    pd.testing.assert_frame_equal(table(landing_settings, "feeder_load"), before[0])
    assert delta_version(landing_settings, "feeder_load") == before[1]


def test_a_missing_landing_file_names_where_it_was_expected(landing_settings):
    resources = build_resources(landing_settings)
    result = run(resources, partition_key="2025-06-05", raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "2025-06-05.csv" in message and "missing file" in message


def test_out_of_range_values_fail_the_blocking_check(landing_settings):
    path = landing_settings.resolve().landing_dir / "weather_observations" / "2025-06-01.csv"
    frame = pd.read_csv(path)
    frame.loc[3, "wind_gust_mph"] = 900
    frame.to_csv(path, index=False)
    weather = next(a for a in raw_assets if a.key.path == ["weather_observations"])
    result = dg.materialize([weather], resources=build_resources(landing_settings),
                            partition_key="2025-06-01", raise_on_error=False)
    ranges = next(c for c in result.get_asset_check_evaluations() if c.check_name == "ranges")
    assert not ranges.passed
    assert "wind_gust_mph: 1 value(s) outside [0, 250]" in ranges.description


def test_the_committed_landing_sample_loads_and_passes_every_check(tmp_path, backend):
    import shutil

    from gridassets_tests.conftest import REPO_ROOT

    data = tmp_path / "data"
    shutil.copytree(REPO_ROOT / "data" / "landing-sample", data / "landing")
    settings = GridSettings(source="landing", data_dir=str(data), backend=backend)
    resources = build_resources(settings)
    assert dg.materialize([circuits, transformers], resources=resources).success
    result = run(resources, tags={"dagster/asset_partition_range_start": "2025-03-13",
                                  "dagster/asset_partition_range_end": "2025-03-14"})
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    with read_warehouse(settings) as con:
        assert con.execute("select count(*) from raw.outage_events").fetchall() == [(2,)]
        assert con.execute("select count(*) from raw.transformer_telemetry").fetchall() == [
            (40 * 48,)]
