"""Ingestion assets, one factory for every source: files in ``inbox/<source>`` land in bronze
(lossless, with lineage) and are conformed into silver (typed, current, with history).

One multi-asset per source, because one file can feed several tables (a grid-app upload carries
events, status steps, visits and inspections) and its receipt must account for all of them.

A run materialises only the tables its deliveries touched: bronze where a file's rows landed,
silver where a delivery was accepted. A duplicate, an empty or a refused file materialises
nothing, so a table's last materialisation is its last delivery — what its freshness policy and
the automation downstream (``pipelines.automation``) go by. Every file answered, whatever its
answer (a duplicate, a refusal, a hold), materialises the source's receipts
(``lake/ops/file_receipt/<source>``), so the quality loop, the catalogue and the warehouse publish
that answer soon after, without waiting for a real delivery. The checks run on every table each
time: they judge the table as it stands.
"""

from collections import Counter
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from redwall import lake
from redwall.assets import keys
from redwall.assets.holds import held_check, held_check_spec
from redwall.assets.metadata import CheckFacts, centre_owners, description, freshness, owners, spec_metadata
from redwall.assets.resources import RedwallHome
from redwall.ingest import compact, layouts, process_files, process_source
from redwall.ingest.layouts import LAYOUT_REFUSALS
from redwall.schemas import Contracts, load_contracts


def _table_facts(home, layer: str, name: str) -> dict[str, Any]:
    if not lake.exists(home, layer, name):
        return {"dagster/row_count": 0}
    frame = lake.scan(home, layer, name)
    if layer == "silver":
        frame = frame.filter(pl.col("_valid_to").is_null())
    return {
        "dagster/row_count": frame.select(pl.len()).collect().item(),
        "delta_version": lake.open_table(home, layer, name).version(),
    }


class IngestConfig(dg.Config):
    """Which inbox files to take; the inbox sensors pass only files that are complete."""

    # the launchpad shows a field's description, not its docstring
    files: list[str] = Field(
        default_factory=list, description="要接收的收件箱文件（相对数据目录的路径）；不填则接收全部待处理文件"
    )


# Check names are constants: the graph snapshot and the UI refer to them.
KEYS_UNIQUE = "current_keys_unique"
RECEIPTS_BALANCE = "receipts_balance"
FEED_LAYOUT_INTACT = "feed_layout_intact"
# Receipt statuses of a delivery whose accepted rows were applied to silver.
APPLIED = ("accepted", "partially_accepted")


def touched(receipts) -> tuple[set[str], set[str]]:
    """The contract tables the deliveries landed rows in (bronze), and those they applied (silver)."""
    landed = {key for r in receipts if r.rows_read for key in r.tables}
    applied = {key for r in receipts if r.status in APPLIED and r.rows_accepted for key in r.tables}
    return landed, applied


def _keys_unique(home, table) -> dg.AssetCheckResult:
    """Among current silver rows, the business key identifies one row (a contract promise)."""
    if not lake.exists(home, "silver", table.bronze_name):
        return dg.AssetCheckResult(
            asset_key=keys.silver(table), check_name=KEYS_UNIQUE, passed=True, metadata={"rows": 0}
        )
    current = lake.scan(home, "silver", table.bronze_name).filter(pl.col("_valid_to").is_null())
    counts = current.select(pl.len().alias("rows"), pl.struct(list(table.keys)).n_unique().alias("keys")).collect()
    rows, distinct = counts.row(0)
    return dg.AssetCheckResult(
        asset_key=keys.silver(table),
        check_name=KEYS_UNIQUE,
        passed=rows == distinct,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows": rows,
            "distinct_keys": distinct,
            "duplicate_rows": rows - distinct,
            "keys": ", ".join(table.keys),
        },
    )


def _receipts_balance(receipts, asset_key) -> dg.AssetCheckResult:
    """Nothing is lost: every row read is either accepted or rejected with a reason."""
    unbalanced = [r.file_name for r in receipts if r.rows_read != r.rows_accepted + r.rows_rejected]
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=RECEIPTS_BALANCE,
        passed=not unbalanced,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"files": len(receipts), "unbalanced_files": len(unbalanced)},
    )


def layout_facts(home, source: str, receipts=()) -> CheckFacts:
    """The ``feed_layout_intact`` check of a source (:mod:`redwall.ingest.layouts`): a feed whose
    required column vanished is a broken feed, and publishing waits until it is fixed or released.
    Judged on every delivery so far, not a run's alone: a table whose latest delivery was refused
    for its layout stays broken until a later delivery of it loads or an analyst releases it. A file
    recognised as no table at all (a stray 会议纪要.csv among the ledgers, one of this run's
    ``receipts``) is answered and counted, never blocking."""
    broken = layouts.broken(home, source)
    stray = [r for r in receipts if r.refusal in LAYOUT_REFUSALS and not r.tables]
    metadata: dict[str, Any] = {
        "files": len(receipts),
        "files_with_changed_layout": broken["receipt_id"].n_unique(),
        "tables_with_changed_layout": ", ".join(broken["table"]),
        "stray_files": len(stray),
        **{f"refused/{refusal}": n for refusal, n in sorted(Counter(broken["refusal"]).items())},
    }
    if broken.height:
        metadata |= {
            "refused_receipts": ", ".join(dict.fromkeys(broken["receipt_id"])),
            "release_with": "release_layout job, or: redwall release <receipt_id> --by … --why …",
        }
    return {
        "asset_key": layout_key(source),
        "check_name": FEED_LAYOUT_INTACT,
        "passed": broken.is_empty(),
        "severity": dg.AssetCheckSeverity.ERROR,
        "metadata": metadata,
    }


def layout_key(source: str, contracts: Contracts | None = None) -> dg.AssetKey:
    """The asset the layout check hangs on: the source's first silver table (a blocking check gates
    the assets that depend on its own asset, and the marts depend on silver)."""
    return keys.silver((contracts or load_contracts()).source_tables(source)[0])


def ingest_assets(source: str, contracts: Contracts) -> dg.AssetsDefinition:
    tables = contracts.source_tables(source)
    # The receipt check hangs on the source's first bronze table: receipts are per file, not per table.
    receipts_key = keys.bronze(tables[0])
    check_specs = [
        dg.AssetCheckSpec(RECEIPTS_BALANCE, asset=receipts_key, description="每个文件：读入行数 = 接收行数 + 拒收行数"),
        dg.AssetCheckSpec(
            FEED_LAYOUT_INTACT,
            asset=layout_key(source, contracts),
            blocking=True,
            description="每张表最近一次报送没有因必填列缺失或表头无法识别而整体拒收（数据源格式变化）；"
            "分析员确认后可用 release_layout 作业放行；无法识别为任何表的零散文件只回执、不阻断",
        ),
    ]
    check_specs += [
        dg.AssetCheckSpec(
            KEYS_UNIQUE,
            asset=keys.silver(t),
            blocking=True,
            description=f"现行记录按业务主键（{', '.join(t.keys)}）唯一",
        )
        for t in tables
    ]
    check_specs += [held_check_spec(t) for t in tables if t.hold]
    specs = [
        dg.AssetSpec(
            keys.receipts(source),
            group_name=source,
            kinds={"delta", "polars"},
            description=f"{source} 每个报送文件的回执（ops.file_receipt 中本来源的行，及其列出的拒收行 ops.rejection）："
            "接收、部分接收、整体拒收、待确认和重复文件都有回执，每次接收后更新，随后发布到共享数据仓库。",
            tags={"layer": "ops"},
            owners=centre_owners(),
            skippable=True,
        )
    ]
    for t in tables:
        specs.append(
            dg.AssetSpec(
                keys.bronze(t),
                group_name=source,
                kinds={"delta", "polars"},
                description=description(t, "bronze：原样落地，含来源文件和行号"),
                metadata=spec_metadata(t, "bronze"),
                tags={"layer": "bronze"},
                owners=owners(t),
                skippable=True,
            )
        )
        specs.append(
            dg.AssetSpec(
                keys.silver(t),
                deps=[keys.bronze(t)],
                group_name=source,
                kinds={"delta", "polars"},
                description=description(t, "silver：类型化、规范化，保留历史"),
                metadata=spec_metadata(t, "silver"),
                tags={"layer": "silver"},
                owners=owners(t),
                freshness_policy=freshness(t),
                skippable=True,
            )
        )

    # One pool per source: two runs must never load the same source at once (see home.DAGSTER_YAML).
    @dg.multi_asset(
        name=f"ingest_{source}", specs=specs, check_specs=check_specs, can_subset=False, pool=f"inbox_{source}"
    )
    def _ingest(context: dg.AssetExecutionContext, config: IngestConfig, redwall: RedwallHome):
        home = redwall.home()
        if config.files:
            receipts = process_files(home, source, [home.root / f for f in config.files if (home.root / f).exists()])
            compact(home, source)
        else:
            receipts = process_source(home, source)
        statuses = Counter(r.status for r in receipts)
        context.log.info(
            f"{source}: {len(receipts)} file(s) — " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        )
        run_facts = {
            "files": len(receipts),
            **{f"files/{status}": n for status, n in sorted(statuses.items())},
            "rows_read": sum(r.rows_read for r in receipts),
            "rows_accepted": sum(r.rows_accepted for r in receipts),
            "rows_rejected": sum(r.rows_rejected for r in receipts),
        }
        landed, applied = touched(receipts)
        if receipts:
            yield dg.MaterializeResult(asset_key=keys.receipts(source), metadata=run_facts)
        for t in tables:
            if t.key in landed:
                yield dg.MaterializeResult(
                    asset_key=keys.bronze(t), metadata=_table_facts(home, "bronze", t.bronze_name)
                )
            if t.key in applied:
                yield dg.MaterializeResult(
                    asset_key=keys.silver(t),
                    metadata={**_table_facts(home, "silver", t.bronze_name), **run_facts},
                )
            yield _keys_unique(home, t)
            if t.hold:
                yield held_check(home, t)
        yield _receipts_balance(receipts, receipts_key)
        yield dg.AssetCheckResult(**layout_facts(home, source, receipts))

    return _ingest


def all_ingest_assets(contracts: Contracts | None = None) -> list[dg.AssetsDefinition]:
    contracts = contracts or load_contracts()
    return [ingest_assets(source, contracts) for source in contracts.sources]
