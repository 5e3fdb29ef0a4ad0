"""Work orders: what the day's scores ask crews to do, and which of it was asked the day before.

Each day gives two sorts of order:
- an inspection (`inspect`) of every transformer whose health index is in ORDER_BANDS (HI4, HI5:
  a 30-day failure probability of 1 % or more, `risk.HI_BANDS`);
- one order for each circuit in the top TOP_OF_LIST of the day's prioritized list (with a priority
  score above zero), of the work that the largest part of its score calls for. The score of a
  circuit is split into what each kind of work acts on (`CIRCUIT_WORK`): the outage risk a trim
  would avoid (`trim`: the vegetation score), the rest of the outage risk, from weather and
  animals (`patrol`), transformer and other equipment failures (`maintenance`), and overload at
  tomorrow's peak (`load_relief`). A circuit that had an order the day before keeps that kind of
  work while its part is still at least KEEP_WORK_SHARE of the largest part, so that an order
  does not flip between trim and patrol as the two parts trade a few percent.

An order is the same order from one day to the next when it is of the same kind on the same
transformer or circuit: it is then `carried_over` and keeps its `order_id` and `open_since`;
otherwise it is `new`, opened that day. An order of the day before that is not found again is
closed (the transformer left HI4/HI5, the circuit left the top of the list, or the work its score
calls for changed).

Priority 1 is the first to take: orders are ranked by the expected customer-minutes that the work
acts on over the next seven days (`customer_minutes_7d`), the unit every score of the project is
in; ties by kind and id, so that the order is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from gridassets.domain.quality import MAX_EXAMPLES, CheckOutcome

ORDER_BANDS = ("HI4", "HI5")  # health-index bands whose transformers get an inspection
TOP_OF_LIST = 10  # circuits of the day's list that get an order: crews take work by count
# A circuit keeps the day before's kind of work while that part is at least this share of the
# largest part of its score.
KEEP_WORK_SHARE = 0.5

NEW, CARRIED_OVER = "new", "carried_over"
INSPECT, TRIM, PATROL, MAINTENANCE, LOAD_RELIEF = (
    "inspect", "trim", "patrol", "maintenance", "load_relief")
# The crew that takes each kind of order.
CREWS = {INSPECT: "maintenance crew", TRIM: "vegetation crew", PATROL: "line patrol crew",
         MAINTENANCE: "maintenance crew", LOAD_RELIEF: "system operations"}
# The kinds of circuit work in the order in which they win a tie for the largest part.
CIRCUIT_WORK = (TRIM, PATROL, MAINTENANCE, LOAD_RELIEF)
# Where each kind of circuit work takes its model version from (the list's columns).
_VERSION_OF = {TRIM: "outage_model_version", PATROL: "outage_model_version",
               MAINTENANCE: "maintenance_model_version", LOAD_RELIEF: None}

# The columns of a day's orders, in order, with what each holds (the table's and the CSV's).
COLUMNS: dict[str, str] = {
    "date": "The day whose scores the order comes from (the partition).",
    "priority": "1 is the first to take: by customer_minutes_7d, highest first.",
    "order_id": "Stable id: WO-<open_since>-<kind>-<transformer or circuit id>; the same order "
                "keeps it from day to day.",
    "status": "new (not an order the day before) or carried_over.",
    "open_since": "The first day of the unbroken run of days the order has been open.",
    "days_open": "Days the order has been open, today included (1 for a new order).",
    "kind": "inspect (a transformer in HI4/HI5), trim, patrol, maintenance or load_relief "
            "(a circuit at the top of the list).",
    "crew": "Who takes the order.",
    "task": "What to do, in a crew lead's words.",
    "location": "Where: the transformer, its circuit and zone, and the circuit's coordinates.",
    "reason": "Why: the probability and signals of the transformer, or the circuit's rank and "
              "the list's reason.",
    "transformer_id": "The transformer to inspect (empty for a circuit order).",
    "circuit_id": "The circuit of the work.",
    "zone": "The circuit's NWS forecast zone.",
    "latitude": "The circuit's latitude (empty where the registry has none).",
    "longitude": "The circuit's longitude (empty where the registry has none).",
    "health_index": "The transformer's health index HI4 or HI5 (empty for a circuit order).",
    "p_fail_30d": "The transformer's 30-day failure probability (empty for a circuit order).",
    "list_rank": "The circuit's rank on the day's list (empty for an inspection).",
    "customer_minutes_7d": "Expected customer-minutes over the next 7 days that the work acts "
                           "on: the transformer's risk, or the part of the circuit's score of "
                           "this kind of work.",
    "model_version": "The model version behind customer_minutes_7d (none for load relief).",
}
_TEXT = ("order_id", "status", "kind", "crew", "task", "location", "reason", "transformer_id",
         "circuit_id", "zone", "health_index", "model_version")
_FLOAT = ("latitude", "longitude", "p_fail_30d", "customer_minutes_7d")
_DATES = ("date", "open_since")

TRANSFORMER_COLUMNS = ("transformer_id", "circuit_id", "p_fail_30d", "health_index",
                       "risk_customer_minutes_7d", "signals", "model_version")
LIST_COLUMNS = ("rank", "circuit_id", "priority_score", "outage_score", "transformer_score",
                "vegetation_score", "loading_score", "reason", "outage_model_version",
                "maintenance_model_version")
CIRCUIT_COLUMNS = ("circuit_id", "zone")
PREVIOUS_COLUMNS = ("date", "order_id", "kind", "transformer_id", "circuit_id", "open_since")


def make_order_id(open_since, kind: str, subject: str) -> str:
    """WO-<open_since as YYYY-MM-DD>-<kind>-<transformer or circuit id>."""
    return f"WO-{pd.Timestamp(open_since):%Y-%m-%d}-{kind}-{subject}"


def build_work_orders(day, transformer_risk: pd.DataFrame, ranked: pd.DataFrame,
                      circuits: pd.DataFrame, previous: pd.DataFrame | None = None,
                      top_of_list: int = TOP_OF_LIST) -> pd.DataFrame:
    """The work orders of `day`, in priority order, with the columns of COLUMNS.

    transformer_risk: the day's transformer risk rows (TRANSFORMER_COLUMNS); ranked: the day's
    prioritized list (LIST_COLUMNS); circuits: the registry (circuit_id, zone, and latitude,
    longitude where known); previous: the orders of the day before (PREVIOUS_COLUMNS), None or
    empty when there were none. Raises ValueError naming the input and column when a column is
    missing, when the list is empty, or when `previous` holds orders of another day than the day
    before.
    """
    day = pd.Timestamp(day).normalize()
    _require(transformer_risk, TRANSFORMER_COLUMNS, "transformer_risk")
    _require(ranked, LIST_COLUMNS, "prioritized_circuits")
    _require(circuits, CIRCUIT_COLUMNS, "circuits")
    if ranked.empty:
        raise ValueError(f"no prioritized list for {day:%Y-%m-%d}: work orders need the day's "
                         "list")
    previous = _checked_previous(day, previous)
    kept = {} if previous is None else {
        c: k for k, c in zip(previous["kind"], previous["circuit_id"]) if k != INSPECT}
    where = circuits.reindex(columns=["circuit_id", "zone", "latitude", "longitude"])
    orders = pd.concat([_inspections(day, transformer_risk, where),
                        _circuit_orders(day, ranked, where, top_of_list, kept)],
                       ignore_index=True)
    orders = _with_status(day, orders, previous)
    orders = orders.sort_values(["customer_minutes_7d", "kind", "_subject"],
                                ascending=[False, True, True], kind="stable")
    orders["priority"] = np.arange(1, len(orders) + 1)
    return _typed(orders.drop(columns="_subject").reset_index(drop=True))


def work_orders_over(days: Sequence[date], transformer_risk: pd.DataFrame, ranked: pd.DataFrame,
                     circuits: pd.DataFrame, before: pd.DataFrame | None = None,
                     top_of_list: int = TOP_OF_LIST) -> list[pd.DataFrame]:
    """The orders of each day of `days` (consecutive, in order), each day's carried over from the
    one before; `before` holds the orders of the day before the first (None or empty: none).
    transformer_risk and ranked hold the rows of every day (a `date` column tells them apart)."""
    out = []
    previous = before
    for day in days:
        ts = pd.Timestamp(day)
        previous = build_work_orders(ts, transformer_risk[transformer_risk["date"] == ts],
                                     ranked[ranked["date"] == ts], circuits, previous,
                                     top_of_list)
        out.append(previous)
    return out


def closed_orders(previous: pd.DataFrame | None, today: pd.DataFrame) -> pd.DataFrame:
    """The orders of the day before that `today` no longer has (same kind and transformer or
    circuit): the work is no longer asked for."""
    if previous is None or previous.empty:
        return _typed(pd.DataFrame(columns=list(COLUMNS)))
    kept = set(_subjects(today)) if len(today) else set()
    return previous[[s not in kept for s in _subjects(previous)]].reset_index(drop=True)


def audit(frame: pd.DataFrame, days: Sequence[date]) -> CheckOutcome:
    """Every column present; per day, order ids and (kind, transformer or circuit) unique,
    priorities 1..N by customer_minutes_7d, a status that agrees with open_since, text filled.
    A day may have no orders."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        return CheckOutcome(False, f"missing column(s) {missing}", {"missing": missing})
    problems: list[str] = []
    known = {pd.Timestamp(d) for d in days}
    outside = sorted({f"{d:%Y-%m-%d}" for d in frame["date"] if pd.Timestamp(d) not in known})
    if outside:
        problems.append(f"rows for days not written: {outside[:MAX_EXAMPLES]}")
    for day, rows in frame.groupby("date"):
        label = f"{pd.Timestamp(day):%Y-%m-%d}"
        if rows["order_id"].duplicated().any():
            problems.append(f"{label}: duplicate order ids")
        if pd.Series(_subjects(rows)).duplicated().any():
            problems.append(f"{label}: two orders of one kind on one transformer or circuit")
        ordered = rows.sort_values("priority")
        if list(ordered["priority"]) != list(range(1, len(rows) + 1)):
            problems.append(f"{label}: priorities are not 1..{len(rows)}")
        elif (np.diff(ordered["customer_minutes_7d"].to_numpy(float)) > 1e-9).any():
            problems.append(f"{label}: priorities do not follow customer_minutes_7d")
    cm = pd.to_numeric(frame["customer_minutes_7d"], errors="coerce").astype(float)
    if (~np.isfinite(cm) | (cm < 0)).any():
        problems.append("customer_minutes_7d: values not a finite number >= 0")
    status = frame["status"]
    if (~status.isin([NEW, CARRIED_OVER])).any():
        problems.append(f"status other than {NEW}/{CARRIED_OVER}")
    since, on = pd.to_datetime(frame["open_since"]), pd.to_datetime(frame["date"])
    wrong = ((status == NEW) & (since != on)) | ((status == CARRIED_OVER) & ~(since < on))
    if wrong.any():
        problems.append(f"{int(wrong.sum())} order(s) whose open_since disagrees with status")
    bad_kind = ~frame["kind"].isin(list(CREWS))
    if bad_kind.any():
        problems.append(f"{int(bad_kind.sum())} order(s) of an unknown kind")
    for col in ("order_id", "crew", "task", "location", "reason", "circuit_id"):
        empty = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        if empty.any():
            problems.append(f"{col}: {int(empty.sum())} empty value(s)")
    if problems:
        return CheckOutcome(False, "; ".join(problems), {"problems": problems[:MAX_EXAMPLES]})
    return CheckOutcome(True, f"{len(frame):,} order(s) over {len(days)} day(s), ids unique, "
                              "priorities in order", {"orders": len(frame)})


def csv_frame(orders: pd.DataFrame) -> pd.DataFrame:
    """A day's orders as the exported CSV holds them: dates as YYYY-MM-DD, probabilities to four
    decimals, customer-minutes to a tenth."""
    out = orders[list(COLUMNS)].copy()
    for col in _DATES:
        out[col] = pd.to_datetime(out[col]).dt.strftime("%Y-%m-%d")
    out["p_fail_30d"] = out["p_fail_30d"].round(4)
    out["customer_minutes_7d"] = out["customer_minutes_7d"].round(1)
    return out


def counts(orders: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per kind: how many orders are new and how many carried over."""
    out: dict[str, dict[str, int]] = {}
    for kind in CREWS:
        rows = orders[orders["kind"] == kind]
        if len(rows):
            out[kind] = {NEW: int((rows["status"] == NEW).sum()),
                         CARRIED_OVER: int((rows["status"] == CARRIED_OVER).sum())}
    return out


def _inspections(day: pd.Timestamp, risk: pd.DataFrame, where: pd.DataFrame) -> pd.DataFrame:
    rows = risk[risk["health_index"].isin(ORDER_BANDS)]
    rows = rows[list(TRANSFORMER_COLUMNS)].merge(where, on="circuit_id", how="left")
    out = pd.DataFrame({
        "date": day, "kind": INSPECT, "crew": CREWS[INSPECT],
        "transformer_id": rows["transformer_id"].astype(str),
        "circuit_id": rows["circuit_id"].astype(str),
        "zone": rows["zone"], "latitude": rows["latitude"], "longitude": rows["longitude"],
        "health_index": rows["health_index"], "p_fail_30d": rows["p_fail_30d"].astype(float),
        "list_rank": pd.array([pd.NA] * len(rows), dtype="Int64"),
        "customer_minutes_7d": rows["risk_customer_minutes_7d"].astype(float),
        "model_version": rows["model_version"],
    }, index=rows.index)
    out["task"] = [f"inspect transformer {t} ({hi})"
                   for t, hi in zip(out["transformer_id"], out["health_index"])]
    out["location"] = [_location(r.circuit_id, r.zone, r.latitude, r.longitude, r.transformer_id)
                       for r in out.itertuples(index=False)]
    out["reason"] = [_inspection_reason(r) for r in rows.itertuples(index=False)]
    out["_subject"] = out["transformer_id"]
    return out.reset_index(drop=True)


def _circuit_orders(day: pd.Timestamp, ranked: pd.DataFrame, where: pd.DataFrame,
                    top_of_list: int, kept: dict[str, str]) -> pd.DataFrame:
    """The orders of the circuits at the top of the list; `kept`: circuit -> the kind of work
    of its order the day before."""
    top = ranked[(ranked["rank"] <= top_of_list) & (ranked["priority_score"] > 0)]
    top = top[list(LIST_COLUMNS)].merge(where, on="circuit_id", how="left")
    outage = top["outage_score"].astype(float).fillna(0.0)
    trim = top["vegetation_score"].astype(float).fillna(0.0).clip(upper=outage)
    parts = pd.DataFrame({TRIM: trim, PATROL: outage - trim,
                          MAINTENANCE: top["transformer_score"].astype(float).fillna(0.0),
                          LOAD_RELIEF: top["loading_score"].astype(float).fillna(0.0)},
                         index=top.index)[list(CIRCUIT_WORK)]
    kind = parts.idxmax(axis=1) if len(parts) else pd.Series(dtype=object)
    largest = parts.max(axis=1)
    for i, circuit in top["circuit_id"].items():
        before = kept.get(str(circuit))
        if before is not None and parts.at[i, before] >= KEEP_WORK_SHARE * largest[i] > 0:
            kind[i] = before
    out = pd.DataFrame({
        "date": day, "kind": kind, "transformer_id": None,
        "circuit_id": top["circuit_id"].astype(str), "zone": top["zone"],
        "latitude": top["latitude"], "longitude": top["longitude"], "health_index": None,
        "p_fail_30d": np.nan, "list_rank": top["rank"].astype("Int64"),
        "customer_minutes_7d": [parts.at[i, k] for i, k in kind.items()],
        "model_version": [top.at[i, _VERSION_OF[k]] if _VERSION_OF[k] else None
                          for i, k in kind.items()],
    }, index=top.index)
    out["crew"] = out["kind"].map(CREWS)
    out["task"] = [_circuit_task(k, c) for k, c in zip(out["kind"], out["circuit_id"])]
    out["location"] = [_location(r.circuit_id, r.zone, r.latitude, r.longitude)
                       for r in out.itertuples(index=False)]
    out["reason"] = [f"rank {int(r)} on the day's list: {text}"
                     for r, text in zip(top["rank"], top["reason"])]
    out["_subject"] = out["circuit_id"]
    return out.reset_index(drop=True)


def _checked_previous(day: pd.Timestamp, previous: pd.DataFrame | None
                      ) -> pd.DataFrame | None:
    """`previous`, None when empty; ValueError unless it holds orders of the day before `day`."""
    if previous is None or previous.empty:
        return None
    _require(previous, PREVIOUS_COLUMNS, "the previous day's work orders")
    dates = set(pd.to_datetime(previous["date"]).dt.normalize())
    if dates != {day - pd.Timedelta(days=1)}:
        raise ValueError(
            f"the previous work orders must be those of {day - pd.Timedelta(days=1):%Y-%m-%d}, "
            f"the day before {day:%Y-%m-%d}; got {sorted(f'{d:%Y-%m-%d}' for d in dates)}")
    return previous


def _with_status(day: pd.Timestamp, orders: pd.DataFrame, previous: pd.DataFrame | None
                 ) -> pd.DataFrame:
    orders = orders.copy()
    orders["status"], orders["open_since"] = NEW, day
    orders["order_id"] = [make_order_id(day, k, s)
                          for k, s in zip(orders["kind"], orders["_subject"])]
    if previous is not None:
        known = {key: (oid, since) for key, oid, since in zip(
            _subjects(previous), previous["order_id"], pd.to_datetime(previous["open_since"]))}
        for i, key in enumerate(zip(orders["kind"], orders["_subject"])):
            if key in known:
                oid, since = known[key]
                orders.iloc[i, orders.columns.get_loc("status")] = CARRIED_OVER
                orders.iloc[i, orders.columns.get_loc("open_since")] = since
                orders.iloc[i, orders.columns.get_loc("order_id")] = oid
    orders["open_since"] = pd.to_datetime(orders["open_since"])
    orders["days_open"] = (orders["date"] - orders["open_since"]).dt.days + 1
    return orders


def _subjects(orders: pd.DataFrame) -> list[tuple[str, str]]:
    """(kind, transformer or circuit id) of each order: what makes it the same order."""
    return [(k, str(t) if k == INSPECT else str(c)) for k, t, c in
            zip(orders["kind"], orders["transformer_id"], orders["circuit_id"])]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with the columns of COLUMNS in order and one dtype each, whatever the day held
    (an empty day, or a day with orders of one sort only, stores like any other)."""
    out = frame.reindex(columns=list(COLUMNS))
    for col in _DATES:
        out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
    for col in _TEXT:
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    for col in _FLOAT:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out["priority"] = out["priority"].astype("int64")
    out["days_open"] = out["days_open"].astype("int64")
    out["list_rank"] = out["list_rank"].astype("Int64")
    return out


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {', '.join(missing)} that work orders need")


def _location(circuit, zone, lat, lon, transformer=None) -> str:
    text = f"circuit {circuit}, zone {zone}" if isinstance(zone, str) else f"circuit {circuit}"
    if transformer is not None:
        text = f"transformer {transformer} on {text}"
    if _finite(lat) and _finite(lon):
        text += f" (circuit at {float(lat):.4f}, {float(lon):.4f})"
    return text


def _inspection_reason(row) -> str:
    parts = [f"30-day failure probability {100 * float(row.p_fail_30d):.1f}% "
             f"({row.health_index})"]
    if isinstance(row.signals, str) and row.signals.strip():
        parts.append(row.signals)
    parts.append(f"~{float(row.risk_customer_minutes_7d):,.0f} customer-min at risk this week")
    return "; ".join(parts)


def _circuit_task(kind: str, circuit: str) -> str:
    return {TRIM: f"trim trees along circuit {circuit}",
            PATROL: f"patrol circuit {circuit} for weather and animal hazards",
            MAINTENANCE: f"maintain the equipment of circuit {circuit}",
            LOAD_RELIEF: f"relieve circuit {circuit} before tomorrow's peak "
                         "(switch load to a neighbour)"}[kind]


def _finite(value) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
