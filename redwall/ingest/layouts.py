"""Broken layouts: a table whose latest delivery was refused whole because its layout changed (a
required column vanished, the header no longer matches any spelling the contract accepts) is
broken, and publishing waits (the blocking check ``feed_layout_intact``). It stays broken until a
later delivery of the table loads — or an analyst **releases** it, saying who and why: the source
has stopped sending the table, a file went to the wrong folder and the right one follows, the
sender was told and the rest may go on meanwhile. The refused file stays refused (its rows lack a
column they need, so nothing can be applied), the table is judged by its last good delivery again,
and the next refusal of it breaks it anew. ``ops/layout_release`` keeps every release.
"""

from __future__ import annotations

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.ingest.holds import CannotDecide, Decision
from redwall.ingest.receipts import LAYOUT_RELEASES as RELEASES
from redwall.ingest.receipts import OPS, RECEIPTS
from redwall.schemas import load_contracts

# Refusals that mean the source changed its layout (a column vanished or was renamed), not a bad row.
LAYOUT_REFUSALS = ("required_column_missing", "header_unrecognised")
RELEASED = "released"
RELEASE_SCHEMA = load_contracts().table(f"{OPS}.{RELEASES}").schema()  # schemas/system/ops.yaml
BROKEN_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "table": pl.String,
    "receipt_id": pl.String,
    "source": pl.String,
    "file_name": pl.String,
    "refusal": pl.String,
    "received_at": pl.Datetime("us", "UTC"),
}


def broken(home: Home, source: str | None = None) -> pl.DataFrame:
    """The tables (of ``source``) whose latest delivery was refused for its layout and not
    released, one row each with that delivery's receipt, oldest first."""
    found = lake.read(
        home,
        OPS,
        RECEIPTS,
        columns=["receipt_id", "source", "tables", "refusal", "received_at", "file_name"],
        where=None if source is None else pl.col("source") == source,
    )
    if found.is_empty():
        return pl.DataFrame(schema=BROKEN_SCHEMA)
    latest = (
        found.explode("tables")
        .drop_nulls("tables")
        .rename({"tables": "table"})
        .sort("received_at")
        .group_by("table")
        .last()
        .filter(
            pl.col("refusal").is_in(LAYOUT_REFUSALS)
            & ~pl.col("receipt_id").is_in(released(home)["receipt_id"].to_list())
        )
    )
    return latest.select(BROKEN_SCHEMA.keys()).sort("received_at", "table")


def released(home: Home) -> pl.DataFrame:
    """Every release of a broken layout, newest first."""
    if not lake.exists(home, OPS, RELEASES):
        return pl.DataFrame(schema=RELEASE_SCHEMA)
    return lake.read(home, OPS, RELEASES).sort("decided_at", descending=True)


def release(home: Home, receipt_id: str, by: str, reason: str) -> dict:
    """Release the tables whose latest delivery, refused for its layout, is ``receipt_id``; returns
    the release as recorded. :class:`CannotDecide` when that receipt breaks no table (another delivery of it came
    since, it was released already, or it was refused for another reason)."""
    decision = Decision.now(RELEASED, by, reason)
    tables = broken(home).filter(pl.col("receipt_id") == receipt_id)
    if tables.is_empty():
        raise CannotDecide(
            f"receipt {receipt_id} is not the latest delivery of a table refused for its layout; "
            "`redwall held` lists those that block"
        )
    first = tables.row(0, named=True)
    entry = pl.DataFrame(
        [
            {
                "receipt_id": receipt_id,
                "source": first["source"],
                "file_name": first["file_name"],
                "tables": sorted(tables["table"]),
                "refusal": first["refusal"],
                "received_at": first["received_at"],
                "decided_by": decision.by,
                "decided_at": decision.at,
                "decision_reason": decision.reason,
            }
        ],
        schema=RELEASE_SCHEMA,
    )
    lake.replace(home, OPS, RELEASES, entry, where=lake.one_of("receipt_id", [receipt_id]))
    return entry.row(0, named=True)
