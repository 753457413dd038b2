"""Asset keys read like storage paths: ``lake/<layer>/<table>`` and ``warehouse/<file>``."""

from __future__ import annotations

import dagster as dg

from redwall.schemas import Table


def bronze(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["lake", "bronze", table.bronze_name])


def silver(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["lake", "silver", table.bronze_name])


def mart(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["lake", "mart", table.name])


def receipts(source: str) -> dg.AssetKey:
    """A source's receipts: its rows of ``ops/file_receipt`` (with the rejections they list)."""
    return dg.AssetKey(["lake", "ops", "file_receipt", source])


WAREHOUSE = dg.AssetKey(["warehouse", "redwall"])
DASHBOARD = dg.AssetKey(["published", "dashboard"])
CATALOG = dg.AssetKey(["catalog", "resource_directory"])
TEMPLATES = dg.AssetKey(["catalog", "ledger_templates"])
QUALITY_ISSUE = dg.AssetKey(["quality", "issue"])
QUALITY_METRICS = dg.AssetKey(["quality", "loop_metrics"])
STREET_PACKAGE = dg.AssetKey(["outbox", "street_package"])
STREET_RECTIFICATION = dg.AssetKey(["outbox", "rectification"])
STREET_WAREHOUSE = dg.AssetKey(["warehouse", "street"])
