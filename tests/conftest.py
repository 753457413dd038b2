"""Fixtures shared by test modules, where the test homes live, and the order files are handed to
the workers."""

import datetime as dt
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from redwall.generator import generate
from redwall.home import Home
from redwall.ingest import holds, process_source, release
from redwall.marts import build_marts
from redwall.quality.loop import run_loop
from redwall.schemas import load_contracts

# Tests drop files and take them in at once: no waiting for a copy to settle. The settling rule
# itself is tested with its real interval (test_sensors, test_hardening).
os.environ.setdefault("REDWALL_LIMIT_SETTLE_SECONDS", "0")

# The test homes are scratch, deleted after the run: on a RAM disk when the machine has one with
# room, they skip the disk syncs a durable write waits for (Dagster's SQLite instances commit
# thousands of times in a run, each commit tens of milliseconds on a busy disk). Every component is
# the same; TMPDIR set by the caller (or --basetemp) wins.
RAM_DISK = Path("/dev/shm")
RAM_DISK_ROOM = 4 * 2**30


def _ram_disk() -> Path | None:
    try:
        mounted = any(
            line.split()[1:3] == [str(RAM_DISK), "tmpfs"]
            for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
        )
        room = os.statvfs(RAM_DISK)
    except OSError:
        return None
    if mounted and os.access(RAM_DISK, os.W_OK | os.X_OK) and room.f_bavail * room.f_frsize >= RAM_DISK_ROOM:
        return RAM_DISK
    return None


# With ``--dist loadfile`` a file runs whole on one worker, and the files are handed out in the
# order collected: the longest files go first, so that the short ones fill in at the end and both
# workers finish together (left alone, xdist hands out the files with the most tests first, which
# put the three longest files last, one after the other on one worker). Ordered by their time in
# a whole-suite run (``--durations``); a file not listed runs after these, in its usual order.
LONGEST_FIRST = (
    "tests/test_scaleout.py",
    "tests/test_object_store.py",
    "tests/test_automation.py",
    "tests/test_incremental.py",
    "tests/test_pipeline.py",
    "tests/test_cli.py",
    "tests/test_hardening.py",
    "tests/test_service.py",
    "tests/test_resolution.py",  # with the street it shares with test_address and test_truth
    "tests/test_privacy.py",
    "tests/test_outbox.py",  # with the looped street it shares with test_quality
    "tests/test_streets.py",
    "tests/test_warehouse.py",
    "tests/test_ingest.py",
    "tests/test_holds.py",
    "tests/deliveries/test_deliveries.py",
    "tests/test_quality.py",
)


def pytest_configure(config: pytest.Config) -> None:
    worker = hasattr(config, "workerinput")  # xdist's workers are given the controller's basetemp
    if not worker and "TMPDIR" not in os.environ and config.option.basetemp is None and (ram := _ram_disk()):
        os.environ["TMPDIR"] = str(ram)  # pytest's temporary folders, and the test processes' own
        tempfile.tempdir = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Home], None]) -> Path:
    """The root of a home ``build`` made, once in the whole run: the first worker to ask builds it
    while any other waits, then each copies it (:func:`copy_of`). For homes several files build
    alike, none of which may change this one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = tmp_path_factory.getbasetemp()
    shared = (shared.parent if worker else shared) / "built_once"  # the workers' folders share the run's
    shared.mkdir(exist_ok=True)
    root = shared / name
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / f"{name}.done").exists():
            shutil.rmtree(root, ignore_errors=True)  # what a build that failed left
            build(Home.at(root).ensure())
            (shared / f"{name}.done").touch()
    return root


def copy_of(root: Path, to: Path) -> Home:
    shutil.copytree(root, to, symlinks=True, dirs_exist_ok=True)
    return Home.at(to)


def _take_in(home: Home) -> None:
    for source in load_contracts().sources:
        process_source(home, source)


def _street_taken_in(home: Home) -> None:
    generate(home, scale="small", seed=7, days=14, end_date=dt.date(2026, 11, 20))
    _take_in(home)


@pytest.fixture(scope="session")
def street_taken_in(tmp_path_factory) -> Callable[[Path], Home]:
    """A small generated street, 14 days to 2026-11-20 (seed 7), every source taken in, nothing
    released, as test_address, test_resolution and test_truth begin: ``copy(folder)`` gives a copy
    of one's own there."""
    root = built_once(tmp_path_factory, "street_taken_in", _street_taken_in)
    return lambda folder: copy_of(root, folder)


def _looped(home: Home) -> None:
    generate(home, scale="small", seed=11, days=3)
    _take_in(home)
    for receipt_id in holds.pending(home)["receipt_id"]:
        release(home, receipt_id, "analyst01", "已核对，有效行先行应用")
    build_marts(home)
    run_loop(home).write_parquet(home.root / "issues.parquet")


@pytest.fixture(scope="module")
def looped(tmp_path_factory):
    """A small generated street taken in, its marts built and one round of the quality loop run:
    ``(home, issues)``. One per test module, which may change it. The generator's ledgers whose IDs
    a spreadsheet wrecked are held on arrival; an analyst lets them in, so that the loop sees them."""
    home = copy_of(built_once(tmp_path_factory, "looped", _looped), tmp_path_factory.mktemp("looped")).ensure()
    issues = home.root / "issues.parquet"
    found = pl.read_parquet(issues)
    issues.unlink()
    return home, found
