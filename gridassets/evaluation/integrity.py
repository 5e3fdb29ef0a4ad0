"""How well telemetry integrity does its job, measured on a built warehouse and on real data.

1. Threats: the simulator's hidden calendar (`FleetSimulator.threats`) over the days the warehouse
   judged, against the flags of `telemetry_integrity`. An event is detected within RECALL_DAYS when
   one of its devices (a silent group's transformers, the circuit of a load injection or a feeder
   replay, the transformer otherwise) is flagged, by any check, on the event's first day or the
   next. Time to detect runs from the event's start to the end of the first flagged day of that
   device, when the verdict is published. Events starting in the first WARMUP_DAYS of the judged
   days are left out (a device has no references and no earlier days to compare with yet), and so
   are those whose next day was not judged.
2. False alarms: flagged device-days with no threat on that device that day or the day before (a
   replay's or an injection's effect can spill into the next day), per 1,000 clean device-days
   judged (transformer-days in telemetry_signals plus circuit-days), overall and per check.
3. Real telemetry: the ETTh1 and ETTh2 substation transformers (Zhou et al., CC BY-ND 4.0) through
   the landing path into a scratch warehouse, judged day by day by the functions the assets use.
4. What the quarantine is worth to the maintenance model: failures behind a frozen or spoofed oil
   sensor against the other wear-out failures, caught (in the fleet's top CAUGHT_TOP_SHARE by
   30-day failure probability on any of the LEAD_DAYS before the failure) with the quarantine (the
   warehouse's transformer_risk) and without it (their features recomputed from every reading
   and scored by the maintenance model serving each day).

Reads the warehouse through read-only connections; writes only inside the scratch folder it is
given.
"""

from __future__ import annotations

import tempfile
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from gridassets import warehouse
from gridassets.domain import integrity, models, risk
from gridassets.domain.export import write_daily, write_registry
from gridassets.domain.features import WINDOW_DAYS
from gridassets.domain.landing import LandingError, empty_frame, read_daily, read_registry
from gridassets.domain.schemas import (
    CIRCUITS,
    FEEDER_LOAD,
    TRANSFORMER_FAILURES,
    TRANSFORMER_TELEMETRY,
    TRANSFORMERS,
    WEATHER_OBSERVATIONS,
)
from gridassets.storage import features as feature_sql
from gridassets.storage import integrity as reads
from gridassets.storage import model_store
from gridassets.warehouse import qualified

RECALL_DAYS = 2  # the event's first day and the next
WARMUP_DAYS = 7  # integrity.REPEAT_DAYS: before that, a device has nothing to compare with
SPILL_DAYS = 1  # a flag the day after a threat is still the threat's
TARGET_RECALL = 0.8
TARGET_FALSE_ALARMS = 1.0  # per 1,000 clean device-days
TARGET_CAUGHT_GAP = 0.10
LEAD_DAYS = 14
# "Caught": in the fleet's top 1 % by p_fail_30d on any of the 14 days before the failure: an
# inspection list of fixed length, which does not move when a model version's calibration does.
CAUGHT_TOP_SHARE = 0.01
HIDDEN_SENSOR = (("oil_sensor_frozen", "before_failure"), ("oil_sensor_spoofed", None))
WEAR_OUT_MODES = ("thermal", "dielectric")

ETT_FILES = ("ETTh1", "ETTh2")
# Kept unchanged with the tests' real data (gridassets_tests/data/README.md).
ETT_FOLDER = Path(__file__).resolve().parents[2] / "gridassets_tests" / "data" / "ett"
ETT_SHIFT = timedelta(weeks=417)  # 2016-07-04 (a Monday) + 417 weeks = 2024-07-01, a Monday
ETT_UTC_OFFSET = pd.Timedelta(hours=8)  # China Standard Time
ETT_RATING_MARGIN = 1.25  # ETT publishes no rating: 1.25 x the largest apparent power
ETT_ZONE = "CNZ001"
ETT_EXAMPLES = 8
MISSED_SHOWN = 12
NEAR_SCORE = 0.8  # a clean device-day this close to a check's threshold (1.0)

_IntegrityModelSpec = namedtuple("_IntegrityModelSpec", "name")
INTEGRITY_MODEL = _IntegrityModelSpec("integrity_model")


@dataclass
class IntegrityEvaluation:
    span: tuple[date, date]  # the judged days the figures rest on
    threats: pd.DataFrame  # per threat type: events, detected, recall, time to detect
    variants: pd.DataFrame  # the same per threat type and variant
    checks: pd.DataFrame  # per check: flags, precision, false alarms per 1,000
    false_alarms: dict
    ett: dict | None = None
    failures: dict | None = None
    missed: pd.DataFrame = field(default_factory=pd.DataFrame)  # events not detected in time

    def to_dict(self) -> dict:
        return {"span": [str(d) for d in self.span],
                "threats": _records(self.threats), "variants": _records(self.variants),
                "checks": _records(self.checks), "false_alarms": self.false_alarms,
                "missed": _records(self.missed), "ett": self.ett, "failures": self.failures,
                "acceptance": acceptance(self)}


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.replace({np.nan: None}).to_dict(orient="records")


# ---------------------------------------------------------------------------- threats and flags


def judged_span(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """The first and last day of telemetry_integrity (None when the warehouse has none)."""
    if not warehouse.table_exists(con, "telemetry_integrity"):
        return None
    first, last = con.execute(
        f"select min(date), max(date) from {qualified('telemetry_integrity')}").fetchall()[0]
    if first is None:
        return None
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()


def threat_days(truth: pd.DataFrame) -> pd.DataFrame:
    """One row per device and UTC day a threat touches: device_type, device_id, date, threat_id."""
    cols = ["device_type", "device_id", "date", "threat_id"]
    if truth.empty:
        return pd.DataFrame(columns=cols)
    t = truth.assign(first=pd.to_datetime(truth["start_ts"]).dt.normalize(),
                     last=(pd.to_datetime(truth["end_ts"]) - pd.Timedelta(microseconds=1))
                     .dt.normalize())
    n = ((t["last"] - t["first"]).dt.days + 1).to_numpy()
    rows = t.loc[t.index.repeat(n)].reset_index(drop=True)
    offset = np.concatenate([np.arange(k) for k in n])
    rows["date"] = rows["first"] + pd.to_timedelta(offset, unit="D")
    return rows[cols]


def events(truth: pd.DataFrame) -> pd.DataFrame:
    """One row per threat event: threat_id, threat, variant, device_type, device_id (the first),
    start_ts, end_ts, first_day (the UTC day it starts), devices (how many), detail."""
    if truth.empty:
        return pd.DataFrame(columns=["threat_id", "threat", "variant", "device_type", "device_id",
                                     "start_ts", "end_ts", "first_day", "devices", "detail"])
    truth = truth if "detail" in truth else truth.assign(detail="")
    ev = truth.groupby("threat_id", as_index=False).agg(
        threat=("threat", "first"), variant=("variant", "first"),
        device_type=("device_type", "first"), device_id=("device_id", "first"),
        start_ts=("start_ts", "min"), end_ts=("end_ts", "max"), devices=("device_id", "size"),
        detail=("detail", "first"))
    ev["first_day"] = pd.to_datetime(ev["start_ts"]).dt.normalize()
    return ev


def flagged_device_days(con: duckdb.DuckDBPyConnection, first: date, last: date) -> pd.DataFrame:
    """The flagged rows of telemetry_integrity for days [first, last]: device_type, device_id,
    date, check, reason."""
    return con.execute(
        f"select device_type, device_id, cast(date as timestamp) as date, \"check\", reason "
        f"from {qualified('telemetry_integrity')} where flagged and date >= ? and date <= ? "
        "order by date, device_type, device_id, \"check\"",
        [pd.Timestamp(first), pd.Timestamp(last)]).fetchdf()


def detection(truth: pd.DataFrame, flags: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """Per event that starts on or after `first` + WARMUP_DAYS and whose next day is at most `last`:
    its first flagged day (of any of its devices, from its first day to the day after its end),
    the checks that flagged then, whether that was within RECALL_DAYS, and the hours from its start
    to the end of that day (when the verdict is published)."""
    ev = events(truth)
    ev = ev[(ev["first_day"] >= pd.Timestamp(first) + pd.Timedelta(days=WARMUP_DAYS))
            & (ev["first_day"] + pd.Timedelta(days=RECALL_DAYS - 1) <= pd.Timestamp(last))]
    dev = truth[truth["threat_id"].isin(ev["threat_id"])][["threat_id", "device_type",
                                                          "device_id"]].drop_duplicates()
    hits = dev.merge(flags[["device_type", "device_id", "date", "check"]],
                     on=["device_type", "device_id"]).merge(
        ev[["threat_id", "first_day", "end_ts"]], on="threat_id")
    end_day = (pd.to_datetime(hits["end_ts"]) - pd.Timedelta(microseconds=1)).dt.normalize()
    hits = hits[(hits["date"] >= hits["first_day"])
                & (hits["date"] <= end_day + pd.Timedelta(days=SPILL_DAYS))]
    first_flag = hits.groupby("threat_id")["date"].min().rename("first_flag")
    hits = hits.merge(first_flag, on="threat_id")
    by = (hits[hits["date"] == hits["first_flag"]].groupby("threat_id")["check"]
          .agg(lambda c: ", ".join(sorted(set(c)))).rename("flagged_by"))
    out = ev.merge(first_flag, on="threat_id", how="left").merge(by, on="threat_id", how="left")
    out["first_flag"] = pd.to_datetime(out["first_flag"])
    out["detected"] = out["first_flag"].notna()
    out["detected_in_time"] = out["detected"] & (
        out["first_flag"] <= out["first_day"] + pd.Timedelta(days=RECALL_DAYS - 1))
    out["hours_to_detect"] = ((out["first_flag"] + pd.Timedelta(days=1)
                               - pd.to_datetime(out["start_ts"])).dt.total_seconds() / 3600)
    return out.reset_index(drop=True)


def _rates(det: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if det.empty:
        return pd.DataFrame(columns=[*keys, "events", "detected_in_2d", "recall_2d",
                                     "detected_ever", "ttd_median_h", "ttd_max_h"])
    g = det.groupby(keys)
    out = g.agg(events=("threat_id", "size"), detected_in_2d=("detected_in_time", "sum"),
                detected_ever=("detected", "sum")).reset_index()
    ttd = det[det["detected"]].groupby(keys)["hours_to_detect"].agg(["median", "max"])
    out = out.merge(ttd.rename(columns={"median": "ttd_median_h", "max": "ttd_max_h"})
                    .reset_index(), on=keys, how="left")
    out["recall_2d"] = out["detected_in_2d"] / out["events"]
    return out[[*keys, "events", "detected_in_2d", "recall_2d", "detected_ever", "ttd_median_h",
                "ttd_max_h"]]


def check_figures(con: duckdb.DuckDBPyConnection, days: pd.DataFrame, first: date, last: date
                  ) -> tuple[pd.DataFrame, dict]:
    """Per check: flagged device-days, the share on a device-day under a threat of that device
    (precision), the share the day after one, and false alarms per 1,000 clean device-days of the
    device types the check judges; and the same over all checks. `days`: threat_days()."""
    con.register("eval_threat_days", days[["device_type", "device_id", "date"]].astype(
        {"date": "datetime64[us]"}))
    try:
        params = [pd.Timestamp(first), pd.Timestamp(last)]
        base = f"""
        with judged as (
            select device_type, device_id, cast(date as date) as date
            from {qualified("telemetry_signals")} where date >= ? and date <= ?
        ),
        threat as (select distinct device_type, device_id, cast(date as date) as date
                   from eval_threat_days),
        touched as (select device_type, device_id, date from threat
                    union select device_type, device_id, date + {SPILL_DAYS} from threat),
        clean as (select j.* from judged j anti join touched t
                  using (device_type, device_id, date)),
        flags as (
            select device_type, device_id, cast(date as date) as date, "check"
            from {qualified("telemetry_integrity")}
            where flagged and date >= ? and date <= ?
        ),
        checked as (select distinct device_type, "check" from {qualified("telemetry_integrity")}
                    where date >= ? and date <= ?),
        marked as (
            select f.*, exists (select 1 from threat t where t.device_type = f.device_type
                                and t.device_id = f.device_id and t.date = f.date) as on_threat,
                   exists (select 1 from clean c where c.device_type = f.device_type
                           and c.device_id = f.device_id and c.date = f.date) as on_clean
            from flags f
        )"""  # sql-identifier: tables named in code, SPILL_DAYS a constant
        per_check = con.execute(base + """
        select k."check", count(m."check") as flags,
               count(*) filter (where m.on_threat) as on_threat,
               count(*) filter (where not m.on_threat and not m.on_clean) as day_after,
               count(*) filter (where m.on_clean) as false_alarms,
               (select count(*) from clean c
                 where c.device_type in (select device_type from checked j
                                         where j."check" = k."check")) as clean_device_days
        from (select distinct "check" from checked) k
        left join marked m on m."check" = k."check"
        group by k."check" order by k."check"
        """, params * 3).fetchdf()
        # how close the clean days come to each check's threshold (1.0): the room to lower it
        margins = con.execute(base + f"""
        select i."check", quantile_cont(i.score, 0.999) as clean_score_p999,
               max(i.score) as clean_score_max,
               count(*) filter (where i.score >= {NEAR_SCORE}) as clean_near
        from {qualified("telemetry_integrity")} i
        where i.date >= ? and i.date <= ? and exists (
            select 1 from clean c where c.device_type = i.device_type
               and c.device_id = i.device_id and c.date = cast(i.date as date))
        group by i."check"
        """, params * 4).fetchdf()  # sql-identifier: tables named in code, NEAR_SCORE a constant
        overall = con.execute(base + """
        select (select count(*) from judged) as device_days,
               (select count(*) from clean) as clean_device_days,
               (select count(*) from (select distinct device_type, device_id, date from flags))
                   as flagged_device_days,
               (select count(*) from (select distinct device_type, device_id, date from marked
                                      where on_clean)) as false_alarm_device_days,
               (select count(*) from clean where device_type = 'transformer')
                   as clean_transformer_days,
               (select count(*) from (select distinct device_id, date from marked
                                      where on_clean and device_type = 'transformer'))
                   as false_alarm_transformer_days,
               (select count(*) from clean where device_type = 'circuit') as clean_circuit_days,
               (select count(*) from (select distinct device_id, date from marked
                                      where on_clean and device_type = 'circuit'))
                   as false_alarm_circuit_days
        """, params * 3).fetchdf().iloc[0].to_dict()
    finally:
        con.unregister("eval_threat_days")
    per_check = per_check.merge(margins, on="check", how="left")
    per_check["precision"] = per_check["on_threat"] / per_check["flags"].where(
        per_check["flags"] > 0)
    per_check["false_alarms_per_1000"] = (1000 * per_check["false_alarms"]
                                          / per_check["clean_device_days"].clip(lower=1))
    overall = {k: int(v) for k, v in overall.items()}
    overall["per_1000"] = 1000 * overall["false_alarm_device_days"] / max(
        overall["clean_device_days"], 1)
    overall["transformer_per_1000"] = 1000 * overall["false_alarm_transformer_days"] / max(
        overall["clean_transformer_days"], 1)
    overall["circuit_per_1000"] = 1000 * overall["false_alarm_circuit_days"] / max(
        overall["clean_circuit_days"], 1)
    return per_check, overall


def near_misses(con: duckdb.DuckDBPyConnection, truth: pd.DataFrame, missed: pd.DataFrame
                ) -> pd.DataFrame:
    """The events not detected within RECALL_DAYS, each with the check that came closest on its
    devices over those days (its highest score; 1.0 flags) and that score."""
    cols = ["threat_id", "threat", "variant", "device_id", "first_day", "devices", "detail",
            "first_flag", "flagged_by", "closest_check", "closest_score"]
    if missed.empty:
        return pd.DataFrame(columns=cols)
    dev = truth[truth["threat_id"].isin(missed["threat_id"])][
        ["threat_id", "device_type", "device_id"]].merge(
        missed[["threat_id", "first_day"]], on="threat_id")
    con.register("eval_missed", dev.astype({"first_day": "datetime64[us]"}))
    try:
        best = con.execute(f"""
            select m.threat_id, arg_max(i."check", i.score) as closest_check,
                   max(i.score) as closest_score
            from eval_missed m join {qualified("telemetry_integrity")} i
              on i.device_type = m.device_type and i.device_id = m.device_id
             and i.date >= m.first_day and i.date < m.first_day + interval {RECALL_DAYS} day
            group by m.threat_id
        """).fetchdf()  # sql-identifier: RECALL_DAYS a constant
    finally:
        con.unregister("eval_missed")
    return missed.merge(best, on="threat_id", how="left")[cols].reset_index(drop=True)


def threat_evaluation(con: duckdb.DuckDBPyConnection, truth: pd.DataFrame, first: date,
                      last: date) -> IntegrityEvaluation:
    """Parts 1 and 2 over the judged days [first, last]: `truth` is the simulator's threats over
    them. The false alarms and precision count the days from `first` + WARMUP_DAYS."""
    from_day = first + timedelta(days=WARMUP_DAYS)
    flags = flagged_device_days(con, first, last)
    det = detection(truth, flags, first, last)
    per_check, overall = check_figures(con, threat_days(truth), from_day, last)
    missed = near_misses(con, truth, det[~det["detected_in_time"]])
    return IntegrityEvaluation(
        span=(from_day, last), threats=_rates(det, ["threat"]),
        variants=_rates(det, ["threat", "variant"]), checks=per_check, false_alarms=overall,
        missed=missed)


# ---------------------------------------------------------------------------- real ETT telemetry


def ett_frames(path: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """An ETT file as transformer telemetry and feeder load: hours from UTC+8 to UTC and forward
    by ETT_SHIFT; load_pct = apparent power at the high-voltage side (sqrt(HUFL^2 + HULL^2)) as a
    share of ETT_RATING_MARGIN x its largest value; oil_temp_c = OT; no ambient sensor. The feeder
    (one per transformer) carries the same apparent power in MW. Returns telemetry, feeder load and
    the rating in kVA."""
    raw = pd.read_csv(path, parse_dates=["date"])
    apparent_mva = np.hypot(raw["HUFL"], raw["HULL"])
    rating_kva = float(ETT_RATING_MARGIN * apparent_mva.max() * 1000)
    ts = raw["date"] - ETT_UTC_OFFSET + ETT_SHIFT
    telemetry = pd.DataFrame({"transformer_id": name, "timestamp": ts,
                              "load_pct": 100 * apparent_mva * 1000 / rating_kva,
                              "oil_temp_c": raw["OT"], "ambient_temp_c": np.nan})
    feeder = pd.DataFrame({"circuit_id": ett_circuit(name), "timestamp": ts,
                           "load_mw": apparent_mva})
    return telemetry, feeder, rating_kva


def ett_circuit(name: str) -> str:
    return f"ETT-{name[-1]}"


def write_ett_landing(files: dict[str, Path], landing: Path, days: int | None = None
                      ) -> list[date]:
    """Landing files of the ETT transformers (`files`: name -> csv): registry, and telemetry and
    feeder load per UTC day (the first `days` days only, when given). Returns the days written."""
    registry, transformers, telemetry, feeder = [], [], [], []
    for name, path in files.items():
        tel, load, rating_kva = ett_frames(path, name)
        registry.append({"circuit_id": ett_circuit(name), "zone": ETT_ZONE, "customers": 0,
                         "capacity_mw": rating_kva / 1000})
        transformers.append({"transformer_id": name, "circuit_id": ett_circuit(name),
                             "rating_kva": rating_kva, "install_year": 2010})
        telemetry.append(tel)
        feeder.append(load)
    telemetry, feeder = pd.concat(telemetry), pd.concat(feeder)
    written = sorted(telemetry["timestamp"].dt.date.unique())[:days]
    for frame, spec in ((telemetry, TRANSFORMER_TELEMETRY), (feeder, FEEDER_LOAD)):
        for day, rows in frame.groupby(frame["timestamp"].dt.date):
            if day in written:
                write_daily(spec, rows, landing, day)
    write_registry(CIRCUITS, pd.DataFrame(registry), landing)
    write_registry(TRANSFORMERS, pd.DataFrame(transformers), landing)
    return written


def load_ett_warehouse(con: duckdb.DuckDBPyConnection, landing: Path, days: list[date]
                       ) -> list[str]:
    """Read the landing files back through the landing reader (its validation applies) into the
    scratch warehouse of `con`. Returns the problems of files it refused."""
    refused = []
    warehouse.replace_rows(con, "circuits", read_registry(CIRCUITS, landing))
    warehouse.replace_rows(con, "transformers", read_registry(TRANSFORMERS, landing))
    for spec in (WEATHER_OBSERVATIONS, TRANSFORMER_FAILURES):
        warehouse.replace_rows(con, spec.name, empty_frame(spec))
    parts = {TRANSFORMER_TELEMETRY.name: [], FEEDER_LOAD.name: []}
    for day in days:
        for spec in (TRANSFORMER_TELEMETRY, FEEDER_LOAD):
            try:
                parts[spec.name].append(read_daily(spec, landing, day))
            except LandingError as exc:
                refused.append(str(exc))
    for table, frames in parts.items():
        warehouse.replace_rows(con, table, pd.concat(frames, ignore_index=True))
    return refused


def judge_days(con: duckdb.DuckDBPyConnection, days: list[date], model=None,
               model_version: str | None = None) -> pd.DataFrame:
    """The integrity verdict of each day in order, as the assets make it: the day's signals from
    its readings and the references of the stored signals before it, stored before the next day;
    then the rule checks (and the anomaly model's, when one is given). Returns the verdict rows."""
    circuits = reads.circuit_ids(con)
    verdicts = []
    for day in days:
        tx_ref, circuit_ref = reads.references(con, day)
        tx = integrity.transformer_signals(
            day, reads.transformer_day(con, day), reads.expected_transformers(con, day),
            reads.hourly_transformer_load(con, day), tx_ref)
        feeders = integrity.circuit_signals(day, circuits, reads.feeder_day(con, day),
                                            circuit_ref)
        signals = integrity.signals_frame([tx, feeders])
        warehouse.replace_rows(con, "telemetry_signals", signals, "date = ?",
                               [pd.Timestamp(day)])
        tx_sig = signals[signals["device_type"] == integrity.TRANSFORMER]
        verdicts += [integrity.transformer_rows(tx_sig, day, integrity.RULES_VERSION),
                     integrity.circuit_rows(signals[signals["device_type"] == integrity.CIRCUIT],
                                            day)]
        if model is not None:
            verdicts.append(integrity.model_rows(model, tx_sig, day, model_version))
    return pd.concat(verdicts, ignore_index=True)


def ett_evaluation(files: dict[str, Path], work_dir: Path, days: int | None = None,
                   model=None, model_version: str | None = None) -> dict:
    """The ETT transformers (and their feeders) judged day by day over their whole span (the first
    `days` days, when given): device-days judged, flagged per 1,000, per check, and examples."""
    landing = Path(work_dir) / "landing"
    written = write_ett_landing(files, landing, days)
    with warehouse.connect(Path(work_dir) / "ett.duckdb") as con:
        refused = load_ett_warehouse(con, landing, written)
        verdict = judge_days(con, written, model, model_version)
        hours = con.execute(
            f"select transformer_id, count(*) as hours, count(distinct cast(timestamp as date)) "
            f"as days from {qualified('transformer_telemetry')} group by transformer_id "
            "order by transformer_id").fetchdf()
    return ett_summary(verdict, written, refused, hours)


def ett_summary(verdict: pd.DataFrame, days: list[date], refused: list[str],
                hours: pd.DataFrame) -> dict:
    device_days = verdict.drop_duplicates(["device_type", "device_id", "date"])
    flagged = verdict[verdict["flagged"]]
    flagged_days = flagged.drop_duplicates(["device_type", "device_id", "date"])
    per_check = {}
    for (kind, check), rows in verdict.groupby(["device_type", "check"]):
        n_days = rows.drop_duplicates(["device_id", "date"]).shape[0]
        hits = int(rows["flagged"].sum())
        per_check[f"{kind} {check}"] = {"flags": hits, "device_days": n_days,
                                        "per_1000": 1000 * hits / max(n_days, 1)}
    examples = [
        f"{r.device_id} {pd.Timestamp(r.date):%Y-%m-%d} {r.check}: {r.reason}"
        for r in flagged.sort_values(["score"], ascending=False).drop_duplicates(
            ["device_id", "check"]).head(ETT_EXAMPLES).itertuples()]
    first, last = (min(days), max(days)) if days else (None, None)
    return {
        "days": len(days), "first_day": str(first), "last_day": str(last),
        "shift_weeks": ETT_SHIFT.days // 7,
        "device_days": int(len(device_days)),
        "transformer_days": int((device_days["device_type"] == integrity.TRANSFORMER).sum()),
        "circuit_days": int((device_days["device_type"] == integrity.CIRCUIT).sum()),
        "flagged_device_days": int(len(flagged_days)),
        "per_1000": 1000 * len(flagged_days) / max(len(device_days), 1),
        "per_check": per_check,
        "flags_by_device": {f"{k[0]} {k[1]}": int(v) for k, v in flagged_days.groupby(
            ["device_type", "device_id"]).size().items()},
        "examples": examples, "refused_files": refused[:ETT_EXAMPLES],
        "hours": _records(hours),
        "anomaly_model": bool((verdict["check"] == "anomaly_model").any()),
    }


# ---------------------------------------------------------------------------- hidden sensors


def _scratch_over(db: Path, tables: list[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory connection on which `tables` of the warehouse file `db` (attached read-only)
    are views under their usual `schema.table` names."""
    con = duckdb.connect()
    con.execute("attach ? as wh (read_only)", [str(db)]).fetchall()
    for table in tables:
        schema = warehouse.SCHEMA_OF[table]
        con.execute(f"create schema if not exists {schema}").fetchall()  # sql-identifier: from code
        con.execute(f"create view {qualified(table)} as "  # sql-identifier: from code
                    f"select * from wh.{qualified(table)}").fetchall()  # sql-identifier: from code
    return con


def failures_to_judge(con: duckdb.DuckDBPyConnection, truth: pd.DataFrame) -> pd.DataFrame:
    """The failures whose LEAD_DAYS before are all scored (transformer_risk), each with whether
    its oil sensor was hidden (frozen before the failure, or spoofed) and whether the record
    calls it a wear-out failure."""
    span = con.execute(f"select min(date), max(date) from {qualified('transformer_risk')}"
                       ).fetchall()[0]
    if span[0] is None:
        return pd.DataFrame(columns=["transformer_id", "failed_at", "failure_mode", "hidden",
                                     "wear_out", "day"])
    first, last = pd.Timestamp(span[0]), pd.Timestamp(span[1])
    failures = con.execute(
        f"select transformer_id, failed_at, failure_mode from {qualified('transformer_failures')}"
        " where failed_at >= ? and failed_at < ? order by failed_at",
        [first + pd.Timedelta(days=LEAD_DAYS), last + pd.Timedelta(days=2)]).fetchdf()
    failures["day"] = pd.to_datetime(failures["failed_at"]).dt.normalize()
    hidden_rows = pd.concat([truth[(truth["threat"] == kind) & (
        truth["variant"] == variant if variant else True)] for kind, variant in HIDDEN_SENSOR]
        ) if len(truth) else truth
    hidden = failures.merge(hidden_rows[["device_id", "start_ts", "end_ts", "threat"]],
                            left_on="transformer_id", right_on="device_id")
    hidden = hidden[(pd.to_datetime(hidden["failed_at"]) >= pd.to_datetime(hidden["start_ts"]))
                    & (pd.to_datetime(hidden["failed_at"]) <= pd.to_datetime(hidden["end_ts"])
                       + pd.Timedelta(days=1))]
    kind = hidden.drop_duplicates(["transformer_id", "failed_at"]).set_index(
        ["transformer_id", "failed_at"])["threat"]
    key = pd.MultiIndex.from_frame(failures[["transformer_id", "failed_at"]])
    failures["hidden"] = kind.reindex(key).to_numpy()
    failures["wear_out"] = failures["failure_mode"].isin(WEAR_OUT_MODES)
    return failures


def fleet_thresholds(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per day, the p_fail_30d that puts a unit in the fleet's top CAUGHT_TOP_SHARE."""
    return con.execute(
        f"select date, quantile_cont(p_fail_30d, ?) as threshold "
        f"from {qualified('transformer_risk')} group by date",
        [1 - CAUGHT_TOP_SHARE]).fetchdf()


def caught_with_quarantine(con: duckdb.DuckDBPyConnection, failures: pd.DataFrame) -> pd.Series:
    """Whether each failure's unit was in the top share on any of the LEAD_DAYS days before it,
    by the warehouse's own transformer_risk."""
    con.register("eval_failures", failures[["transformer_id", "day"]].astype(
        {"day": "datetime64[us]"}))
    try:
        rows = con.execute(f"""
            with th as (
                select date, quantile_cont(p_fail_30d, ?) as threshold
                from {qualified('transformer_risk')} group by date
            )
            select f.transformer_id, f.day, bool_or(r.p_fail_30d >= th.threshold) as caught,
                   max(r.p_fail_30d) as p_max
            from eval_failures f
            join {qualified('transformer_risk')} r
              on r.transformer_id = f.transformer_id and r.date >= f.day - interval {LEAD_DAYS} day
             and r.date < f.day
            join th on th.date = r.date
            group by f.transformer_id, f.day
        """, [1 - CAUGHT_TOP_SHARE]).fetchdf()  # sql-identifier: LEAD_DAYS a constant
    finally:
        con.unregister("eval_failures")
    out = failures.merge(rows, on=["transformer_id", "day"], how="left")
    return out["caught"].fillna(False).astype(bool)


def scores_without_quarantine(db: Path, models_dir: Path, failures: pd.DataFrame
                              ) -> pd.DataFrame:
    """The 30-day failure probability of each failure's unit on the LEAD_DAYS before it with its
    readings kept: daily stats recomputed from every reading (`quarantine=False`), health features
    from them, scored by the maintenance model serving each day. Columns transformer_id, date,
    p_fail_30d, model_version and threshold (that day's fleet top share, from transformer_risk)."""
    cols = ["transformer_id", "date", "p_fail_30d", "model_version", "threshold"]
    if failures.empty:
        return pd.DataFrame(columns=cols)
    con = _scratch_over(db, ["transformers", "circuits", "weather_observations",
                             "transformer_failures", "telemetry_integrity", "transformer_risk",
                             models.MAINTENANCE.name])
    try:
        con.register("eval_units", failures[["transformer_id"]].drop_duplicates())
        con.execute(f"create view {qualified('transformer_telemetry')} as select t.* from "
                    f"wh.{qualified('transformer_telemetry')} t "
                    "where t.transformer_id in (select transformer_id from eval_units)"
                    ).fetchall()  # sql-identifier: from code
        first = failures["day"].min() - pd.Timedelta(days=LEAD_DAYS + WINDOW_DAYS)
        end = failures["day"].max()
        stats = feature_sql.transformer_daily_stats(con, first.date(), end.date(),
                                                    quarantine=False)
        # created here, not through replace_rows: the attached warehouse's table of that name
        # would count as existing
        con.register("eval_daily_stats", warehouse.normalize_frame(stats))
        con.execute("create schema if not exists features").fetchall()
        table = qualified("transformer_daily_stats")
        con.execute(f"create table {table} as select * from eval_daily_stats"  # sql-identifier: from code
                    ).fetchall()
        feats = feature_sql.transformer_health_features(
            con, (failures["day"].min() - pd.Timedelta(days=LEAD_DAYS)).date(), end.date())
        thresholds = fleet_thresholds(con)
        scored, cache = [], {}
        for day, rows in feats.groupby("date"):
            record = model_store.serving_as_of(con, models.MAINTENANCE, day.date())
            if record is None:
                continue
            if record["version"] not in cache:
                cache[record["version"]] = model_store.load_model(models_dir, record)
            served = pd.DataFrame({"transformer_id": rows["transformer_id"],
                                   "customers_served": 0.0, "critical_served": 0.0})
            scored.append(risk.transformer_risk(
                rows, cache[record["version"]].predict_proba(rows), served, record["version"])
                [["transformer_id", "date", "p_fail_30d", "model_version"]])
    finally:
        con.close()
    if not scored:
        return pd.DataFrame(columns=cols)
    return pd.concat(scored, ignore_index=True).merge(thresholds, on="date")[cols]


def caught_without_quarantine(db: Path, models_dir: Path, failures: pd.DataFrame
                              ) -> pd.Series:
    """Whether each failure's unit would have been in the top share on any of the LEAD_DAYS
    before it with its readings kept (`scores_without_quarantine`)."""
    p = scores_without_quarantine(db, models_dir, failures)
    caught = []
    for f in failures.itertuples():
        rows = p[(p["transformer_id"] == f.transformer_id) & (p["date"] < f.day)
                 & (p["date"] >= f.day - pd.Timedelta(days=LEAD_DAYS))]
        caught.append(bool((rows["p_fail_30d"] >= rows["threshold"]).any()))
    return pd.Series(caught, index=failures.index)


def failure_evaluation(db: Path, models_dir: Path, truth: pd.DataFrame) -> dict:
    """Part 4: caught rates of the failures behind a hidden oil sensor, with the quarantine (the
    warehouse's transformer_risk) and without it (recomputed), and of the other wear-out
    failures (with it)."""
    with warehouse.connect(db, read_only=True) as con:
        if not warehouse.table_exists(con, "transformer_risk"):
            return {}
        failures = failures_to_judge(con, truth)
        failures["caught"] = caught_with_quarantine(con, failures).to_numpy()
    hidden = failures[failures["hidden"].notna()].copy()
    other = failures[failures["hidden"].isna() & failures["wear_out"]]
    hidden["caught_without_quarantine"] = caught_without_quarantine(db, models_dir,
                                                                    hidden).to_numpy()

    def rate(n: int, k: int) -> float | None:
        return k / n if n else None

    return {
        "definition": f"in the fleet's top {CAUGHT_TOP_SHARE:.0%} by p_fail_30d on any of the "
                      f"{LEAD_DAYS} days before the failure",
        "hidden": int(len(hidden)),
        "hidden_caught": int(hidden["caught"].sum()),
        "hidden_caught_rate": rate(len(hidden), int(hidden["caught"].sum())),
        "hidden_caught_without_quarantine": int(hidden["caught_without_quarantine"].sum()),
        "hidden_caught_rate_without_quarantine": rate(
            len(hidden), int(hidden["caught_without_quarantine"].sum())),
        "other_wear_out": int(len(other)),
        "other_caught": int(other["caught"].sum()),
        "other_caught_rate": rate(len(other), int(other["caught"].sum())),
        "all_failures": int(len(failures)),
        "hidden_failures": [
            {"transformer_id": r.transformer_id, "failed_at": str(r.failed_at),
             "threat": r.hidden, "caught": bool(r.caught),
             "caught_without_quarantine": bool(r.caught_without_quarantine)}
            for r in hidden.itertuples()],
    }


def serving_integrity_model(con: duckdb.DuckDBPyConnection, day: date, models_dir: Path):
    """The integrity model serving `day` and its version ((None, None) when none does)."""
    if not warehouse.table_exists(con, INTEGRITY_MODEL.name):
        return None, None
    record = model_store.serving_as_of(con, INTEGRITY_MODEL, day)
    if record is None:
        return None, None
    return model_store.load_model(models_dir, record), record["version"]


def ett_files(folder: Path) -> dict[str, Path]:
    return {name: Path(folder) / f"{name}.csv" for name in ETT_FILES
            if (Path(folder) / f"{name}.csv").is_file()}


def evaluate(db: Path, models_dir: Path, simulator=None, ett_folder: Path | None = None,
             progress=print) -> IntegrityEvaluation | None:
    """All four parts on the warehouse `db` (None when it judged no day). `simulator`: the
    FleetSimulator it was built from (the truth of the threats and of the hidden sensors);
    `ett_folder`: where ETTh1.csv and ETTh2.csv are (their part is skipped without it)."""
    with warehouse.connect(db, read_only=True) as con:
        span = judged_span(con)
        if span is None:
            return None
        first, last = span
        truth = (simulator.threats(first, last) if simulator is not None
                 else pd.DataFrame(columns=["threat_id", "threat", "variant", "device_type",
                                            "device_id", "circuit_id", "start_ts", "end_ts"]))
        result = threat_evaluation(con, truth, first, last)
        model, version = serving_integrity_model(con, last, models_dir)
    result.failures = failure_evaluation(db, models_dir, truth)
    if ett_folder is not None and ett_files(ett_folder):
        with tempfile.TemporaryDirectory(prefix="ett-integrity-") as work:
            result.ett = ett_evaluation(ett_files(ett_folder), Path(work), model=model,
                                        model_version=version)
    return result


def acceptance(ev: IntegrityEvaluation) -> dict:
    """The issue's targets: every threat type's recall within 2 days at least TARGET_RECALL at
    no more than TARGET_FALSE_ALARMS per 1,000 clean device-days; failures behind a hidden sensor
    caught within TARGET_CAUGHT_GAP of the others with the quarantine on."""
    recall_ok = bool(len(ev.threats)) and bool((ev.threats["recall_2d"] >= TARGET_RECALL).all())
    fa_ok = ev.false_alarms["per_1000"] <= TARGET_FALSE_ALARMS
    f = ev.failures or {}
    gap = (None if f.get("hidden_caught_rate") is None or f.get("other_caught_rate") is None
           else f["other_caught_rate"] - f["hidden_caught_rate"])
    return {"recall": recall_ok, "false_alarms": fa_ok,
            "hidden_sensor_gap": gap, "hidden_sensor": gap is not None and gap
            <= TARGET_CAUGHT_GAP, "met": recall_ok and fa_ok and gap is not None
            and gap <= TARGET_CAUGHT_GAP}


def _h(hours: float) -> str:
    return "-" if pd.isna(hours) else f"{hours:.0f}"


def format_report(ev: IntegrityEvaluation) -> str:
    fa = ev.false_alarms
    lines = [f"Telemetry integrity ({ev.span[0]}..{ev.span[1]}: the judged days after the first "
             f"{WARMUP_DAYS}, when a device has nothing to compare with yet)",
             f"  threats (simulator truth): detected = a device of the event flagged on its first "
             f"day or the next; time to detect = start to the end of the first flagged day",
             f"  {'threat':<20} {'events':>6} {'in 2 d':>6} {'recall':>6} {'ever':>5} "
             f"{'TTD median h':>12} {'max h':>6}"]
    for r in ev.threats.itertuples():
        lines.append(f"  {r.threat:<20} {r.events:>6} {r.detected_in_2d:>6} {r.recall_2d:>6.2f} "
                     f"{r.detected_ever:>5} {_h(r.ttd_median_h):>12} {_h(r.ttd_max_h):>6}")
    weak = ev.variants[ev.variants["recall_2d"] < 1]
    if len(weak):
        lines.append("  variants missed: " + "; ".join(
            f"{r.threat}/{r.variant} {r.detected_in_2d}/{r.events}" for r in weak.itertuples()))
    for r in ev.missed.head(MISSED_SHOWN).itertuples():
        later = ("never flagged" if pd.isna(r.first_flag) else
                 f"flagged {r.first_flag:%Y-%m-%d} by {r.flagged_by}")
        closest = ("" if pd.isna(r.closest_score) else
                   f"; closest in 2 days: {r.closest_check} score {r.closest_score:.2f}")
        lines.append(f"    missed {r.threat}/{r.variant} {r.device_id} {r.first_day:%Y-%m-%d} "
                     f"({r.detail}): {later}{closest}")
    if len(ev.missed) > MISSED_SHOWN:
        lines.append(f"    ... and {len(ev.missed) - MISSED_SHOWN} more missed")
    lines.append(
        f"  false alarms: {fa['false_alarm_device_days']} flagged of {fa['clean_device_days']:,} "
        f"clean device-days = {fa['per_1000']:.2f} per 1,000 (transformers "
        f"{fa['transformer_per_1000']:.2f}, circuits {fa['circuit_per_1000']:.2f}); clean = no "
        f"threat on the device that day or the day before")
    lines.append(f"  {'check':<18} {'flags':>6} {'precision':>9} {'day after':>9} "
                 f"{'false':>6} {'per 1,000':>9} {'clean 99.9%':>11} {'clean max':>9} "
                 f"{'>= ' + str(NEAR_SCORE):>7}")
    for r in ev.checks.itertuples():
        precision = "-" if pd.isna(r.precision) else f"{r.precision:.2f}"
        lines.append(f"  {r.check:<18} {r.flags:>6} {precision:>9} {r.day_after:>9} "
                     f"{r.false_alarms:>6} {r.false_alarms_per_1000:>9.2f} "
                     f"{r.clean_score_p999:>11.2f} {r.clean_score_max:>9.2f} {r.clean_near:>7}")
    lines.append("  (scores: 1.0 flags; the clean days' scores show the room to lower a threshold)")
    if ev.ett:
        e = ev.ett
        lines.append(
            f"  real transformers ETTh1, ETTh2 (landing path, {e['first_day']}..{e['last_day']}, "
            f"shifted {e['shift_weeks']} weeks): {e['flagged_device_days']} flagged of "
            f"{e['device_days']:,} device-days ({e['transformer_days']} transformer-, "
            f"{e['circuit_days']} circuit-days) = {e['per_1000']:.2f} per 1,000"
            + ("" if e["anomaly_model"] else " (rules only)"))
        busy = {k: v for k, v in e["per_check"].items() if v["flags"]}
        if busy:
            lines.append("    " + "; ".join(f"{k} {v['flags']} ({v['per_1000']:.1f} per 1,000)"
                                            for k, v in busy.items()))
        lines += [f"    {x}" for x in e["examples"]]
        if e["refused_files"]:
            lines.append(f"    landing files refused: {len(e['refused_files'])}, e.g. "
                         f"{e['refused_files'][0]}")
    f = ev.failures
    if f:
        def pct(x):
            return "-" if x is None else f"{100 * x:.0f} %"
        lines.append(
            f"  failures caught ({f['definition']}): behind a hidden oil sensor "
            f"{f['hidden_caught']}/{f['hidden']} = {pct(f['hidden_caught_rate'])} with the "
            f"quarantine, {f['hidden_caught_without_quarantine']}/{f['hidden']} = "
            f"{pct(f['hidden_caught_rate_without_quarantine'])} without; other wear-out "
            f"failures {f['other_caught']}/{f['other_wear_out']} = {pct(f['other_caught_rate'])}")
    a = acceptance(ev)

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines.append(
        f"  acceptance: recall >= {TARGET_RECALL} per threat type {met(a['recall'])}"
        f"; <= {TARGET_FALSE_ALARMS:g} false alarm per 1,000 {met(a['false_alarms'])}"
        f"; hidden-sensor failures within {TARGET_CAUGHT_GAP:.0%} of the others "
        + ("not measurable (no such failure, or no other, in the scored window)"
           if a["hidden_sensor_gap"] is None else met(a["hidden_sensor"])))
    return "\n".join(lines)
