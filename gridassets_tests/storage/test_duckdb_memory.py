"""GRIDASSETS_DUCKDB_MEMORY: the bound on DuckDB's memory for the warehouse's queries, read and
checked like every other setting, applied on every connection, and spilled past, not failed."""

import duckdb
import pytest

from gridassets.settings import Settings, SettingsError
from gridassets.storage.backend import open_warehouse

VAR = "GRIDASSETS_DUCKDB_MEMORY"
pytestmark = pytest.mark.duckdb_only


def as_duckdb_shows(amount: str) -> str:
    with duckdb.connect() as con:
        con.execute("set memory_limit = ?", [amount])
        return con.execute("select current_setting('memory_limit')").fetchall()[0][0]


def limit_of(settings: Settings, read_only: bool = False) -> str:
    with open_warehouse(settings).connect(read_only=read_only) as con:
        return con.execute("select current_setting('memory_limit')").fetchall()[0][0]


def test_every_connection_has_the_bound_2gb_by_default(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path)
    assert settings.duckdb_memory == "2GB"
    assert limit_of(settings) == as_duckdb_shows("2GB") != as_duckdb_shows("80%")
    assert limit_of(settings, read_only=True) == as_duckdb_shows("2GB")


def test_the_variable_sets_the_bound(tmp_path):
    settings = Settings.from_env({VAR: "1500MB"}, data_dir=tmp_path)
    assert limit_of(settings) == as_duckdb_shows("1500MB")


@pytest.mark.parametrize("raw", ["lots", "2", "-1GB", "2 GB of it"])
def test_a_bad_value_names_the_variable(raw):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({VAR: raw})
    assert str(error.value).startswith(f"{VAR} must be an amount of memory")
    assert repr(raw) in str(error.value)


def test_a_join_bigger_than_the_bound_spills_and_completes(tmp_path):
    settings = Settings.from_env({VAR: "64MB"}, data_dir=tmp_path)
    with open_warehouse(settings).connect() as con:
        con.execute("create table t as select range as id, range % 97 as g from range(3000000)")
        rows = con.execute("select count(*), sum(a.g + b.g) from t a join t b using (id)"
                           ).fetchall()
    assert rows == [(3_000_000, 2 * sum((i % 97) for i in range(3_000_000)))]
