"""End to end on the real definitions: `redwall demo` (small scale) takes every generated feed in,
answers every file, builds the marts and publishes the warehouse; re-sending a file changes nothing."""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from redwall import lake
from redwall.cli import main
from redwall.home import Home
from schemas import load_contracts


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "home"
    saved = {k: os.environ.get(k) for k in ("REDWALL_HOME", "DAGSTER_HOME")}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        assert main(["--home", str(root), "demo", "--scale", "small", "--days", "7"]) == 0
    (root / "demo_output.txt").write_text(printed.getvalue(), encoding="utf-8")
    yield Home.at(root)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_demo_answers_every_file_and_empties_the_inbox(demo_home):
    left = [p for p in (demo_home.root / "inbox").rglob("*") if p.is_file()]
    assert left == []
    receipts = lake.read(demo_home, "ops", "file_receipt")
    taken = [p for d in ("archive", "rejected") for p in (demo_home.root / d).rglob("*")
             if p.is_file() and "回执" not in p.name and not p.name.endswith((".receipt.json", ".dict.json"))]
    assert receipts.height == len(taken) > 0
    assert set(receipts["source"]) == set(load_contracts().sources)
    # Nothing is lost: every row read is accepted or rejected with a reason.
    assert (receipts["rows_read"] == receipts["rows_accepted"] + receipts["rows_rejected"]).all()
    rejections = lake.read(demo_home, "ops", "rejection")
    rejected_rows = rejections.filter(pl.col("severity") == "error").select("receipt_id", "table", "row_number").unique()
    assert rejected_rows.height == receipts["rows_rejected"].sum() > 0


def test_every_asset_materialized_and_checks_passed(demo_home):
    with dg.DagsterInstance.from_config(str(demo_home.dagster_home)) as instance:
        records = instance.get_run_records()
        assert records and all(r.dagster_run.is_success for r in records)
        keys = {k for k in dg.AssetSelection.all().resolve(
            __import__("pipelines.definitions", fromlist=["defs"]).defs.resolve_asset_graph())}
        for key in keys:
            assert instance.get_latest_materialization_event(key) is not None, key.to_user_string()
        # The first build has nothing to remember: every record without an ID went through the model.
        link = instance.get_latest_materialization_event(dg.AssetKey(["lake", "mart", "person_link"]))
        metadata = link.asset_materialization.metadata
        assert metadata["resolution/records_scored"].value > 0
        assert metadata["resolution/records_kept"].value == 0


def test_marts_hold_rows_and_warehouse_serves_them(demo_home):
    contracts = load_contracts()
    with duckdb.connect(str(demo_home.warehouse), read_only=True) as con:
        for name in ("person", "place", "event", "object", "organization", "grid"):
            lake_rows = lake.read(demo_home, "mart", name).height
            assert lake_rows > 0, name
            assert con.sql(f"SELECT count(*) FROM mart.{name}").fetchone()[0] == lake_rows
        comment = con.sql(
            "SELECT comment FROM duckdb_tables() WHERE schema_name='mart' AND table_name='person'"
        ).fetchone()[0]
        assert comment and contracts.table("mart.person").title in comment
        # The data directory and the quality loop are published beside the marts.
        assert con.sql("SELECT count(*) FROM catalog.resource").fetchone()[0] == len(contracts.tables)
        assert con.sql("SELECT count(*) FROM quality.issue WHERE status = 'open'").fetchone()[0] > 0
        assert con.sql("SELECT count(*) FROM ops.file_receipt").fetchone()[0] > 0


def test_resending_a_file_changes_nothing(demo_home):
    archived = sorted((demo_home.root / "archive" / "police").glob("实有人口_*.csv"))[-1]
    before = lake.read(demo_home, "silver", "police_population").height
    bronze_before = lake.read(demo_home, "bronze", "police_population").height
    shutil.copy(archived, demo_home.inbox("police") / f"copy_of_{archived.name}")
    assert main(["--home", str(demo_home.root), "process", "--source", "police"]) == 0
    receipts = lake.read(demo_home, "ops", "file_receipt").sort("received_at")
    assert receipts["status"][-1] == "duplicate"
    assert lake.read(demo_home, "silver", "police_population").height == before
    assert lake.read(demo_home, "bronze", "police_population").height == bronze_before


NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.py"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_analyst_notebook_runs_on_the_demo_warehouse(demo_home, notebook, monkeypatch, capsys):
    monkeypatch.setenv("REDWALL_HOME", str(demo_home.root))
    runpy.run_path(str(notebook), run_name="__main__")
    assert capsys.readouterr().out.count("shape:") >= 3  # every result frame printed


def _strings_in_warehouse(path) -> set[str]:
    """Every distinct text value of every table (the file itself is compressed, so ask DuckDB)."""
    values: set[str] = set()
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.sql("SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                          "WHERE data_type = 'VARCHAR' AND NOT internal").fetchall()
        for schema, table, column in columns:
            values |= {v for (v,) in con.sql(f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}"').fetchall() if v}
    return values


def test_no_raw_id_or_phone_leaves_the_restricted_zone(demo_home):
    """The shared warehouse, Dagster's event log and run storage, the receipts and the demo's own
    output hold no ID number or phone number of any generated person."""
    from redwall.warehouse import restricted_path

    persons = pl.read_parquet(demo_home.truth / "persons.parquet")
    secrets = set(persons["id_number"].drop_nulls()) | set(persons["phone"].drop_nulls())
    assert len(secrets) > 1000
    candidates = re.compile(r"\d{17}[\dXx]|1[3-9]\d{9}")

    def leaked(texts) -> set[str]:
        return {m for text in texts for m in candidates.findall(text) if m in secrets}

    assert leaked(_strings_in_warehouse(demo_home.warehouse)) == set()
    assert leaked(_strings_in_warehouse(restricted_path(demo_home)))  # there they are: the scan can fail
    files = [demo_home.root / "demo_output.txt",
             *(p for p in demo_home.dagster_home.rglob("*") if p.is_file()),
             *(p for d in ("archive", "rejected") for p in (demo_home.root / d).rglob("*")
               if p.suffix in (".txt", ".json"))]
    assert len(files) > 10
    leaks = {str(p.relative_to(demo_home.root)) for p in files
             if leaked([p.read_bytes().decode("utf-8", errors="replace")])}
    assert leaks == set()


def test_a_shrunk_police_snapshot_stops_publishing_with_a_plain_answer(demo_home, capsys):
    """Last in this file: it leaves the demo home with a blocked build."""
    latest = sorted((demo_home.root / "archive" / "police").glob("实有人口_*.csv"))[-1]
    head = b"\n".join(latest.read_bytes().split(b"\n")[:51]) + b"\n"  # the header and 50 persons
    day = int(latest.stem.split("_")[1]) + 1
    (demo_home.inbox("police") / f"实有人口_{day}.csv").write_bytes(head)
    published = demo_home.warehouse.stat().st_mtime_ns
    assert main(["--home", str(demo_home.root), "build"]) == 1
    told = capsys.readouterr().err
    assert "build_all FAILED" in told and "police_snapshot_not_shrunk" in told and "Traceback" not in told
    assert "[ERROR] snapshots=" in told or "latest_to_previous=" in told
    assert demo_home.warehouse.stat().st_mtime_ns == published  # dashboards keep the last good publish
