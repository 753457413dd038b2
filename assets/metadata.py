"""What an analyst sees of a contract in the Dagster UI: description, column schema with Chinese
labels, sharing and sensitivity tags, and a freshness policy from the update cycle."""

from __future__ import annotations

from typing import Any, TypedDict

import dagster as dg

from redwall.schemas import DELIVERY_GRACE, SENSITIVITY, Table, load_contracts


class CheckFacts(TypedDict):
    """A check's outcome, as the keyword arguments of both ``dg.AssetCheckResult`` (inside an asset)
    and ``dg.AssetCheckEvaluation`` (logged by an op that changed what the check sees)."""

    asset_key: dg.AssetKey
    check_name: str
    passed: bool
    severity: dg.AssetCheckSeverity
    metadata: dict[str, Any]


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type,
                description=f"{c.label}（{SENSITIVITY[c.sensitivity]}）"
                + (f" {c.description}" if c.description else ""),
                constraints=dg.TableColumnConstraints(nullable=not c.required),
            )
            for c in table.all_columns
        ]
    )


def spec_metadata(table: Table, layer: str) -> dict[str, object]:
    return {
        "dagster/column_schema": column_schema(table),
        "contract": table.key,
        "title": table.title,
        "provider": table.provider["name"],
        "sharing": table.catalogue["sharing"],
        "update_cycle": table.catalogue["update_cycle"],
        "layer": layer,
    }


def freshness(*tables: Table) -> dg.FreshnessPolicy | None:
    """Overdue as the department view counts a delivery overdue, by the strictest update cycle of
    the tables. Dagster judges it from the last materialisation, and a silver table materialises
    only when a delivery was accepted into it, so this measures deliveries, not runs."""
    windows = [DELIVERY_GRACE[c] for t in tables if (c := t.catalogue["update_cycle"]) in DELIVERY_GRACE]
    return dg.FreshnessPolicy.time_window(fail_window=min(windows)) if windows else None


def description(table: Table, layer: str) -> str:
    """Plain text: the UI's lists show a description as typed, so markdown would show as ``**``."""
    return f"{table.title}（{layer}）：{table.abstract}"


def owners(table: Table) -> list[str]:
    """Who answers for a table in the UI: its contract's provider, as a Dagster team."""
    return [f"team:{table.provider['name']}"]


def centre_owners() -> list[str]:
    """The centre's own assets (quality loop, catalogue, warehouse, dashboard): the marts' provider."""
    return sorted({owner for t in load_contracts().marts for owner in owners(t)})
