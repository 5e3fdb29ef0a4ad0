"""`python -m gridassets run` (what `make run` calls) builds the whole daily graph and prints the list."""

import os
import subprocess

import duckdb
import pandas as pd
import pytest

from gridassets_tests.conftest import REPO_ROOT, TEST_FLEET, TEST_SCORE_DAYS, TEST_WINDOW

pytestmark = pytest.mark.e2e


def test_run_prints_the_list_and_where_outputs_went(demo_data):
    data, stdout = demo_data
    end = TEST_WINDOW[1]
    lists = pd.Timestamp(end) - pd.Timedelta(days=TEST_SCORE_DAYS - 1)
    assert stdout.startswith(f"gridassets: synthetic data, history {TEST_WINDOW[0]}..{end}, "
                             f"daily lists {lists.date()}..{end}\n")
    assert f"Prioritized circuits for {end}" in stdout
    assert "models: outage outage-" in stdout and "maintenance maintenance-" in stdout
    assert str(data / "warehouse.duckdb") in stdout
    assert "prioritized_circuits/<date>.csv" in stdout

    csv = pd.read_csv(data / "outputs" / "prioritized_circuits" / f"{end}.csv")
    assert list(csv["rank"]) == list(range(1, TEST_FLEET["n_circuits"] + 1))
    assert csv["priority_score"].is_monotonic_decreasing
    assert csv["reason"].str.len().min() > 20
    # the components add up to the score (each rounded to a tenth of a customer-minute)
    assert (csv["priority_score"] - csv[["outage_score", "transformer_score", "loading_score"]]
            .sum(axis=1)).abs().max() <= 0.2
    # The list printed first is the CSV's first row.
    first = csv.iloc[0]
    assert f"   1  {first['circuit_id']}" in stdout


def test_every_score_row_carries_its_model_version(demo_data):
    data, _ = demo_data
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        for table in ("transformer_risk", "circuit_outage_risk"):
            missing = con.execute(
                f"select count(*) from scores.{table} where model_version is null").fetchall()
            assert missing == [(0,)], table
        served = con.execute(
            "select distinct r.model_version, m.status from scores.transformer_risk r "
            "join models.maintenance_model m on m.version = r.model_version").fetchall()
    assert served and all(status == "promoted" for _, status in served)


# `make run` and `make test` against a stand-in for the virtual environment's python: pip prints
# a warning per package (as this machine's pip configuration makes it do), `-m gridassets` says
# what it was asked. Real make, the project's Makefile, a few milliseconds.
FAKE_PYTHON = """#!/bin/bash
if [ "$2" = pip ]; then
  for i in $(seq 40); do echo "WARNING: pip warning $i" >&2; done
  echo "pip stdout"; exit "${FAKE_PIP_STATUS:-0}"
fi
echo "ran: $*"
"""


def make(venv, *args, **env) -> subprocess.CompletedProcess:
    # Not the window or the variables of a `make test` this may run under (MAKEFLAGS carries
    # its command line).
    parent = {k: v for k, v in os.environ.items()
              if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "START", "END")}
    return subprocess.run(["make", "--no-print-directory", *args, f"VENV={venv}"], cwd=REPO_ROOT,
                          env={**parent, **env}, capture_output=True, text=True, timeout=60)


@pytest.fixture
def fake_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return venv


def test_make_run_shows_only_the_projects_output(fake_venv):
    out = make(fake_venv, "run")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    # No pip output and no echoed commands: one line for the install, then the command's own.
    assert out.stdout.splitlines() == [
        f"installing gridassets into {fake_venv} (a few minutes the first time; log: "
        f"{fake_venv}/install.log)",
        "ran: -m gridassets run"]  # the window is the command's default: no dates from make
    log = (fake_venv / "install.log").read_text()
    assert log.count("WARNING: pip warning") == 40 and "pip stdout" in log
    # Installed once: the next run only runs, and passes the window it is given.
    out = make(fake_venv, "run", "START=2025-03-01", "END=2025-05-31")
    assert out.stdout.splitlines() == ["ran: -m gridassets run --start 2025-03-01 --end 2025-05-31"]


def test_make_test_installs_quietly_too(fake_venv):
    out = make(fake_venv, "test", "PYTEST_ARGS=-k nothing")
    assert out.returncode == 0, out.stderr
    assert "WARNING" not in out.stdout + out.stderr
    xdist = "--dist loadfile --no-loadscope-reorder"
    assert out.stdout.splitlines()[-1] == f"ran: -m pytest -n 2 {xdist} -k nothing"
    # and in one process when asked
    out = make(fake_venv, "test", "PYTEST_WORKERS=0", "PYTEST_ARGS=-k nothing")
    assert out.stdout.splitlines()[-1] == f"ran: -m pytest -n 0 {xdist} -k nothing"


def test_a_failed_install_shows_its_log(fake_venv):
    out = make(fake_venv, "run", FAKE_PIP_STATUS="1")
    assert out.returncode != 0
    assert (f"install failed: {fake_venv}/bin/python -m pip install --quiet -e .; the end of "
            f"{fake_venv}/install.log:") in out.stderr
    assert "WARNING: pip warning 40" in out.stderr and "pip stdout" in out.stderr
    assert "ran:" not in out.stdout  # the command does not run on a half-installed environment
    assert not (fake_venv / ".installed").exists()
