"""Metadata a person reads in the UI: numbers rounded, no scientific notation, units in the headers,
long text last and cut, contract columns described; and a real build's metadata held to it."""

import math
import re

import dagster as dg
import pandas as pd
import pytest

from gridassets.defs.metadata import (
    INLINE_MARKDOWN,
    MAX_DECIMALS,
    MAX_TEXT,
    format_number,
    frame_schema,
    markdown_table,
    readable,
    round_number,
)
from gridassets.domain.schemas import OUTPUT_TABLES, PRIORITIZED_CIRCUITS

SCIENTIFIC = re.compile(r"\d[eE][+-]\d")  # 1e-05, 2.5e+20 (a version hash may hold 2e2)


@pytest.mark.parametrize(("value", "shown"), [
    (110737.2, "110,737"),
    (1.11e5, "111,000"),
    (4.037982895142489, "4.04"),
    (89.79166666666667, "89.8"),
    (-0.0123456, "-0.0123"),
    (0.000123456, "0.000123"),
    (1e-9, "0.000000"),
    (0.0, "0"),
    (999.96, "1,000"),
    (12345, "12345"),
    (True, "True"),
    (float("nan"), "nan"),
])
def test_format_number_rounds_without_scientific_notation(value, shown):
    assert format_number(value) == shown


@pytest.mark.parametrize(("value", "rounded"), [
    (4.037982895142489, 4.04), (89.79166666666667, 89.8), (0.87349, 0.873), (110737.2, 110737.0),
])
def test_round_number_keeps_three_significant_digits_and_the_whole_part(value, rounded):
    assert round_number(value) == rounded


def test_readable_rounds_floats_and_leaves_other_values():
    out = readable({"mape_pct": 4.037982895142489,
                    "gust": dg.MetadataValue.float(68.123456),
                    "rows": 1234, "source": "synthetic", "nan": float("nan")})
    assert out["mape_pct"] == 4.04
    assert out["gust"].value == 68.1
    assert out["rows"] == 1234 and out["source"] == "synthetic"
    assert math.isnan(out["nan"])


def test_markdown_table_rounds_names_units_and_lists_long_text_under_the_table():
    reason = ("2.1 weather/tree outages expected this week (gusts to 61 mph forecast Tue 14:00 "
              "UTC; 12 mm rain in 7 days); 3 transformer(s) above 5% failure risk; worst T00042 "
              "31% (h2_ppm rising, *hot spot*); 56% tree canopy, 8.0 years since trim (a trim "
              "avoids ~79,716 customer-min); 4,210 customers (3 critical)")
    assert len(reason) > MAX_TEXT
    frame = pd.DataFrame({"rank": [1, 2, 3], "reason": [reason, "no elevated risk", None],
                          "circuit_id": ["C001", "C002", "C003"],
                          "priority_score": [110737.2, 0.00012345, float("nan")],
                          "date": pd.to_datetime(["2025-06-01"] * 3)})
    table = markdown_table(frame, max_rows=2)
    lines = table.rstrip().splitlines()
    assert lines[:4] == ["| rank | circuit_id | priority_score (cust-min/7d) | date |",
                         "|---|---|---|---|",
                         "| 1 | C001 | 110,737 | 2025-06-01 |",
                         "| 2 | C002 | 0.000123 | 2025-06-01 |"]
    assert lines[5] == "**reason**"
    first, second = lines[7:9]
    assert first.startswith("- **C001**: 2.1 weather/tree outages") and first.endswith("\u2026")
    assert "h2\\_ppm" in first and "\\*hot spot\\*" in first  # shown as written
    assert second == "- **C002**: no elevated risk"
    assert lines[-1] == "_2 of 3 rows_" and not SCIENTIFIC.search(table)
    assert markdown_table(frame[["rank"]], units={"rank": "1 = first"}).startswith(
        "| rank (1 = first) |")


def test_a_table_too_wide_to_show_inline_opens_in_the_dialog():
    """The UI shows markdown under 1,000 characters inline, in a cell too narrow for a wide
    table: a wide table is padded (with spaces markdown does not render) past that."""
    narrow = markdown_table(pd.DataFrame({"zone": ["MTZ309"], "circuits": [4]}))
    wide = markdown_table(pd.DataFrame({"transformer_id": ["T00042"], "circuit_id": ["C0001"],
                                        "p_fail_30d": [0.0138], "health_index": ["HI4"],
                                        "risk_customer_minutes_7d": [187.6]}))
    assert len(narrow) < INLINE_MARKDOWN <= len(wide)
    assert wide.rstrip() == wide.rstrip(" ") and "| T00042 | C0001 | 0.0138 | HI4 | 188 |" in wide


def test_every_contract_column_is_described_in_the_column_schema():
    for spec in OUTPUT_TABLES:
        assert all(c.description for c in spec.columns), spec.name
    frame = pd.DataFrame({c.name: pd.Series(dtype=object) for c in PRIORITIZED_CIRCUITS.columns})
    schema = frame_schema(frame.assign(internal_column=1.0), PRIORITIZED_CIRCUITS)
    described = {c.name: c.description for c in schema.columns}
    assert described["priority_score"].startswith("The sum of the components")
    assert all(described[c.name] for c in PRIORITIZED_CIRCUITS.columns)
    assert described["internal_column"] is None


def _decimals(value: float) -> int:
    text = repr(float(value))
    return 0 if "e" in text or "." not in text else len(text.split(".")[1].rstrip("0"))


def test_a_real_build_shows_only_rounded_numbers(demo_data):
    """Every materialization `python -m gridassets run` recorded (the demo instance): each float
    is rounded (no 4.037982895142489), each markdown table free of scientific notation, and the
    list, the backtest and the models have one number per partition for the Plots tab."""
    data, _ = demo_data
    with dg.DagsterInstance.from_config(str(data.parent / "dagster_home")) as instance:
        records = [r for key in instance.get_asset_keys()
                   for r in instance.fetch_materializations(key, limit=1000).records]
    assert records
    floats, tables, per_key = 0, 0, {}
    for record in records:
        materialization = record.asset_materialization
        where = f"{materialization.asset_key.to_user_string()} [{materialization.partition}]"
        for name, value in materialization.metadata.items():
            if isinstance(value, dg.FloatMetadataValue) and value.value is not None \
                    and math.isfinite(value.value):
                floats += 1
                assert value.value == round_number(value.value), (where, name, value.value)
                assert _decimals(value.value) <= MAX_DECIMALS, (where, name, value.value)
            elif isinstance(value, dg.MarkdownMetadataValue) and "data:image" not in value.value:
                tables += 1
                assert not SCIENTIFIC.search(value.value), (where, name, value.value[:300])
        per_key.setdefault(materialization.asset_key.to_user_string(), []).append(
            materialization.metadata)
    assert floats > 0 and tables > 0

    def distinct(asset: str, name: str) -> set:
        return {m[name].value for m in per_key[asset] if name in m}

    # A number per partition, not the last partition's copied onto every one of a range.
    assert len(distinct("prioritized_circuits", "top_score")) > 1
    assert len(distinct("load_forecast_backtest", "mape_pct")) > 1
    assert len(distinct("outage_model", "roc_auc")) > 1
