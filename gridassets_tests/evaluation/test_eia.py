"""The real-data evaluation: EIA-930 through the landing path, scored against the operator."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

import gridassets.evaluation.eia as eia
from gridassets.domain.forecasting import ForecastConfig
from gridassets.domain.schemas import FEEDER_LOAD

pytest.importorskip("gridshedwatch")

ORIGINS = [date(2025, 3, 4), date(2025, 7, 15), date(2025, 10, 8)]
# A shorter window keeps the test quick; the evaluation command uses the defaults.
CONFIG = ForecastConfig(history_days=60)


def test_evaluation_runs_through_the_landing_path(tmp_path, monkeypatch):
    read_days = []
    original = eia.read_daily

    def spy(spec, landing_dir, day):
        read_days.append(day)
        assert spec is FEEDER_LOAD
        return original(spec, landing_dir, day)

    monkeypatch.setattr(eia, "read_daily", spy)
    table = eia.evaluate_eia(("ERCO", "CISO"), ORIGINS, workdir=tmp_path, config=CONFIG)
    assert table["ba"].tolist() == ["ERCO", "CISO"]
    for _, row in table.iterrows():
        assert row["origins"] == len(ORIGINS)
        assert row["hours"] >= 0.9 * 24 * len(ORIGINS)
        for col in ("mape_project", "mape_operator", "mape_prev_day", "mape_prev_week",
                    "coverage"):
            assert math.isfinite(row[col]) and row[col] >= 0
        assert row["mape_project"] < 15  # a working forecast of a whole BA's demand
    # Every day the forecasts needed was read back through the landing reader.
    assert min(read_days) <= ORIGINS[0] - pd.Timedelta(days=CONFIG.window_days).to_pytimedelta()
    landed = pd.read_csv(tmp_path / "landing" / "feeder_load" / "2025-07-15.csv")
    assert list(landed.columns) == ["circuit_id", "timestamp", "load_mw"]
    assert set(landed["circuit_id"]) == {"ERCO", "CISO"}
    assert len(landed) == 48
    results = table.attrs["results"]
    assert set(results) == {"ERCO", "CISO"}
    assert "operator_mw" in results["ERCO"].forecasts


def test_read_eia_gives_hourly_demand_and_operator_forecast():
    df = eia.read_eia("CISO")
    assert list(df.columns) == ["timestamp", "D", "DF", "NG"]
    assert df["timestamp"].is_monotonic_increasing and df["timestamp"].is_unique
    y2025 = df[df["timestamp"].dt.year == 2025]
    assert len(y2025) > 8000 and y2025["D"].median() > 10_000
    with pytest.raises(FileNotFoundError):
        eia.read_eia("NOPE")


def test_default_origins_span_the_year_and_every_weekday():
    origins = eia.default_origins()
    assert len(origins) >= 30
    assert origins[0].year == origins[-1].year == 2025
    assert {d.weekday() for d in origins} == set(range(7))
    assert {d.month for d in origins} == set(range(1, 13))


def test_main_prints_the_table(capsys, monkeypatch):
    def quick(bas, origins, workdir):
        assert bas == ("ERCO",)
        return pd.DataFrame([{
            "ba": "ERCO", "origins": len(origins), "hours": 24, "mape_project": 3.0,
            "mape_operator": 2.0, "mape_prev_day": 4.0, "mape_prev_week": 8.0,
            "ratio_to_operator": 1.5, "coverage": 88.0, "interval_level": 90.0,
            "substituted_share": 0.0}])

    monkeypatch.setattr(eia, "evaluate_eia", quick)
    assert eia.main(["--bas", "erco", "--every", "30"]) == 0
    out = capsys.readouterr().out
    assert "MAPE operator DF" in out and "ERCO" in out and "1.500" in out
