"""Telemetry integrity: the daily signals of every device, the weekly anomaly model, and the
daily verdict that keeps flagged readings out of features and models and tells the security team
(rules and reasons in `gridassets.domain.integrity`, docs/integrity.md)."""

import json
import logging
from datetime import timedelta

import dagster as dg
import pandas as pd

from gridassets.defs.audit import audited_output, require_inputs, scope_of
from gridassets.defs.metadata import frame_schema, markdown_table, partition_days, per_partition
from gridassets.defs.partitions import daily_partitions, weekly_partitions
from gridassets.defs.policies import DAILY_BACKFILL, DUCKDB_POOL, OWNERS, TRANSIENT_RETRY
from gridassets.defs.resources import GridSettings, Warehouse
from gridassets.domain import alerting, integrity, registry
from gridassets.domain.export import write_atomic_csv
from gridassets.domain.registry import VersionRecord
from gridassets.settings import Settings
from gridassets.storage import integrity as reads
from gridassets.storage import model_store

COMMON = dict(group_name="integrity", owners=OWNERS, pool=DUCKDB_POOL, code_version="1")
DAILY = dict(partitions_def=daily_partitions, backfill_policy=DAILY_BACKFILL,
             retry_policy=TRANSIENT_RETRY)
NOTHING = dict(dagster_type=dg.Nothing)
# The days a day's readings are compared with (repeats) and its references come from.
REPEAT_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-integrity.REPEAT_DAYS,
                                              allow_nonexistent_upstream_partitions=True)
REFERENCE_WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-integrity.REFERENCE_DAYS, end_offset=-1,
    allow_nonexistent_upstream_partitions=True)
MODEL_HISTORY = dg.TimeWindowPartitionMapping(start_offset=-6, end_offset=-1,
                                              allow_nonexistent_upstream_partitions=True)
INTEGRITY_MODEL = "integrity_model"


@dg.asset(
    ins={"transformer_telemetry": dg.AssetIn(partition_mapping=REPEAT_WINDOW, **NOTHING),
         "feeder_load": dg.AssetIn(partition_mapping=REPEAT_WINDOW, **NOTHING),
         "telemetry_signals": dg.AssetIn(partition_mapping=REFERENCE_WINDOW, **NOTHING)},
    deps=["weather_observations", "transformer_failures", "transformers", "circuits"],
    kinds={"duckdb", "sql"},
    metadata={"partition_expr": "date", "schema": "integrity"},
    check_specs=[dg.AssetCheckSpec("rows", asset="telemetry_signals", blocking=True,
                                   description="One row per device and day, every day present.")],
    **DAILY, **COMMON,
)
def telemetry_signals(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """What each device's day of readings looks like to an integrity analyst: spreads, the
    closest of its last 7 days, its thermal response against its own usual, its clock against
    its circuit, each feeder against its transformers, and who fell silent."""
    days = partition_days(context)
    with warehouse.connect() as con:
        require_inputs(con, "telemetry_signals", days, {
            "transformers": None, "circuits": None, "transformer_telemetry": "timestamp",
            "feeder_load": "timestamp"})
        circuits = reads.circuit_ids(con)
        # Each day's signals wait in the connection's pending table, where the references of the
        # days after it read them, until the run's output is published.
        reads.clear_pending(con)
        for day in days:
            tx_ref, circuit_ref = reads.references(con, day)
            tx = integrity.transformer_signals(
                day, reads.transformer_day(con, day), reads.expected_transformers(con, day),
                reads.hourly_transformer_load(con, day), tx_ref)
            feeders = integrity.circuit_signals(day, circuits, reads.feeder_day(con, day),
                                                circuit_ref)
            reads.stage_pending(con, integrity.signals_frame([tx, feeders]))
            del tx, feeders
        frame = integrity.signals_frame([reads.pending(con)])
        reads.clear_pending(con)
    yield from audited_output("telemetry_signals", frame,
                              {"rows": integrity.audit_signals(frame, days)},
                              scope=scope_of(days), metadata={
        "dagster/column_schema": frame_schema(frame), "days": len(days),
        "device_days": len(frame)})


@dg.asset(
    deps=[dg.AssetDep("telemetry_signals", partition_mapping=MODEL_HISTORY)],
    kinds={"scikitlearn", "duckdb"},
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"partition_expr": "week_start", "schema": "models", "model": "IsolationForest"},
    check_specs=[dg.AssetCheckSpec(
        "trained", asset=INTEGRITY_MODEL,
        description="The week's training produced a model (a failure keeps the serving one).")],
    # with the other weekly models: the weekly schedule trains the whole group
    **{**COMMON, "group_name": "models"},
)
def integrity_model(context: dg.AssetExecutionContext, warehouse: Warehouse,
                    settings: GridSettings):
    """Weekly IsolationForest over the transformer signals of the 4 weeks before, on the days the
    rules passed; judged on the last week against copies of it made to look replayed, frozen,
    cooled or mis-timed, and promoted only if no worse than the serving version."""
    s = settings.resolve()
    window = context.partition_time_window
    weeks, week = [], window.start
    while week < window.end:
        weeks.append(week.date())
        week = week + pd.Timedelta(days=7)
    records: list[VersionRecord] = []
    with warehouse.connect() as con:
        for week in weeks:
            records.append(_train_week(con, week, s, records))
            context.log.info(f"integrity_model {week}: {records[-1].status}: "
                             f"{records[-1].decision}")
    frame = pd.concat([r.frame() for r in records], ignore_index=True)
    per_partition(context, {r.week_start.isoformat(): {
        "status": r.status, **{k: v for k, v in json.loads(r.metrics or "{}").items()
                               if isinstance(v, float)}} for r in records})
    yield dg.Output(frame, metadata={
        "dagster/column_schema": frame_schema(frame),
        "decisions": dg.MetadataValue.md(markdown_table(
            frame[["week_start", "version", "status", "roc_auc", "pr_auc", "decision"]],
            max_rows=20)),
        "serving_version": records[-1].serving_after or "none"})
    failed = [r for r in records if r.status == "failed"]
    yield dg.AssetCheckResult(check_name="trained", passed=not failed,
                              severity=dg.AssetCheckSeverity.WARN,
                              description="; ".join(f"{r.week_start}: {r.decision}"
                                                    for r in failed) or "every week trained")


_MODEL_SPEC = type("Spec", (), {"name": INTEGRITY_MODEL})


def _train_week(con, week, s: Settings, pending: list[VersionRecord]) -> VersionRecord:
    holdout_start = week - timedelta(days=integrity.MODEL_HOLDOUT_DAYS)
    train_start = holdout_start - timedelta(days=integrity.MODEL_TRAIN_DAYS)
    # the version serving the day before the week (a retrained week is not its own baseline)
    serving = model_store.serving_as_of(con, _MODEL_SPEC, week - timedelta(days=1), pending)
    base = dict(model_name=INTEGRITY_MODEL, week_start=week, trained_at=registry.now_utc(),
                serving_before=serving["version"] if serving else None,
                code_version=integrity.RULES_VERSION, train_start=train_start,
                train_end=holdout_start, holdout_start=holdout_start, holdout_end=week,
                pr_auc=None, brier=None, serving_roc_auc_same_holdout=None)
    try:
        rows = reads.model_signals(con, train_start, week)
        rows = rows[~integrity.rule_flagged(rows)]
        train = rows[rows["date"] < pd.Timestamp(holdout_start)]
        holdout = rows[rows["date"] >= pd.Timestamp(holdout_start)]
        if train["date"].nunique() < integrity.MODEL_MIN_TRAIN_DAYS:
            raise ValueError(f"{train['date'].nunique()} days of telemetry_signals in "
                             f"{train_start}..{holdout_start - timedelta(days=1)} (at least "
                             f"{integrity.MODEL_MIN_TRAIN_DAYS} needed): materialize "
                             "telemetry_signals for those days first")
        model = integrity.train_model(train, holdout, s.seed)
    except ValueError as exc:
        return VersionRecord(**base, version=f"integrity-{week}-failed", status="failed",
                             decision=f"training failed ({exc}); serving version stays",
                             roc_auc=None, metrics="{}", params="{}", artifact_path=None,
                             artifact_sha256=None, serving_after=base["serving_before"])
    serving_auc = None
    if serving is not None:
        try:
            old = model_store.load_model(s.models_dir, serving)
            serving_auc = integrity.evaluate_model(old, holdout, s.seed)["roc_auc"]
        except Exception:  # an unreadable serving model cannot block a new one
            serving_auc = None
    promote, reason = integrity.decide(model.metrics["roc_auc"], serving_auc,
                                       base["serving_before"])
    version = registry.version_id(INTEGRITY_MODEL, week, registry.fingerprint(
        _Fingerprinted(model), holdout))
    path, sha = model_store.save_artifact(registry.dumps(model), s.models_dir, INTEGRITY_MODEL,
                                          version)
    return VersionRecord(
        **{**base, "pr_auc": model.metrics["pr_auc"], "serving_roc_auc_same_holdout": serving_auc},
        version=version, status="promoted" if promote else "rejected", decision=reason,
        roc_auc=model.metrics["roc_auc"], metrics=registry.metrics_json(model.metrics),
        params=integrity.params_json(model), artifact_path=str(path.relative_to(s.models_dir)),
        artifact_sha256=sha, serving_after=version if promote else base["serving_before"])


class _Fingerprinted:
    """What the registry's fingerprint reads of a model: parameters, features, scores."""

    def __init__(self, model: integrity.IntegrityModel):
        self.model, self.params = model, model.params
        self.features, self.negative_rate = integrity.MODEL_FEATURES, model.threshold

    def predict_proba(self, frame):
        return self.model.predict_proba(frame)


@dg.asset(
    ins={"telemetry_signals": dg.AssetIn(**NOTHING),
         "integrity_model": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping(
             allow_nonexistent_upstream_partitions=True), **NOTHING)},
    kinds={"duckdb", "csv"},
    metadata={"partition_expr": "date", "schema": "integrity"},
    check_specs=[
        dg.AssetCheckSpec("judged", asset="telemetry_integrity", blocking=True,
                          description="One row per device, day and check; scores finite and >= "
                                      "0; every flag with a reason."),
        dg.AssetCheckSpec("no_flags", asset="telemetry_integrity",
                          description="Warns when any device's telemetry is flagged (the "
                                      "description names them)."),
    ],
    **DAILY, **COMMON,
)
def telemetry_integrity(context: dg.AssetExecutionContext, warehouse: Warehouse,
                        settings: GridSettings):
    """Per device, day and check: a score, whether it is flagged, the reason a security analyst
    reads, and which readings are quarantined (kept out of features and models)."""
    days = partition_days(context)
    s = settings.resolve()
    cache: dict = {}
    parts = []
    with warehouse.connect() as con:
        require_inputs(con, "telemetry_integrity", days, {"telemetry_signals": "date"})
        signals = reads.signals_between(con, days[0], days[-1] + timedelta(days=1))
        for day in days:
            sig = signals[signals["date"] == pd.Timestamp(day)]
            version, model = _serving(con, day, s, cache)
            tx = sig[sig["device_type"] == integrity.TRANSFORMER]
            parts += [integrity.transformer_rows(tx, day, integrity.RULES_VERSION),
                      integrity.model_rows(model, tx, day, version or integrity.RULES_VERSION),
                      integrity.circuit_rows(sig[sig["device_type"] == integrity.CIRCUIT], day)]
    frame = pd.concat(parts, ignore_index=True)
    flagged = frame[frame["flagged"]]
    outputs = s.outputs_dir / "integrity"
    per_partition(context, {d.isoformat(): {
        "flagged_devices": int(flagged.loc[flagged["date"] == pd.Timestamp(d), "device_id"]
                               .nunique())} for d in days})
    yield from audited_output(
        "telemetry_integrity", frame,
        {"judged": integrity.audit(frame, days), "no_flags": integrity.flags_outcome(frame)},
        scope=scope_of(days), warn_only=frozenset({"no_flags"}), metadata={
            "dagster/column_schema": frame_schema(frame),
            "flagged_device_days": int(flagged.drop_duplicates(
                ["device_type", "device_id", "date"]).shape[0]),
            "flags_by_check": dg.MetadataValue.json(
                {k: int(v) for k, v in flagged["check"].value_counts().items()}),
            "csv": dg.MetadataValue.path(str(outputs / f"{days[-1].isoformat()}.csv")),
            "flags": dg.MetadataValue.md(markdown_table(
                integrity.security_csv(frame)[["date", "device_id", "check", "score", "reason"]],
                max_rows=15)),
        })
    # Exported and alerted only once published: a refused day leaves the last CSV in place.
    for day in days:
        day_flags = integrity.security_csv(frame[frame["date"] == pd.Timestamp(day)])
        write_atomic_csv(day_flags, outputs / f"{day.isoformat()}.csv")
        if len(day_flags):
            deliver_flags(day, day_flags, s, context.log)


def _serving(con, day, s: Settings, cache: dict):
    record = model_store.serving_as_of(con, _MODEL_SPEC, day)
    if record is None:
        return None, None
    if record["version"] not in cache:
        cache[record["version"]] = model_store.load_model(s.models_dir, record)
    return record["version"], cache[record["version"]]


def integrity_log_path(s: Settings):
    return s.ops_dir / "integrity.log"


def deliver_flags(day, flags: pd.DataFrame, s: Settings, log: logging.Logger) -> None:
    """The day's flags to the security team's channels: a JSON line in <data dir>/ops/
    integrity.log, the log of the run, and the webhook when one is set (best effort)."""
    devices = flags.drop_duplicates(["device_type", "device_id"])
    summary = (f"telemetry integrity {day}: {len(devices)} device(s) flagged "
               f"({', '.join(f'{k} {v}' for k, v in flags['check'].value_counts().items())}); "
               f"list in {s.outputs_dir / 'integrity' / f'{day}.csv'}")
    record = {"date": str(day), "flagged_devices": len(devices), "summary": summary,
              "flags": flags.head(50).astype(str).to_dict(orient="records")}
    path = integrity_log_path(s)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:
        log.error(f"{summary}; could not append to {path}: {exc}")
    log.warning(summary)
    if s.alert_webhook:
        top = "; ".join(f"{r.device_id}: {r.reason}" for r in flags.head(3).itertuples())
        try:
            alerting.post_json(s.alert_webhook, {"text": f"{summary}. {top}"[:1000]})
        except Exception as exc:  # noqa: BLE001 - a broken webhook must never fail the day
            log.warning(f"integrity webhook {alerting.redact_url(s.alert_webhook)} failed: "
                        f"{type(exc).__name__}: {exc}")
