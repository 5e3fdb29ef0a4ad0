"""Work orders from the day's scores, on small inline tables: who gets an order, what work, in
which priority, and which orders carry over from the day before."""

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import work_orders as wo

D1, D2, D3 = (pd.Timestamp("2025-06-01"), pd.Timestamp("2025-06-02"),
              pd.Timestamp("2025-06-03"))
CIRCUITS = pd.DataFrame({"circuit_id": ["C1", "C2", "C3"], "zone": ["MTZ001", "MTZ002", "MTZ002"],
                         "latitude": [46.5, 46.6, np.nan], "longitude": [-112.0, -112.1, np.nan]})


def risk(day, rows: dict[str, tuple[str, float, float]]) -> pd.DataFrame:
    """transformer -> (circuit, p_fail_30d, customer-minutes at risk), banded as the risk
    module bands them."""
    from gridassets.domain.risk import health_index

    p = np.array([v[1] for v in rows.values()])
    return pd.DataFrame({"date": day, "transformer_id": list(rows),
                         "circuit_id": [v[0] for v in rows.values()], "p_fail_30d": p,
                         "health_index": health_index(p),
                         "risk_customer_minutes_7d": [v[2] for v in rows.values()],
                         "signals": ["H2 rising 3.0 ppm/day", *[""] * len(rows)][:len(rows)],
                         "model_version": "maintenance-v1"})


def ranked(day, scores: dict[str, tuple[float, float, float, float]]) -> pd.DataFrame:
    """circuit -> (outage, vegetation, transformer, loading) scores, ranked by their sum."""
    frame = pd.DataFrame({"circuit_id": list(scores),
                          "outage_score": [s[0] for s in scores.values()],
                          "vegetation_score": [s[1] for s in scores.values()],
                          "transformer_score": [s[2] for s in scores.values()],
                          "loading_score": [s[3] for s in scores.values()]})
    frame["priority_score"] = frame[["outage_score", "transformer_score", "loading_score"]].sum(1)
    frame = frame.sort_values(["priority_score", "circuit_id"], ascending=[False, True])
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame.assign(date=day, reason=[f"reason of {c}" for c in frame["circuit_id"]],
                        outage_model_version="outage-v1",
                        maintenance_model_version="maintenance-v1").reset_index(drop=True)


QUIET = {"C1": (10.0, 1.0, 0.0, 0.0), "C2": (5.0, 0.0, 0.0, 0.0), "C3": (0.0, 0.0, 0.0, 0.0)}


def orders(day, transformers, scores=QUIET, previous=None, top=wo.TOP_OF_LIST):
    return wo.build_work_orders(day, risk(day, transformers), ranked(day, scores), CIRCUITS,
                                previous, top_of_list=top)


def by_subject(frame: pd.DataFrame) -> pd.DataFrame:
    key = np.where(frame["kind"] == wo.INSPECT, frame["transformer_id"], frame["circuit_id"])
    return frame.set_index(key)


@pytest.mark.parametrize("p, ordered", [(0.0099, False), (0.01, True), (0.049, True),
                                        (0.05, True), (0.6, True), (0.004, False)])
def test_a_transformer_gets_an_inspection_once_it_crosses_into_hi4(p, ordered):
    frame = orders(D1, {"T1": ("C2", p, 40.0), "T2": ("C1", 0.001, 1.0)})
    inspections = frame[frame["kind"] == wo.INSPECT]
    assert list(inspections["transformer_id"]) == (["T1"] if ordered else [])
    if ordered:
        [row] = inspections.itertuples(index=False)
        assert row.task == f"inspect transformer T1 ({row.health_index})"
        assert row.health_index == ("HI5" if p >= 0.05 else "HI4")
        assert row.circuit_id == "C2" and row.zone == "MTZ002"
        assert row.location == "transformer T1 on circuit C2, zone MTZ002 (circuit at " \
                               "46.6000, -112.1000)"
        assert f"{100 * p:.1f}% ({row.health_index})" in row.reason
        assert "H2 rising 3.0 ppm/day" in row.reason and "~40 customer-min" in row.reason
        assert row.crew == "maintenance crew" and row.model_version == "maintenance-v1"
        assert row.customer_minutes_7d == 40.0 and pd.isna(row.list_rank)


@pytest.mark.parametrize("scores, kind", [
    ((10.0, 8.0, 1.0, 0.5), wo.TRIM),          # most of the outage risk is what a trim avoids
    ((10.0, 2.0, 1.0, 0.5), wo.PATROL),        # weather and animals: trimming would not help
    ((3.0, 1.0, 9.0, 0.0), wo.MAINTENANCE),    # transformer and equipment failures
    ((1.0, 0.0, 0.5, 7.0), wo.LOAD_RELIEF),    # overload at tomorrow's peak
])
def test_a_circuit_at_the_top_gets_the_work_of_the_largest_part_of_its_score(scores, kind):
    frame = by_subject(orders(D1, {}, {"C1": scores, "C2": (1.0, 0.0, 0.0, 0.0)}))
    row = frame.loc["C1"]
    assert row["kind"] == kind and row["crew"] == wo.CREWS[kind]
    outage, vegetation, transformer, loading = scores
    part = {wo.TRIM: vegetation, wo.PATROL: outage - vegetation, wo.MAINTENANCE: transformer,
            wo.LOAD_RELIEF: loading}[kind]
    assert row["customer_minutes_7d"] == pytest.approx(part)
    assert row["list_rank"] == 1 and row["reason"] == "rank 1 on the day's list: reason of C1"
    assert row["model_version"] == {wo.TRIM: "outage-v1", wo.PATROL: "outage-v1",
                                    wo.MAINTENANCE: "maintenance-v1", wo.LOAD_RELIEF: None}[kind]
    assert pd.isna(row["transformer_id"]) and pd.isna(row["p_fail_30d"])


def test_only_the_top_of_the_list_with_a_score_gets_circuit_orders():
    frame = orders(D1, {}, top=1)
    assert list(frame["circuit_id"]) == ["C1"]
    frame = orders(D1, {})  # C3 is in the top ten but scores nothing: no order
    assert sorted(frame["circuit_id"]) == ["C1", "C2"]
    assert frame.loc[frame["circuit_id"] == "C1", "location"].item() == \
        "circuit C1, zone MTZ001 (circuit at 46.5000, -112.0000)"


def test_priority_follows_the_customer_minutes_the_work_acts_on():
    frame = orders(D1, {"T1": ("C3", 0.02, 12.0), "T2": ("C3", 0.3, 3.0),
                        "T3": ("C1", 0.02, 3.0)})
    assert list(frame["priority"]) == [1, 2, 3, 4, 5]
    # T1 12 > C1 patrol 9 > C2 patrol 5 > T2 3 = T3 3 (a tie goes by transformer id)
    assert list(frame["order_id"].str.split("-", n=4).str[-1]) == [
        "inspect-T1", "patrol-C1", "patrol-C2", "inspect-T2", "inspect-T3"]
    assert (np.diff(frame["customer_minutes_7d"]) <= 0).all()
    assert wo.audit(frame, [D1.date()]).passed


def test_a_first_day_opens_every_order_new():
    frame = orders(D1, {"T1": ("C1", 0.02, 5.0)})
    assert set(frame["status"]) == {wo.NEW}
    assert (frame["open_since"] == D1).all() and (frame["days_open"] == 1).all()
    assert set(frame["order_id"]) == {"WO-2025-06-01-inspect-T1", "WO-2025-06-01-patrol-C1",
                                      "WO-2025-06-01-patrol-C2"}


def test_an_order_open_yesterday_carries_over_with_its_id_and_open_since():
    day1 = orders(D1, {"T1": ("C1", 0.02, 5.0)})
    day2 = orders(D2, {"T1": ("C1", 0.06, 6.0), "T2": ("C2", 0.03, 1.0)}, previous=day1)
    day3 = orders(D3, {"T1": ("C1", 0.06, 6.0), "T2": ("C2", 0.03, 1.0)}, previous=day2)
    t1, t2 = by_subject(day3[day3["kind"] == wo.INSPECT]).loc[["T1", "T2"]].itertuples()
    assert (t1.status, t1.open_since, t1.days_open) == (wo.CARRIED_OVER, D1, 3)
    assert t1.order_id == "WO-2025-06-01-inspect-T1"  # the same order, now HI5
    assert t1.task == "inspect transformer T1 (HI5)"
    assert (t2.status, t2.open_since, t2.days_open) == (wo.CARRIED_OVER, D2, 2)
    assert t2.order_id == "WO-2025-06-02-inspect-T2"
    new_t2 = by_subject(day2).loc["T2"]
    assert new_t2["status"] == wo.NEW and new_t2["open_since"] == D2
    assert wo.counts(day3) == {wo.INSPECT: {wo.NEW: 0, wo.CARRIED_OVER: 2},
                               wo.PATROL: {wo.NEW: 0, wo.CARRIED_OVER: 2}}
    assert wo.audit(pd.concat([day1, day2, day3]), [D1.date(), D2.date(), D3.date()]).passed


def test_a_transformer_that_leaves_hi4_drops_out_and_reopens_as_a_new_order():
    day1 = orders(D1, {"T1": ("C1", 0.02, 5.0)})
    day2 = orders(D2, {"T1": ("C1", 0.009, 4.0)}, previous=day1)  # HI3 now
    assert wo.INSPECT not in set(day2["kind"])
    closed = wo.closed_orders(day1, day2)
    assert list(closed["order_id"]) == ["WO-2025-06-01-inspect-T1"]
    day3 = orders(D3, {"T1": ("C1", 0.02, 5.0)}, previous=day2)
    t1 = by_subject(day3).loc["T1"]
    assert t1["status"] == wo.NEW and t1["order_id"] == "WO-2025-06-03-inspect-T1"


def test_a_circuit_whose_work_changes_closes_one_order_and_opens_another():
    day1 = orders(D1, {}, {"C1": (10.0, 9.0, 0.0, 0.0), "C2": (1.0, 0.0, 0.0, 0.0)})
    day2 = orders(D2, {}, {"C1": (10.0, 1.0, 0.0, 0.0), "C2": (1.0, 0.0, 0.0, 0.0)},
                  previous=day1)
    c1 = by_subject(day2).loc["C1"]
    assert (c1["kind"], c1["status"]) == (wo.PATROL, wo.NEW)
    assert by_subject(day2).loc["C2", "status"] == wo.CARRIED_OVER
    assert list(wo.closed_orders(day1, day2)["order_id"]) == ["WO-2025-06-01-trim-C1"]


@pytest.mark.parametrize("vegetation, kind, status", [
    (4.0, wo.TRIM, wo.CARRIED_OVER),   # trim 4 is still at least half of patrol 6: kept
    (3.0, wo.PATROL, wo.NEW),          # trim 3 is less than half of patrol 7: the work changes
])
def test_a_circuit_keeps_its_work_while_that_part_stays_large(vegetation, kind, status):
    day1 = orders(D1, {}, {"C1": (10.0, 9.0, 0.0, 0.0), "C2": (1.0, 0.0, 0.0, 0.0)})
    day2 = orders(D2, {}, {"C1": (10.0, vegetation, 0.0, 0.0), "C2": (1.0, 0.0, 0.0, 0.0)},
                  previous=day1)
    c1 = by_subject(day2).loc["C1"]
    assert (c1["kind"], c1["status"]) == (kind, status)
    assert c1["customer_minutes_7d"] == (vegetation if kind == wo.TRIM else 10.0 - vegetation)


def test_a_range_carries_orders_from_day_to_day():
    transformers = pd.concat([risk(d, {"T1": ("C1", 0.02, 5.0)}) for d in (D1, D2)])
    lists = pd.concat([ranked(d, QUIET) for d in (D1, D2)])
    day1, day2 = wo.work_orders_over([D1.date(), D2.date()], transformers, lists, CIRCUITS)
    assert set(day1["status"]) == {wo.NEW}
    assert set(day2["status"]) == {wo.CARRIED_OVER}
    assert list(day2["order_id"]) == list(day1["order_id"])


def test_a_day_with_no_orders_keeps_every_column_and_type():
    frame = orders(D1, {"T1": ("C1", 0.001, 1.0)},
                   {"C1": (0.0, 0.0, 0.0, 0.0), "C2": (0.0, 0.0, 0.0, 0.0)})
    assert frame.empty and list(frame.columns) == list(wo.COLUMNS)
    assert str(frame["date"].dtype) == "datetime64[us]"
    assert wo.audit(frame, [D1.date()]).passed
    assert wo.closed_orders(None, frame).empty


def test_the_csv_rounds_numbers_and_writes_days_as_dates():
    csv = wo.csv_frame(orders(D2, {"T1": ("C1", 0.0234567, 5.04321)},
                              previous=orders(D1, {"T1": ("C1", 0.02, 5.0)})))
    assert list(csv.columns) == list(wo.COLUMNS)
    t1 = by_subject(csv).loc["T1"]
    assert (t1["date"], t1["open_since"]) == ("2025-06-02", "2025-06-01")
    assert t1["p_fail_30d"] == 0.0235 and t1["customer_minutes_7d"] == 5.0


@pytest.mark.parametrize("table, column", [("transformer_risk", "health_index"),
                                           ("prioritized_circuits", "vegetation_score"),
                                           ("circuits", "zone")])
def test_a_missing_column_names_the_table_and_column(table, column):
    inputs = {"transformer_risk": risk(D1, {"T1": ("C1", 0.02, 5.0)}),
              "prioritized_circuits": ranked(D1, QUIET), "circuits": CIRCUITS}
    inputs[table] = inputs[table].drop(columns=column)
    with pytest.raises(ValueError, match=f"{table} lacks the column\\(s\\) {column}"):
        wo.build_work_orders(D1, inputs["transformer_risk"], inputs["prioritized_circuits"],
                             inputs["circuits"])


def test_previous_orders_of_another_day_are_refused():
    day1 = orders(D1, {"T1": ("C1", 0.02, 5.0)})
    with pytest.raises(ValueError, match="must be those of 2025-06-02, the day before "
                                         "2025-06-03; got \\['2025-06-01'\\]"):
        orders(D3, {"T1": ("C1", 0.02, 5.0)}, previous=day1)


def test_an_empty_list_is_refused():
    with pytest.raises(ValueError, match="no prioritized list for 2025-06-01"):
        wo.build_work_orders(D1, risk(D1, {}), ranked(D1, {}), CIRCUITS)


@pytest.mark.parametrize("break_it, problem", [
    (lambda f: f.assign(priority=f["priority"][::-1].to_numpy()), "priorities do not follow"),
    (lambda f: f.assign(status=wo.CARRIED_OVER), "open_since disagrees with status"),
    (lambda f: pd.concat([f, f.iloc[[0]]]), "duplicate order ids"),
    (lambda f: f.assign(reason=""), "reason: 3 empty value(s)"),
])
def test_the_audit_refuses_broken_orders(break_it, problem):
    frame = orders(D1, {"T1": ("C1", 0.02, 5.0)})
    outcome = wo.audit(break_it(frame), [D1.date()])
    assert not outcome.passed and problem in outcome.summary
