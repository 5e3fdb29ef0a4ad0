"""The storm list's pure parts: the circuit state's age, and what the storm assets' checks verify."""

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import storm_risk
from gridassets.domain.storm_risk import StateAge


@pytest.mark.parametrize(("alert_time", "max_days", "days", "stale", "described"), [
    (datetime(2025, 7, 1, 6), 2, 1, False, "circuit state of 2025-06-30, 1 day old"),
    (datetime(2025, 7, 2, 23, 59), 2, 2, False, "circuit state of 2025-06-30, 2 days old"),
    (datetime(2025, 7, 3, 0, 1), 2, 3, True, "circuit state of 2025-06-30, 3 days old"),
    (datetime(2026, 12, 1, 12), 2, 519, True, "circuit state of 2025-06-30, 519 days old"),
    (datetime(2025, 6, 30, 12), 0, 0, False, "circuit state of 2025-06-30, 0 days old"),
    (datetime(2025, 6, 28, 12), 2, -2, False,
     "circuit state of 2025-06-30, 2 days after the storm's latest alert"),
])
def test_state_age_counts_days_from_the_alert(alert_time, max_days, days, stale, described):
    age = StateAge(date(2025, 6, 30), alert_time, max_days)
    assert (age.days, age.stale, age.describe()) == (days, stale, described)
    assert age.note() == (f"stale: {described} (the limit is {max_days} days)" if stale else None)


def test_the_alert_time_is_the_latest_sent_or_received():
    alerts = pd.DataFrame({
        "sent": pd.to_datetime(["2025-07-10 12:00", None]),
        "received_at": pd.to_datetime(["2025-07-10 12:05", "2025-07-11 08:00"]),
    })
    assert storm_risk.storm_alert_time(alerts) == datetime(2025, 7, 11, 8)
    assert storm_risk.storm_alert_time(alerts.iloc[:1]) == datetime(2025, 7, 10, 12)


def risk_rows(n: int = 2) -> pd.DataFrame:
    return pd.DataFrame({
        "storm_id": "s", "circuit_id": [f"C{i}" for i in range(n)], "zone": "MTZ309",
        "message_id": "m", "event": "High Wind Warning", "window_hours": 12.0,
        "max_wind_gust_mph": 70.0, "state_date": pd.Timestamp("2025-06-30"),
        "tree_canopy_pct": 20.0, "years_since_trim": 2.0, "expected_outages": [0.5, 0.2][:n],
        "expected_customer_minutes": [5000.0, 9000.0][:n],
        "vegetation_customer_minutes": [0.0, 0.0][:n], "customers": [1000, 2000][:n],
        "critical_customers": [0, 1][:n], "model_version": "outage-v1",
    })


CIRCUITS = pd.DataFrame({"circuit_id": ["C0", "C1"], "zone": "MTZ309", "customers": [1000, 2000],
                         "critical_customers": [0, 1]})


def test_a_stale_list_says_so_in_every_reason_and_records_its_state():
    age = StateAge(date(2025, 6, 30), datetime(2025, 7, 10, 12), 2)
    frame = storm_risk.rank_storm_circuits("s", "active", risk_rows(), pd.DataFrame(), CIRCUITS,
                                           ["MTZ309"], state=age)
    assert list(frame["circuit_id"]) == ["C1", "C0"] and list(frame["rank"]) == [1, 2]
    assert all(r.startswith("stale: circuit state of 2025-06-30, 10 days old (the limit is 2 "
                            "days); High Wind Warning: gusts to 70 mph") for r in frame["reason"])
    assert set(frame["state_date"]) == {pd.Timestamp("2025-06-30")}
    assert list(frame["state_age_days"]) == [10, 10]


def test_a_fresh_list_records_its_state_without_a_warning():
    age = StateAge(date(2025, 6, 30), datetime(2025, 7, 1, 12), 2)
    frame = storm_risk.rank_storm_circuits("s", "active", risk_rows(), pd.DataFrame(), CIRCUITS,
                                           ["MTZ309"], state=age)
    assert not any("stale" in r for r in frame["reason"])
    assert list(frame["state_age_days"]) == [1, 1]


def test_a_cancelled_list_stands_down_with_no_state():
    frame = storm_risk.rank_storm_circuits("s", "cancelled", pd.DataFrame(), pd.DataFrame(),
                                           CIRCUITS, ["MTZ309"])
    assert len(frame) == 2 and (frame["priority_score"] == 0).all()
    assert frame["state_date"].isna().all() and frame["state_age_days"].isna().all()
    assert storm_risk.ranking_problems(frame) == []


def test_an_active_storm_without_risk_rows_is_not_a_stand_down():
    with pytest.raises(ValueError, match="storm s is active but no circuit of it has an outage"):
        storm_risk.rank_storm_circuits("s", "active", pd.DataFrame(), pd.DataFrame(), CIRCUITS,
                                       ["MTZ309"])


def ranked(**columns) -> pd.DataFrame:
    base = {"rank": [1, 2, 3], "circuit_id": ["C0", "C1", "C2"],
            "priority_score": [9.0, 5.0, 5.0]}
    base.update(columns)
    return pd.DataFrame(base)


@pytest.mark.parametrize(("frame", "problems"), [
    (ranked(), []),
    (ranked().iloc[0:0], ["the list is empty"]),
    (ranked(rank=[1, 3, 2]), ["ranks are not 1..N in order"]),
    (ranked(rank=[0, 1, 2]), ["ranks are not 1..N in order"]),
    (ranked(circuit_id=["C0", "C1", "C0"]), ["a circuit is listed more than once"]),
    (ranked(priority_score=[1.0, 5.0, 9.0]), ["priority scores rise further down the list"]),
    (ranked(priority_score=[9.0, np.nan, 1.0]), ["priority scores that are not finite numbers"]),
])
def test_ranking_problems(frame, problems):
    assert storm_risk.ranking_problems(frame) == problems


@pytest.mark.parametrize(("frame", "status", "problems"), [
    (risk_rows(), "active", []),
    (risk_rows().iloc[0:0], "cancelled", []),
    (risk_rows().iloc[0:0], "active", ["no circuit scored for a storm that is active"]),
    (pd.concat([risk_rows(), risk_rows().iloc[:1]]), "active",
     ["circuits scored more than once: C0"]),
    (risk_rows().assign(expected_outages=[-0.1, np.inf]), "expired",
     ["expected outages not a number of 0 or more for C0, C1"]),
    (risk_rows().assign(model_version=[None, "v"]), "active",
     ["rows without the model version that scored them"]),
])
def test_outage_risk_problems(frame, status, problems):
    assert storm_risk.outage_risk_problems(frame, status) == problems


def test_the_storm_risk_module_needs_no_dagster():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(storm_risk))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert not {m for m in imported if m and m.split(".")[0] == "dagster"}
