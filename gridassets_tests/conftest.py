"""Shared fixtures: a small synthetic fleet in a temporary data folder, and its resources."""

import os
import shutil
import subprocess
import sys
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


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> tuple[Path, str]:
    """A warehouse built by `python -m gridassets run` (what `make run` calls): the data folder
    and the command's output."""
    root = tmp_path_factory.mktemp("demo")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    data = root / "data"
    out = subprocess.run(
        [sys.executable, "-m", "gridassets", "run", "--start", TEST_WINDOW[0],
         "--end", TEST_WINDOW[1], "--score-days", str(TEST_SCORE_DAYS)],
        cwd=REPO_ROOT, env=fleet_env(data, home), capture_output=True, text=True, timeout=900,
    )
    if out.returncode != 0:
        pytest.fail(f"python -m gridassets run failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return data, out.stdout


def copy_data(demo: Path, target: Path) -> Path:
    """A private copy of the shared warehouse and models, for a test that writes to it."""
    shutil.copytree(demo, target, ignore=shutil.ignore_patterns("alerts", "outputs"))
    return target


@pytest.fixture(scope="session")
def delta_demo_data(tmp_path_factory) -> Path:
    """The data folder of `demo_data`'s warehouse built on the Delta backend, once a session."""
    root = tmp_path_factory.mktemp("delta_demo")
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    out = subprocess.run(
        [sys.executable, "-m", "gridassets", "run", "--start", TEST_WINDOW[0],
         "--end", TEST_WINDOW[1], "--score-days", str(TEST_SCORE_DAYS)], cwd=REPO_ROOT,
        env=fleet_env(root / "data", home, GRIDASSETS_WAREHOUSE="delta"),
        capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        pytest.fail(f"python -m gridassets run failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return root / "data"
