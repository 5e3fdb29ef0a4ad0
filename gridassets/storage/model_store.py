"""Where model versions live: the serving row of each model's registry table, and the artifact
files under the models folder.

Artifacts are written atomically as `<models folder>/<model name>/<version>.joblib` and recorded
by a path relative to the models folder, so a data folder can be moved or copied whole. Loading
checks the file's SHA-256 against the registered one. The promotion rules, the record and the
serialization are the domain's (`gridassets.domain.registry`, `gridassets.domain.training`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from gridassets.domain import models, registry, training
from gridassets.domain.registry import NoServingModelError, VersionRecord
from gridassets.warehouse import qualified, table_exists


def serving_record(con: duckdb.DuckDBPyConnection, table: str, as_of: date) -> dict | None:
    """The latest promoted version of a week starting on or before `as_of` (None if none).

    `table` is the qualified registry table of one model (code, not data)."""
    rows = con.execute(
        f"select * from {table} where status = 'promoted' and week_start <= ? "  # sql-identifier: a registry table named in code
        "order by week_start desc limit 1",
        [pd.Timestamp(as_of)],
    ).fetchdf()
    return None if rows.empty else rows.iloc[0].to_dict()


def serving_as_of(con: duckdb.DuckDBPyConnection, spec: models.ModelSpec, day: date,
                  pending: Sequence[VersionRecord] = ()) -> dict | None:
    """The registry row serving `day`: the latest promoted version of a week starting on or before
    it, among the stored records and `pending` ones (decided earlier in the same run)."""
    stored = (serving_record(con, qualified(spec.name), day)
              if table_exists(con, spec.name) else None)
    return training.serving_among(stored, pending, day)


def load_serving(con: duckdb.DuckDBPyConnection, spec: models.ModelSpec, day: date,
                 models_dir: Path) -> tuple[dict, models.TrainedModel]:
    """The serving version for `day` and its model (artifact paths are relative to `models_dir`).
    Raises NoServingModelError if there is none."""
    record = serving_as_of(con, spec, day)
    if record is None:
        raise NoServingModelError(
            f"no promoted {spec.name} version serves {day}: materialize {spec.name} for the week "
            f"of {day} (or an earlier week) first; every version so far failed or was rejected"
            if table_exists(con, spec.name) else
            f"no {spec.name} has been trained yet: materialize {spec.name} for the week of {day}"
        )
    return record, load_model(models_dir, record)


def load_model(models_dir: Path, record: dict) -> models.TrainedModel:
    """The model of a registry row (a stored one, or a pending record's fields)."""
    return load_artifact(Path(models_dir) / record["artifact_path"], record["artifact_sha256"])


def save_artifact(payload: bytes, models_dir: Path, model_name: str, version: str
                  ) -> tuple[Path, str]:
    """Write the artifact atomically; returns its path and SHA-256."""
    folder = Path(models_dir) / model_name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.joblib"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return path, hashlib.sha256(payload).hexdigest()


def load_artifact(path: str | Path, sha256: str):
    """Load a model artifact, refusing one whose bytes differ from what was registered."""
    payload = Path(path).read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != sha256:
        raise ValueError(f"{path}: SHA-256 {actual[:12]} differs from the registered {sha256[:12]}")
    return registry.loads(payload)


def save_week(result: training.WeekResult, models_dir: Path) -> training.WeekResult:
    """Write the artifact of a week's trained model (if it has one) and return the result with
    the artifact's path and SHA-256 in its record. A failed week is returned as it is."""
    if result.payload is None:
        return result
    path, sha = save_artifact(result.payload, models_dir, result.record.model_name,
                              result.record.version)
    record = dataclasses.replace(
        result.record, artifact_sha256=sha,
        # relative to the models folder, so a data folder can be moved or copied whole
        artifact_path=str(path.relative_to(models_dir)))
    return dataclasses.replace(result, record=record)
