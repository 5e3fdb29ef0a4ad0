"""`python -m gridassets scaleout up|env|down` (what `make scaleout-up` / `scaleout-down` run):
the cluster's processes start, are recorded, point a shell at themselves, and all stop."""

import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from gridassets.scaleout import cluster
from gridassets_tests.conftest import REPO_ROOT, subprocess_env

pytestmark = pytest.mark.e2e


def gridassets(*args, env, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridassets", "scaleout", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_up_records_every_process_and_down_stops_them_all(tmp_path):
    state = tmp_path / "state"
    env = subprocess_env(tmp_path / "data")
    port = cluster.free_port()
    up = gridassets("up", "--workers", "1", "--port", str(port), "--state-dir", str(state),
                    env=env)
    recorded = cluster.Cluster.load(state)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert recorded is not None
        assert [p.name for p in recorded.processes] == [
            "postgres", "redis", "worker-steps1", "worker-storms1", "daemon", "webserver"]
        assert all(cluster.is_running(p) for p in recorded.processes)
        shell = gridassets("env", "--state-dir", str(state), env=env)
        assert "export GRIDASSETS_MODE='scaleout'" in shell.stdout
        assert f"redis://127.0.0.1:{recorded.redis_port}/0" in shell.stdout
        # A second `up` refuses while the first runs.
        again = gridassets("up", "--state-dir", str(state), env=env)
        assert again.returncode == 1 and "already running" in again.stdout
        # The UI answers on the port it was given.
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                assert time.time() < deadline, "the UI never answered"
                time.sleep(1)
    finally:
        down = gridassets("down", "--state-dir", str(state), env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(cluster.is_running(p) for p in recorded.processes)
    assert cluster.Cluster.load(state) is None
    shutil.rmtree(recorded.pg_dir, ignore_errors=True)  # `down` keeps the database for `up`
