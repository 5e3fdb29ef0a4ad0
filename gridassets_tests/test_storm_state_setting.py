"""GRIDASSETS_STORM_STATE_MAX_AGE_DAYS: read and checked like every other GRIDASSETS_* setting."""

import pytest

from gridassets.defs.resources import GridSettings
from gridassets.settings import Settings, SettingsError

VAR = "GRIDASSETS_STORM_STATE_MAX_AGE_DAYS"


def test_the_default_is_two_days():
    assert Settings.from_env({}).storm_state_max_age_days == 2


@pytest.mark.parametrize(("raw", "days"), [("5", 5), (" 0 ", 0), ("", 2)])
def test_the_variable_sets_the_limit(raw, days):
    assert Settings.from_env({VAR: raw}).storm_state_max_age_days == days


@pytest.mark.parametrize(("raw", "words"), [
    ("two", f"{VAR} must be an integer; got 'two'"),
    ("1.5", f"{VAR} must be an integer; got '1.5'"),
    ("-1", f"{VAR} must be 0 or more (days); got -1"),
])
def test_a_bad_value_names_the_variable(raw, words):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({VAR: raw})
    assert str(error.value) == words


def test_the_resource_field_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(VAR, "9")
    assert GridSettings().resolve().storm_state_max_age_days == 9
    assert GridSettings(storm_state_max_age_days=4).resolve().storm_state_max_age_days == 4
