"""The Dagster UI as an operator uses it: the webserver and the daemon on a private instance, the asset
graph in a real (headless) Chromium, and a partition launched through the GraphQL API.

The shipped dagster.yaml keeps Dagster's default QueuedRunCoordinator (runs queue for the "duckdb"
pool and `max_concurrent_runs`), so the webserver alone only enqueues a launched run: the daemon
dequeues and starts it. The test starts both, as `make dev` does, rather than swapping in a
DefaultRunCoordinator that no deployment of ours uses.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from gridassets_tests.conftest import REPO_ROOT, SMALL_FLEET, subprocess_env

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "ui-asset-graph.png"
CONTRACT_ASSETS = {"circuits", "transformers", "transformer_telemetry", "feeder_load",
                   "weather_observations", "outage_events", "transformer_failures"}
DAY = "2025-06-03"

START_TIMEOUT_S = 120
RENDER_TIMEOUT_S = 60
RUN_TIMEOUT_S = 180
# The asset graph draws full node labels from this zoom up (MINIMAL_SCALE in Dagster's
# AssetGraphExplorer; below it, names are middle-truncated) and culls nodes outside the viewport,
# so the window is sized for the whole graph to fit at a little more than that.
FULL_LABEL_SCALE = 0.6
TARGET_SCALE = 0.7
MAX_WINDOW_PX = 7000


@dataclass
class Ui:
    port: int
    home: Path
    data: Path
    logs: dict[str, Path]
    started_s: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        return self.logs[name].read_text(errors="replace")[-chars:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessGroups:
    """Children each in their own process group (their code servers and runs join it); `stop`
    ends every group: SIGTERM to all, a bounded wait, then SIGKILL to what is left."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict, log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def _signal_all(self, sig: int) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass

    def _alive(self) -> bool:
        alive = False
        for proc in self.procs:
            proc.poll()  # reap the leader, or its group would linger as a zombie
            try:
                os.killpg(proc.pid, 0)
                alive = True
            except ProcessLookupError:
                pass
        return alive

    def stop(self, grace_s: float = 20) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self._alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        self._signal_all(signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)


def wait_for_server(ui: Ui, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {proc.returncode}:\n{ui.log_tail('webserver')}")
        try:
            with urllib.request.urlopen(f"{ui.url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer /server_info within {START_TIMEOUT_S} s:\n"
                f"{ui.log_tail('webserver')}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[Ui]:
    root = tmp_path_factory.mktemp("ui")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    # Created here, once: a webserver and a daemon creating the same SQLite storage at the same
    # moment race on its schema ("table alembic_version already exists") and the loser exits.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    env = subprocess_env(data, home)
    port = free_port()
    ui = Ui(port=port, home=home, data=data, started_s=time.monotonic(),
            logs={"webserver": root / "webserver.log", "daemon": root / "daemon.log"})
    groups = ProcessGroups()
    try:
        web = groups.start([str(BIN / "dagster-webserver"), "-m", "gridassets.definitions",
                            "-h", "127.0.0.1", "-p", str(port)], env, ui.logs["webserver"])
        groups.start([str(BIN / "dagster-daemon"), "run", "-m", "gridassets.definitions"],
                     env, ui.logs["daemon"])
        wait_for_server(ui, web)
        print(f"\nwebserver answered after {time.monotonic() - ui.started_s:.1f} s on {ui.url}")
        yield ui
    finally:
        groups.stop()


def expected_labels() -> set[str]:
    """Every asset of the Definitions, as the graph labels it (key parts joined by ' / '): the
    contract's raw and fleet assets now, and load_forecast, prioritized_circuits and
    storm_priority_circuits as soon as they are defined."""
    from gridassets.definitions import defs

    labels = {" / ".join(node.key.path) for node in defs.resolve_asset_graph().asset_nodes}
    assert CONTRACT_ASSETS <= labels, CONTRACT_ASSETS - labels
    return labels


@contextmanager
def chromium() -> Iterator:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver "
                    "(.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gridassets-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile}", "--window-size=1920,1200"):
        options.add_argument(arg)
    service = Service(CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            service.stop()
            shutil.rmtree(profile, ignore_errors=True)


LABELS_JS = """
return Array.from(document.querySelectorAll('[data-svg-viewport] foreignObject [data-tooltip]'))
    .map(e => e.textContent.trim());
"""
GRAPH_SIZE_JS = """
const viewport = document.querySelector('[data-svg-viewport]');
const svg = viewport && viewport.querySelector('svg');
if (!svg || !svg.getAttribute('width')) return null;
return [Number(svg.getAttribute('width')), Number(svg.getAttribute('height')),
        viewport.clientWidth, viewport.clientHeight];
"""
LOADING_JS = """
return Array.from(document.querySelectorAll('[data-svg-viewport] foreignObject'))
    .some(e => e.textContent.includes('Loading'));
"""
ZOOM_JS = """
const thumb = document.querySelector('[data-zoom-control] [role=slider]');
return thumb ? Number(thumb.getAttribute('aria-valuenow')) : null;
"""


def dismiss_welcome_dialog(driver) -> None:
    """The UI greets a new browser profile with a "Join the Dagster community" dialog, at a moment
    of its choosing; Skip records that in local storage (`communityNux`), so it is set up front
    too and the dialog, if it still shows, is skipped."""
    from selenium.webdriver.common.by import By

    driver.execute_script("window.localStorage.setItem('communityNux', '\"1\"');")

    for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        if button.is_displayed():
            button.click()


def test_the_asset_graph_shows_every_asset(ui: Ui):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    expected = expected_labels()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with chromium() as driver:
        started = time.monotonic()
        driver.get(f"{ui.url}/server_info")
        dismiss_welcome_dialog(driver)
        driver.get(f"{ui.url}/asset-groups")  # the global asset lineage
        wait = WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5)
        wait.until(lambda d: d.execute_script(GRAPH_SIZE_JS))
        dismiss_welcome_dialog(driver)
        # Several groups start collapsed into one box each; Alt+E is the UI's "Expand all groups".
        ActionChains(driver).key_down(Keys.ALT).send_keys("e").key_up(Keys.ALT).perform()
        wait.until(lambda d: len(d.execute_script(LABELS_JS)) > 0)
        graph_w, graph_h, view_w, view_h = driver.execute_script(GRAPH_SIZE_JS)

        # A window in which the whole expanded graph fits at TARGET_SCALE, then a fresh load so the
        # graph centres itself in it (groups stay expanded: the UI keeps that in local storage).
        window = driver.get_window_size()
        width = min(MAX_WINDOW_PX, int(window["width"] - view_w + graph_w * TARGET_SCALE) + 40)
        height = min(MAX_WINDOW_PX, int(window["height"] - view_h + graph_h * TARGET_SCALE) + 40)
        driver.set_window_size(max(width, 1920), max(height, 1200))
        driver.get(f"{ui.url}/asset-groups")
        try:
            wait.until(lambda d: expected <= set(d.execute_script(LABELS_JS)))
        except TimeoutException:
            shown = set(driver.execute_script(LABELS_JS))
            driver.save_screenshot(str(SCREENSHOT))
            pytest.fail(f"the asset graph ({graph_w:.0f}x{graph_h:.0f}, zoom "
                        f"{driver.execute_script(ZOOM_JS)}) does not show "
                        f"{sorted(expected - shown)}; screenshot: {SCREENSHOT}")
        rendered_s = time.monotonic() - started
        dismiss_welcome_dialog(driver)
        try:  # let the nodes' status rows finish loading, for a readable screenshot
            WebDriverWait(driver, 10).until(lambda d: not d.execute_script(LOADING_JS))
        except TimeoutException:
            pass
        dismiss_welcome_dialog(driver)
        zoom = driver.execute_script(ZOOM_JS)
        assert driver.save_screenshot(str(SCREENSHOT))

    assert zoom is None or zoom >= FULL_LABEL_SCALE, zoom
    assert SCREENSHOT.stat().st_size > 10_000
    print(f"\nasset graph: {len(expected)} assets rendered with full labels in {rendered_s:.1f} s "
          f"(graph {graph_w:.0f}x{graph_h:.0f} px at zoom {zoom}); screenshot: {SCREENSHOT}")


def test_a_partition_launched_through_graphql_runs_to_success(ui: Ui):
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=ui.port)
    started = time.monotonic()
    run_id = client.submit_job_execution(
        "__ASSET_JOB", asset_selection=["feeder_load"], tags={"dagster/partition": DAY})

    terminal = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                dg.DagsterRunStatus.CANCELED}
    status = client.get_run_status(run_id)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while status not in terminal and time.monotonic() < deadline:
        time.sleep(1)
        status = client.get_run_status(run_id)
    run_s = time.monotonic() - started
    assert status == dg.DagsterRunStatus.SUCCESS, (
        f"run {run_id} is {status} after {run_s:.0f} s\n--- daemon log ---\n{ui.log_tail('daemon')}")

    with dg.DagsterInstance.from_config(str(ui.home)) as instance:
        run = instance.get_run_by_id(run_id)
        events = [e.dagster_event.event_type for e in instance.all_logs(run_id)
                  if e.dagster_event is not None]
    assert run.tags["dagster/partition"] == DAY
    assert run.asset_selection == {dg.AssetKey("feeder_load")}
    # Queued by the webserver, then started by the daemon's run queue (1.13 logs no DEQUEUED).
    enqueued = events.index(dg.DagsterEventType.RUN_ENQUEUED)
    assert events.index(dg.DagsterEventType.RUN_STARTING) > enqueued
    assert dg.DagsterEventType.ASSET_MATERIALIZATION in events

    with duckdb.connect(str(ui.data / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select count(*) from raw.feeder_load where cast(timestamp as date) = ?", [DAY]
        ).fetchall()[0][0]
    assert rows == SMALL_FLEET["n_circuits"] * 24
    print(f"\nGraphQL launch of feeder_load [{DAY}]: SUCCESS in {run_s:.1f} s (run {run_id})")
