"""Training windows, labels, sampling correction, metrics and the ranking, on small inline data."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from gridassets import warehouse
from gridassets.domain import models, prioritization, registry
from gridassets.storage import training_data


def test_maintenance_window_leaves_a_purge_gap_and_unknown_labels_out():
    w = models.training_window(models.MAINTENANCE, date(2025, 6, 2), date(2024, 1, 1))
    assert w.holdout_end == date(2025, 6, 2) - timedelta(days=models.HORIZON_DAYS)
    assert (w.holdout_end - w.holdout_start).days == models.HOLDOUT_DAYS
    # a training row's label looks HORIZON_DAYS ahead: it must end before the holdout starts
    assert w.train_end + timedelta(days=models.HORIZON_DAYS) <= w.holdout_start
    assert (w.train_end - w.train_start).days == models.MAINTENANCE.train_days


def test_short_history_is_a_clear_training_error():
    with pytest.raises(models.TrainingError, match="days of training history"):
        models.training_window(models.OUTAGE, date(2025, 3, 3), date(2025, 1, 20))


def test_prior_correction_undoes_negative_sampling():
    rng = np.random.default_rng(0)
    y = rng.random(200_000) < 0.01
    rate = 0.1
    keep = y | (rng.random(len(y)) < rate)
    sample_rate = y[keep].mean()  # what a model fitted on the sample would predict on average
    assert models.prior_correct(np.array([sample_rate]), rate)[0] == pytest.approx(0.01, rel=0.1)
    assert models.prior_correct(np.array([0.0, 1.0]), rate).tolist() == [0.0, 1.0]


def test_balance_keeps_every_positive():
    frame = pd.DataFrame({"label": [True] * 3 + [False] * 100, "x": range(103)})
    sample, rate = models.balance(frame, "label", seed=1)
    assert sample["label"].sum() == 3
    assert (~sample["label"]).sum() == 3 * models.NEGATIVES_PER_POSITIVE
    assert rate == pytest.approx(30 / 100)


def test_too_few_positives_refuses_to_train():
    rows = pd.DataFrame({c: [1.0] * 50 for c in models.OUTAGE.features})
    rows["label"] = [True] * 2 + [False] * 48
    rows["date"], rows["circuit_id"] = pd.Timestamp("2025-01-01"), "C1"
    with pytest.raises(models.TrainingError, match="2 positive training rows"):
        models.train(models.OUTAGE, rows, rows, seed=1)


def test_labels_mark_failures_in_the_next_30_days_only(tmp_path):
    db = tmp_path / "l.duckdb"
    days = pd.date_range("2025-01-01", periods=60, freq="D")
    health = pd.DataFrame({"transformer_id": "T1", "date": days, "circuit_id": "C1"})
    with warehouse.connect(db) as con:
        warehouse.replace_rows(con, "transformer_health_features", health)
        warehouse.replace_rows(con, "transformer_failures", pd.DataFrame({
            "transformer_id": ["T1"], "failed_at": [pd.Timestamp("2025-02-10 13:00")],
            "failure_mode": ["thermal"]}))
        rows = training_data.maintenance_rows(con, date(2025, 1, 1), date(2025, 3, 2))
    positive = set(rows.loc[rows["label"], "date"].dt.date)
    assert min(positive) == date(2025, 1, 11)  # 2025-01-11 + 30 days covers 02-10
    assert max(positive) == date(2025, 2, 9)   # the day before the failure
    assert len(positive) == 30


def test_promotion_rule():
    assert registry.decide(0.80, None, None)[0]
    assert registry.decide(0.80, 0.805, "v1")[0]  # within tolerance
    promote, reason = registry.decide(0.70, 0.80, "v1")
    assert not promote and "kept v1" in reason


# --- the ranking ------------------------------------------------------------------------------


def ranking_inputs():
    circuits = pd.DataFrame({"circuit_id": ["A", "B", "C", "D"], "zone": "MTZ309",
                             "customers": [1000, 2000, 500, 1000],
                             "critical_customers": [0, 2, 0, 0]})
    outage = pd.DataFrame({"circuit_id": ["A", "B", "C", "D"],
                           "risk_customer_minutes_7d": [5000.0, 1000.0, 0.0, 5000.0],
                           "expected_outages_7d": [0.5, 0.1, 0.0, 0.5],
                           "peak_gust_mph": [50.0, 20.0, 10.0, 50.0], "model_version": "o1"})
    vegetation = pd.DataFrame({"circuit_id": ["A", "B", "C", "D"],
                               "vegetation_score": [2000.0, 0.0, 0.0, 2000.0],
                               "tree_canopy_pct": [60.0, 5.0, 0.0, 60.0],
                               "years_since_trim": [7.0, 1.0, 2.0, 7.0]})
    transformers = pd.DataFrame({
        "circuit_id": ["B"], "transformer_score": [6000.0], "transformers_at_risk": [2],
        "worst_transformer": ["T9"], "worst_transformer_p30": [0.2],
        "worst_transformer_signals": ["H2 rising 4.0 ppm/day"],
        "maintenance_model_version": ["m1"]})
    return circuits, outage, vegetation, transformers


def test_ranking_adds_components_breaks_ties_by_id_and_explains_each_row():
    circuits, outage, vegetation, transformers = ranking_inputs()
    ranked = prioritization.rank_circuits("2025-06-01", circuits, outage, vegetation,
                                          transformers, pd.DataFrame())
    assert ranked["circuit_id"].tolist() == ["B", "A", "D", "C"]
    assert ranked.loc[0, "priority_score"] == pytest.approx(7000.0)
    assert "2 transformer(s) above 5% failure risk; worst T9 20% (H2 rising" in ranked.loc[0, "reason"]
    assert "60% tree canopy, 7.0 years since trim" in ranked.loc[1, "reason"]
    assert ranked.loc[3, "reason"].startswith("no elevated risk")
    assert all(len(r) > 15 for r in ranked["reason"])
    again = prioritization.rank_circuits("2025-06-01", circuits.sample(frac=1, random_state=3),
                                         outage, vegetation, transformers, pd.DataFrame())
    pd.testing.assert_frame_equal(ranked, again)


def test_captured_share():
    ranking = pd.Series({"A": 3.0, "B": 2.0, "C": 1.0, "D": 0.0})
    impact = pd.Series({"A": 0.0, "B": 10.0, "C": 30.0, "D": 60.0})
    assert prioritization.captured_share(ranking, impact, top_share=0.5) == pytest.approx(0.1)
    assert prioritization.captured_share(-ranking, impact, top_share=0.25) == pytest.approx(0.6)
