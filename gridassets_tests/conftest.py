"""Shared fixtures: a small synthetic fleet in a temporary data folder, and its resources."""

import fcntl
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest

from gridassets.defs.resources import GridSettings, build_resources
from gridassets.storage.backend import open_warehouse

REPO_ROOT = Path(__file__).resolve().parent.parent
# Real data kept unchanged in the repository (see gridassets_tests/data/README.md).
TEST_DATA = Path(__file__).resolve().parent / "data"
# Small enough to be fast, big enough for every table to have rows.
SMALL_FLEET = {"seed": 11, "n_circuits": 6, "n_transformers": 120}
RAW = ["transformer_telemetry", "feeder_load", "weather_observations", "outage_events",
       "transformer_failures", "weather_forecasts"]


def pytest_collection_modifyitems(config, items):
    """The test files that need no demo build first, those with end-to-end tests leading, then
    the files that read a build: under `make test`'s workers (pytest-xdist, a file at a time) the
    builds run while the workers have other tests to do, and the long tests start early so that
    neither worker waits long for the other at the end. The order is by file, since a worker takes
    a whole file: a file with one test that reads a build waits for that build."""
    needs_build: dict = {}
    has_e2e: dict = {}
    for item in items:
        needs_build[item.path] = needs_build.get(item.path, False) or bool(_wanted(item))
        has_e2e[item.path] = (has_e2e.get(item.path, False)
                              or item.get_closest_marker("e2e") is not None)
    items.sort(key=lambda item: (needs_build[item.path], not has_e2e[item.path]))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch):
    """No test reads the developer's GRIDASSETS_* settings or Dagster instance."""
    for var in list(os.environ):
        if var.startswith("GRIDASSETS_") or var == "DAGSTER_HOME":
            monkeypatch.delenv(var, raising=False)


# Every test that touches the warehouse through the `backend` fixture (the `settings` fixture
# does) runs once per backend, unless it is about the DuckDB file itself (`duckdb_only`).
BACKENDS = ("duckdb", "delta")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        duckdb_only = metafunc.definition.get_closest_marker("duckdb_only") is not None
        metafunc.parametrize("backend", ["duckdb"] if duckdb_only else list(BACKENDS),
                             indirect=True)


@pytest.fixture
def backend(request) -> str:
    """The warehouse backend of the test (GRIDASSETS_WAREHOUSE)."""
    return request.param


@pytest.fixture
def settings(tmp_path, backend) -> GridSettings:
    return GridSettings(data_dir=str(tmp_path / "data"), backend=backend, **SMALL_FLEET)


def read_warehouse(settings: GridSettings):
    """A connection on the warehouse of `settings`, whichever backend: `with read_warehouse(s) as
    con: con.execute("select ... from raw.feeder_load")`."""
    return open_warehouse(settings.resolve()).connect(read_only=True)


@pytest.fixture
def resources(settings) -> dict:
    return build_resources(settings)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    """A private DAGSTER_HOME with the project's shipped dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


def subprocess_env(data_dir: Path, dagster_home: Path | None = None, **extra: str) -> dict:
    """Environment for a child process: the project's settings pointed at a test folder."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GRIDASSETS_") and k != "DAGSTER_HOME"}
    env.update({
        "GRIDASSETS_DATA_DIR": str(data_dir),
        "GRIDASSETS_SEED": str(SMALL_FLEET["seed"]),
        "GRIDASSETS_CIRCUITS": str(SMALL_FLEET["n_circuits"]),
        "GRIDASSETS_TRANSFORMERS": str(SMALL_FLEET["n_transformers"]),
    })
    if dagster_home is not None:
        env["DAGSTER_HOME"] = str(dagster_home)
    env.update(extra)
    return env


# A fleet big enough for both models to find positives in their holdouts, small enough to build
# in about a minute: the warehouse that end-to-end tests share (built once per session).
TEST_FLEET = {"seed": 7, "n_circuits": 12, "n_transformers": 600}
TEST_WINDOW = ("2025-01-06", "2025-06-30")
TEST_SCORE_DAYS = 14


def fleet_env(data_dir: Path, dagster_home: Path | None = None, fleet: dict = TEST_FLEET,
              **extra: str) -> dict:
    env = subprocess_env(data_dir, dagster_home, **extra)
    env.update({"GRIDASSETS_SEED": str(fleet["seed"]),
                "GRIDASSETS_CIRCUITS": str(fleet["n_circuits"]),
                "GRIDASSETS_TRANSFORMERS": str(fleet["n_transformers"])})
    return env


class _DemoBuild:
    """`python -m gridassets run` over TEST_WINDOW into `root`/data, as a child process: its
    output in `root`/run.out, its log in `root`/run.log."""

    def __init__(self, root: Path, **extra: str):
        self.root, self.data = root, root / "data"
        home = root / "dagster_home"
        home.mkdir(parents=True)
        shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
        self.out, self.log = root / "run.out", root / "run.log"
        with self.out.open("w") as out, self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gridassets", "run", "--start", TEST_WINDOW[0],
                 "--end", TEST_WINDOW[1], "--score-days", str(TEST_SCORE_DAYS)],
                cwd=REPO_ROOT, env=fleet_env(self.data, home, **extra), stdout=out,
                stderr=log, text=True)

    def wait(self) -> str:
        """The command's output, once it has succeeded (the test fails otherwise)."""
        try:
            code = self.process.wait(timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"python -m gridassets run took over {BUILD_TIMEOUT_S} s; log {self.log}")
        out = self.out.read_text(errors="replace")
        if code != 0:
            pytest.fail(f"python -m gridassets run failed (exit {code}):\n{out[-3000:]}\n"
                        f"{self.log.read_text(errors='replace')[-5000:]}")
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# A guard against a hung build, not a timing target: on a loaded machine a build has taken over
# 30 minutes beside the other worker's tests.
BUILD_TIMEOUT_S = 2700
# The session's demo builds, one per backend, with the fixture that returns each.
_BUILDS = {"demo_data": ("demo", {}), "delta_demo_data": ("delta_demo",
                                                          {"GRIDASSETS_WAREHOUSE": "delta"})}


def _wanted(item) -> set[str]:
    """The demo builds a collected test asks for: as fixtures, or through `copy_demo` (the build
    of its backend, which it asks for when it runs)."""
    wanted = {name for name in _BUILDS if name in getattr(item, "fixturenames", ())}
    backend = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
    module = getattr(item, "module", None)
    if backend is not None and module is not None and hasattr(module, "copy_demo"):
        wanted.add("demo_data" if backend == "duckdb" else "delta_demo_data")
    return wanted


class _SharedBuild:
    """A demo build shared by the session's xdist workers (`make test` runs two): the first worker
    to ask starts it under an exclusive lock on `root`.lock and holds the lock until it has ended;
    the others wait on the lock, then read how it ended from `root`/ended."""

    def __init__(self, root: Path, **extra: str):
        self.root, self.data = root, root / "data"
        self.out, self.log = root / "run.out", root / "run.log"
        self.ended = root / "ended"
        self.build: _DemoBuild | None = None
        self._lock = open(root.parent / f"{root.name}.lock", "a+")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            return  # another worker builds it
        if self.ended.exists():  # it has already ended
            self._release()
            return
        if root.exists():
            shutil.rmtree(root)
        self.build = _DemoBuild(root, **extra)
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        try:
            code = self.build.process.wait(timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.build.process.kill()
            code = self.build.process.wait()
        self.ended.write_text(str(code))
        self._release()

    def _release(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def wait(self) -> str:
        if self.build is not None:
            self._watcher.join()
            return self.build.wait()
        with open(self.root.parent / f"{self.root.name}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released once the building worker saw it end
            fcntl.flock(lock, fcntl.LOCK_UN)
        code = self.ended.read_text().strip() if self.ended.exists() else "never ended"
        out = self.out.read_text(errors="replace") if self.out.exists() else ""
        if code != "0":
            pytest.fail(f"python -m gridassets run (built by another worker) failed (exit "
                        f"{code}):\n{out[-3000:]}\nlog: {self.log}")
        return out

    def stop(self) -> None:
        # Another worker may still need it: let it end (wait() fails it after BUILD_TIMEOUT_S).
        if self.build is not None:
            self._watcher.join()


class _Builds(dict):
    def __init__(self, factory):
        super().__init__()
        self.factory = factory
        # Under xdist the workers' base folders share a parent, where the builds are shared.
        self.shared = (factory.getbasetemp().parent
                       if os.environ.get("PYTEST_XDIST_WORKER") else None)

    def start(self, name: str) -> _DemoBuild | _SharedBuild:
        if name not in self:
            folder, extra = _BUILDS[name]
            self[name] = (_SharedBuild(self.shared / f"shared-{folder}", **extra)
                          if self.shared is not None
                          else _DemoBuild(self.factory.mktemp(folder), **extra))
        return self[name]


@pytest.fixture(scope="session", autouse=True)
def _demo_builds(request, tmp_path_factory):
    """Every demo build the session's tests need, started together when the session starts, in
    the background; a test that needs one waits for it. Tests only read a build, or copy it
    (`copy_data`) to write."""
    builds = _Builds(tmp_path_factory)
    for name in sorted({name for item in request.session.items for name in _wanted(item)}):
        builds.start(name)
    yield builds
    for build in builds.values():
        build.stop()


@pytest.fixture(scope="session")
def demo_data(_demo_builds) -> tuple[Path, str]:
    """A warehouse built by `python -m gridassets run` (what `make run` calls): the data folder
    and the command's output."""
    build = _demo_builds.start("demo_data")
    return build.data, build.wait()


def copy_data(demo: Path, target: Path) -> Path:
    """A private copy of the shared warehouse and models, for a test that writes to it."""
    shutil.copytree(demo, target, ignore=shutil.ignore_patterns("alerts", "outputs"))
    return target


@pytest.fixture(scope="session")
def delta_demo_data(_demo_builds) -> Path:
    """The data folder of `demo_data`'s warehouse built on the Delta backend, once a session."""
    build = _demo_builds.start("delta_demo_data")
    build.wait()
    return build.data
