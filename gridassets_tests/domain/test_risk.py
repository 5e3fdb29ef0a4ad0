"""The risk maths on small inline tables: bands, horizons, consequences, history shrinkage."""

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import risk

T0 = pd.Timestamp("2025-06-01 12:00")


@pytest.mark.parametrize("p, band", [
    (0.0, "HI1"), (0.0024, "HI1"), (0.0025, "HI2"), (0.0049, "HI2"), (0.005, "HI3"),
    (0.0099, "HI3"), (0.01, "HI4"), (0.049, "HI4"), (0.05, "HI5"), (0.9, "HI5"), (1.0, "HI5"),
])
def test_health_index_bands_are_half_open_on_the_30_day_probability(p, band):
    assert risk.health_index(np.array([p]))[0] == band


def test_a_horizon_probability_keeps_the_hazard_constant():
    p30 = np.array([0.0, 0.3, 1.0])
    p7 = risk.horizon_probability(p30, 30)
    assert p7[0] == 0.0
    # Seven days at the 30-day hazard, compounded back to 30 days, gives the 30 days again.
    assert 1 - (1 - p7[1]) ** (30 / 7) == pytest.approx(0.3)
    assert 0 < p7[1] < 0.3
    assert p7[2] < 1.0  # a certain failure stays a probability the sums can use


def test_critical_customers_weigh_as_many_as_the_weight_says():
    assert risk.weighted_customers([100], [2])[0] == 100 + 2 * risk.CRITICAL_WEIGHT


def test_customers_are_shared_among_a_circuits_transformers_by_rating():
    transformers = pd.DataFrame({"transformer_id": ["T1", "T2", "T3"],
                                 "circuit_id": ["C1", "C1", "C2"],
                                 "rating_kva": [100.0, 300.0, 50.0]})
    circuits = pd.DataFrame({"circuit_id": ["C1", "C2"], "customers": [400, 10],
                             "critical_customers": [4, 0]})
    served = risk.customers_served(transformers, circuits).set_index("transformer_id")
    assert served.loc["T1", "customers_served"] == 100
    assert served.loc["T2", "customers_served"] == 300
    assert served.loc["T2", "critical_served"] == 3
    assert served.loc["T3", "customers_served"] == 10


def _outage(circuit, customers, minutes, start=T0):
    return {"circuit_id": circuit, "start_ts": start, "customers_affected": customers,
            "end_ts": start + pd.Timedelta(minutes=minutes)}


def _events(shares: dict[str, float], n: int, seed: int = 0) -> pd.DataFrame:
    """n outages per circuit, each interrupting a random share around the circuit's own."""
    rng = np.random.default_rng(seed)
    rows = []
    for circuit, share in shares.items():
        for i in range(n):
            rows.append(_outage(circuit, int(1000 * min(share * rng.lognormal(0, 0.8), 1.0)), 60,
                                T0 + pd.Timedelta(days=i)))
    return pd.DataFrame(rows)


def test_circuits_that_differ_only_by_chance_all_get_the_fleets_consequence():
    """The simulator's truth: every circuit's outages interrupt shares from one distribution."""
    shares = {f"C{i}": 0.2 for i in range(30)}
    circuits = pd.DataFrame({"circuit_id": list(shares), "customers": 1000})
    events = _events(shares, 12)
    history = risk.outage_history(events, circuits)
    own = (events["customers_affected"] / 1000).groupby(events["circuit_id"]).mean()
    fleet = (events["customers_affected"] / 1000).mean()
    # pooled: each circuit's figure close to the fleet's, far closer than its own mean is
    assert history["share_interrupted"].std() < 0.3 * own.std()
    assert history["share_interrupted"].mean() == pytest.approx(fleet, rel=0.02)


def test_circuits_that_truly_differ_keep_their_own_consequence():
    shares = {**{f"A{i}": 0.05 for i in range(10)}, **{f"B{i}": 0.6 for i in range(10)}}
    circuits = pd.DataFrame({"circuit_id": [*shares, "NEW"], "customers": 1000})
    history = risk.outage_history(_events(shares, 30), circuits).set_index("circuit_id")
    small = history.loc[[f"A{i}" for i in range(10)], "share_interrupted"]
    big = history.loc[[f"B{i}" for i in range(10)], "share_interrupted"]
    assert small.max() < 0.12 and big.min() > 0.35
    # a circuit without outages of its own gets the fleet's
    assert small.max() < history.loc["NEW", "share_interrupted"] < big.min()


def test_the_pooling_weight_is_the_within_over_the_between_variance():
    groups = np.repeat(["a", "b", "c", "d"], 50)
    rng = np.random.default_rng(1)
    same = rng.normal(0, 1, 200)
    assert risk.pooling_weight(same, groups) > 20  # mostly pooled (inf when no true spread)
    apart = same + np.repeat([0.0, 3.0, -3.0, 6.0], 50)
    assert risk.pooling_weight(apart, groups) < 0.2
    assert risk.pooling_weight([1.0, 2.0], ["a", "b"]) == risk.HISTORY_SHRINKAGE_EVENTS


def test_outage_history_without_any_outage_uses_the_stated_defaults():
    circuits = pd.DataFrame({"circuit_id": ["C1"], "customers": [1000]})
    empty = pd.DataFrame(columns=["circuit_id", "start_ts", "end_ts", "customers_affected"])
    empty = empty.astype({"start_ts": "datetime64[ns]", "end_ts": "datetime64[ns]",
                          "customers_affected": float})
    row = risk.outage_history(empty, circuits).iloc[0]
    assert row["share_interrupted"] == risk.DEFAULT_SHARE_INTERRUPTED
    assert row["outage_minutes"] == risk.DEFAULT_OUTAGE_MINUTES


def test_an_equipment_outage_caused_by_a_transformer_failure_is_not_counted_twice():
    circuits = pd.DataFrame({"circuit_id": ["C1", "C2", "C3"], "customers": [1000, 1000, 4000],
                             "critical_customers": [0, 0, 0]})
    equipment = pd.DataFrame([_outage("C1", 60, 100, T0 + pd.Timedelta(minutes=10)),
                              _outage("C1", 60, 100, T0 + pd.Timedelta(days=3)),
                              _outage("C2", 60, 100, T0)])
    failures = pd.DataFrame({"circuit_id": ["C1"], "failed_at": [T0]})
    none = pd.DataFrame({"circuit_id": pd.Series(dtype=object),
                         "failed_at": pd.Series(dtype="datetime64[ns]")})
    both = risk.other_equipment_risk(equipment, none, circuits, 70).set_index("circuit_id")
    without = risk.other_equipment_risk(equipment, failures, circuits, 70).set_index("circuit_id")
    # The outage ten minutes after C1's failure is that failure's: C1 keeps one outage, as C2.
    assert without.loc["C1", "equipment_outages_7d"] < both.loc["C1", "equipment_outages_7d"]
    assert without.loc["C1", "equipment_outages_7d"] == pytest.approx(
        without.loc["C2", "equipment_outages_7d"])
    # one outage each on three circuits in 70 days: chance alone, so the fleet's rate for all
    assert without["equipment_outages_7d"].to_numpy() == pytest.approx(np.full(3, 2 / 3 / 70 * 7))
    # customer-minutes scale with the customers served: C3 has four times C1's
    assert without.loc["C3", "other_equipment_customer_minutes_7d"] == pytest.approx(
        4 * without.loc["C1", "other_equipment_customer_minutes_7d"])


def test_overload_probability_reads_the_interval_as_a_normal_and_skips_unknown_capacity():
    z = risk.INTERVAL_Z
    p = risk.overload_probability(peak_mw=np.array([10.0, 10.0, 10.0, 10.0]),
                                  lower_mw=np.array([10 - z, 10 - z, 10 - z, 10 - z]),
                                  upper_mw=np.array([10 + z, 10 + z, 10 + z, 10 + z]),
                                  capacity_mw=np.array([10.0, 11.0, 20.0, np.nan]))
    assert p[0] == pytest.approx(0.5)
    assert p[1] == pytest.approx(1 - 0.8413447, abs=1e-6)  # one sigma above the peak
    assert p[2] < 1e-12
    assert p[3] == 0.0


def test_transformer_risk_is_probability_times_consequence_with_its_version():
    features = pd.DataFrame({
        "date": [T0.normalize()] * 2, "transformer_id": ["T1", "T2"], "circuit_id": ["C1", "C1"],
        "h2_trend_30d": [3.0, 0.0], "c2h2_7d_ppm": [0.0, 0.0], "thermal_ratio": [1.0, 1.2],
        "overload_hours_30d": [0.0, 0.0], "age_years": [10.0, 50.0]})
    served = pd.DataFrame({"transformer_id": ["T1", "T2"], "customers_served": [100.0, 10.0],
                           "critical_served": [0.0, 1.0]})
    frame = risk.transformer_risk(features, np.array([0.3, 0.001]), served, "m-1")
    by_id = frame.set_index("transformer_id")
    t1, t2 = by_id.loc["T1"], by_id.loc["T2"]
    assert t1["health_index"] == "HI5" and t2["health_index"] == "HI1"
    assert t1["consequence_customer_minutes"] == 100 * risk.TRANSFORMER_REPLACEMENT_MIN
    assert t2["consequence_customer_minutes"] == (10 + risk.CRITICAL_WEIGHT) \
        * risk.TRANSFORMER_REPLACEMENT_MIN
    assert t1["risk_customer_minutes_7d"] == pytest.approx(
        t1["p_fail_7d"] * t1["consequence_customer_minutes"])
    assert "H2 rising" in t1["signals"] and "50 years old" in t2["signals"]
    assert set(frame["model_version"]) == {"m-1"}
    assert list(features.columns)[:3] == ["date", "transformer_id", "circuit_id"]  # not modified


def test_calibration_is_realized_over_predicted_on_weeks_that_are_over():
    days = pd.date_range("2025-03-01", periods=60)
    outcomes = pd.DataFrame({"date": days, "predicted": 300.0, "realized": 100.0})
    factor, used = risk.calibration(outcomes, pd.Timestamp("2025-04-29"))
    assert factor == pytest.approx(1 / 3) and used == 53  # 03-01..04-22: their weeks are over
    outcomes.loc[outcomes["date"] > "2025-04-10", "realized"] = 1e9  # weeks not over: not used
    assert risk.calibration(outcomes, pd.Timestamp("2025-04-17"))[0] == pytest.approx(1 / 3)
    assert risk.calibration(outcomes.head(10), pd.Timestamp("2025-04-29")) == (1.0, 10)
