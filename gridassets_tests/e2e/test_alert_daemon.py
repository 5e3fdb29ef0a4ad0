"""The real daemon: an alert file renamed into the inbox runs the storm assets; bad files don't stop it.

Starts `dagster-daemon run -m gridassets.definitions` with a private DAGSTER_HOME (the repository's
dagster.yaml) and data folder, drops files the way writers are told to (write elsewhere, then
rename into the inbox), and waits, bounded, for the outcome. Prints the time from a file landing
to its storm's output being ready (`E2E_TIMING ...` lines, shown with `pytest -s`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from gridassets_tests.conftest import copy_data, fleet_env
from gridassets_tests.nws_fixtures import load_nws_file

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAEMON = Path(sys.executable).with_name("dagster-daemon")
NW_FILE = "northwest-active-alerts.json"
WAIT_SECONDS = 120.0
POLL_SECONDS = 0.5
UTC = timezone.utc


@dataclass
class Deployment:
    home: Path
    data: Path
    process: subprocess.Popen
    log: Path
    instance: dg.DagsterInstance

    @property
    def alerts(self) -> Path:
        return self.data / "alerts"

    def land(self, name: str, content: bytes) -> float:
        """Write `content` outside the inbox, rename it in, and return the moment it landed."""
        outgoing = self.data / "outgoing"
        outgoing.mkdir(parents=True, exist_ok=True)
        (outgoing / name).write_bytes(content)
        (self.alerts / "inbox").mkdir(parents=True, exist_ok=True)
        os.rename(outgoing / name, self.alerts / "inbox" / name)
        return time.time()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def wait_for(what: str, probe: Callable[[], object], deployment: Deployment,
             seconds: float = WAIT_SECONDS):
    """Poll `probe` until it returns something truthy; after `seconds`, fail with the daemon's log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if deployment.process.poll() is not None:
            pytest.fail(f"the daemon exited ({deployment.process.returncode}) while waiting for "
                        f"{what}\n{deployment.log_tail()}")
        value = probe()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}\n{deployment.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    """Stop the daemon and everything it started (code server, run workers): its process group."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    # Children may outlive the leader: the group is killed whatever happened above.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture
def deployment(tmp_path, demo_data) -> Iterator[Deployment]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    # The storm assets score circuits with the warehouse's models and latest state.
    data = copy_data(demo_data[0], tmp_path / "data")
    env = fleet_env(data, home, PYTHONUNBUFFERED="1")
    log = tmp_path / "daemon.log"
    # The instance's SQLite storages are created here, before the daemon and its code server
    # start: when two processes create a fresh schedule database at once, both stamp it and
    # Dagster then refuses it ("alembic_version has more than one head").
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(DAEMON), "run", "-m", "gridassets.definitions"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            yield Deployment(home, data, process, log, instance)
        finally:
            _stop(process)
    finally:
        instance.dispose()


def storm_output_ready(d: Deployment, storm_id: str, run_keys: list[str]) -> float | None:
    """When the storm's crew-staging CSV was written by one of `run_keys`' runs (epoch seconds),
    or None if it is not yet. Fails at once if such a run failed, rather than waiting it out."""
    records = d.instance.get_run_records(filters=RunsFilter(tags={"gridassets/storm_id": storm_id}))
    succeeded = False
    for record in records:
        run = record.dagster_run
        if run.tags.get("dagster/run_key") not in run_keys:
            continue
        if run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            pytest.fail(f"storm run {run.run_id} for {storm_id} ended {run.status.value}\n"
                        f"{d.log_tail()}")
        succeeded |= run.status == DagsterRunStatus.SUCCESS
    csv = d.data / "outputs" / "storms" / storm_id / "priority.csv"
    if succeeded and csv.exists():
        return csv.stat().st_mtime
    return None


def note_of(d: Deployment, name: str) -> dict | None:
    path = d.alerts / "processed" / f"{name}.note.json"
    return json.loads(path.read_text()) if path.exists() else None


def requested(note: dict) -> dict[str, list[str]]:
    """storm id -> run keys the note says were requested (new or duplicate)."""
    runs: dict[str, list[str]] = {}
    for entry in note["entries"]:
        if entry["outcome"] in ("run_requested", "duplicate"):
            runs.setdefault(entry["storm_id"], []).append(entry["run_key"])
    return runs


def run_statuses(d: Deployment, run_key: str) -> list[DagsterRunStatus]:
    records = d.instance.get_run_records(filters=RunsFilter(tags={"dagster/run_key": run_key}))
    return [r.dagster_run.status for r in records]


def phases(d: Deployment, run_key: str, landed: float) -> str:
    """Where the time went for one run: sensor tick, queue, launch, execution."""
    [record] = d.instance.get_run_records(filters=RunsFilter(tags={"dagster/run_key": run_key}))
    created = record.create_timestamp
    if created.tzinfo is None:  # stored as naive UTC
        created = created.replace(tzinfo=UTC)
    created = created.timestamp()
    return (f"run created +{created - landed:.1f} s, started +{record.start_time - landed:.1f} s, "
            f"ended +{record.end_time - landed:.1f} s")


def minimal_alert(message_id: str) -> bytes:
    now = datetime.now(UTC)
    return json.dumps({
        "id": message_id, "event": "High Wind Warning", "zones": ["MTZ312"],
        "sent": now.isoformat(), "onset": (now + timedelta(hours=1)).isoformat(),
        "expires": (now + timedelta(hours=12)).isoformat(), "max_wind_gust_mph": 68,
    }).encode()


def test_alert_files_dropped_into_the_inbox_run_the_storm_assets(deployment):
    d = deployment
    started = time.time()

    # The sensor is alive once it has handled a harmless file (the daemon loads the code first).
    d.land("warmup.json", b'{"type": "FeatureCollection", "features": []}')
    wait_for("the sensor's first tick", lambda: note_of(d, "warmup.json"), d)
    print(f"\nE2E_TIMING daemon start to first sensor tick: {time.time() - started:.1f} s")

    # A real collection whose High Wind Warnings name zones of the demo fleet.
    nws = load_nws_file(NW_FILE, now=datetime.now(UTC))
    landed = d.land("northwest.json", nws)
    note = wait_for("the northwest note", lambda: note_of(d, "northwest.json"), d)
    storms = requested(note)
    assert len(storms) == 2 and sum(map(len, storms.values())) == 4
    first_ready = {
        storm: wait_for(f"the storm run of {storm}",
                        lambda s=storm, k=keys: storm_output_ready(d, s, k), d)
        for storm, keys in storms.items()
    }
    # Every message of the file gets its run; let them all finish before the next files land.
    for keys in storms.values():
        for key in keys:
            wait_for(f"run {key}", lambda k=key: run_statuses(d, k) == [DagsterRunStatus.SUCCESS], d)
    for storm, ready in sorted(first_ready.items(), key=lambda kv: kv[1]):
        print(f"E2E_TIMING northwest.json landed to {storm} ready: {ready - landed:.1f} s")
        for key in storms[storm]:
            print(f"E2E_TIMING   message ...{key[-10:]}: {phases(d, key, landed)}")

    # A malformed file, the same collection again, then a new alert: the sensor goes on.
    d.land("broken.json", b'{"type": "FeatureCollection", "features": [')
    time.sleep(0.05)  # a later modification time: taken after the broken file
    d.land("northwest-again.json", nws)
    time.sleep(0.05)
    landed_good = d.land("acme.json", minimal_alert("acme-e2e-1"))

    error = wait_for("the rejection of broken.json",
                     lambda: (d.alerts / "rejected" / "broken.json.error.txt").exists(), d)
    assert error
    assert "not valid JSON" in (d.alerts / "rejected" / "broken.json.error.txt").read_text()
    assert (d.alerts / "rejected" / "broken.json").exists()

    good = wait_for("the acme note", lambda: note_of(d, "acme.json"), d)
    assert requested(good) == {"acme-e2e-1": ["acme-e2e-1:acme-e2e-1"]}
    ready = wait_for("the acme storm run",
                     lambda: storm_output_ready(d, "acme-e2e-1", ["acme-e2e-1:acme-e2e-1"]), d)
    print(f"E2E_TIMING acme.json landed to acme-e2e-1 ready: {ready - landed_good:.1f} s "
          f"({phases(d, 'acme-e2e-1:acme-e2e-1', landed_good)})")
    crew_list = pd.read_csv(d.data / "outputs" / "storms" / "acme-e2e-1" / "priority.csv")
    with duckdb.connect(str(d.data / "warehouse.duckdb"), read_only=True) as con:
        in_zone = {c for (c,) in con.execute(
            "select circuit_id from fleet.circuits where zone = 'MTZ312'").fetchall()}
    assert set(crew_list["circuit_id"]) == in_zone and in_zone
    assert list(crew_list["rank"]) == list(range(1, len(in_zone) + 1))
    assert (crew_list["status"] == "active").all()
    assert crew_list["reason"].str.contains("gusts to 68 mph").all()
    # The planner's sheet: the window in UTC and local time, zone, location, state date; and the
    # zone summary and GeoJSON beside it.
    assert (crew_list["gust_mph"] == 68).all() and (crew_list["zone"] == "MTZ312").all()
    for column in ("alert_onset_utc", "alert_end_utc", "alert_onset_local", "alert_end_local",
                   "latitude", "longitude", "state_date"):
        assert crew_list[column].notna().all(), column
    folder = d.data / "outputs" / "storms" / "acme-e2e-1"
    assert list(pd.read_csv(folder / "zones.csv")["zone"]) == ["MTZ312"]
    layer = json.loads((folder / "priority.geojson").read_text())
    assert [f["geometry"]["coordinates"] for f in layer["features"]] == [
        [r.longitude, r.latitude] for r in crew_list.itertuples()]

    # The same messages again start nothing new: each run key has exactly one run.
    again = wait_for("the second northwest note", lambda: note_of(d, "northwest-again.json"), d)
    assert again["summary"]["duplicate"] == 4 and again["summary"]["run_requested"] == 0
    assert all(len(run_statuses(d, k)) == 1 for keys in storms.values() for k in keys)
    assert sorted(os.listdir(d.alerts / "inbox")) == []
