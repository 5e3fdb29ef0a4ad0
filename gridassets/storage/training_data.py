"""What a week's model training reads from the warehouse: the first day of features, the labelled
rows of a day range, and the version serving before the week (with its model).

Labels are SQL over the feature and event tables (heavy data work stays in DuckDB):

maintenance (transformer-days): the unit fails within the next HORIZON_DAYS days (failures after
    the day, up to and including day + 30);
outage (circuit-days): an outage of an environmental cause (`models.ENVIRONMENT_CAUSES`) starts
    on the circuit that day.

Functions take a DuckDB connection on which every table is visible as `schema.table` and return
frames or values; they write nothing. The windows, training and promotion decision are the
domain's (`gridassets.domain.models`, `gridassets.domain.training`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from gridassets.domain import models, training
from gridassets.domain.models import ENVIRONMENT_CAUSES, HORIZON_DAYS
from gridassets.domain.registry import VersionRecord
from gridassets.storage import model_store
from gridassets.warehouse import classify, qualified

FEATURE_TABLE = {
    models.MAINTENANCE.name: "transformer_health_features",
    models.OUTAGE.name: "circuit_exposure_features",
}


def first_feature_day(con: duckdb.DuckDBPyConnection, spec: models.ModelSpec) -> date | None:
    """The first day of the model's feature table (None when it holds no rows)."""
    first = con.execute(
        f"select min(date) from {qualified(FEATURE_TABLE[spec.name])}").fetchall()[0][0]
    return None if first is None else pd.Timestamp(first).date()


def maintenance_rows(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    """Transformer health features of days in [start, end) with their label: the unit fails
    within the next HORIZON_DAYS days (failures after the day, up to and including day + 30)."""
    sql = f"""
    select h.*,
           count(f.transformer_id) > 0 as label
    from {qualified("transformer_health_features")} h
    left join {qualified("transformer_failures")} f
           on f.transformer_id = h.transformer_id
          and f.failed_at >= h.date + interval 1 day
          and f.failed_at < h.date + interval {HORIZON_DAYS + 1} day
    where h.date >= ? and h.date < ?
    group by all
    order by h.date, h.transformer_id
    """
    return con.execute(sql, [pd.Timestamp(start), pd.Timestamp(end)]).fetchdf()


def outage_rows(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    """Circuit exposure features of days in [start, end) with their label: an outage of an
    environmental cause starts on the circuit that day."""
    sql = f"""
    with o as (
        select circuit_id, cast(start_ts as date) as day, count(*) as outages
        from {qualified("outage_events")}
        where start_ts >= ? and start_ts < ? and cause in (select unnest(?::varchar[]))
        group by all
    )
    select e.*, coalesce(o.outages, 0) > 0 as label
    from {qualified("circuit_exposure_features")} e
    left join o on o.circuit_id = e.circuit_id and o.day = cast(e.date as date)
    where e.date >= ? and e.date < ?
    order by e.date, e.circuit_id
    """
    ts = [pd.Timestamp(start), pd.Timestamp(end)]
    return con.execute(sql, [*ts, list(ENVIRONMENT_CAUSES), *ts]).fetchdf()


ROWS = {models.MAINTENANCE.name: maintenance_rows, models.OUTAGE.name: outage_rows}


def code_version() -> str:
    """What produced a model: the domain's training code and this module's labels."""
    return models.code_version(sys.modules[__name__])


def load_week(con: duckdb.DuckDBPyConnection, spec: models.ModelSpec, week_start: date,
              models_dir: Path, pending: Sequence[VersionRecord] = ()) -> training.WeekData:
    """What the training of the week starting `week_start` needs: the version serving the day
    before it (among the stored records and `pending` ones) and its model, the training window,
    and the training and holdout rows.

    A problem loading the rows (no features yet, too short a history, a missing table) is
    returned in `error`, to be recorded as a failed training; an unreadable serving model is
    returned as None. Raises the warehouse's own errors (a damaged or full warehouse, see
    `gridassets.warehouse.classify`): they are not a failed training, and recording one would
    write to the file (DuckDB can commit writes made after a checksum error).
    """
    serving = model_store.serving_as_of(con, spec, week_start - timedelta(days=1), pending)
    data = training.WeekData(serving=serving, serving_model=_readable_model(models_dir, serving),
                             code_version=code_version())
    try:
        data.window = training.week_window(spec, week_start, first_feature_day(con, spec))
        rows = ROWS[spec.name]
        data.train_rows = rows(con, data.window.train_start, data.window.train_end)
        data.holdout_rows = rows(con, data.window.holdout_start, data.window.holdout_end)
    except Exception as exc:
        if classify(exc, "the warehouse") is not None:
            raise
        data.error = exc
    return data


def _readable_model(models_dir: Path, serving: dict | None) -> models.TrainedModel | None:
    if serving is None:
        return None
    try:
        return model_store.load_model(models_dir, serving)
    except Exception:  # an unreadable serving model cannot block a new one
        return None
