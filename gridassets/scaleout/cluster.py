"""A scale-out cluster on one machine: PostgreSQL, Redis, Celery workers and the Dagster daemon as
local processes on 127.0.0.1, for `make scaleout-demo`, `make scaleout-up` and the tests.

Every process starts in a session of its own and is stopped by its process id (the whole session:
a Celery worker's pool processes, the daemon's code server and run workers). `Cluster` is a
context manager that stops all of them on the way out, also on an error or Ctrl-C; `up()` keeps
them running and records them in `<state dir>/cluster.json`, which `down()` reads. On other hosts
the same processes run as services pointed at each other by the settings `env()` returns (see the
docs/scaleout.md, "Running it").
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gridassets.storage import runs

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED_YAML = REPO_ROOT / "deploy" / "scaleout" / "dagster.yaml"
WORKSPACE = REPO_ROOT / "workspace.yaml"
STATE_FILE = "cluster.json"
DATABASE = "dagster"
DB_USER = "gridassets"


class ClusterError(RuntimeError):
    """A process of the cluster could not start; the message names it and its log."""


@dataclass
class Process:
    name: str
    pid: int
    started: str  # the process's start stamp: a reused process id is never stopped
    log: str
    user: str | None = None


@dataclass
class Cluster:
    """The processes of one local cluster and the settings that point them at each other."""

    state_dir: Path
    data_dir: Path
    settings_env: dict[str, str] = field(default_factory=dict)
    pg_port: int = 0
    redis_port: int = 0
    processes: list[Process] = field(default_factory=list)

    # --- settings ------------------------------------------------------------------------------

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster_home"

    @property
    def postgres_url(self) -> str:
        return f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{self.pg_port}/{DATABASE}"

    def env(self) -> dict[str, str]:
        """What every process of the deployment needs: the mode, where PostgreSQL, Redis and the
        data are, and the fleet settings it was started with."""
        return {
            **self.settings_env,
            "GRIDASSETS_MODE": "scaleout",
            "GRIDASSETS_WAREHOUSE": "delta",
            "GRIDASSETS_DATA_DIR": str(self.data_dir),
            "GRIDASSETS_CELERY_BROKER": f"redis://127.0.0.1:{self.redis_port}/0",
            "GRIDASSETS_CELERY_BACKEND": f"redis://127.0.0.1:{self.redis_port}/1",
            "GRIDASSETS_POSTGRES_URL": self.postgres_url,
            "DAGSTER_HOME": str(self.dagster_home),
        }

    def instance(self):
        """The cluster's Dagster instance, for this process (sets GRIDASSETS_POSTGRES_URL, which
        the shipped dagster.yaml reads)."""
        from dagster import DagsterInstance
        from dagster._core.instance.ref import InstanceRef

        os.environ["GRIDASSETS_POSTGRES_URL"] = self.postgres_url
        return DagsterInstance.from_ref(InstanceRef.from_dir(str(self.dagster_home)))

    def process_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("GRIDASSETS_") and k != "DAGSTER_HOME"}
        return {**base, **self.env()}

    # --- starting ------------------------------------------------------------------------------

    def start(self, workers: int = 3, storm_workers: int = 1, webserver_port: int | None = None
              ) -> Cluster:
        """PostgreSQL, Redis, `workers` step workers (queues dagster and forecast),
        `storm_workers` storm workers (queue storms) and the daemon; the webserver if a port is
        given. Stops what it started if any of them fails."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "logs").mkdir(exist_ok=True)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.dagster_home.mkdir(exist_ok=True)
            shutil.copy(SHIPPED_YAML, self.dagster_home / "dagster.yaml")
            self.start_postgres()
            self.start_redis()
            for i in range(1, workers + 1):
                self.start_worker(f"steps{i}", ["dagster", "forecast"])
            for i in range(1, storm_workers + 1):
                self.start_worker(f"storms{i}", ["storms"])
            self.start_daemon()
            if webserver_port is not None:
                self.start_webserver(webserver_port)
            self.save()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pg_dir(self) -> Path:
        """PostgreSQL's data folder: in the state folder, or, when PostgreSQL runs as another
        user (we are root), under /tmp (the state folder's parents may be closed to that user,
        as pytest's are), one per state folder."""
        if _unprivileged_user() is None:
            return self.state_dir / "postgres"
        tag = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"gridassets-postgres-{tag}"

    def start_postgres(self) -> None:
        bindir = _postgres_bindir()
        pg_dir = self.pg_dir
        user = _unprivileged_user()
        if not (pg_dir / "PG_VERSION").exists():
            pg_dir.mkdir(parents=True, exist_ok=True)
            if user:
                shutil.chown(pg_dir, user, user)
            _run_as(user, [str(bindir / "initdb"), "-D", str(pg_dir), "--auth=trust",
                           f"--username={DB_USER}", "--encoding=UTF8", "--no-instructions"],
                    what="initdb")
        self.pg_port = self.pg_port or free_port()
        log = self.state_dir / "logs" / "postgres.log"
        self._spawn("postgres", [str(bindir / "postgres"), "-D", str(pg_dir),
                                 "-p", str(self.pg_port), "-k", str(pg_dir),
                                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                    log, user=user, env={"PATH": os.environ.get("PATH", "")})
        _wait_for(lambda: _pg_ready(bindir, self.pg_port), 60,
                  f"PostgreSQL did not accept connections on 127.0.0.1:{self.pg_port} (log {log})")
        exists = subprocess.run(
            [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", DB_USER,
             "-d", "postgres", "-tAc", f"select 1 from pg_database where datname = '{DATABASE}'"],
            capture_output=True, text=True, check=True).stdout.strip()
        if not exists:
            subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port),
                            "-U", DB_USER, DATABASE], check=True, capture_output=True)

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ClusterError("redis-server is not installed (Debian: apt-get install "
                               "redis-server)")
        self.redis_port = self.redis_port or free_port()
        log = self.state_dir / "logs" / "redis.log"
        folder = self.state_dir / "redis"
        folder.mkdir(exist_ok=True)
        # Queued and unacknowledged tasks must outlive a restart of the broker: an append-only
        # file, written through.
        self._spawn("redis", [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                              "--dir", str(folder)],
                    log)
        _wait_for(lambda: _redis_ready(self.redis_port), 30,
                  f"Redis did not answer on 127.0.0.1:{self.redis_port} (log {log})")

    def restart_redis(self, down_s: float = 0.0) -> None:
        """Stop the broker, wait `down_s` seconds, start it again on the same port."""
        self.stop_process(self.named("redis"))
        self.processes = [p for p in self.processes if p.name != "redis"]
        time.sleep(down_s)
        self.start_redis()
        self.save()

    def start_worker(self, name: str, queues: Sequence[str]) -> Process:
        """A Celery worker of one pool process (one step at a time), serving `queues`.

        On one machine, workers of other queues run at a lower CPU priority than storm workers
        (nice 10): a storm's steps get the cores at once, as storm workers on hosts of their own
        would, while the backfill goes on."""
        log = self.state_dir / "logs" / f"worker-{name}.log"
        nice = [] if "storms" in queues else ["nice", "-n", "10"]
        return self._spawn(f"worker-{name}", [
            *nice, sys.executable, "-m", "celery", "-A", "gridassets.scaleout.worker", "worker",
            "-Q", ",".join(queues), "-n", f"{name}@%h", "-c", "1", "--prefetch-multiplier=1",
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ], log, env=self.process_env())

    def start_daemon(self) -> None:
        log = self.state_dir / "logs" / "daemon.log"
        self._spawn("daemon", [str(Path(sys.executable).parent / "dagster-daemon"), "run",
                               "-w", str(WORKSPACE)], log, env=self.process_env())

    def start_webserver(self, port: int) -> None:
        log = self.state_dir / "logs" / "webserver.log"
        self._spawn("webserver", [str(Path(sys.executable).parent / "dagster-webserver"),
                                  "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKSPACE)],
                    log, env=self.process_env())

    def _spawn(self, name: str, argv: Sequence[str], log: Path, user: str | None = None,
               env: Mapping[str, str] | None = None) -> Process:
        out = open(log, "ab")
        if user:
            shutil.chown(log, user, user)
            argv = ["runuser", "-u", user, "--", *argv]
        proc = subprocess.Popen(list(argv), cwd=REPO_ROOT, env=dict(env or self.process_env()),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        out.close()
        time.sleep(0.05)
        process = Process(name=name, pid=proc.pid, started=runs.started_of(proc.pid) or "",
                          log=str(log), user=user)
        if proc.poll() is not None:
            raise ClusterError(f"{name} exited at once (code {proc.returncode}); see {log}")
        self.processes.append(process)
        return process

    # --- stopping ------------------------------------------------------------------------------

    def stop_process(self, process: Process, sig: int = signal.SIGTERM,
                     timeout: float = 30.0) -> None:
        """Stop one process and its session: `sig`, then SIGKILL after `timeout` seconds."""
        if not is_running(process):
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _session_alive(process.pid):
            _reap(process.pid)
            time.sleep(0.1)
        if _session_alive(process.pid):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(process.pid)

    def stop(self) -> None:
        """Stop every process started, newest first (the daemon and workers before Redis and
        PostgreSQL, so that nothing is left waiting on them)."""
        services = [p for p in self.processes if p.name in ("redis", "postgres")]
        for process in [p for p in reversed(self.processes) if p not in services] + services[::-1]:
            # PostgreSQL: SIGINT is its fast shutdown (SIGTERM waits for clients to leave).
            sig = signal.SIGINT if process.name == "postgres" else signal.SIGTERM
            self.stop_process(process, sig)
        self.processes = []
        state = self.state_dir / STATE_FILE
        if state.exists():
            state.unlink()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def named(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    # --- state ---------------------------------------------------------------------------------

    def save(self) -> None:
        data = {"state_dir": str(self.state_dir), "data_dir": str(self.data_dir),
                "settings_env": self.settings_env, "pg_port": self.pg_port,
                "redis_port": self.redis_port, "processes": [asdict(p) for p in self.processes]}
        (self.state_dir / STATE_FILE).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> Cluster | None:
        path = state_dir / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(state_dir=Path(data["state_dir"]), data_dir=Path(data["data_dir"]),
                   settings_env=data["settings_env"], pg_port=data["pg_port"],
                   redis_port=data["redis_port"],
                   processes=[Process(**p) for p in data["processes"]])

    def env_script(self) -> str:
        """Shell lines that point a terminal's commands (the CLI, tests) at this cluster."""
        return "".join(f"export {k}={_shell_quote(v)}\n" for k, v in sorted(self.env().items()))


@contextmanager
def running(state_dir: Path, data_dir: Path, settings_env: Mapping[str, str] | None = None,
            workers: int = 3, storm_workers: int = 1) -> Iterator[Cluster]:
    """A started cluster, stopped on the way out whatever happens (Ctrl-C and SIGTERM too)."""
    cluster = Cluster(state_dir=state_dir, data_dir=data_dir,
                      settings_env=dict(settings_env or {}))
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        cluster.start(workers=workers, storm_workers=storm_workers)
        yield cluster
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)
        if not cluster.pg_dir.is_relative_to(state_dir):
            shutil.rmtree(cluster.pg_dir, ignore_errors=True)


# --- helpers -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True)
        path = Path(out.stdout.strip())
        if (path / "initdb").exists():
            return path
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    raise ClusterError("PostgreSQL's server programs (initdb, postgres) are not installed "
                       "(Debian: apt-get install postgresql)")


def _unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (Debian's package makes
    that user) or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ClusterError("running as root, and there is no `postgres` or `nobody` user to run "
                       "PostgreSQL as")


def _run_as(user: str | None, argv: list[str], what: str) -> None:
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    out = subprocess.run(argv, capture_output=True, text=True, cwd="/")
    if out.returncode != 0:
        raise ClusterError(f"{what} failed: {out.stderr.strip() or out.stdout.strip()}")


def _pg_ready(bindir: Path, port: int) -> bool:
    out = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port),
                          "-U", DB_USER, "-d", "postgres"],
                         capture_output=True)
    return out.returncode == 0


def _redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _wait_for(ready, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise ClusterError(message)


def is_running(process: Process) -> bool:
    """That very process still runs (not a later one that got its pid)."""
    started = runs.started_of(process.pid)
    return started is not None and (not process.started or started == process.started)


def _session_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader (ours, not yet reaped) with no other members left counts as gone.
    return not _reap(pid) or _has_members(pid)


def _has_members(sid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                return True
    return False


def _reap(pid: int) -> bool:
    """Collect our child `pid` if it has exited; True if it has (or is not our child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return True


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"
