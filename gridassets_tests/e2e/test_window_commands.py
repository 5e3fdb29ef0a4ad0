"""A day outside the defined partitions, given to `python -m gridassets run` or to
`dagster asset materialize`, is one line that names the valid range and what to type instead."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gridassets_tests.conftest import REPO_ROOT, subprocess_env

pytestmark = pytest.mark.e2e
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def lines(text: str) -> list[str]:
    """The lines of `text` but Dagster's notice that its CLI is superseded (two lines)."""
    out = [line for line in text.splitlines() if line.strip()]
    return [line for i, line in enumerate(out)
            if "SupersessionWarning" not in line
            and not (i and "SupersessionWarning" in out[i - 1])]


def yesterday():
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def test_run_refuses_a_window_before_the_first_partition_in_one_line(tmp_path):
    before = yesterday()
    out = subprocess.run(
        [sys.executable, "-m", "gridassets", "run", "--start", "2023-01-01", "--end", "2023-03-31"],
        cwd=REPO_ROOT, env=subprocess_env(tmp_path / "data"), capture_output=True, text=True,
        timeout=120)
    assert out.returncode == 2
    [line] = lines(out.stderr)
    # The range ends yesterday (UTC), whichever day it was while the command ran.
    assert any(line.startswith(f"gridassets run: --start 2023-01-01 and --end 2023-03-31 are "
                               f"outside the daily partitions 2024-01-01..{day} ")
               for day in {before, yesterday()}), line
    assert "(make run START=2024-01-01 END=2024-01-01)" in line
    assert "GRIDASSETS_START_DATE=2023-01-01" in line
    assert out.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing built, nothing opened


def test_run_names_a_bad_start_date_setting(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "gridassets", "run"], cwd=REPO_ROOT,
        env=subprocess_env(tmp_path / "data", GRIDASSETS_START_DATE="2024-02-30"),
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert lines(out.stderr) == [
        "gridassets: GRIDASSETS_START_DATE must be a date (YYYY-MM-DD); got '2024-02-30'"]


def test_dagster_cli_names_the_range_of_the_start_date_setting(tmp_path, dagster_home):
    env = subprocess_env(tmp_path / "data", dagster_home, GRIDASSETS_START_DATE="2025-06-02")
    out = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "gridassets.definitions", "--select",
         "feeder_load", "--partition", "2025-06-01"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    [line] = lines(out.stderr)
    assert line.startswith("gridassets: partition 2025-06-01 is outside the daily partitions "
                           "2025-06-02..")
    assert ("use a day in that range, e.g. --partition 2025-06-02, or set "
            "GRIDASSETS_START_DATE=2025-06-01 to define earlier days") in line
    assert not (tmp_path / "data" / "warehouse.duckdb").exists()

