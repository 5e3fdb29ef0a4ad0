"""Run-failure alerts: a real failed run, evaluated by the failure sensor, lands in the alert log,
the warehouse table (either backend) and a webhook; a locked warehouse or a broken webhook never
fails the sensor."""

import json
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from gridassets.defs.ops.alerts import alert_log_path
from gridassets.defs.ops.sensors import run_failure_alerts
from gridassets.defs.raw.assets import raw_assets
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.domain import alerting
from gridassets.domain.export import write_registry
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import CIRCUITS, TRANSFORMERS
from gridassets_tests.conftest import SMALL_FLEET, read_warehouse

FEEDER_LOAD = next(a for a in raw_assets if a.key.path == ["feeder_load"])


# --- the pure parts -------------------------------------------------------------------------

def _alert(**kw) -> alerting.RunFailureAlert:
    defaults = dict(run_id="0123456789abcdef", job_name="__ASSET_JOB", tags={},
                    step_failures=[], run_error=None,
                    failed_at=datetime(2025, 6, 2, 3, 4, 5, 678, tzinfo=timezone.utc))
    return alerting.build_alert(**{**defaults, **kw})


@pytest.mark.parametrize("tags, label", [
    ({"dagster/partition": "2025-06-01"}, "2025-06-01"),
    ({"dagster/asset_partition_range_start": "2025-06-01",
      "dagster/asset_partition_range_end": "2025-06-07"}, "2025-06-01...2025-06-07"),
    ({"dagster/asset_partition_range_start": "2025-06-01",
      "dagster/asset_partition_range_end": "2025-06-01"}, "2025-06-01"),
    ({}, None),
])
def test_partition_label_names_a_partition_or_a_range(tags, label):
    assert alerting.partition_label(tags) == label


@pytest.mark.parametrize("cls_name, message, description, expected", [
    ("Failure", "dagster._core.definitions.events.Failure: x.csv: missing file\n",
     "x.csv: missing file", "x.csv: missing file"),
    ("WarehouseLockedError", "gridassets.warehouse.WarehouseLockedError: locked\n", None,
     "WarehouseLockedError: locked"),
    ("KeyError", "KeyError: 'zone'\n", None, "KeyError: 'zone'"),
    (None, "plain text", None, "plain text"),
])
def test_error_text_drops_module_paths_and_prefers_the_failure_description(
        cls_name, message, description, expected):
    assert alerting.error_text(cls_name, message, description) == expected


def test_an_alert_names_steps_assets_partition_and_every_error():
    alert = _alert(
        tags={"dagster/partition": "2025-06-01", "dagster/backfill": "abc"},
        step_failures=[alerting.StepFailure("feeder_load", ("feeder_load",), "bad file"),
                       alerting.StepFailure("outage_events", ("outage_events",), "bad row")],
    )
    assert alert.failed_steps == ("feeder_load", "outage_events")
    assert alert.failed_assets == ("feeder_load", "outage_events")
    assert alert.error == "feeder_load: bad file\noutage_events: bad row"
    assert alert.partition == "2025-06-01" and alert.backfill_id == "abc"
    assert alert.ui_path == "/runs/0123456789abcdef"
    assert alert.failed_at == datetime(2025, 6, 2, 3, 4, 5)  # naive UTC, whole seconds
    assert alerting.RunFailureAlert.from_json(json.loads(json.dumps(alert.to_json()))) == alert


def test_a_run_that_failed_outside_any_step_names_its_selection_and_run_error():
    alert = _alert(run_error="run worker exited unexpectedly", selected_assets=["b", "a"])
    assert alert.failed_steps == () and alert.failed_assets == ("a", "b")
    assert alert.error == "run worker exited unexpectedly"
    assert "a, b" in alerting.summary(alert) and "/runs/0123456789abcdef" in alerting.summary(alert)


def test_long_errors_are_cut_for_the_table_and_shorter_for_the_webhook():
    alert = _alert(run_error="x" * 5000)
    assert len(alert.error) == alerting.ERROR_LIMIT
    assert len(alerting.webhook_payload(alert)["error"]) == alerting.PAYLOAD_ERROR_LIMIT


def test_the_log_keeps_one_line_per_run_and_skips_junk(tmp_path):
    log = tmp_path / "ops" / "alerts.log"
    assert alerting.append_to_log(log, _alert()) is True
    assert alerting.append_to_log(log, _alert()) is False
    with log.open("a") as f:
        f.write("not json\n{\"no\": \"run id\"}\n")
    assert [a.run_id for a in alerting.read_log(log)] == ["0123456789abcdef"]


def test_webhook_urls_must_be_http_and_are_never_logged_whole():
    with pytest.raises(ValueError, match="http"):
        alerting.post_json("file:///etc/passwd", {})
    assert alerting.redact_url("https://hooks.example.com:8443/T000/B000/secret") == \
        "https://hooks.example.com:8443/…"


# --- a real failed run, through the sensor -------------------------------------------------

@pytest.fixture
def landing_settings(tmp_path, backend) -> GridSettings:
    """Landing mode with the registry files but no daily files: any raw partition fails."""
    settings = GridSettings(source="landing", data_dir=str(tmp_path / "data"), backend=backend)
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    landing = settings.resolve().landing_dir
    write_registry(CIRCUITS, sim.circuits(), landing)
    write_registry(TRANSFORMERS, sim.transformers(), landing)
    return settings


def with_webhook(settings: GridSettings, url: str) -> GridSettings:
    return GridSettings(source=settings.source, data_dir=settings.data_dir,
                        backend=settings.backend, alert_webhook=url)


def fail_feeder_load(settings: GridSettings, instance, day: str) -> dg.ExecuteInProcessResult:
    result = dg.materialize([FEEDER_LOAD], resources=build_resources(settings), instance=instance,
                            partition_key=day, raise_on_error=False)
    assert not result.success
    return result


def evaluate_sensor(result: dg.ExecuteInProcessResult, instance, settings: GridSettings) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name=run_failure_alerts.name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"settings": settings},
    )
    run_failure_alerts(context)


def stored_failures(settings: GridSettings) -> list[dict]:
    with read_warehouse(settings) as con:
        frame = con.execute("select * from ops.run_failures order by failed_at, run_id").fetchdf()
    return frame.to_dict("records")


def test_a_failed_run_becomes_a_row_and_a_log_line_naming_run_asset_and_reason(
        landing_settings, instance):
    result = fail_feeder_load(landing_settings, instance, "2025-06-01")
    run_id = result.run_id
    evaluate_sensor(result, instance, landing_settings)

    missing = landing_settings.resolve().landing_dir / "feeder_load" / "2025-06-01.csv"
    [row] = stored_failures(landing_settings)
    assert row["run_id"] == run_id
    assert row["failed_assets"] == "feeder_load" and row["failed_steps"] == "feeder_load"
    assert row["partition"] == "2025-06-01"
    assert str(missing) in row["error"] and "missing file" in row["error"]
    assert row["ui_path"] == f"/runs/{run_id}"
    assert row["job_name"] == result.dagster_run.job_name

    lines = alert_log_path(landing_settings.resolve()).read_text().splitlines()
    assert len(lines) == 1
    logged = json.loads(lines[0])
    assert logged["run_id"] == run_id and logged["failed_assets"] == ["feeder_load"]
    assert logged["partition"] == "2025-06-01" and logged["ui_path"] == f"/runs/{run_id}"
    assert str(missing) in logged["error"]
    record = instance.get_run_record_by_id(run_id)
    assert abs(datetime.fromisoformat(logged["failed_at"].removesuffix("Z"))
               .replace(tzinfo=timezone.utc).timestamp() - record.end_time) < 1.0

    # The same failure evaluated again (a tick retried after a crash) adds nothing.
    evaluate_sensor(result, instance, landing_settings)
    assert len(stored_failures(landing_settings)) == 1
    assert len(alert_log_path(landing_settings.resolve()).read_text().splitlines()) == 1


@pytest.fixture
def lock_holder(landing_settings) -> Iterator[subprocess.Popen]:
    """Another process with the warehouse open for writing, as a running backfill has it."""
    db = landing_settings.resolve().warehouse
    db.parent.mkdir(parents=True, exist_ok=True)
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
            "con.execute('create schema if not exists raw').fetchall(); "
            "print('locked', flush=True); sys.stdin.readline()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
        assert lines.get(timeout=30).strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.duckdb_only
def test_a_locked_warehouse_keeps_the_log_line_and_the_table_catches_up(
        landing_settings, instance, lock_holder, capfd):
    first = fail_feeder_load(landing_settings, instance, "2025-06-01")
    evaluate_sensor(first, instance, landing_settings)  # must not raise

    log_path = alert_log_path(landing_settings.resolve())
    assert [a.run_id for a in alerting.read_log(log_path)] == [first.run_id]
    err = capfd.readouterr().err
    assert f"Run failure alert for {first.run_id} not written to ops.run_failures" in err
    assert "stayed locked" in err and str(log_path) in err

    lock_holder.kill()
    lock_holder.wait(timeout=10)
    second = fail_feeder_load(landing_settings, instance, "2025-06-02")
    evaluate_sensor(second, instance, landing_settings)
    rows = stored_failures(landing_settings)
    assert {r["run_id"]: r["partition"] for r in rows} == {
        first.run_id: "2025-06-01", second.run_id: "2025-06-02"}


# --- the webhook ---------------------------------------------------------------------------

@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue, dict]]:
    """A local HTTP endpoint on 127.0.0.1 that records what is POSTed to it."""
    received: queue.Queue = queue.Queue()
    behaviour = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.put((self.path, self.headers.get("Content-Type"), body))
            self.send_response(behaviour["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/T0/secret-token", received, behaviour
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_webhook_receives_a_small_json_payload(landing_settings, instance, webhook):
    url, received, _ = webhook
    settings = with_webhook(landing_settings, url)
    result = fail_feeder_load(settings, instance, "2025-06-01")
    evaluate_sensor(result, instance, settings)

    path, content_type, body = received.get(timeout=10)
    assert path == "/hooks/T0/secret-token" and content_type == "application/json"
    payload = json.loads(body)
    assert payload["event"] == "run_failure" and payload["run_id"] == result.run_id
    assert payload["failed_assets"] == ["feeder_load"] and payload["partition"] == "2025-06-01"
    assert "missing file" in payload["error"]
    assert payload["ui_path"] == f"/runs/{result.run_id}"
    assert result.run_id[:8] in payload["text"] and "feeder_load [2025-06-01]" in payload["text"]
    assert len(body) < 4000
    assert received.empty()


def test_a_failing_webhook_is_logged_and_never_raised(landing_settings, instance, webhook, capfd):
    url, received, behaviour = webhook
    behaviour["status"] = 500
    settings = with_webhook(landing_settings, url)
    result = fail_feeder_load(settings, instance, "2025-06-01")
    evaluate_sensor(result, instance, settings)  # must not raise

    received.get(timeout=10)
    err = capfd.readouterr().err
    assert "webhook http://127.0.0.1:" in err and "HTTP Error 500" in err
    assert "secret-token" not in err
    assert [r["run_id"] for r in stored_failures(settings)] == [result.run_id]
    assert alerting.read_log(alert_log_path(settings.resolve()))[0].run_id == result.run_id


def test_an_unreachable_webhook_is_logged_and_the_alert_still_recorded(landing_settings, instance,
                                                                       capfd):
    # A port nothing listens on: connection refused, logged, the alert still recorded.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = with_webhook(landing_settings, f"http://127.0.0.1:{port}/x")
    result = fail_feeder_load(settings, instance, "2025-06-01")
    evaluate_sensor(result, instance, settings)
    assert "webhook http://127.0.0.1:" in capfd.readouterr().err
    assert [r["run_id"] for r in stored_failures(settings)] == [result.run_id]


def test_the_sensor_is_on_by_default_and_watches_every_run():
    from gridassets.definitions import defs

    sensor = defs.resolve_sensor_def("run_failure_alerts")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    assert sensor.required_resource_keys == {"settings"}
    assert Path(alerting.__file__).read_text().count("import dagster") == 0
