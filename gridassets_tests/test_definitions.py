"""The one Definitions object loads, and every asset says what it is and how it runs."""

import dagster as dg

from gridassets.definitions import defs
from gridassets.defs.policies import DUCKDB_POOL

CONTRACT_ASSETS = {"circuits", "transformers", "transformer_telemetry", "feeder_load",
                   "weather_observations", "outage_events", "transformer_failures"}


def asset_nodes():
    return list(defs.resolve_asset_graph().asset_nodes)


def test_definitions_load_with_every_contract_asset():
    keys = {n.key.to_user_string() for n in asset_nodes()}
    assert CONTRACT_ASSETS <= keys
    defs.resolve_implicit_global_asset_job_def()


def test_every_asset_is_described_owned_grouped_and_kinded():
    for node in asset_nodes():
        name = node.key.to_user_string()
        assert node.description and len(node.description) > 20, name
        assert node.owners, name
        assert node.group_name and node.group_name != "default", name
        assert node.kinds, name


def test_every_daily_asset_backfills_in_one_run_and_writers_share_the_pool():
    for node in asset_nodes():
        name = node.key.to_user_string()
        if isinstance(node.partitions_def, dg.DailyPartitionsDefinition):
            assert node.backfill_policy == dg.BackfillPolicy.single_run(), name
        assert node.pools == {DUCKDB_POOL}, name


def test_every_raw_asset_has_blocking_checks():
    graph = defs.resolve_asset_graph()
    for name in CONTRACT_ASSETS - {"circuits", "transformers"}:
        specs = [graph.get_check_spec(k) for k in graph.asset_check_keys
                 if k.asset_key == dg.AssetKey(name)]
        assert {s.name for s in specs} >= {"schema", "ranges", "completeness", "duplicates"}, name
        assert all(s.blocking for s in specs), name


OUTPUT_GROUPS = {"features", "forecasting", "scores", "storms"}


def test_every_computed_output_has_a_check_the_ui_shows():
    graph = defs.resolve_asset_graph()
    checked = {k.asset_key for k in graph.asset_check_keys}
    unchecked = [n.key.to_user_string() for n in asset_nodes()
                 if n.group_name in OUTPUT_GROUPS and n.key not in checked]
    assert unchecked == []
