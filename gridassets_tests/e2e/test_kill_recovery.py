"""Runs killed with SIGKILL at several moments never block later runs, and never leave a partition
half-written or a committed partition unrecorded.

Each scenario starts real `dagster asset materialize` range runs with a private DAGSTER_HOME and
data folder, kills one of them at a chosen moment, and then, with nobody acting, requires that:
- the next run (or the one that was waiting) succeeds within two minutes;
- every partition holds either its old content or its new content, complete (compared per
  partition with the simulator, which is what a reference build stores);
- whatever the killed run committed is recorded in Dagster: by the run itself, or by the
  reconciler as a runless materialization naming the run (`recovered_from_run`).

The moments: early (at the first step's start), while waiting for the pool slot behind another
run, while holding the slot with another run waiting, inside the write (before the commit), and
after the commit (before or between Dagster's materialization events). The moments inside the run
are hit by a logging handler that the test adds to its private instance (`python_logs` in
dagster.yaml): it sees the run's own event log records as they are written, in the run's process,
and kills the process at the named record — or arms a profiler that kills at the warehouse
transaction's commit. It is test code only; without GRIDASSETS_TEST_KILL_AT it does nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

KILL_AT_ENV = "GRIDASSETS_TEST_KILL_AT"


class KillAtRecord(logging.Handler):
    """Kills its own process (SIGKILL) at a named moment of a run, given by GRIDASSETS_TEST_KILL_AT:

    - `materialization:<step>:<n>`: once the n-th materialization event of <step> is stored (the
      warehouse has committed every partition of the step; Dagster has recorded n of them);
    - `before-commit:<step>`: after <step>'s output is handed to the IO manager, when the warehouse
      transaction is about to commit (its rows are written, not committed);
    - `after-commit:<step>`: the same, right after the commit returned (nothing recorded yet).
    """

    def __init__(self, level=logging.DEBUG):
        super().__init__(level)
        spec = os.environ.get(KILL_AT_ENV, "")
        parts = spec.split(":")
        self.mode = parts[0] if spec else ""
        self.step = parts[1] if len(parts) > 1 else ""
        self.nth = int(parts[2]) if len(parts) > 2 else 1
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        if not self.mode:
            return
        from dagster._core.log_manager import get_log_record_metadata, has_log_record_metadata

        if not has_log_record_metadata(record):
            return
        meta = get_log_record_metadata(record)
        event = meta.get("dagster_event")
        if event is None or meta.get("step_key") != self.step:
            return
        kind = event.event_type_value
        if self.mode == "materialization" and kind == "ASSET_MATERIALIZATION":
            self.seen += 1
            if self.seen >= self.nth:
                os.kill(os.getpid(), signal.SIGKILL)
        elif self.mode in ("before-commit", "after-commit") and kind == "STEP_OUTPUT":
            sys.setprofile(_commit_killer(self.mode))


def _commit_killer(mode: str) -> Callable:
    """A profile function that kills the process at the next warehouse commit. The
    `gridassets.warehouse.transaction` generator is entered (call), suspends at its `yield`
    (return), is resumed when the block ends (call: about to commit) and finishes (return:
    committed)."""
    calls: dict[int, int] = {}

    def profile(frame, event, arg):
        code = frame.f_code
        if code.co_name != "transaction" or not code.co_filename.endswith("warehouse.py"):
            return
        if event == "call":
            calls[id(frame)] = calls.get(id(frame), 0) + 1
            if mode == "before-commit" and calls[id(frame)] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        elif event == "return" and mode == "after-commit" and calls.get(id(frame)) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    return profile


# --- the deployment under test --------------------------------------------------------------------

import dagster as dg  # noqa: E402  (the handler above must stay importable cheaply)
import duckdb  # noqa: E402

from gridassets.domain.fleet import FleetConfig, FleetSimulator  # noqa: E402
from gridassets.domain.schemas import RAW_TABLES  # noqa: E402
from gridassets_tests.conftest import REPO_ROOT, subprocess_env  # noqa: E402

pytestmark = pytest.mark.e2e

DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))
FLEET = {"seed": 11, "n_circuits": 4, "n_transformers": 40}
RAW = ",".join(spec.name for spec in RAW_TABLES)
NEXT_RUN_S = 120.0  # the contract: a killed run blocks later runs for at most two minutes
WAIT_S = 180.0
POLL_S = 0.2
HANDLER_YAML = """
# Added by test_kill_recovery: kills a run's process at the moment GRIDASSETS_TEST_KILL_AT names.
python_logs:
  dagster_handler_config:
    handlers:
      kill_at_record:
        class: gridassets_tests.e2e.test_kill_recovery.KillAtRecord
        level: DEBUG
"""


def days(first: str, last: str) -> list[date]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


class Site:
    """A private DAGSTER_HOME (the shipped dagster.yaml plus the test's handler) and data folder,
    and every process started against them."""

    def __init__(self, root: Path):
        self.home = root / "dagster_home"
        self.home.mkdir()
        shipped = (REPO_ROOT / ".dagster_home" / "dagster.yaml").read_text()
        (self.home / "dagster.yaml").write_text(shipped + HANDLER_YAML)
        self.data = root / "data"
        self.logs = root / "logs"
        self.logs.mkdir()
        self.env = subprocess_env(self.data, self.home, GRIDASSETS_SEED=str(FLEET["seed"]),
                                  GRIDASSETS_CIRCUITS=str(FLEET["n_circuits"]),
                                  GRIDASSETS_TRANSFORMERS=str(FLEET["n_transformers"]),
                                  PYTHONPATH=str(REPO_ROOT))
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self._runs: dict[int, str] = {}  # pid -> its run id
        self._existing: dict[int, set[str]] = {}  # pid -> the run ids that existed before it
        # The instance exists before any run, as it does for an operator.
        self.instance = dg.DagsterInstance.from_config(str(self.home))

    @property
    def db(self) -> Path:
        return self.data / "warehouse.duckdb"

    def start(self, argv: list[str], name: str, kill_at: str | None = None) -> subprocess.Popen:
        env = dict(self.env)
        if kill_at:
            env[KILL_AT_ENV] = kill_at
        log = self.logs / f"{len(self.procs):02d}-{name}.log"
        existing = {r.run_id for r in self.instance.get_runs()}
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        self._existing[proc.pid] = existing
        return proc

    def materialize(self, first: str, last: str, kill_at: str | None = None,
                    select: str = RAW) -> subprocess.Popen:
        return self.start([DAGSTER, "asset", "materialize", "-m", "gridassets.definitions",
                           "--select", select, "--partition-range", f"{first}...{last}"],
                          f"materialize-{first}-{last}", kill_at)

    def log_of(self, proc: subprocess.Popen, lines: int = 40) -> str:
        log = next(log for p, log in self.procs if p is proc)
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        self.instance.dispose()

    # --- what the instance says ---
    def run_of(self, proc: subprocess.Popen) -> dg.DagsterRun | None:
        """The run a process executes: the first run that did not exist when it was started (the
        scenarios start a process only once the run of the one before exists). Found from the
        instance alone, not from the worker tags, so that the scenarios also say what happens
        without them."""
        if proc.pid not in self._runs:
            fresh = [r for r in reversed(self.instance.get_runs())
                     if r.run_id not in self._existing[proc.pid]]
            if not fresh:
                return None
            self._runs[proc.pid] = fresh[0].run_id
        return self.instance.get_run_by_id(self._runs[proc.pid])

    def messages(self, run_id: str) -> list[tuple[str, str | None, str]]:
        return [(e.dagster_event.event_type_value, e.dagster_event.step_key,
                 e.dagster_event.message or "")
                for e in self.instance.all_logs(run_id) if e.dagster_event is not None]

    def wait_for(self, what: str, probe: Callable[[], object], seconds: float = WAIT_S):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            time.sleep(POLL_S)
        logs = "\n\n".join(f"--- {log.name}\n{self.log_of(p, 15)}" for p, log in self.procs)
        pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}\n{logs}")

    def wait_run(self, proc: subprocess.Popen) -> dg.DagsterRun:
        return self.wait_for(f"the run of process {proc.pid}", lambda: self.run_of(proc))

    def wait_step_started(self, proc: subprocess.Popen) -> tuple[dg.DagsterRun, str]:
        """The run of `proc` and the step it started first."""
        run = self.wait_run(proc)
        step = self.wait_for(f"a step of run {run.run_id} to start", lambda: next(
            (s for t, s, _ in self.messages(run.run_id) if t == "STEP_START"), None))
        return run, step

    def stop_holding_the_slot(self, proc: subprocess.Popen, run: dg.DagsterRun) -> None:
        """SIGSTOP `proc` at a moment when its run holds the duckdb slot (between two of its steps
        it briefly does not: then let it go on and try again) and holds no write lock of the
        instance's SQLite files (stopped inside a write, it would make every other process's
        write fail with "database is locked" after the busy timeout; a killed process releases
        its locks, a stopped one does not)."""
        def stopped_holding() -> bool:
            os.kill(proc.pid, signal.SIGSTOP)
            info = self.instance.event_log_storage.get_concurrency_info("duckdb")
            if any(slot.run_id == run.run_id for slot in info.claimed_slots) \
                    and self.shared_storage_writable():
                return True
            os.kill(proc.pid, signal.SIGCONT)
            return False

        self.wait_for(f"run {run.run_id} to hold the duckdb slot", stopped_holding, seconds=60)

    def shared_storage_writable(self) -> bool:
        """Whether the write lock of every SQLite file that all runs write (run storage, the event
        log's index, schedule storage) can be taken now."""
        for path in (self.home / "history" / "runs.db", self.home / "history" / "runs" / "index.db",
                     self.home / "schedules" / "schedules.db"):
            if not path.exists():
                continue
            con = sqlite3.connect(path, timeout=0.2, isolation_level=None)
            try:
                con.execute("begin immediate")
                con.execute("rollback")
            except sqlite3.OperationalError:
                return False
            finally:
                con.close()
        return True

    def wait_blocked(self, proc: subprocess.Popen) -> dg.DagsterRun:
        run = self.wait_run(proc)
        self.wait_for(f"run {run.run_id} to wait for the duckdb pool", lambda: any(
            "blocked by limit for pool duckdb" in m for _, _, m in self.messages(run.run_id)))
        return run

    def finish(self, proc: subprocess.Popen, seconds: float = WAIT_S) -> int:
        try:
            return proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(f"process {proc.pid} still running after {seconds:.0f} s:\n"
                        f"{self.log_of(proc)}")

    def succeeds(self, proc: subprocess.Popen, since: float, seconds: float = NEXT_RUN_S) -> float:
        """Wait for `proc` to exit 0 within `seconds` of `since`; return the seconds taken."""
        rc = self.finish(proc, max(1.0, since + seconds - time.monotonic()))
        assert rc == 0, self.log_of(proc)
        taken = time.monotonic() - since
        assert taken < seconds, f"took {taken:.0f} s"
        return taken

    def sigkill(self, proc: subprocess.Popen) -> float:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        return time.monotonic()

    # --- what the warehouse holds ---
    def stored(self) -> dict[tuple[str, date], int]:
        """Rows per (raw table, day) in the warehouse."""
        if not self.db.exists():
            return {}
        out = {}
        with duckdb.connect(str(self.db), read_only=True) as con:
            tables = {r[0] for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()}
            for spec in RAW_TABLES:
                if spec.name in tables:
                    for day, n in con.execute(
                            f"select cast({spec.stored_by} as date), count(*) "
                            f"from raw.{spec.name} group by 1").fetchall():
                        out[(spec.name, day)] = n
        return out

    def publishes(self) -> list[tuple[str, str, str, int]]:
        with duckdb.connect(str(self.db), read_only=True) as con:
            return con.execute("select asset, partition_key, run_id, rows "
                               "from ops.partition_publishes").fetchall()


_reference: dict[date, dict[str, int]] = {}


def reference(day: date) -> dict[str, int]:
    """Rows per raw table of one day, as a complete build stores them (the simulator's day)."""
    if day not in _reference:
        sim = FleetSimulator(FleetConfig(**FLEET))
        _reference[day] = {name: len(frame) for name, frame in sim.raw_day(day).items()}
    return _reference[day]


def assert_whole(site: Site, window: list[date], before: dict[tuple[str, date], int]) -> None:
    """Every raw partition of `window` holds its old rows or its new rows, all of them."""
    now = site.stored()
    for day in window:
        for spec in RAW_TABLES:
            n, old, new = now.get((spec.name, day), 0), before.get((spec.name, day), 0), \
                reference(day)[spec.name]
            assert n in (old, new), f"{spec.name} {day}: {n} rows; before {old}, complete {new}"


def assert_complete(site: Site, window: list[date]) -> None:
    assert_whole(site, window, {})
    now = site.stored()
    for day in window:
        for spec in RAW_TABLES:
            assert now.get((spec.name, day), 0) == reference(day)[spec.name], (spec.name, day)


def assert_recorded(site: Site) -> dict[str, int]:
    """Every partition a run committed is recorded in Dagster, by the run or as a runless
    materialization naming it. Returns how many were recovered, per run."""
    recovered: dict[str, int] = {}
    by_run: dict[str, set[tuple[str, str]]] = {}
    runless: set[tuple[str, str, str]] = set()
    publishes = site.publishes()
    for asset in sorted({p[0] for p in publishes}):
        for rec in site.instance.fetch_materializations(
                dg.AssetKey.from_user_string(asset), limit=10_000).records:
            key = (asset, rec.partition_key or "")
            if rec.run_id:
                by_run.setdefault(rec.run_id, set()).add(key)
            else:
                origin = rec.asset_materialization.metadata.get("recovered_from_run")
                if origin is not None:
                    runless.add((*key, origin.value))
    for asset, partition, run_id, _rows in publishes:
        if (asset, partition) in by_run.get(run_id, set()):
            continue
        assert (asset, partition, run_id) in runless, (
            f"{asset} {partition} committed by run {run_id} is recorded nowhere")
        recovered[run_id] = recovered.get(run_id, 0) + 1
    return recovered


def assert_no_slot_held(site: Site) -> None:
    info = site.instance.event_log_storage.get_concurrency_info("duckdb")
    assert not info.claimed_slots and not info.pending_steps, info


def timing(label: str, seconds: float) -> None:
    print(f"\nE2E_TIMING {label}: {seconds:.1f} s")


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    try:
        yield s
    finally:
        s.stop_all()


# --- the scenarios --------------------------------------------------------------------------------

def test_killed_at_its_first_step_the_next_run_proceeds(site):
    window = days("2025-06-01", "2025-06-04")
    killed = site.materialize("2025-06-01", "2025-06-04")
    run, _ = site.wait_step_started(killed)
    killed_at = site.sigkill(killed)
    assert site.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

    taken = site.succeeds(site.materialize("2025-06-01", "2025-06-04"), since=killed_at)
    timing("killed at its first step -> the next CLI run succeeded", taken)
    dead = site.instance.get_run_by_id(run.run_id)
    assert dead.status == dg.DagsterRunStatus.FAILURE
    assert any(f"process {killed.pid} on host" in m and "is gone" in m
               for _, _, m in site.messages(run.run_id))
    assert_complete(site, window)
    assert_recorded(site)
    assert_no_slot_held(site)


def test_killed_holding_the_slot_the_waiting_run_proceeds_by_itself(site):
    holder = site.materialize("2025-06-01", "2025-06-03")
    held, _ = site.wait_step_started(holder)
    site.stop_holding_the_slot(holder, held)  # it keeps the slot while the other run starts
    waiter = site.materialize("2025-06-04", "2025-06-06")
    site.wait_blocked(waiter)
    killed_at = site.sigkill(holder)

    taken = site.succeeds(waiter, since=killed_at)
    timing("holder killed -> the waiting CLI run succeeded, nobody acting", taken)
    assert site.instance.get_run_by_id(held.run_id).status == dg.DagsterRunStatus.FAILURE
    # Nothing of the killed run's window existed before it: each partition is empty or whole.
    assert_whole(site, days("2025-06-01", "2025-06-03"), {})
    assert_complete(site, days("2025-06-04", "2025-06-06"))
    assert_recorded(site)
    assert_no_slot_held(site)


def test_killed_while_waiting_for_the_slot_does_not_take_it_with_it(site):
    # A dead waiter: when the holder frees the slot, Dagster hands it to the oldest waiter — the
    # dead one — and the holder's own next step would wait for it forever.
    holder = site.materialize("2025-06-01", "2025-06-03")
    site.stop_holding_the_slot(holder, site.wait_step_started(holder)[0])
    waiter = site.materialize("2025-06-04", "2025-06-06")
    waiting = site.wait_blocked(waiter)
    killed_at = site.sigkill(waiter)
    os.kill(holder.pid, signal.SIGCONT)

    taken = site.succeeds(holder, since=killed_at)
    timing("waiter killed -> the holder's run finished", taken)
    assert site.instance.get_run_by_id(waiting.run_id).status == dg.DagsterRunStatus.FAILURE
    assert_complete(site, days("2025-06-01", "2025-06-03"))
    assert_recorded(site)
    assert_no_slot_held(site)


@pytest.mark.parametrize("moment", ["before-commit", "after-commit", "materialization"])
def test_killed_inside_or_after_the_write_partitions_are_whole_and_recorded(site, moment):
    window = days("2025-06-01", "2025-06-06")
    # Half of the window exists before: the killed run replaces it and adds the rest.
    assert site.finish(site.materialize("2025-06-01", "2025-06-03")) == 0
    before = site.stored()
    kill_at = {"before-commit": "before-commit:transformer_telemetry",
               "after-commit": "after-commit:transformer_telemetry",
               # Dagster recorded 2 of the 6 days the warehouse committed.
               "materialization": "materialization:transformer_telemetry:2"}[moment]
    killed = site.materialize("2025-06-01", "2025-06-06", kill_at=kill_at)
    assert site.finish(killed) == -signal.SIGKILL, site.log_of(killed)
    killed_at = time.monotonic()
    dead = site.run_of(killed)
    assert dead.status == dg.DagsterRunStatus.STARTED
    assert_whole(site, window, before)
    committed = {p for a, p, r, _ in site.publishes()
                 if a == "transformer_telemetry" and r == dead.run_id}
    assert committed == (set() if moment == "before-commit" else {d.isoformat() for d in window})

    # The next run: another window, so that what the killed run left stays to be looked at.
    taken = site.succeeds(site.materialize("2025-06-10", "2025-06-10"), since=killed_at)
    timing(f"killed at {moment} -> the next CLI run succeeded", taken)
    assert site.instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert_whole(site, window, before)
    recovered = assert_recorded(site)
    expected = {"before-commit": 0, "after-commit": 6, "materialization": 4}[moment]
    assert recovered.get(dead.run_id, 0) == expected, recovered
    assert site.instance.get_run_by_id(dead.run_id).tags["gridassets/reconciled"] == (
        f"{expected} recovered")

    # And the window again, whole.
    assert site.finish(site.materialize("2025-06-01", "2025-06-06")) == 0
    assert_complete(site, window)
    assert_no_slot_held(site)


def test_ctrl_c_stops_a_run_waiting_for_the_slot(site):
    holder = site.materialize("2025-06-01", "2025-06-03")
    site.stop_holding_the_slot(holder, site.wait_step_started(holder)[0])
    waiter = site.materialize("2025-06-04", "2025-06-06")
    waiting = site.wait_blocked(waiter)

    # It sleeps between checks for the slot (Dagster 1.13.27 alone spins at ~65 % of a core).
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{waiter.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    c0, t0 = cpu_seconds(), time.monotonic()
    site.wait_for("3 s of waiting", lambda: time.monotonic() - t0 >= 3.0, seconds=10)
    share = (cpu_seconds() - c0) / (time.monotonic() - t0)
    print(f"\nE2E_CPU waiting run: {share:.0%} of a core")
    assert share < 0.25

    interrupted = time.monotonic()
    os.kill(waiter.pid, signal.SIGINT)
    rc = site.finish(waiter, seconds=30)
    timing("Ctrl-C -> the waiting run exited", time.monotonic() - interrupted)
    assert rc != 0
    assert site.instance.get_run_by_id(waiting.run_id).status == dg.DagsterRunStatus.FAILURE
    info = site.instance.event_log_storage.get_concurrency_info("duckdb")
    assert all(p.run_id != waiting.run_id for p in info.pending_steps), info
    os.kill(holder.pid, signal.SIGCONT)
    assert site.finish(holder) == 0


def test_python_m_gridassets_run_killed_holding_the_slot(site):
    # `python -m gridassets run` executes in process (job.execute_in_process in Dagster's terms).
    runner_proc = site.start([sys.executable, "-m", "gridassets", "run", "--start", "2025-06-01",
                              "--end", "2025-06-03", "--score-days", "1"], "gridassets-run")
    run, _ = site.wait_step_started(runner_proc)
    killed_at = site.sigkill(runner_proc)
    taken = site.succeeds(site.materialize("2025-06-01", "2025-06-03"), since=killed_at)
    timing("python -m gridassets run killed -> the next CLI run succeeded", taken)
    dead = site.instance.get_run_by_id(run.run_id)
    assert dead.status == dg.DagsterRunStatus.FAILURE
    assert_recorded(site)
    assert_no_slot_held(site)


def test_the_daemon_frees_a_killed_run_with_no_other_run_started(site):
    killed = site.materialize("2025-06-01", "2025-06-03")
    run, _ = site.wait_step_started(killed)
    killed_at = site.sigkill(killed)
    site.start([DAEMON, "run", "-m", "gridassets.definitions"], "daemon")

    def reaped():
        slots = site.instance.event_log_storage.get_concurrency_info("duckdb")
        return (site.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
                and not slots.claimed_slots)

    site.wait_for("the dead_run_reaper sensor to fail the run and free its slot", reaped,
                  seconds=NEXT_RUN_S)
    timing("killed, daemon running -> the sensor failed the run and freed its slot",
           time.monotonic() - killed_at)
