"""Held deliveries in the Dagster UI: on the silver asset of every snapshot table, a check that no
delivery of it waits for a decision, with the figures of each that does (see
:mod:`redwall.ingest.holds`). It warns and blocks nothing: a held delivery was not applied, so
what is downstream is as right as before, and later deliveries keep flowing. An analyst clears it
with the ``release_delivery`` job (or ``redwall release`` / ``redwall discard``)."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl

from redwall.assets import keys
from redwall.assets.metadata import CheckFacts
from redwall.home import Home
from redwall.ingest import holds
from redwall.schemas import Table

NO_DELIVERY_HELD = "no_delivery_held"
SHOWN = [
    "receipt_id",
    "file_name",
    "as_of",
    "scope",
    "records_current",
    "records_closing",
    "closing_share",
    "rows_read",
    "rows_rejected",
    "refused_share",
]


def held_check_spec(table: Table) -> dg.AssetCheckSpec:
    hold = table.hold_limits
    return dg.AssetCheckSpec(
        NO_DELIVERY_HELD,
        asset=keys.silver(table),
        description=f"没有待确认的快照：将使超过{hold.closing:.0%}的现行记录置为失效、或超过{hold.refused:.0%}的行被拒收的"
        f"快照（至少{hold.at_least}条）暂不应用，由分析员用 release_delivery 作业放行或作废",
    )


def held_check(home: Home, table: Table) -> dg.AssetCheckResult:
    """Passes while no delivery of ``table`` is held; lists those that are, with their figures."""
    return dg.AssetCheckResult(**_held_facts(home, table))


def held_check_evaluation(home: Home, table: Table) -> dg.AssetCheckEvaluation:
    """The same, for an op that changed what is held (the ``release_delivery`` job)."""
    return dg.AssetCheckEvaluation(**_held_facts(home, table))


def _held_facts(home: Home, table: Table) -> CheckFacts:
    waiting = holds.pending(home).filter(pl.col("table") == table.key).sort("held_at")
    hold = table.hold_limits
    metadata: dict[str, Any] = {
        "held": waiting.height,
        "closing_limit": hold.closing,
        "refused_limit": hold.refused,
        "at_least": hold.at_least,
    }
    if waiting.height:
        latest = waiting.row(-1, named=True)
        metadata |= {
            "records_current": latest["records_current"],
            "records_closing": latest["records_closing"],
            "closing_share": latest["closing_share"],
            "refused_share": latest["refused_share"],
            "held_deliveries": dg.MetadataValue.md(_markdown(waiting.select(SHOWN))),
            "decide_with": "release_delivery job, or: redwall release|discard <receipt_id> --by … --why …",
        }
    return {
        "asset_key": keys.silver(table),
        "check_name": NO_DELIVERY_HELD,
        "passed": waiting.is_empty(),
        "severity": dg.AssetCheckSeverity.WARN,
        "metadata": metadata,
    }


def _markdown(frame: pl.DataFrame) -> str:
    rows = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    rows += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(rows)
