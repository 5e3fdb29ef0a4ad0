"""Process liveness from the pid and the process start time, on real processes."""

import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

from gridassets.storage import runs

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_this_process_is_alive():
    me = runs.current()
    assert me.pid == os.getpid() and me.host == runs.hostname() and me.started
    assert runs.is_alive(me) is True


def test_a_running_child_is_alive_and_known_by_its_start_time(child):
    identity = runs.ProcessIdentity(runs.hostname(), child.pid, runs.started_of(child.pid))
    assert identity.started and identity.started != runs.current().started
    assert runs.is_alive(identity) is True


def test_a_killed_child_is_gone_even_before_its_parent_waits_for_it(child):
    identity = runs.ProcessIdentity(runs.hostname(), child.pid, runs.started_of(child.pid))
    os.kill(child.pid, signal.SIGKILL)
    # Until waited for it is a zombie: /proc/<pid> still exists, the process does not.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert os.path.exists(f"/proc/{child.pid}")
    assert runs.is_alive(identity) is False
    child.wait(timeout=10)
    assert runs.is_alive(identity) is False
    assert runs.started_of(child.pid) is None


def test_a_pid_now_held_by_another_process_is_not_the_same_process(child):
    # The pid is handed out again after its process died: the start time tells them apart.
    earlier = runs.ProcessIdentity(runs.hostname(), child.pid, runs.started_of(child.pid) + "0")
    assert runs.is_alive(earlier) is False


def test_a_process_of_another_host_cannot_be_judged_here():
    me = runs.current()
    assert runs.is_alive(replace(me, host=me.host + "-elsewhere")) is None
    assert runs.is_alive(replace(me, started="")) is None


def test_a_command_name_with_spaces_and_parentheses_is_parsed(tmp_path):
    # /proc/<pid>/stat puts the command name in parentheses; it may contain both.
    odd = tmp_path / "a b) (c"
    odd.symlink_to(sys.executable)
    proc = subprocess.Popen([str(odd), "-c", "import time; time.sleep(600)"])
    try:
        identity = runs.ProcessIdentity(runs.hostname(), proc.pid, runs.started_of(proc.pid))
        assert identity.started.split(":")[-1].isdigit()
        assert runs.is_alive(identity) is True
    finally:
        proc.kill()
        proc.wait(timeout=10)
