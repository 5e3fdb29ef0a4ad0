from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from gridassets.domain import landing
from gridassets.domain.schemas import CIRCUITS, FEEDER_LOAD, OUTAGE_EVENTS, TRANSFORMER_TELEMETRY

DAY = date(2025, 6, 1)


def write(root: Path, table: str, text: str, name: str = "2025-06-01.csv") -> Path:
    path = root / table / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def good_load(hours=range(24)) -> str:
    rows = [f"C1,2025-06-01T{h:02d}:00:00Z,{3 + h / 10}" for h in hours]
    return "circuit_id,timestamp,load_mw\n" + "\n".join(rows) + "\n"


def test_reads_a_good_csv_with_types_and_utc(tmp_path):
    write(tmp_path, "feeder_load", good_load())
    frame = landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
    assert list(frame.columns) == FEEDER_LOAD.names
    assert len(frame) == 24
    assert frame["timestamp"].dtype == "datetime64[ns]"
    assert frame["timestamp"].iloc[5] == pd.Timestamp("2025-06-01 05:00")
    assert frame["load_mw"].iloc[10] == pytest.approx(4.0)


def test_offsets_are_converted_to_utc_and_landing_names_mapped(tmp_path):
    write(tmp_path, "outage_events",
          "circuit_id,start,end,customers_affected,cause\n"
          "C1,2025-06-01T03:00:00-06:00,2025-06-01T05:30:00-06:00,12,weather\n"
          "C2,2025-06-01T20:00:00Z,,40,unknown\n")
    frame = landing.read_daily(OUTAGE_EVENTS, tmp_path, DAY)
    assert frame.loc[0, "start_ts"] == pd.Timestamp("2025-06-01 09:00")
    assert frame.loc[0, "end_ts"] == pd.Timestamp("2025-06-01 11:30")
    assert pd.isna(frame.loc[1, "end_ts"])
    assert frame["customers_affected"].tolist() == [12, 40]


def test_parquet_is_read_like_csv(tmp_path):
    (tmp_path / "feeder_load").mkdir()
    frame = pd.DataFrame({
        "circuit_id": ["C1"] * 24,
        "timestamp": pd.date_range("2025-06-01", periods=24, freq="h", tz="UTC"),
        "load_mw": [1.0] * 24,
    })
    frame.to_parquet(tmp_path / "feeder_load" / "2025-06-01.parquet")
    out = landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
    assert out["timestamp"].iloc[-1] == pd.Timestamp("2025-06-01 23:00")


def test_optional_columns_get_their_documented_defaults(tmp_path):
    (tmp_path / "circuits.csv").write_text("circuit_id,zone,customers\nC1,MTZ309,1200\n")
    frame = landing.read_registry(CIRCUITS, tmp_path)
    assert frame.loc[0, "critical_customers"] == 0
    assert frame.loc[0, "tree_canopy_pct"] == CIRCUITS.column("tree_canopy_pct").default
    assert frame.loc[0, "last_trim_date"] is None
    assert pd.isna(frame.loc[0, "capacity_mw"])


def test_gas_columns_are_optional(tmp_path):
    rows = [f"T1,2025-06-01 {h:02d}:00,55,40,20" for h in range(24)]
    write(tmp_path, "transformer_telemetry",
          "transformer_id,timestamp,load_pct,oil_temp_c,ambient_temp_c\n" + "\n".join(rows))
    frame = landing.read_daily(TRANSFORMER_TELEMETRY, tmp_path, DAY)
    assert frame["h2_ppm"].isna().all()
    assert list(frame.columns) == TRANSFORMER_TELEMETRY.names


@pytest.mark.parametrize(
    "text, row, column, words",
    [
        ("circuit_id,timestamp\nC1,2025-06-01T00:00Z\n", None, None, "missing required column(s) load_mw"),
        ("circuit_id,timestamp,load_mw\nC1,2025-06-01T00:00Z,1\nC1,2025-06-01T01:00Z,abc\n",
         2, "load_mw", "not a number ('abc')"),
        ("circuit_id,timestamp,load_mw\nC1,2025-06-01T00:00Z,1\nC1,yesterday,2\n",
         2, "timestamp", "not an ISO 8601 timestamp"),
        ("circuit_id,timestamp,load_mw\nC1,2025-06-01T00:00Z,1\nC1,2025-06-02T00:00Z,2\n",
         2, "timestamp", "outside the file's day 2025-06-01"),
        ("circuit_id,timestamp,load_mw\nC1,2025-06-01T00:30Z,1\n",
         1, "timestamp", "not the start of a UTC hour"),
        ("circuit_id,timestamp,load_mw\nC1,2025-06-01T00:00Z,1\nC1,2025-06-01T00:00Z,2\n",
         2, "circuit_id, timestamp", "duplicate key"),
        ("circuit_id,timestamp,load_mw\n,2025-06-01T00:00Z,1\n",
         1, "circuit_id", "empty value"),
        ("circuit_id,timestamp,load_mw\nC1,2025-06-01T00:00Z,inf\n",
         1, "load_mw", "not a finite number"),
        ("", None, None, "the file is empty"),
    ],
    ids=["missing-column", "not-a-number", "bad-timestamp", "outside-day", "off-hour",
         "duplicate", "empty-id", "infinite", "empty-file"],
)
def test_bad_files_name_file_row_and_column(tmp_path, text, row, column, words):
    path = write(tmp_path, "feeder_load", text)
    with pytest.raises(landing.LandingError) as err:
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
    assert err.value.path == path
    assert err.value.row == row
    assert err.value.column == column
    assert words in str(err.value)
    assert str(path) in str(err.value)


def test_whole_number_column_rejects_fractions(tmp_path):
    write(tmp_path, "outage_events",
          "circuit_id,start,end,customers_affected,cause\nC1,2025-06-01T03:00Z,,12.5,weather\n")
    with pytest.raises(landing.LandingError, match="row 1, column 'customers_affected': not a whole"):
        landing.read_daily(OUTAGE_EVENTS, tmp_path, DAY)


def test_missing_file_names_the_expected_path(tmp_path):
    with pytest.raises(landing.LandingError, match=r"feeder_load/2025-06-01\.csv or .*\.parquet"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)


def test_csv_and_parquet_for_the_same_day_is_ambiguous(tmp_path):
    write(tmp_path, "feeder_load", good_load())
    (tmp_path / "feeder_load" / "2025-06-01.parquet").write_bytes(b"x")
    with pytest.raises(landing.LandingError, match="keep one"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)


def test_unreadable_parquet_is_a_landing_error(tmp_path):
    (tmp_path / "feeder_load").mkdir()
    (tmp_path / "feeder_load" / "2025-06-01.parquet").write_bytes(b"not parquet")
    with pytest.raises(landing.LandingError, match="cannot be read"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)


def test_a_row_with_an_extra_field_is_located(tmp_path):
    write(tmp_path, "feeder_load",
          "circuit_id,timestamp,load_mw\nC1,2025-06-01T00:00Z,1\nC1,2025-06-01T01:00Z,12,5\n")
    with pytest.raises(landing.LandingError, match="row 2: has 4 fields where the header has 3"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
