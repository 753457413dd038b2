"""What a run did, in a few lines for the terminal: files and rows per source, marts, where to look.

Every command printed here (and in the CLI's error hints) names the virtualenv's own programs by
their full path, so it works as printed in the README's set-up, which never activates the
virtualenv."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import polars as pl

from redwall import lake
from redwall.dashboard import dashboard_path
from redwall.home import Home
from redwall.schemas import load_contracts

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = PROJECT_ROOT / "notebooks"


def program(name: str) -> str:
    """The full path of ``name`` (``redwall``, ``python``, ``jupyter``…) in this interpreter's
    virtualenv, quoted for a shell."""
    return shlex.quote(str(Path(sys.executable).parent / name))


def redwall_command(home: Home, *args: str) -> str:
    """``redwall --home <home> <args>`` as a shell command that works without an activated venv."""
    return " ".join([program("redwall"), "--home", shlex.quote(str(home.root)), *args])


def warehouse_example(home: Home) -> str:
    """A one-line query of the shared warehouse: residents per community."""
    code = (
        f"import duckdb; print(duckdb.connect({json.dumps(str(home.warehouse))}, read_only=True).sql("
        '"SELECT community_name, sum(residents)::BIGINT AS residents FROM mart.grid GROUP BY 1 ORDER BY 2 DESC"))'
    )
    return f"{program('python')} -c {shlex.quote(code)}"


def notebook_command(home: Home) -> str:
    """JupyterLab on the analysts' notebooks, reading this home's warehouse."""
    return f"REDWALL_HOME={shlex.quote(str(home.root))} {program('jupyter')} lab {shlex.quote(str(NOTEBOOKS))}"


def print_summary(home: Home, seconds: float) -> None:
    receipts = lake.read(home, "ops", "file_receipt")
    print(f"\ndone in {seconds:.1f}s — data home {home.root}\n")
    if receipts.height:
        by_source = (
            receipts.group_by("source")
            .agg(
                pl.len().alias("files"),
                pl.col("rows_read").sum(),
                pl.col("rows_accepted").sum(),
                pl.col("rows_rejected").sum(),
                (pl.col("status") == "rejected").sum().alias("files_rejected"),
            )
            .sort("source")
        )
        print(f"{'source':<12}{'files':>7}{'rows read':>12}{'accepted':>12}{'rejected':>10}{'bad files':>11}")
        for r in by_source.iter_rows(named=True):
            print(
                f"{r['source']:<12}{r['files']:>7}{r['rows_read']:>12,}{r['rows_accepted']:>12,}"
                f"{r['rows_rejected']:>10,}{r['files_rejected']:>11}"
            )
    print("\nmarts (published as schema `mart` in the warehouse):")
    for t in load_contracts().marts:
        rows = (
            lake.scan(home, "mart", t.name).select(pl.len()).collect().item()
            if lake.exists(home, "mart", t.name)
            else 0
        )
        print(f"  mart.{t.name:<14}{rows:>10,}  {t.title}")
    print(f"""
where to look next:
  dashboard   {dashboard_path(home)}  (the street dashboard: open it in a browser, no server needed)
  warehouse   {home.warehouse}  (schemas mart, quality, catalog, ops, ref; tables: {PROJECT_ROOT / "docs" / "warehouse.md"})
              e.g. residents per community:
              {warehouse_example(home)}
  notebooks   {notebook_command(home)}
  templates   {home.published / "templates"}   catalogue {home.published / "catalog"}
  outbox      {home.outbox}  (rectification lists per street in rectification/<street code>/, ledger error workbooks)
  receipts    {home.root / "archive"}/<source>/*回执*  and ops.file_receipt in the warehouse
  rejected    {home.root / "rejected"}
  Dagster UI  {redwall_command(home, "ui")}   → http://localhost:3000
""")
