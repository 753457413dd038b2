"""Beyond one machine, on real servers: the Dagster instance on PostgreSQL, a rebuild's steps and
its streets' partitions on two Celery workers behind RabbitMQ and a rebuild's steps on the
multiprocess executor, each giving exactly what one process gives (the lake on an S3 server:
test_object_store.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import polars as pl
import psutil
import pytest

from redwall import lake
from redwall.generator import SCALES, Scale, generate
from redwall.home import DAGSTER_YAML, INSTANCE_DB_ENV, Home, dagster_yaml
from redwall.ingest import process_source
from redwall.package import package_folder, streets
from redwall.pipelines.jobs import ingest_job_name
from redwall.quality.outbox import rectification_folder
from redwall.schemas import load_contracts
from redwall.warehouse import street_extract_path
from redwall.worktime import TIME_ZONE
from tests.servers import BIN, PREPARE_INSTANCE, postgres_database, rabbitmq_broker, service_environment

# Run-time stamps of the quality loop (when a problem was first and last seen): all else must match.
RUN_STAMPS = ("first_seen", "last_seen", "closed_at")
# A small district: the small street's people in 西长安街 and two more streets of two grids each, so
# that there are several streets' partitions to spread.
SMALL_DISTRICT = Scale(
    "small-district",
    persons=2_000,
    streets=3,
    home_communities=3,
    home_grids=12,
    communities_per_street=(1, 1),
    grids_per_community=(2, 2),
)


def _execute(job: str, env: dict[str, str], partition: str | None = None) -> subprocess.Popen:
    """Launch a job as an operator would, through the Dagster CLI on the real definitions (so the
    definitions' executor runs it); ``partition``: a street, for ``rebuild_street``."""
    tags = ["--tags", json.dumps({"dagster/partition": partition})] if partition else []
    command = [BIN / "dagster", "job", "execute", "-m", "redwall.pipelines.definitions", "-j", job, *tags]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _succeeded(*runs: subprocess.Popen, timeout: int = 900) -> None:
    for run in runs:
        output, _ = run.communicate(timeout=timeout)
        assert run.returncode == 0, output[-6000:]


def _build_all(env: dict[str, str]) -> None:
    _succeeded(_execute("build_all", env))


def _silver(home: Home) -> dict[str, pl.DataFrame]:
    """Every silver table's rows with their history and where each came from (not when it was
    loaded, nor by which run)."""
    tables = {}
    for source in load_contracts().sources:
        for table in load_contracts().source_tables(source):
            columns = [*table.schema(), "_source_file", "_row_number", "_file_hash", "_valid_from", "_valid_to"]
            frame = (
                lake.read(home, "silver", table.bronze_name, columns=columns)
                if lake.exists(home, "silver", table.bronze_name)
                else None
            )
            if frame is not None:
                tables[f"silver.{table.bronze_name}"] = frame.sort(frame.columns)
    return tables


# What each run of a home's instance did: its job, partition and status, the pid of the process
# that ran the run, and the pid of the process that ran each of its steps.
RUNS = """
import json, dagster as dg
with dg.DagsterInstance.get() as instance:
    def pids(run, kind):
        return {e.dagster_event.step_key: e.dagster_event.pid for e in instance.all_logs(run.run_id, of_type=kind)}
    print(json.dumps([
        {"job": run.job_name, "partition": run.tags.get("dagster/partition"), "status": run.status.value,
         "storage": type(instance.run_storage).__name__, "coordinator": type(instance.run_coordinator).__name__,
         "pid": pids(run, dg.DagsterEventType.RUN_START)[None], "steps": pids(run, dg.DagsterEventType.STEP_START)}
        for run in instance.get_runs()
    ]))
"""


def _runs(env: dict[str, str]) -> list[dict]:
    probe = subprocess.run([BIN / "python", "-c", RUNS], env=env, capture_output=True, text=True, check=True)
    return json.loads(probe.stdout.strip().splitlines()[-1])


# The baseline every executor is held to: build_all, then each street's own outputs (rebuild_street:
# its rectification lists, warehouse extract and package), in one process.
ONE_PROCESS = """
from redwall.cli import run_job
from redwall.home import Home
from redwall.package import streets
home = Home.from_env().ensure()
for job, street in [("build_all", None), *(("rebuild_street", street) for street in streets(home))]:
    assert run_job(home, job, partition_key=street).success, (job, street)
"""


# An event still running is timed to the moment its mart is built (working minutes, on time, overdue):
# two builds a minute apart in working hours differ there, and only there.
RUNNING_CLOCKS = ("handling_minutes", "working_minutes", "on_time", "overdue", "extended")


def _results(home: Home) -> dict[str, pl.DataFrame]:
    tables = {f"mart.{t.name}": lake.read(home, "mart", t.name) for t in load_contracts().marts}
    tables["quality.issue"] = lake.read(home, "quality", "issue").drop(RUN_STAMPS)
    events = tables.pop("mart.event")
    tables["mart.event (ended)"] = events.filter(pl.col("closed_at").is_not_null())
    tables["mart.event (running)"] = events.filter(pl.col("closed_at").is_null()).drop(RUNNING_CLOCKS)
    return {name: frame.sort(frame.columns) for name, frame in tables.items()}


def _packages(home: Home) -> dict[str, pl.DataFrame]:
    """Each street's package for the district, table by table (events split as in :func:`_results`),
    and its warehouse extract's rows per table and its rectification lists' names."""
    import duckdb

    tables = {}
    for street in streets(home):
        with duckdb.connect(str(street_extract_path(home, street)), read_only=True) as con:
            names = con.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
            counts = [(f"{s}.{t}", con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0]) for s, t in names]
        tables[f"extract {street}"] = pl.DataFrame(counts, schema=["table", "rows"], orient="row")
        lists = sorted(
            p.relative_to(rectification_folder(home, street)).as_posix()
            for p in rectification_folder(home, street).rglob("*.xlsx")
        )
        tables[f"rectification {street}"] = pl.DataFrame({"file": lists}, schema={"file": pl.String})
        for path in sorted(package_folder(home, street).glob("*.parquet")):
            frame = pl.read_parquet(path)
            if path.name.startswith("event_"):
                tables[f"{path.name} (running)"] = frame.filter(pl.col("closed_at").is_null()).drop(RUNNING_CLOCKS)
                frame = frame.filter(pl.col("closed_at").is_not_null())
            tables[path.name] = frame.sort(frame.columns)
    return tables


T = TypeVar("T")


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(TIME_ZONE)).date()


def _on_one_day(build: Callable[[int], T]) -> tuple[dt.date, T]:
    """What ``build`` (given its attempt's number) builds, built again if the day turned while it
    ran: the marts count ages and days since a visit to the day they are built on, and the
    packages are named by it, so two builds compare only within one day."""
    for attempt in range(2):
        day = _today()
        built = build(attempt)
        if _today() == day:
            return day, built
    raise AssertionError("the day turned during both attempts")


def _assert_equal(one: dict[str, pl.DataFrame], two: dict[str, pl.DataFrame], what: str) -> None:
    assert one.keys() == two.keys()
    for name in one:
        assert one[name].equals(two[name]), f"{name} differs between one process and {what}"


@pytest.fixture(scope="module")
def delivered(tmp_path_factory) -> Home:
    """A small district of three streets, its sources' files in their inboxes."""
    home = Home.at(tmp_path_factory.mktemp("delivered") / "home").ensure()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SCALES, SMALL_DISTRICT.name, SMALL_DISTRICT)
        generate(home, scale=SMALL_DISTRICT.name, seed=7, days=7)
    return home


@pytest.fixture(scope="module")
def ingested(delivered, tmp_path_factory) -> Home:
    """``delivered`` taken in source by source in one process, not yet built: each test copies it."""
    home = _copy(delivered, tmp_path_factory.mktemp("ingested") / "home")
    for source in load_contracts().sources:
        process_source(home, source)
    return home


@pytest.fixture(scope="module")
def one_process(ingested, tmp_path_factory) -> Callable[[dt.date], dict[str, pl.DataFrame]]:
    """What one process builds of ``ingested`` on a given day (today: built when first asked for
    it): its marts, issues and each street's package."""
    by_day: dict[dt.date, dict[str, pl.DataFrame]] = {}

    def build(attempt: int) -> dict[str, pl.DataFrame]:
        home = _copy(ingested, tmp_path_factory.mktemp(f"one{attempt}") / "home")
        done = subprocess.run(
            [BIN / "python", "-c", ONE_PROCESS],
            env=service_environment(home),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        built = {**_results(home), **_packages(home)}
        assert built["mart.person"].height > 0 and built["mart.event (running)"].height > 0  # mart.street: a district's
        assert len(streets(home)) == 3 and sum(name.startswith("grid_") for name in built) == 3
        assert all(built[f"extract {street}"].height > 0 for street in streets(home))
        return built

    def on(day: dt.date) -> dict[str, pl.DataFrame]:
        while day not in by_day:
            built_on, built = _on_one_day(build)
            by_day[built_on] = built
            assert built_on <= day, f"asked for {day}'s build on {built_on}"
        return by_day[day]

    on(_today())
    return on


def _copy(home: Home, root: Path) -> Home:
    shutil.copytree(home.root, root, symlinks=True, ignore=shutil.ignore_patterns("dagster"))
    return Home.at(root).ensure()


def test_a_postgres_instance_is_named_by_variable_and_keeps_the_run_queue(monkeypatch):
    monkeypatch.delenv(INSTANCE_DB_ENV, raising=False)
    assert dagster_yaml() == DAGSTER_YAML  # the desk keeps SQLite under dagster/
    monkeypatch.setenv(INSTANCE_DB_ENV, "postgresql://dagster:secret@db:5432/dagster")
    with pytest.raises(ValueError, match="postgresql\\+psycopg2://"):
        dagster_yaml()  # SQLAlchemy 2.1 would take it for psycopg 3, which dagster-postgres does not speak
    monkeypatch.setenv(INSTANCE_DB_ENV, "postgresql+psycopg2://dagster:secret@db:5432/dagster")
    written = dagster_yaml()
    assert "secret" not in written and f"env: {INSTANCE_DB_ENV}" in written
    assert written.startswith(DAGSTER_YAML)  # the queue, its limits and run monitoring stay as they are


def test_the_multiprocess_executor_builds_what_one_process_builds(ingested, one_process, tmp_path):
    def build(attempt: int) -> tuple[dict, dict[str, pl.DataFrame]]:
        home = _copy(ingested, tmp_path / f"multiprocess{attempt}")
        env = service_environment(home, REDWALL_EXECUTOR="multiprocess")
        _build_all(env)
        (run,) = _runs(env)
        return run, _results(home)

    day, (run, built) = _on_one_day(build)
    assert run["job"] == "build_all" and run["status"] == "SUCCESS"
    # every step in a process of its own, none in the run's
    assert len(set(run["steps"].values())) == len(run["steps"]) > 1 and run["pid"] not in run["steps"].values()
    _assert_equal({name: one_process(day)[name] for name in built}, built, "the multiprocess executor")


def _spread_over_celery(delivered: Home, root: Path) -> tuple[list[dict], list[set[int]], Home]:
    """``delivered`` taken in and built by two Celery workers on a PostgreSQL instance, as the test
    below says; returns the instance's runs, the processes each worker ran tasks in, and the home."""
    broker = rabbitmq_broker()
    with postgres_database() as instance_db:
        spread = _copy(delivered, root / "spread")
        queue = f"redwall-test-{os.getpid()}-{time.time_ns()}"  # nobody else's workers take these steps
        env = service_environment(
            spread,
            REDWALL_INSTANCE_DB=instance_db,
            REDWALL_EXECUTOR="celery",
            REDWALL_CELERY_BROKER=broker,
            REDWALL_CELERY_QUEUE=queue,
        )
        # the instance file names the database by variable, and its tables are made once before
        # the workers and the run open it together, as `redwall serve` makes them
        subprocess.run([BIN / "python", "-c", PREPARE_INSTANCE], env=env, check=True)
        assert f"env: {INSTANCE_DB_ENV}" in (spread.dagster_home / "dagster.yaml").read_text(encoding="utf-8")
        logs = [root / f"worker{n}.log" for n in (1, 2)]
        workers = [
            subprocess.Popen(
                [
                    BIN / "dagster-celery",
                    "worker",
                    "start",
                    "-A",
                    "dagster_celery.app",
                    "-y",
                    Path(__file__).parent.parent / "deploy" / "celery-worker.yaml",
                    "-q",
                    queue,
                    "-n",
                    f"{queue}-{n}@%h",
                    "-l",
                    "info",
                ],
                env=env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for n, log in zip((1, 2), logs, strict=True)
        ]
        try:
            _succeeded(*[_execute(ingest_job_name(source), env) for source in load_contracts().sources])
            _build_all(env)
            # the streets the rebuild registered as partitions, each launched as its own run at once
            _succeeded(*[_execute("rebuild_street", env, street) for street in streets(spread)])
            # the processes each worker runs its tasks in (its pool's children)
            processes = [{p.pid for p in psutil.Process(w.pid).children(recursive=True)} for w in workers]
        finally:
            for worker in workers:
                os.killpg(worker.pid, 15)
            for worker in workers:
                worker.wait(60)
        runs = _runs(env)
    return runs, processes, spread


def test_two_celery_workers_on_a_postgres_instance_build_what_one_process_builds(
    delivered, ingested, one_process, tmp_path
):
    """Every source's load launched at once, as its own run as the inbox sensors launch them, then a
    rebuild, then every street's own outputs (its rectification lists, warehouse extract and
    package) as partitions of rebuild_street launched at once, their steps taken by two
    dagster-celery workers: both take steps of each, and what they build equals one process's."""
    day, (runs, processes, spread) = _on_one_day(
        lambda attempt: _spread_over_celery(delivered, tmp_path / f"try{attempt}")
    )

    assert {r["storage"] for r in runs} == {"PostgresRunStorage"}
    assert {r["coordinator"] for r in runs} == {"QueuedRunCoordinator"}
    assert {r["status"] for r in runs} == {"SUCCESS"}
    loads = [ingest_job_name(source) for source in load_contracts().sources]
    assert sorted((r["job"], r["partition"]) for r in runs) == sorted(
        [
            ("build_all", None),
            *((job, None) for job in loads),
            *(("rebuild_street", street) for street in streets(spread)),
        ]
    )
    for what, jobs in (("the loads", loads), ("build_all", ["build_all"]), ("rebuild_street", ["rebuild_street"])):
        pids = [pid for r in runs if r["job"] in jobs for pid in r["steps"].values()]
        # every step ran on a worker, and both workers took steps
        assert all(any(pid in worker for worker in processes) for pid in pids), what
        assert all(worker & set(pids) for worker in processes), f"{what}: a worker took none of the steps"
    _assert_equal(_silver(ingested), _silver(spread), "loads on two Celery workers")
    _assert_equal(one_process(day), {**_results(spread), **_packages(spread)}, "two Celery workers")
