"""The upward leg of the four-level platform (市区街居): a street's package for its district.

A package holds, for one street, every table of the ``street_package`` feed contract: the marts a
table ``shares``, exactly as the shared warehouse publishes them (:func:`redwall.privacy.shared_view`:
keyed pseudonyms, free text scrubbed, person tables k-anonymous) and cut to the contract's columns,
which take only what a mart shared without condition may carry; and the street's rectification
issues counted per source. Each table is written as ``<table>_<street>_<YYYYMMDD>.parquet`` with its
data dictionary ``<same stem>.dict.json`` (field → Chinese name, type, and for a coded field its
codes): the exchange form redwall takes the city's data in. Dropped into a district redwall's
``inbox/street_package/``, a package is taken in like any feed, each the truth for its own street.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.marts.tables import read_typed
from redwall.privacy import pseudonym_key, shared_view
from redwall.quality.loop import CLOSED, ISSUES, OPEN, WAIVED
from redwall.quality.loop import LAYER as QUALITY
from redwall.schemas import Table, code_lists, load_contracts
from redwall.worktime import TIME_ZONE

SOURCE = "street_package"
DICTIONARY = ".dict.json"


def streets(home: Home) -> list[str]:
    """The streets of the home's current grid register: a street centre's one, a district's all."""
    grids = lake.read(home, "silver", "district_grid", columns=["street_code", "_valid_to"])
    if not grids.height:
        return []
    return sorted(grids.filter(pl.col("_valid_to").is_null())["street_code"].drop_nulls().unique())


def package_folder(home: Home, street: str) -> Path:
    """Where a street's package waits to go up: ``outbox/district/<street code>/``."""
    return home.outbox / "district" / street


def export_package(
    home: Home, street: str, folder: Path | None = None, on: dt.date | None = None, secret: str | None = None
) -> dict[str, int]:
    """Write ``street``'s package into ``folder`` (default :func:`package_folder`, emptied first),
    pseudonymised as the shared warehouse is (``secret``: see :func:`redwall.privacy.pseudonym_key`);
    returns rows per table. Raises :class:`redwall.privacy.MissingKeyError` without a pseudonym key."""
    key = pseudonym_key(home, secret)
    day = on or dt.datetime.now(ZoneInfo(TIME_ZONE)).date()
    folder = folder or package_folder(home, street)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"*_{street}_*"):
        old.unlink()
    written = {}
    for table in load_contracts().source_tables(SOURCE):
        frame = (_shared(home, table.shares, street, key) if table.shares else _quality(home, street)).select(
            c.name for c in table.columns
        )
        stem = f"{table.name}_{street}_{day:%Y%m%d}"
        (folder / f"{stem}{DICTIONARY}").write_text(
            json.dumps(_dictionary(table), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        # the data file last and whole: a district's inbox sensor never takes half of one
        partial = folder / f"{stem}.parquet.partial"
        frame.write_parquet(partial)
        os.replace(partial, folder / f"{stem}.parquet")
        written[table.name] = frame.height
    return written


def _shared(home: Home, shares: str, street: str, key: bytes) -> pl.DataFrame:
    mart = load_contracts().table(shares)
    frame = read_typed(home, "mart", mart.name, mart.schema()).filter(pl.col("street_code") == street)
    return shared_view(frame, mart, key)


def _quality(home: Home, street: str) -> pl.DataFrame:
    """The street's rectification issues per source: open (and of them errors, kept out), closed, waived."""
    schema = {"street_code": pl.String, "source": pl.String, "status": pl.String, "severity": pl.String}
    issues = lake.read(home, QUALITY, ISSUES, columns=list(schema)) if lake.exists(home, QUALITY, ISSUES) else None
    issues = issues if issues is not None and issues.height else pl.DataFrame(schema=schema)
    status = pl.col("status")
    return (
        issues.filter(pl.col("street_code") == street)
        .group_by("street_code", "source")
        .agg(
            issues_open=(status == OPEN).sum(),
            issues_open_errors=((status == OPEN) & (pl.col("severity") == "error")).sum(),
            issues_closed=(status == CLOSED).sum(),
            issues_waived=(status == WAIVED).sum(),
        )
        .with_columns(pl.exclude("street_code", "source").cast(pl.Int64))
        .sort("source")
    )


def _dictionary(table: Table) -> dict[str, dict]:
    """The exchange's data dictionary: per field its Chinese name and type; a coded field is
    delivered as codes, which it lists."""
    entries = {}
    for c in table.columns:
        entry: dict[str, object] = {"name": c.label, "type": {"code": "string", "json": "string"}.get(c.type, c.type)}
        if c.codes in code_lists():
            entry |= {"encoding": "code", "codes": code_lists()[c.codes]}
        entries[c.field or c.name] = entry
    return entries
