"""The integrity rules on signals made by hand: what each flags, what it must leave alone (a real
thermal fault, one silent unit, a single odd hour), the clock lag, the list's "since", and the
anomaly model's training and holdout."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import integrity

DAY = date(2025, 6, 12)


def transformer(device_id: str, **values) -> dict:
    """A normal transformer-day's signals, with `values` changed."""
    row = dict(device_type="transformer", device_id=device_id, circuit_id="C01", date=DAY,
               hours=24, load_mean_pct=50.0, load_min_pct=30.0, load_max_pct=80.0,
               load_spread_pct=50.0, load_spread_rel=1.0, oil_mean_c=45.0, oil_spread_c=12.0,
               oil_spread_ref_c=12.0, oil_spread_own=1.0, load_spread_ref=1.0, load_spread_own=1.0,
               thermal_index_c=30.0, thermal_reference_c=30.0, thermal_ratio=1.0,
               thermal_recent_c=30.0, thermal_step=1.0, thermal_ok=True, repeat_all=1.9, repeat_all_day=pd.Timestamp("2025-06-10"),
               repeat_all_load_pct=15.0, repeat_all_oil_c=1.3, repeat_oil=1.8,
               repeat_oil_day=pd.Timestamp("2025-06-10"), repeat_oil_c=1.3, clock_r0=0.93,
               clock_lag_h=0.0, clock_r_best=0.93, clock_gain=0.0, failed_recently=False)
    row.update(values)
    return row


def flags(rows: pd.DataFrame) -> dict[tuple[str, str], str]:
    hit = rows[rows["flagged"]]
    return {(r.device_id, r.check): r.reason for r in hit.itertuples()}


def test_each_threat_pattern_is_flagged_with_a_reason_and_normal_days_are_not():
    signals = pd.DataFrame([
        transformer("T-ok"),
        transformer("T-replay", repeat_all=0.0, repeat_oil=0.0, repeat_all_load_pct=0.0,
                    repeat_all_oil_c=0.0, repeat_all_day=pd.Timestamp("2025-06-07")),
        transformer("T-oil-loop", repeat_oil=0.05, repeat_oil_c=0.04,
                    repeat_oil_day=pd.Timestamp("2025-06-09")),
        transformer("T-frozen", oil_spread_c=0.0, oil_mean_c=61.3, thermal_ratio=0.7),
        transformer("T-cool", thermal_ratio=0.64, thermal_step=0.64, thermal_index_c=19.2),
        # a fault had lifted the rise to 40 °C; a spoofed sensor brings it back to the month's
        transformer("T-spoof", thermal_ratio=0.98, thermal_index_c=29.4,
                    thermal_recent_c=40.0, thermal_step=0.735),
        transformer("T-clock", clock_r0=0.41, clock_lag_h=4.0, clock_r_best=0.95,
                    clock_gain=0.54),
    ])
    found = flags(integrity.transformer_rows(signals, DAY, integrity.RULES_VERSION))
    assert set(found) == {("T-replay", "repeat"), ("T-oil-loop", "repeat"),
                          ("T-frozen", "frozen"), ("T-cool", "thermal_response"),
                          ("T-spoof", "thermal_response"), ("T-clock", "clock")}
    assert "repeat 2025-06-07 hour by hour" in found[("T-replay", "repeat")]
    assert "oil sensor is replaying" in found[("T-oil-loop", "repeat")]
    assert "stuck at 61.3 °C" in found[("T-frozen", "frozen")]
    assert "64 % of the 30.0 °C of its last normal days" in found[("T-cool", "thermal_response")]
    assert "74 % of the 40.0 °C of its last 3 normal days" in found[("T-spoof",
                                                                     "thermal_response")]
    assert "4 h late" in found[("T-clock", "clock")]


def test_quarantine_says_which_readings_stay_out():
    signals = pd.DataFrame([
        transformer("T-replay", repeat_all=0.0, repeat_oil=0.0),
        transformer("T-frozen", oil_spread_c=0.0),
        transformer("T-ok"),
    ])
    rows = integrity.transformer_rows(signals, DAY, integrity.RULES_VERSION)
    q = rows[rows["flagged"]].set_index("device_id")["quarantine"].to_dict()
    assert q == {"T-replay": integrity.QUARANTINE_DAY, "T-frozen": integrity.QUARANTINE_OIL}
    assert set(rows.loc[~rows["flagged"], "quarantine"]) == {integrity.NO_QUARANTINE}


def test_a_real_fault_runs_hot_and_is_left_to_the_maintenance_model():
    # its rise climbs day after day: above both the month's usual and the last days'
    rows = integrity.transformer_rows(pd.DataFrame([transformer(
        "T-fault", thermal_ratio=1.6, thermal_step=1.1)]), DAY, integrity.RULES_VERSION)
    assert not rows["flagged"].any()
    assert float(rows.loc[rows["check"] == "thermal_response", "score"].iloc[0]) == 0.0


def test_a_unit_out_of_service_is_not_a_replay():
    # a failed unit reports zero load every hour: its load repeats exactly, which is no attack
    rows = integrity.transformer_rows(pd.DataFrame([transformer(
        "T-out", load_mean_pct=0.0, load_min_pct=0.0, load_max_pct=0.0, load_spread_pct=0.0,
        repeat_all=0.8, repeat_oil=1.2)]), DAY, integrity.RULES_VERSION)
    assert not rows["flagged"].any()


def test_a_group_falling_silent_is_flagged_and_a_single_unit_is_not():
    silent = dict(hours=0, load_mean_pct=np.nan, oil_spread_c=np.nan, load_spread_pct=np.nan,
                  repeat_all=np.nan, repeat_oil=np.nan, thermal_ratio=np.nan, thermal_step=np.nan,
                  clock_gain=np.nan)
    signals = pd.DataFrame([
        *(transformer(f"T-g{i}", circuit_id="C02", **silent) for i in range(3)),
        transformer("T-alone", circuit_id="C03", **silent),
        transformer("T-ok", circuit_id="C02"),
    ])
    found = flags(integrity.transformer_rows(signals, DAY, integrity.RULES_VERSION))
    assert set(found) == {(f"T-g{i}", "reporting") for i in range(3)}
    assert "with 2 other transformer(s) of circuit C02" in found[("T-g0", "reporting")]


def circuit(device_id: str, **values) -> dict:
    row = dict(device_type="circuit", device_id=device_id, circuit_id=device_id, date=DAY,
               hours=24, units=40, missing_share=0.0, balance_ratio=1.0, balance_sd=0.02,
               balance_ratio_ref=1.0, balance_sd_ref=0.02, balance_max_dev=0.05,
               balance_worst_ratio=1.05, balance_hours=0, balance_first_h=np.nan,
               balance_last_h=np.nan, repeat_all=1.2,
               repeat_all_day=pd.Timestamp("2025-06-10"), repeat_all_load_pct=3.5)
    row.update(values)
    return row


def test_the_feeder_against_its_transformers():
    injected = dict(balance_max_dev=0.25, balance_worst_ratio=1.28, balance_hours=6,
                    balance_first_h=14, balance_last_h=19)
    signals = pd.DataFrame([
        circuit("C-ok"),
        circuit("C-injected", **injected),
        circuit("C-one-hour", balance_max_dev=0.25, balance_hours=1, balance_first_h=3,
                balance_last_h=3),
        circuit("C-half-silent", missing_share=0.4, **injected),
        circuit("C-replayed", repeat_all=0.0, repeat_all_load_pct=0.0),
    ])
    rows = integrity.circuit_rows(signals, DAY)
    found = flags(rows)
    assert set(found) == {("C-injected", "load_balance"), ("C-replayed", "repeat")}
    assert "1.28 x what its 40 transformers carry" in found[("C-injected", "load_balance")]
    assert "from 14:00 to 20:00 UTC" in found[("C-injected", "load_balance")]
    half = rows[(rows["device_id"] == "C-half-silent") & (rows["check"] == "load_balance")]
    assert half["reason"].iloc[0].startswith("not judged: 40 %")


def test_clock_lags_finds_a_shift_and_leaves_an_aligned_series_at_zero():
    hours = np.arange(24 + 8)
    shape = 1 + 0.5 * np.sin(2 * np.pi * (hours - 8) / 24) + 0.2 * np.sin(4 * np.pi * hours / 24)
    rng = np.random.default_rng(1)
    y = shape[8:] * 100
    aligned = y * np.exp(0.05 * rng.standard_normal(24))
    late = shape[8 - 4:32 - 4] * 100  # the value stamped h is that of h - 4
    r0, lag, r_best = integrity.clock_lags(np.vstack([aligned, late]), np.vstack([y, y]))
    assert lag[0] == 0 and r0[0] > 0.9
    assert lag[1] == 4 and r_best[1] - r0[1] > integrity.CLOCK_MIN_GAIN


def test_the_list_says_since_when_a_circuits_inputs_are_suspect():
    f = pd.DataFrame({
        "device_type": "transformer", "device_id": "T01401", "circuit_id": "C07",
        "date": pd.to_datetime(["2025-06-09", "2025-06-10", "2025-06-11", "2025-06-12"]),
        "check": "thermal_response", "reason": "oil temperature inconsistent with its load"})
    # without the 9th, the unbroken run of flags up to the 12th starts on the 10th
    out = integrity.circuit_suspicion(f.drop(index=0), "2025-06-12")
    assert out.to_dict(orient="records") == [{
        "circuit_id": "C07", "integrity": "telemetry integrity: T01401 oil temperature "
                                          "inconsistent with its load since 2025-06-10"}]
    assert integrity.circuit_suspicion(f, "2025-06-13").empty  # not flagged that day


def normal_days(n: int, rng) -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.Timestamp(DAY), "device_id": [f"T{i}" for i in range(n)], "hours": 24,
        "repeat_all": rng.lognormal(0.6, 0.3, n), "repeat_oil": rng.lognormal(0.6, 0.3, n),
        "oil_spread_own": rng.normal(1.0, 0.15, n).clip(0.3),
        "load_spread_own": rng.normal(1.0, 0.15, n).clip(0.3),
        "thermal_ratio": rng.normal(1.0, 0.02, n), "clock_gain": rng.exponential(0.005, n),
        "clock_r0": rng.normal(0.93, 0.03, n).clip(-1, 1), "circuit_id": "C01"})


def test_the_anomaly_model_learns_normal_days_and_is_judged_on_perturbed_copies():
    rng = np.random.default_rng(3)
    model = integrity.train_model(normal_days(4000, rng), normal_days(800, rng), seed=5)
    assert model.metrics["roc_auc"] > 0.9
    assert model.metrics["holdout_flagged_per_1000"] < 5
    odd = normal_days(2, rng).assign(repeat_all=[0.001, 2.0], repeat_oil=[0.001, 2.0],
                                     oil_spread_own=[0.0, 1.0], thermal_ratio=[0.5, 1.0])
    rows = integrity.model_rows(model, odd, DAY, "integrity-x")
    assert list(rows["flagged"]) == [True, False]
    assert rows["reason"].iloc[0].startswith("unusual: ")
    assert set(rows["quarantine"]) == {integrity.NO_QUARANTINE}
    with pytest.raises(ValueError, match="at least 500 and 100"):
        integrity.train_model(normal_days(100, rng), normal_days(100, rng), seed=5)


def test_without_a_model_nothing_is_flagged_and_the_rows_say_why():
    rows = integrity.model_rows(None, normal_days(3, np.random.default_rng(0)), DAY,
                                integrity.RULES_VERSION)
    assert not rows["flagged"].any()
    assert rows["reason"].str.startswith("no integrity_model serves this day").all()


def test_the_audit_refuses_a_flag_without_a_reason():
    rows = integrity.transformer_rows(pd.DataFrame([transformer("T1", oil_spread_c=0.0)]), DAY,
                                      integrity.RULES_VERSION)
    assert integrity.audit(rows, [DAY]).passed
    rows.loc[rows["flagged"], "reason"] = ""
    outcome = integrity.audit(rows, [DAY])
    assert not outcome.passed and "1 flag(s) without a reason" in outcome.summary


def test_the_spreads_the_model_sees_are_shares_of_the_units_own_usual():
    """A unit that always swings less than the fleet has its flat days at about 1.0 of its usual;
    a unit with too few usual days, or a usual too small to divide by, has none."""
    stats = pd.DataFrame({"transformer_id": ["T-flat", "T-new", "T-dead"], "hours": 24,
                          "load_mean_pct": 50.0, "load_min_pct": 40.0, "load_max_pct": 60.0,
                          "load_spread_pct": 20.0, "load_spread_rel": [0.4, 0.4, 0.4],
                          "oil_mean_c": 40.0, "oil_spread_c": [3.0, 3.0, 3.0],
                          "thermal_index_c": 30.0})
    expected = pd.DataFrame({"device_id": ["T-flat", "T-new", "T-dead"], "circuit_id": "C01",
                             "reported_before": True, "failed_recently": False})
    reference = pd.DataFrame({"device_id": ["T-flat", "T-new", "T-dead"],
                              "thermal_reference_c": 30.0, "reference_days": [20, 2, 20],
                              "thermal_recent_c": 30.0, "recent_days": 3,
                              "oil_spread_ref_c": [4.0, 4.0, 0.1],
                              "load_spread_ref": [0.5, 0.5, 0.5],
                              "spread_days": [20, integrity.MIN_REFERENCE_DAYS - 1, 20]})
    hourly = pd.DataFrame(columns=["transformer_id", "circuit_id", "h", "kva"])
    out = integrity.transformer_signals(DAY, stats, expected, hourly, reference).set_index(
        "device_id")
    assert out.loc["T-flat", "oil_spread_own"] == pytest.approx(0.75)
    assert out.loc["T-flat", "load_spread_own"] == pytest.approx(0.8)
    assert pd.isna(out.loc["T-new", "oil_spread_own"]) and pd.isna(out.loc["T-new",
                                                                         "load_spread_own"])
    assert pd.isna(out.loc["T-dead", "oil_spread_own"])
    assert out.loc["T-dead", "load_spread_own"] == pytest.approx(0.8)
