"""The Dagster UI as an operator uses it: the webserver and the daemon on a copy of a built demo
warehouse and its instance (what `make run` then `make dev` give), in a real (headless) Chromium:
no welcome dialog, the asset lineage, the list's page with its metadata and plots, a storm run and
its list; and a partition launched through the GraphQL API. Screenshots go to `test-artifacts/`.

The shipped dagster.yaml keeps Dagster's default QueuedRunCoordinator (runs queue for the "duckdb"
pool and `max_concurrent_runs`), so the webserver alone only enqueues a launched run: the daemon
dequeues and starts it. The test starts both, as `make dev` does, rather than swapping in a
DefaultRunCoordinator that no deployment of ours uses.
"""

import json
import os
import re
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

from gridassets_tests.conftest import REPO_ROOT, TEST_FLEET, copy_data, fleet_env

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "ui-lineage.png"  # every group expanded, every name whole
GROUPS_SCREENSHOT = ARTIFACTS / "ui-lineage-groups.png"  # the lineage as it opens
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


def listening_addresses(pgid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening in process group `pgid`, from /proc."""
    inodes = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for fd in (stat.parent / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (OSError, IndexError, ValueError):  # a process that ended meanwhile
            continue
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # /proc writes each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))
            found.add((socket.inet_ntop(socket.AF_INET if width == 4 else socket.AF_INET6, raw),
                       int(port, 16)))
    return found


LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


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
def ui(tmp_path_factory, demo_data) -> Iterator[Ui]:
    root = tmp_path_factory.mktemp("ui")
    home, data = root / "dagster_home", root / "data"
    # The demo build's warehouse and its run history (materializations with their metadata),
    # under the shipped dagster.yaml.
    built, _ = demo_data
    shutil.copytree(built.parent / "dagster_home", home)
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    copy_data(built, data)
    # Migrated here, once: a webserver and a daemon opening the same SQLite storage at the same
    # moment race on its schema ("table alembic_version already exists") and the loser exits.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    env = fleet_env(data, home)
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
        # The UI must be reachable from this machine only (docs/security.md).
        listening = listening_addresses(web.pid)
        assert ("127.0.0.1", port) in listening, listening
        assert {address for address, _ in listening} <= LOOPBACK, listening
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


def asset_groups() -> set[str]:
    from gridassets.definitions import defs

    return {node.group_name for node in defs.resolve_asset_graph().asset_nodes}


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
GRAPH_TEXT_JS = """
const viewport = document.querySelector('[data-svg-viewport]');
return viewport ? viewport.textContent : '';
"""
LOADING_JS = """
return Array.from(document.querySelectorAll('[data-svg-viewport] foreignObject'))
    .some(e => e.textContent.includes('Loading'));
"""
ZOOM_JS = """
const thumb = document.querySelector('[data-zoom-control] [role=slider]');
return thumb ? Number(thumb.getAttribute('aria-valuenow')) : null;
"""


def test_the_asset_graph_shows_every_asset(ui: Ui):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    expected = expected_labels()
    groups = asset_groups()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with chromium() as driver:
        started = time.monotonic()
        driver.get(f"{ui.url}/asset-groups")  # the global asset lineage
        wait = WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5)
        wait.until(lambda d: d.execute_script(GRAPH_SIZE_JS))
        # It opens on one box per group, each named.
        wait.until(lambda d: all(g in d.execute_script(GRAPH_TEXT_JS) for g in groups))
        try:  # each box's asset statuses, for a readable screenshot
            WebDriverWait(driver, 10).until(
                lambda d: "fetching statuses" not in d.execute_script(GRAPH_TEXT_JS))
        except TimeoutException:
            pass
        assert WELCOME not in page_text(driver)
        assert driver.save_screenshot(str(GROUPS_SCREENSHOT))
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
        try:  # let the nodes' status rows finish loading, for a readable screenshot
            WebDriverWait(driver, 10).until(lambda d: not d.execute_script(LOADING_JS))
        except TimeoutException:
            pass
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
    assert rows == TEST_FLEET["n_circuits"] * 24
    print(f"\nGraphQL launch of feeder_load [{DAY}]: SUCCESS in {run_s:.1f} s (run {run_id})")


# What a person must not see: the welcome dialog, numbers in scientific notation (1.11e+05).
WELCOME = "Join the Dagster community"
SCIENTIFIC = re.compile(r"\d[eE][+-]\d")
# A number as the metadata tables show it: thousands separated ("110,737") or a few decimals.
ROUNDED = re.compile(r"(?<![\d.,])(\d{1,3}(,\d{3})+|\d+\.\d{1,3})(?![\d.,]*\d)")
LONG_DECIMALS = re.compile(r"\d\.\d{7,}")
PAGE_WINDOW = (1600, 1300)
STORM_ID = "ui-storm-1"


def graphql(ui: Ui, query: str) -> dict:
    request = urllib.request.Request(
        f"{ui.url}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


def page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def open_page(driver, url: str, ready, what: str, screenshot: Path | None = None) -> str:
    """Load `url` and wait (bounded) until `ready(visible text)` holds; returns that text. On a
    timeout, fails with a screenshot of what was shown instead."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    try:
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5).until(
            lambda d: ready(page_text(d)))
    except TimeoutException:
        failed = ARTIFACTS / f"ui-failed-{what.replace(' ', '-')}.png"
        driver.save_screenshot(str(failed))
        pytest.fail(f"{url} did not show {what} within {RENDER_TIMEOUT_S} s; screenshot: "
                    f"{failed}\n--- page text ---\n{page_text(driver)[:2000]}")
    return page_text(driver)


def metadata_images(driver) -> list[str]:
    """The alt texts of the images shown (plots and maps in metadata, as base64 PNGs)."""
    from selenium.webdriver.common.by import By

    return [img.get_attribute("alt") or "" for img in driver.find_elements(
        By.CSS_SELECTOR, "img[src^='data:image/png']") if img.is_displayed()]


def click(driver, xpath: str) -> None:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.XPATH, xpath)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def wait_until(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5).until(condition)
    except TimeoutException:
        failed = ARTIFACTS / f"ui-failed-{what.replace(' ', '-')}.png"
        driver.save_screenshot(str(failed))
        pytest.fail(f"the UI did not show {what} within {RENDER_TIMEOUT_S} s; screenshot: {failed}")


DIALOG = "//div[contains(@class, 'bp5-dialog')]"


def show_markdown(driver, key: str, ready) -> str:
    """Open the markdown of the metadata entry `key` (the asset overview's Metadata table) in its
    dialog and wait until `ready(dialog text)`; returns that text. The dialog stays open."""
    from selenium.webdriver.common.by import By

    xpath = f"//tr[td[normalize-space()='{key}']]//*[contains(text(), 'Show Markdown')]"
    wait_until(driver, lambda d: d.find_elements(By.XPATH, xpath), f"the {key} entry")
    click(driver, xpath)
    return wait_until(driver, lambda d: next(
        (e.text for e in d.find_elements(By.XPATH, DIALOG) if ready(e.text)), None),
        f"the {key} dialog")


def close_dialog(driver) -> None:
    from selenium.webdriver.common.by import By

    click(driver, f"{DIALOG}//button[normalize-space()='Close']")
    wait_until(driver, lambda d: not d.find_elements(By.XPATH, DIALOG), "the dialog closed")


PARTITION_PLOTS = 120  # the UI plots the latest 120 partitions of the definition


def plotted_by(ui: Ui, asset: str) -> str:
    """"partitions" when one of the latest PARTITION_PLOTS partitions of `asset` holds numbers to
    plot, else "events" (a demo window that ended long ago: plotted by materialization time)."""
    from gridassets.definitions import defs

    node = defs.resolve_asset_graph().get(dg.AssetKey(asset))
    latest = set(node.partitions_def.get_partition_keys()[-PARTITION_PLOTS:])
    with dg.DagsterInstance.from_config(str(ui.home)) as instance:
        built = instance.get_materialized_partitions(dg.AssetKey(asset))
    return "partitions" if latest & built else "events"


def show_plots(driver, names: list[str], mode: str) -> None:
    """The Metadata section's plots of the asset page, by partition or by event (`plotted_by`),
    with a plot for each of `names`."""
    click(driver, "//button[normalize-space()='Plots']")
    if mode == "events":
        click(driver, "//button[normalize-space()='Events']")
    wait_until(driver, lambda d: all(n in page_text(d) for n in names), f"the {mode} plots")


def collapse_columns(driver) -> None:
    """Fold the asset page's Columns section (the metadata is below its 40 rows)."""
    click(driver, "//*[normalize-space(text())='Columns']")
    wait_until(driver, lambda d: "Column name" not in page_text(d), "the columns folded")


def test_the_scores_group_shows_how_the_list_is_made(ui: Ui):
    """The view to open first (docs/ui.md): the scores group with the assets it reads from,
    every name whole."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    from gridassets.definitions import defs

    scores = {" / ".join(n.key.path) for n in defs.resolve_asset_graph().asset_nodes
              if n.group_name == "scores"}
    shot = ARTIFACTS / "ui-lineage-scores.png"
    with chromium() as driver:
        driver.set_window_size(1600, 1250)
        driver.get(f"{ui.url}/locations/gridassets.definitions/asset-groups/scores")
        wait_until(driver, lambda d: scores <= set(d.execute_script(LABELS_JS)),
                   "the scores group")
        try:  # the nodes' status rows, for a readable screenshot
            WebDriverWait(driver, 10).until(lambda d: not d.execute_script(LOADING_JS))
        except TimeoutException:
            pass
        assert driver.save_screenshot(str(shot))
        zoom = driver.execute_script(ZOOM_JS)
    assert zoom is None or zoom >= FULL_LABEL_SCALE, zoom
    assert shot.stat().st_size > 10_000


def test_the_ui_opens_without_the_community_dialog(ui: Ui):
    assert graphql(ui, "{ shouldShowNux }") == {"shouldShowNux": False}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as driver:  # a fresh profile: nothing in local storage says "seen"
        text = open_page(driver, f"{ui.url}/assets", lambda t: "prioritized_circuits" in t,
                         "the asset catalog")
        assert driver.execute_script("return window.localStorage.getItem('communityNux')") is None
    assert WELCOME not in text


def test_the_list_page_shows_rounded_numbers_its_plots_and_map(ui: Ui):
    map_committed = '"map"' in (REPO_ROOT / "gridassets/defs/scores/assets.py").read_text()
    shots = {"list": ARTIFACTS / "ui-prioritized-list.png",
             "plots": ARTIFACTS / "ui-prioritized-plots.png",
             "map": ARTIFACTS / "ui-prioritized-map.png"}
    numbers = ["top_score", "circuits_over_", "customers_at_risk"]
    with chromium() as driver:
        driver.set_window_size(*PAGE_WINDOW)
        page = open_page(driver, f"{ui.url}/assets/prioritized_circuits",
                         lambda t: "top_10" in t and "customers_at_risk" in t,
                         "the list's page")
        collapse_columns(driver)
        table = show_markdown(driver, "top_10", lambda t: "priority_score" in t)
        assert driver.save_screenshot(str(shots["list"]))
        close_dialog(driver)
        images = []
        if map_committed:
            show_markdown(driver, "map", lambda t: "map" in t)
            wait_until(driver, lambda d: metadata_images(d), "the map image")
            images = metadata_images(driver)
            assert driver.save_screenshot(str(shots["map"]))
            close_dialog(driver)
        plots_by = plotted_by(ui, "prioritized_circuits")
        show_plots(driver, numbers, plots_by)
        assert driver.save_screenshot(str(shots["plots"]))
        plots = page_text(driver)

    assert WELCOME not in page
    for text in (page, table):
        assert not SCIENTIFIC.search(text), SCIENTIFIC.search(text)
        assert not LONG_DECIMALS.search(text), LONG_DECIMALS.search(text)
    assert ROUNDED.search(table), table
    assert "priority_score (cust-min/7d)" in table  # the unit in the table's header
    if map_committed:
        assert images and any("map" in alt.lower() for alt in images), images
    assert all(n in plots for n in numbers)
    for name, shot in shots.items():
        assert name == "map" and not map_committed or shot.stat().st_size > 10_000
    print(f"\nlist page: plots by {plots_by}; images {images}; screenshots in {ARTIFACTS}")


def minimal_alert(storm_id: str) -> bytes:
    now = time.time()
    stamp = lambda s: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now + s))  # noqa: E731
    return json.dumps({
        "id": storm_id, "event": "High Wind Warning", "zones": ["MTZ312"], "sent": stamp(0),
        "onset": stamp(3600), "expires": stamp(12 * 3600), "max_wind_gust_mph": 68,
    }).encode()


def test_a_storm_alert_runs_and_its_list_reads_well(ui: Ui):
    from dagster._core.storage.dagster_run import RunsFilter

    outgoing, inbox = ui.data / "outgoing", ui.data / "alerts" / "inbox"
    outgoing.mkdir(parents=True, exist_ok=True)
    inbox.mkdir(parents=True, exist_ok=True)
    (outgoing / "storm.json").write_bytes(minimal_alert(STORM_ID))
    os.rename(outgoing / "storm.json", inbox / "storm.json")  # written elsewhere, renamed in

    terminal = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                dg.DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = None
    with dg.DagsterInstance.from_config(str(ui.home)) as instance:
        while time.monotonic() < deadline and (run is None or run.status not in terminal):
            runs = instance.get_runs(RunsFilter(tags={"gridassets/storm_id": STORM_ID}))
            run = runs[0] if runs else None
            time.sleep(1)
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS, (
        f"storm run: {run and run.status}\n--- daemon log ---\n{ui.log_tail('daemon')}")

    shots = {"run": ARTIFACTS / "ui-storm-run.png", "list": ARTIFACTS / "ui-storm-list.png"}
    with chromium() as driver:
        driver.set_window_size(*PAGE_WINDOW)
        run_text = open_page(driver, f"{ui.url}/runs/{run.run_id}",
                             lambda t: "storm_priority_circuits" in t and "Success" in t,
                             "the storm run")
        assert driver.save_screenshot(str(shots["run"]))
        page = open_page(driver, f"{ui.url}/assets/storm_priority_circuits",
                         lambda t: "top_10" in t and STORM_ID in t, "the storm's list page")
        collapse_columns(driver)
        table = show_markdown(driver, "top_10", lambda t: "gusts to 68 mph" in t)
        assert driver.save_screenshot(str(shots["list"]))

    assert WELCOME not in run_text + page
    assert not SCIENTIFIC.search(table) and not LONG_DECIMALS.search(table)
    assert "priority_score (cust-min/7d)" not in table  # a storm's score is over its window
    print(f"\nstorm {STORM_ID}: run {run.run_id}; screenshots "
          f"{', '.join(map(str, shots.values()))}")
