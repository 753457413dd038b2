"""What a run did, in a few lines for the terminal: files and rows per source, marts, where to look."""

from __future__ import annotations

import polars as pl

from redwall import lake
from redwall.home import Home
from schemas import load_contracts


def print_summary(home: Home, seconds: float) -> None:
    receipts = lake.read(home, "ops", "file_receipt")
    print(f"\ndone in {seconds:.1f}s — data home {home.root}\n")
    if receipts.height:
        by_source = (
            receipts.group_by("source")
            .agg(pl.len().alias("files"), pl.col("rows_read").sum(), pl.col("rows_accepted").sum(),
                 pl.col("rows_rejected").sum(), (pl.col("status") == "rejected").sum().alias("files_rejected"))
            .sort("source")
        )
        print(f"{'source':<12}{'files':>7}{'rows read':>12}{'accepted':>12}{'rejected':>10}{'bad files':>11}")
        for r in by_source.iter_rows(named=True):
            print(f"{r['source']:<12}{r['files']:>7}{r['rows_read']:>12,}{r['rows_accepted']:>12,}"
                  f"{r['rows_rejected']:>10,}{r['files_rejected']:>11}")
    print("\nmarts (published as schema `mart` in the warehouse):")
    for t in load_contracts().marts:
        rows = lake.scan(home, "mart", t.name).select(pl.len()).collect().item() if lake.exists(home, "mart", t.name) else 0
        print(f"  mart.{t.name:<14}{rows:>10,}  {t.title}")
    print(f"""
where to look next:
  warehouse   {home.warehouse}  (schemas mart, quality, catalog, ops, ref)
              e.g. residents per community:
              python -c "import duckdb; print(duckdb.connect('{home.warehouse}', read_only=True).sql('SELECT community_name, sum(residents) FROM mart.grid GROUP BY 1'))"
  notebook    REDWALL_HOME={home.root} python notebooks/grid_overview.py
  templates   {home.published / 'templates'}   catalogue {home.published / 'catalog'}
  outbox      {home.outbox}  (rectification lists per grid and department, ledger error workbooks)
  receipts    {home.root / 'archive'}/<source>/*回执*  and ops.file_receipt in the warehouse
  rejected    {home.root / 'rejected'}
  Dagster UI  redwall --home {home.root} ui   → http://localhost:3000
""")
