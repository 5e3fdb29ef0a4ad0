"""The run-failure sensor: every failed run becomes an alert an operator sees.

Each alert goes to the alert log `<data dir>/ops/alerts.log`, the table `ops.run_failures` and, when
GRIDASSETS_ALERT_WEBHOOK is set, a webhook (see gridassets/defs/ops/alerts.py).
"""

from datetime import datetime, timezone

import dagster as dg

from gridassets.defs.ops.alerts import deliver
from gridassets.defs.config import GridSettings
from gridassets.domain import alerting


def _step_assets(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, tuple[str, ...]]:
    """Step key -> the assets the step materializes, from the run's execution plan."""
    if not run.execution_plan_snapshot_id:
        return {}
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return {
        step.key: tuple(o.properties.asset_key.to_user_string() for o in step.outputs
                        if o.properties and o.properties.asset_key)
        for step in snapshot.steps
    }


def _error(error_info, user_failure=None) -> str:
    if error_info is None:
        return ""
    description = getattr(user_failure, "description", None)
    return alerting.error_text(error_info.cls_name, error_info.message, description)


def alert_for(context: dg.RunFailureSensorContext) -> alerting.RunFailureAlert:
    """The alert for the failed run of `context`, from its step failures and run record."""
    run = context.dagster_run
    assets_of = _step_assets(context.instance, run)
    steps = []
    for event in context.get_step_failure_events():
        data = event.event_specific_data
        steps.append(alerting.StepFailure(
            step_key=event.step_key or "",
            assets=assets_of.get(event.step_key or "", ()),
            error=_error(getattr(data, "error", None), getattr(data, "user_failure_data", None))
            or event.message or "",
        ))
    failure = context.failure_event
    run_error = _error(getattr(failure.event_specific_data, "error", None)) or failure.message
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record and record.end_time else None
    failed_at = (datetime.fromtimestamp(ended, tz=timezone.utc) if ended
                 else datetime.now(timezone.utc))
    return alerting.build_alert(
        run_id=run.run_id, job_name=run.job_name, tags=run.tags, step_failures=steps,
        run_error=run_error, failed_at=failed_at,
        selected_assets=[k.to_user_string() for k in (run.asset_selection or ())],
    )


@dg.run_failure_sensor(
    name="run_failure_alerts",
    description="Records every failed run as an alert: a line in <data dir>/ops/alerts.log, a row "
                "in ops.run_failures and, when GRIDASSETS_ALERT_WEBHOOK is set, a webhook POST.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    # Runs started by `dagster asset materialize` or `python -m gridassets run` carry no code
    # location of origin, and the location-scoped default would silently skip their failures.
    # This deployment has one code location, so "all" is "ours, however the run was started".
    monitor_all_code_locations=True,
)
def run_failure_alerts(context: dg.RunFailureSensorContext, settings: GridSettings):
    alert = alert_for(context)
    delivery = deliver(alert, settings.resolve(), context.log)
    context.log.info(alerting.summary(alert))
    if delivery.log_error:
        # The log is the source of truth: a tick that could not write it shows as an error.
        raise RuntimeError(f"run failure alert for {alert.run_id} was not logged: "
                           f"{delivery.log_error}")
