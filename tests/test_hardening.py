"""Faults and hostile input, each really tried: processes killed outright at the commit points and
while waiting for a pool, two loads at once, files still being written, poison names and oversized
files. Every attack must leave the home consistent, answer every file and lose no row."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.recovery import HOST_TAG, PID_TAG
from redwall import lake
from redwall.generator import generate
from redwall.home import Home
from redwall.ingest import process_source, receipts
from schemas import load_contracts

REDWALL = str(Path(sys.executable).parent / "redwall")
# What a receipt says that must not depend on whether a run was interrupted.
LOAD_FACTS = ["_load_id", "_loaded_at"]  # when and in which attempt a row was loaded
STABLE = ["file_name", "status", "refusal", "rows_read", "rows_accepted", "rows_rejected", "rows_warned",
          "rows_deduplicated", "rows_skipped", "reasons_zh"]


@pytest.fixture(scope="module")
def feeds(tmp_path_factory) -> Path:
    """A small generated street's inbox, to copy into each attacked home."""
    home = Home.at(tmp_path_factory.mktemp("feeds")).ensure()
    generate(home, scale="small", seed=11, days=3)
    return home.root / "inbox"


def fresh_home(root: Path, feeds: Path, *sources: str) -> Home:
    home = Home.at(root).ensure()
    for source in sources:
        shutil.copytree(feeds / source, home.inbox(source))
    return home


def redwall(home: Home, *args: str, crash_at: str | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, "REDWALL_HOME": str(home.root), "DAGSTER_HOME": str(home.dagster_home)}
    env.pop("REDWALL_CRASH_AT", None)
    if crash_at:
        env["REDWALL_CRASH_AT"] = crash_at
    return subprocess.Popen([REDWALL, "--home", str(home.root), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def finished(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def receipt_table(home: Home, source: str | None = None) -> pl.DataFrame:
    """Every receipt (of one source), less what differs between two homes: a duplicate names when
    the first copy loaded."""
    found = lake.read(home, receipts.OPS, receipts.RECEIPTS)
    if source:
        found = found.filter(pl.col("source") == source)
    return found.select(STABLE).with_columns(
        pl.col("reasons_zh").str.replace_all(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "<time>")).sort("file_name", "reasons_zh")


def instance_of(home: Home) -> dg.DagsterInstance:
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    return dg.DagsterInstance.get()


# -- 1. nothing stays stuck ----------------------------------------------------------------------
def test_a_build_killed_mid_load_frees_its_pool_and_the_next_build_completes(tmp_path, feeds, uninterrupted):
    home = fresh_home(tmp_path / "home", feeds, "police")
    # killed outright (SIGKILL, as the OOM killer does) just after its silver commit, holding inbox_police
    code, _ = finished(redwall(home, "build", "--job", "ingest_police_job", crash_at="silver"))
    assert code == -signal.SIGKILL
    with instance_of(home) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_info("inbox_police").claimed_slots

    code, out = finished(redwall(home, "build", "--job", "ingest_police_job"))
    assert code == 0, out
    assert f"recovered: run {run.run_id} (ingest_police_job)" in out
    assert "freed pool slot(s) inbox_police" in out
    with instance_of(home) as instance:
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info("inbox_police").claimed_slots
    assert not any(home.inbox("police").iterdir())
    # the retry answers each file as the uninterrupted run did
    assert_frame_equal(receipt_table(home), receipt_table(uninterrupted, "police"))


def _hold_pool(home: Home, pid: int) -> str:
    """A STARTED run of process ``pid`` holding the inbox_police slot, as a live load would."""
    run_id = str(uuid.uuid4())
    with instance_of(home) as instance:
        instance.add_run(dg.DagsterRun(job_name="ingest_police_job", run_id=run_id,
                                       status=dg.DagsterRunStatus.STARTED,
                                       tags={PID_TAG: str(pid), HOST_TAG: socket.gethostname()}))
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("inbox_police")
        assert storage.claim_concurrency_slot("inbox_police", run_id, "ingest_police").is_claimed
    return run_id


def _wait_for(proc: subprocess.Popen, text: str, timeout: float = 120) -> list[str]:
    """The output lines of ``proc`` up to the one containing ``text``."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"never printed {text!r}: {''.join(lines)}")


def test_a_build_waiting_for_a_pool_stops_on_sigterm(tmp_path, feeds):
    home = fresh_home(tmp_path / "home", feeds, "police")
    holder = _hold_pool(home, os.getpid())  # this test process: alive, so the build must wait
    build = redwall(home, "build", "--job", "ingest_police_job")
    _wait_for(build, f"pool inbox_police held by run {holder}")
    started = time.monotonic()
    build.send_signal(signal.SIGTERM)
    code, _ = finished(build, timeout=30)
    assert code == 128 + signal.SIGTERM and time.monotonic() - started < 10
    assert any(home.inbox("police").iterdir())  # nothing was taken


def test_a_build_waiting_for_a_killed_run_recovers_its_slot(tmp_path, feeds):
    home = fresh_home(tmp_path / "home", feeds, "police")
    holder_process = subprocess.Popen(["sleep", "600"])
    holder = _hold_pool(home, holder_process.pid)
    build = redwall(home, "build", "--job", "ingest_police_job")
    _wait_for(build, f"pool inbox_police held by run {holder}")
    holder_process.kill()
    holder_process.wait()
    code, out = finished(build)
    assert code == 0, out
    assert f"recovered: run {holder}" in out and "freed pool slot(s) inbox_police" in out


# -- 3. receipts replay the truth ----------------------------------------------------------------
SOURCES = ("police", "floating", "grid_app", "municipal", "district", "ledgers")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, feeds) -> Home:
    """Every source taken in without a fault: what each receipt must say after any crash."""
    home = fresh_home(tmp_path_factory.mktemp("uninterrupted"), feeds, *SOURCES)
    for source in SOURCES:
        process_source(home, source)
    return home


def _process_killed_at(home: Home, source: str, step: str) -> None:
    """``process_source`` in a process of its own, killed outright just after ``step`` commits."""
    script = "import sys; from redwall.home import Home; from redwall.ingest import process_source; " \
             "process_source(Home.at(sys.argv[1]), sys.argv[2])"
    env = {**os.environ, "REDWALL_CRASH_AT": step}
    done = subprocess.run([sys.executable, "-c", script, str(home.root), source], env=env, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


@pytest.mark.parametrize(("source", "step"), [("grid_app", "silver"), ("police", "silver"), ("ledgers", "silver"),
                                              ("floating", "receipts"), ("municipal", "registry"),
                                              ("district", "bronze")])
def test_a_retry_after_a_kill_answers_as_the_uninterrupted_run(tmp_path, feeds, uninterrupted, source, step):
    home = fresh_home(tmp_path, feeds, source)
    _process_killed_at(home, source, step)
    process_source(home, source)
    assert_frame_equal(receipt_table(home), receipt_table(uninterrupted, source))
    assert not [p for p in home.inbox(source).rglob("*") if p.is_file()]  # every file answered and filed away
    stored = lake.read(home, receipts.OPS, receipts.RECEIPTS)["stored_as"]
    assert all((home.root / s).exists() for s in stored)
    for table in load_contracts().source_tables(source):  # silver as the uninterrupted run left it
        if lake.exists(uninterrupted, "silver", table.bronze_name):
            ours, theirs = (lake.read(h, "silver", table.bronze_name).drop(LOAD_FACTS).sort(pl.all())
                            for h in (home, uninterrupted))
            assert_frame_equal(ours, theirs, check_column_order=False)
