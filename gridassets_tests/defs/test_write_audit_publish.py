"""Write-audit-publish: a partition is replaced only by rows that passed every blocking check.

Each case is one an operator hit: good landed data replaced by a header-only file, by absurd
values, by a file of unknown circuits, and a registry replaced by one with dangling references.
After each refusal the stored rows are exactly what they were, and on the Delta backend the table
has no new version. Every case runs on both backends.
"""

import shutil

import dagster as dg
import pandas as pd
import pytest
from deltalake import DeltaTable

from gridassets.defs.fleet.assets import circuits, transformers
from gridassets.defs.raw.assets import raw_assets
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.storage.backend import open_warehouse
from gridassets_tests.conftest import REPO_ROOT, read_warehouse

FEEDER_LOAD = next(a for a in raw_assets if a.key.path == ["feeder_load"])
DAY, NEXT = "2025-03-13", "2025-03-14"
RANGE = {"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": NEXT}


@pytest.fixture
def landed(tmp_path, backend) -> GridSettings:
    """The committed landing sample (4 circuits) loaded once: registry and both days."""
    data = tmp_path / "data"
    shutil.copytree(REPO_ROOT / "data" / "landing-sample", data / "landing")
    settings = GridSettings(source="landing", data_dir=str(data), backend=backend)
    resources = build_resources(settings)
    assert dg.materialize([circuits, transformers], resources=resources).success
    assert dg.materialize([FEEDER_LOAD], resources=resources, tags=RANGE).success
    return settings


def stored(settings: GridSettings, sql: str = "select * from raw.feeder_load order by all"):
    with read_warehouse(settings) as con:
        return con.execute(sql).fetchall()


def kept(settings: GridSettings, table: str = "raw.feeder_load") -> tuple[list, int | None]:
    """What a refused write must leave as it was: every stored row of `table`, ordered, and on
    the Delta backend the table's version (None on DuckDB)."""
    resolved = settings.resolve()
    version = None
    if resolved.backend == "delta":
        version = DeltaTable(str(resolved.lake_dir.joinpath(*table.split(".")))).version()
    return stored(settings, f"select * from {table} order by all"), version


def landing_file(settings: GridSettings, day: str = DAY):
    return settings.resolve().landing_dir / "feeder_load" / f"{day}.csv"


def materialize_feeder_load(settings, **kw) -> dg.ExecuteInProcessResult:
    kw.setdefault("partition_key", DAY)
    return dg.materialize([FEEDER_LOAD], resources=build_resources(settings),
                          raise_on_error=False, **kw)


def failure_message(result) -> str:
    return result.get_step_failure_events()[0].event_specific_data.error.message


def test_a_header_only_file_is_refused_and_the_partition_kept(landed):
    before = kept(landed)
    assert len(before[0]) == 4 * 24 * 2
    landing_file(landed).write_text("circuit_id,timestamp,load_mw\n")
    result = materialize_feeder_load(landed)
    assert not result.success
    message = failure_message(result)
    assert "feeder_load 2025-03-13: check 'completeness' failed" in message
    assert "only 0.0% of 4 registry circuit_ids reported" in message
    assert "Nothing was written" in message
    completeness = next(c for c in result.get_asset_check_evaluations()
                        if c.check_name == "completeness")
    assert not completeness.passed  # the UI shows the refused check
    assert kept(landed) == before
    assert result.get_asset_materialization_events() == []


@pytest.mark.parametrize("value", ["1e308", "-5000"])
def test_absurd_values_are_refused_before_they_are_stored(landed, value):
    before = kept(landed)
    frame = pd.read_csv(landing_file(landed), dtype=str)
    frame.loc[5, "load_mw"] = value
    frame.to_csv(landing_file(landed), index=False)
    result = materialize_feeder_load(landed)
    assert not result.success
    assert "check 'ranges' failed: load_mw: 1 value(s) outside" in failure_message(result)
    assert kept(landed) == before


def test_one_bad_day_refuses_the_whole_range_run(landed):
    before = kept(landed)
    good = pd.read_csv(landing_file(landed, DAY), dtype=str)
    good["load_mw"] = "1.5"  # a valid new version of the first day
    good.to_csv(landing_file(landed, DAY), index=False)
    landing_file(landed, NEXT).write_text("circuit_id,timestamp,load_mw\n")
    result = materialize_feeder_load(landed, partition_key=None, tags=RANGE)
    assert not result.success
    assert "feeder_load 2025-03-13..2025-03-14: check 'completeness' failed" in \
        failure_message(result)
    assert kept(landed) == before  # neither day replaced


def test_a_file_far_too_large_for_its_day_is_refused_unread(landed):
    before = kept(landed)
    rows = 50_000
    frame = pd.DataFrame({
        "circuit_id": [f"X{i:06d}" for i in range(rows)],
        "timestamp": "2025-03-13T05:00:00",
        "load_mw": "1.0",
    })
    frame.to_csv(landing_file(landed), index=False)
    result = materialize_feeder_load(landed)
    assert not result.success
    message = failure_message(result)
    assert str(landing_file(landed)) in message
    assert "more than" in message  # refused after reading the first rows only
    assert kept(landed) == before


def test_passing_checks_attach_to_the_new_materialization(landed):
    result = materialize_feeder_load(landed)
    assert result.success
    [materialization] = result.get_asset_materialization_events()
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"schema", "ranges", "completeness", "duplicates"}
    for check in checks:
        assert check.passed
        assert check.target_materialization_data.run_id == result.run_id
    assert materialization.materialization.metadata["dagster/partition_row_count"].value == 96


def test_every_publish_is_recorded_with_its_run_and_rows(landed):
    result = materialize_feeder_load(landed, partition_key=None, tags=RANGE)
    assert result.success
    # In ops.partition_publishes on DuckDB, in the commit's info on Delta.
    published = open_warehouse(landed.resolve()).published_by_run(result.run_id)
    assert [(p.asset, p.partition_key, p.rows) for p in published] == [
        ("feeder_load", DAY, 96), ("feeder_load", NEXT, 96)]


def test_a_registry_with_dangling_references_is_refused(landed):
    before = kept(landed, "fleet.transformers")
    path = landed.resolve().landing_dir / "transformers.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.loc[0, "circuit_id"] = "NOT_A_CIRCUIT"
    frame.to_csv(path, index=False)
    result = dg.materialize([transformers], resources=build_resources(landed),
                            raise_on_error=False)
    assert not result.success
    assert "transformers registry: check 'references' failed: 1 transformer(s) on circuits " \
           "not in the registry" in failure_message(result)
    assert kept(landed, "fleet.transformers") == before
