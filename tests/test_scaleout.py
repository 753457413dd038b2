"""Beyond one machine, on real servers: the Dagster instance on PostgreSQL, a rebuild's steps on two
Celery workers behind RabbitMQ giving exactly what one process gives, and the whole pipeline with
its lake on an S3 server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from redwall import lake
from redwall.generator import generate
from redwall.home import DAGSTER_YAML, INSTANCE_DB_ENV, Home, dagster_yaml
from redwall.ingest import process_source
from redwall.schemas import load_contracts
from tests.servers import postgres_database, rabbitmq_broker, s3_server

BIN = Path(sys.executable).parent
KEY = "5ca1e0u7" * 4  # a test's pseudonym key: the homes here are not demo homes
# Run-time stamps of the quality loop (when a problem was first and last seen): all else must match.
RUN_STAMPS = ("first_seen", "last_seen", "closed_at")


def _environment(home: Home, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDWALL_", "DAGSTER_"))}
    return {
        **env,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # dagster-celery starts `celery` by name
        "REDWALL_HOME": str(home.root),
        "DAGSTER_HOME": str(home.dagster_home),
        "REDWALL_PSEUDONYM_KEY": KEY,
        "REDWALL_LIMIT_SETTLE_SECONDS": "0",
        **extra,
    }


def _build_all(env: dict[str, str], timeout: int = 900) -> None:
    """Launch build_all as an operator would, through the Dagster CLI on the real definitions (so
    the definitions' executor runs it)."""
    done = subprocess.run(
        [BIN / "dagster", "job", "execute", "-m", "redwall.pipelines.definitions", "-j", "build_all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _taken_in(root: Path) -> Home:
    home = Home.at(root).ensure()
    generate(home, scale="small", seed=7, days=7)
    for source in load_contracts().sources:
        process_source(home, source)
    return home


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


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Home:
    """A small street taken in, not yet built: each test copies it."""
    return _taken_in(tmp_path_factory.mktemp("ingested") / "home")


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


def test_two_celery_workers_on_a_postgres_instance_build_what_one_process_builds(ingested, tmp_path):
    broker = rabbitmq_broker()
    single = _copy(ingested, tmp_path / "single")
    _build_all(_environment(single))

    with postgres_database() as instance_db:
        spread = _copy(ingested, tmp_path / "spread")
        queue = f"redwall-test-{os.getpid()}-{time.time_ns()}"  # nobody else's workers take these steps
        env = _environment(
            spread,
            REDWALL_INSTANCE_DB=instance_db,
            REDWALL_EXECUTOR="celery",
            REDWALL_CELERY_BROKER=broker,
            REDWALL_CELERY_QUEUE=queue,
        )
        # the instance file names the database by variable
        subprocess.run([BIN / "python", "-c", "from redwall.home import Home; Home.from_env().ensure()"], env=env)
        assert f"env: {INSTANCE_DB_ENV}" in (spread.dagster_home / "dagster.yaml").read_text(encoding="utf-8")
        logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
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
            _build_all(env)
        finally:
            for worker in workers:
                os.killpg(worker.pid, 15)
            for worker in workers:
                worker.wait(60)
        # both workers took steps of the run
        assert all("succeeded" in log.read_text(encoding="utf-8", errors="replace") for log in logs)
        env_instance = {INSTANCE_DB_ENV: instance_db, "DAGSTER_HOME": str(spread.dagster_home)}
        probe = subprocess.run(
            [
                BIN / "python",
                "-c",
                "import json, dagster as dg\n"
                "with dg.DagsterInstance.get() as i:\n"
                "    runs = i.get_runs()\n"
                "    print(json.dumps({'storage': type(i.run_storage).__name__, 'runs': "
                "[r.status.value for r in runs], 'coordinator': type(i.run_coordinator).__name__}))",
            ],
            env={**_environment(spread), **env_instance},
            capture_output=True,
            text=True,
            check=True,
        )
        seen = json.loads(probe.stdout.strip().splitlines()[-1])
        assert seen == {"storage": "PostgresRunStorage", "runs": ["SUCCESS"], "coordinator": "QueuedRunCoordinator"}

    one, two = _results(single), _results(spread)
    assert one.keys() == two.keys()
    assert one["mart.person"].height > 0 and one["mart.event (running)"].height > 0  # mart.street: a district's
    for name in one:
        assert one[name].equals(two[name]), f"{name} differs between one process and two Celery workers"


def test_the_pipeline_runs_with_its_lake_on_an_s3_server(tmp_path):
    with s3_server(tmp_path / "s3") as storage:
        root = tmp_path / "home"
        env = _environment(Home.at(root), REDWALL_LAKE_URI="s3://redwall/street/lake", **storage)
        done = subprocess.run(
            [BIN / "redwall", "--home", str(root), "demo", "--scale", "small", "--days", "7"],
            env={k: v for k, v in env.items() if k != "REDWALL_PSEUDONYM_KEY"},  # a demo home's own key
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert not (root / "lake").exists()  # nothing of the lake on local disk
        for variable, value in storage.items():
            os.environ[variable] = value
        try:
            home = Home(root=root, lake_uri="s3://redwall/street/lake")
            receipts = lake.read(home, "ops", "file_receipt")
            assert receipts.height > 0
            assert (receipts["rows_read"] == receipts["rows_accepted"] + receipts["rows_rejected"]).all()
            assert lake.read(home, "mart", "person").height > 0
            assert lake.read(home, "quality", "issue").height > 0
        finally:
            for variable in storage:
                os.environ.pop(variable)
        import duckdb

        with duckdb.connect(str(root / "warehouse" / "redwall.duckdb"), read_only=True) as con:
            published = {
                f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
            }
        assert {"mart.person", "ops.file_receipt", "quality.issue", "catalog.resource"} <= published
