"""Starting and stopping the service for real: ``redwall serve`` and ``redwall ui`` run as a user
runs them (a subprocess), a second start on the same home or port refuses, and SIGTERM or SIGINT
leaves no process of the service behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from redwall.home import DAGSTER_YAML, Home
from redwall.service import REFUSED, service_lock

REDWALL = str(Path(sys.executable).parent / "redwall")
READY_SECONDS = 240  # the webserver loads every definition first; the machine may be busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redwall(home: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [REDWALL, "--home", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def refused(home: Path, *args: str) -> str:
    """Run a start that must refuse; return what it told the user."""
    out = subprocess.run([REDWALL, "--home", str(home), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == REFUSED, out.stdout + out.stderr
    return out.stderr


def wait_ready(port: int, service: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert service.poll() is None, service.communicate()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the service did not answer on port {port} within {READY_SECONDS}s")


def processes_serving(home: Path) -> dict[int, str]:
    """Every live process whose environment names this data home, with its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"REDWALL_HOME={home}".encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().split(") ")[-1].startswith("Z"):
                continue  # exited, waiting to be reaped
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def stop_and_check_nothing_is_left(service: subprocess.Popen, sig: int, home: Path) -> None:
    service.send_signal(sig)
    assert service.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while processes_serving(home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_serving(home) == {}


@pytest.fixture
def home(tmp_path) -> Path:
    return Home.at(tmp_path / "home").ensure().root


def test_serve_refuses_a_second_start_and_sigterm_stops_every_child(home, tmp_path):
    port = free_port()
    service = redwall(home, "serve", "--port", str(port))
    try:
        wait_ready(port, service)
        running = processes_serving(home)
        assert any("dagster-webserver" in c for c in running.values())
        assert any("dagster-daemon" in c for c in running.values())

        # The same home on another port: refused, naming who serves it.
        told = refused(home, "ui", "--port", str(free_port()))
        assert "already serves the data home" in told and str(service.pid) in told
        # Another home on the same port: refused before anything starts.
        other = Home.at(tmp_path / "other").ensure().root
        assert f"port {port}" in refused(other, "serve", "--port", str(port))
        assert processes_serving(other) == {}
    finally:
        if service.poll() is None:
            stop_and_check_nothing_is_left(service, signal.SIGTERM, home)
    assert "ended with status" not in service.stderr.read()


def test_ui_stops_on_ctrl_c_and_leaves_nothing_behind(home):
    port = free_port()
    service = redwall(home, "ui", "--port", str(port))
    try:
        wait_ready(port, service)
        assert len(processes_serving(home)) >= 3  # dagster dev, its webserver and daemon, code servers
    finally:
        stop_and_check_nothing_is_left(service, signal.SIGINT, home)
    # The lock went with it: the home can be served again.
    with service_lock(Home.at(home), {"command": "test"}):
        pass


def test_the_instance_queues_runs_one_load_per_source(home):
    """The dagster.yaml redwall writes, as Dagster reads it: a queued run coordinator whose tag
    limits allow one run per source value, and one rebuild at a time."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(Path(home) / "dagster")) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        # a run whose process died is run again (its files would wait in the inbox); one that failed on its data is not
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
    assert {"key": "redwall/source", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    assert {"key": "redwall/trigger", "value": "delivery", "limit": 1} in limits
    # A dagster.yaml redwall wrote earlier is brought up to date; an operator's own is left alone.
    yaml = Path(home) / "dagster" / "dagster.yaml"
    yaml.write_text(DAGSTER_YAML.replace("max_concurrent_runs: 3", "max_concurrent_runs: 1"), encoding="utf-8")
    Home.at(home).ensure()
    assert yaml.read_text(encoding="utf-8") == DAGSTER_YAML
    yaml.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    Home.at(home).ensure()
    assert yaml.read_text(encoding="utf-8") == "telemetry:\n  enabled: false\n"
