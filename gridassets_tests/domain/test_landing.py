from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from gridassets.domain import landing
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import (
    CIRCUITS,
    FEEDER_LOAD,
    OUTAGE_EVENTS,
    RAW_TABLES,
    TRANSFORMER_TELEMETRY,
    WEATHER_OBSERVATIONS,
)
from gridassets_tests.conftest import SMALL_FLEET

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


# --- strict types: Parquet values arrive typed and must have the column's type -------------------

def parquet_load(tmp_path, **columns) -> Path:
    frame = {
        "circuit_id": ["C1", "C2"],
        "timestamp": pd.to_datetime(["2025-06-01T00:00Z", "2025-06-01T01:00Z"]),
        "load_mw": [1.5, 2.5],
    }
    frame.update(columns)
    path = tmp_path / "feeder_load" / "2025-06-01.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(frame).to_parquet(path)
    return path


@pytest.mark.parametrize(
    "columns, column, words",
    [
        ({"load_mw": [True, False]}, "load_mw", "true/false where a number is due (True)"),
        ({"load_mw": ["1.5", "2.5"]}, "load_mw", "text where a number is due ('1.5')"),
        ({"timestamp": ["2025-06-01T00:00Z", "2025-06-01T01:00Z"]}, "timestamp",
         "text where a timestamp is due ('2025-06-01T00:00Z')"),
        ({"circuit_id": [1.0, 2.0]}, "circuit_id", "a number where text is due (1.0)"),
        ({"circuit_id": [True, False]}, "circuit_id", "true/false where text is due (True)"),
    ],
    ids=["bool-number", "text-number", "text-timestamp", "float-id", "bool-id"],
)
def test_parquet_value_of_the_wrong_type_is_refused(tmp_path, columns, column, words):
    path = parquet_load(tmp_path, **columns)
    with pytest.raises(landing.LandingError) as err:
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
    assert (err.value.path, err.value.row, err.value.column) == (path, 1, column)
    assert words in str(err.value) and str(path) in str(err.value)


def test_parquet_integer_ids_are_taken_as_their_text(tmp_path):
    parquet_load(tmp_path, circuit_id=[1, 2])
    frame = landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
    assert frame["circuit_id"].tolist() == ["1", "2"]


def test_parquet_integer_loads_are_numbers(tmp_path):
    parquet_load(tmp_path, load_mw=[1, 2])
    assert landing.read_daily(FEEDER_LOAD, tmp_path, DAY)["load_mw"].tolist() == [1.0, 2.0]


def test_csv_true_in_a_number_column_is_not_a_number(tmp_path):
    write(tmp_path, "feeder_load", "circuit_id,timestamp,load_mw\nC1,2025-06-01T00:00Z,true\n")
    with pytest.raises(landing.LandingError,
                       match=r"row 1, column 'load_mw': not a number \('true'\)"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)


# --- every CSV row has as many fields as the header ----------------------------------------------

@pytest.mark.parametrize(
    "rows, row, words",
    [
        (["C1,2025-06-01T00:00Z,5,263"], 1, "has 4 fields where the header has 3"),
        (["C1,2025-06-01T00:00Z,1", "C1,2025-06-01T01:00Z,12,5"], 2,
         "has 4 fields where the header has 3"),
        (["C1,2025-06-01T00:00Z"], 1, "has 2 fields where the header has 3"),
        (["C1,2025-06-01T00:00Z,1", "", "C1,2025-06-01T01:00Z"], 2,
         "has 2 fields where the header has 3"),
    ],
    ids=["first-row-longer", "later-row-longer", "first-row-shorter", "row-after-blank-shorter"],
)
def test_a_row_with_more_or_fewer_fields_than_the_header_is_refused(tmp_path, rows, row, words):
    path = write(tmp_path, "feeder_load", "circuit_id,timestamp,load_mw\n" + "\n".join(rows) + "\n")
    with pytest.raises(landing.LandingError) as err:
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
    assert (err.value.path, err.value.row, err.value.column) == (path, row, None)
    assert f"{path}, row {row}: {words}" in str(err.value)


def test_a_trailing_empty_field_counts_as_a_field(tmp_path):
    write(tmp_path, "transformer_telemetry",
          "transformer_id,timestamp,load_pct,oil_temp_c,ambient_temp_c\n"
          "T1,2025-06-01T00:00Z,55,40,\n")
    frame = landing.read_daily(TRANSFORMER_TELEMETRY, tmp_path, DAY)
    assert frame["ambient_temp_c"].isna().all()


def test_a_column_named_twice_is_refused(tmp_path):
    write(tmp_path, "feeder_load",
          "circuit_id,timestamp,load_mw,load_mw\nC1,2025-06-01T00:00Z,1,2\n")
    with pytest.raises(landing.LandingError, match="column 'load_mw' appears twice; keep one"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)


# --- zones are UGC codes, ids are printable ------------------------------------------------------

@pytest.mark.parametrize(
    "zone",
    ["MTZ309'; drop table x; --", "mtz309", "MTZ3090", "MT309", "MTX309", "MTZ30٩"],
    ids=["injection", "lower-case", "too-long", "too-short", "not-c-or-z", "arabic-digit"],
)
def test_a_zone_that_is_not_a_ugc_code_is_refused(tmp_path, zone):
    (tmp_path / "circuits.csv").write_text(
        f'circuit_id,zone,customers\nC1,MTZ309,10\nC2,"{zone}",10\n', encoding="utf-8")
    with pytest.raises(landing.LandingError) as err:
        landing.read_registry(CIRCUITS, tmp_path)
    assert (err.value.row, err.value.column) == (2, "zone")
    assert "not an NWS UGC zone code" in str(err.value)
    assert repr(zone) in str(err.value)


def test_weather_zones_are_ugc_codes(tmp_path):
    rows = [f"MTZ309,2025-06-01T{h:02d}:00Z,5,9,0,12" for h in range(23)] + [
        "MTZ309 X,2025-06-01T23:00Z,5,9,0,12"]
    write(tmp_path, "weather_observations",
          "zone,timestamp,wind_speed_mph,wind_gust_mph,precip_mm,temp_c\n" + "\n".join(rows))
    with pytest.raises(landing.LandingError,
                       match=r"row 24, column 'zone': not an NWS UGC zone code .*'MTZ309 X'"):
        landing.read_daily(WEATHER_OBSERVATIONS, tmp_path, DAY)


@pytest.mark.parametrize(
    "field, shown",
    [('"C1\nX"', r"'C1\nX'"), ("C\t1", r"'C\t1'"), ('"C1\n"', r"'C1\n'"), ("C1\x7f", r"'C1\x7f'")],
    ids=["newline", "tab", "trailing-newline", "delete"],
)
def test_an_id_with_a_control_character_is_refused(tmp_path, field, shown):
    write(tmp_path, "feeder_load", f"circuit_id,timestamp,load_mw\n{field},2025-06-01T00:00Z,1\n")
    with pytest.raises(landing.LandingError) as err:
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
    assert (err.value.row, err.value.column) == (1, "circuit_id")
    assert "control character" in str(err.value) and shown in str(err.value)


def test_a_nul_in_a_parquet_id_is_refused(tmp_path):
    parquet_load(tmp_path, circuit_id=["C1", "C2\x00"])
    with pytest.raises(landing.LandingError,
                       match=r"row 2, column 'circuit_id': .*control character.*'C2\\x00'"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)


def test_spaces_around_ids_are_trimmed(tmp_path):
    (tmp_path / "circuits.csv").write_text("circuit_id,zone,customers\n C1 , MTZ309 ,10\n")
    frame = landing.read_registry(CIRCUITS, tmp_path)
    assert (frame.loc[0, "circuit_id"], frame.loc[0, "zone"]) == ("C1", "MTZ309")


# --- a daily file far too large for its day is refused before it is read whole -------------------

def test_row_limit_follows_the_registry():
    assert landing.row_limit(FEEDER_LOAD, 4) == 2 * 24 * 4 + landing.SPARE_HOURLY_ROWS
    assert landing.row_limit(FEEDER_LOAD, 40) > landing.row_limit(FEEDER_LOAD, 4)
    assert landing.row_limit(OUTAGE_EVENTS, 4) >= 24 * 4
    assert "the registry has 4 circuits" in landing.row_limit(FEEDER_LOAD, 4).reason
    assert "the registry has 1 zone:" in landing.row_limit(WEATHER_OBSERVATIONS, 1).reason


def test_a_synthetic_day_is_inside_the_row_limit():
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    counts = {"circuit_id": len(sim.circuits()), "transformer_id": len(sim.transformers()),
              "zone": sim.circuits()["zone"].nunique()}
    for spec in RAW_TABLES:
        frame = getattr(sim, spec.name)(DAY)
        assert len(frame) <= landing.row_limit(spec, counts[spec.entity_column]), spec.name


def huge_load(n: int) -> str:
    rows = [f"X{i},2025-06-01T{i % 24:02d}:00Z,1" for i in range(n)]
    return "circuit_id,timestamp,load_mw\n" + "\n".join(rows) + "\n"


def test_a_csv_far_too_large_for_its_day_is_refused_unread(tmp_path):
    path = write(tmp_path, "feeder_load", huge_load(20_000))
    limit = landing.row_limit(FEEDER_LOAD, 4)
    with pytest.raises(landing.LandingError) as err:
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY, max_rows=limit)
    assert err.value.path == path
    # "more than": reading stopped one row past the limit instead of counting all 20,000.
    assert f"more than {int(limit)} rows" in str(err.value)
    assert f"the registry has 4 circuits: at most {int(limit)} rows for one day" in str(err.value)


def test_a_parquet_far_too_large_for_its_day_is_refused_by_its_metadata(tmp_path, monkeypatch):
    n = 20_000
    parquet_load(tmp_path, circuit_id=[f"X{i}" for i in range(n)],
                 timestamp=pd.Timestamp("2025-06-01", tz="UTC"), load_mw=1.0)
    # The rows must not be read at all.
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: pytest.fail("the file was read"))
    with pytest.raises(landing.LandingError, match=f"has {n} rows; the registry has 4 circuits"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY, max_rows=landing.row_limit(FEEDER_LOAD, 4))


def test_a_plain_number_as_the_limit_works_too(tmp_path):
    write(tmp_path, "feeder_load", good_load())
    with pytest.raises(landing.LandingError, match="more than 10 rows; at most 10 rows for one day"):
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY, max_rows=10)
    assert len(landing.read_daily(FEEDER_LOAD, tmp_path, DAY, max_rows=24)) == 24
    assert len(landing.read_daily(FEEDER_LOAD, tmp_path, DAY)) == 24


def test_a_parquet_registry_with_typed_dates_and_integer_counts_is_read(tmp_path):
    pd.DataFrame({
        "circuit_id": ["C1", "C2"], "zone": ["MTZ309", "WAC033"], "customers": [10, 20],
        "last_trim_date": [date(2023, 4, 1), None],
    }).to_parquet(tmp_path / "circuits.parquet")
    frame = landing.read_registry(CIRCUITS, tmp_path)
    assert frame["last_trim_date"].tolist() == [date(2023, 4, 1), None]
    assert frame["customers"].tolist() == [10, 20]
