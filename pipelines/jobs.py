"""Jobs: one ingestion job per source (what its inbox sensor starts), ``build_all``, which
rebuilds everything downstream of the lake — marts, quality loop, data directory, warehouse —
from silver as it stands, ``share_upward``, a street's package for the district (one partition per
street), ``rebuild_street``, a street's rectification lists, warehouse extract and package (one
partition per street), ``release_delivery``, an analyst's decision on a held delivery, and ``release_layout``, an
analyst's release of a table blocked by a delivery refused for its layout.

Deliveries reach the warehouse by themselves (``pipelines.automation``); these jobs are for an
analyst who wants to rerun by hand (after a model change, say), and for ``redwall build``. The
two never share a run: ingestion materialises only the tables a delivery touched, and Dagster
skips a step whose inputs were not materialised in its run.
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from redwall import lake
from redwall.assets import keys
from redwall.assets.holds import held_check_evaluation
from redwall.assets.ingest import layout_facts
from redwall.assets.resources import RedwallHome
from redwall.ingest import discard, holds, layouts, release
from redwall.schemas import load_contracts

DOWNSTREAM_GROUPS = ("marts", "quality", "directory", "publish")


def ingest_job_name(source: str) -> str:
    return f"ingest_{source}_job"


def ingest_jobs() -> "list[dg.UnresolvedAssetJobDefinition]":
    return [
        dg.define_asset_job(
            ingest_job_name(source),
            selection=dg.AssetSelection.groups(source),
            tags={"redwall/source": source},  # the run queue lets one run per source value at a time
            description=f"接收 inbox/{source} 中每个完整的文件：原样落地（bronze）、规范化（silver），每个文件一张回执。",
        )
        for source in load_contracts().sources
    ]


build_all = dg.define_asset_job(
    "build_all",
    selection=dg.AssetSelection.groups(*DOWNSTREAM_GROUPS),
    description="由数据湖现状重建下游全部资产：主题库 → 质量闭环 → 资源目录 → 共享数据仓库和驾驶舱。"
    "文件报送后这些资产会自动跟进；需要手动重建时运行本作业。",
)


share_upward = dg.define_asset_job(
    "share_upward",
    selection=dg.AssetSelection.assets(keys.STREET_PACKAGE),
    description="导出街道共享数据包（每个街道一个分区）到 outbox/district/<街道编码>/，供区级平台接收；"
    "可选一个街道重建，或对全部街道补做。",
)


rebuild_street = dg.define_asset_job(
    "rebuild_street",
    selection=dg.AssetSelection.assets(keys.STREET_RECTIFICATION, keys.STREET_WAREHOUSE, keys.STREET_PACKAGE),
    description="重建一个街道（每个街道一个分区）的整改清单（outbox/rectification/<街道编码>/）、数据仓库抽取"
    "（warehouse/streets/<街道编码>.duckdb）和共享数据包；可选一个街道，或对全部街道补做。人员归并和质量闭环仍在全区范围进行。",
)


class DecisionConfig(dg.Config):
    """An analyst's decision on one held delivery (``redwall held`` or the ``no_delivery_held``
    check lists them): ``release`` applies it as an ordinary load would have, ``discard`` keeps it
    archived and unapplied. Who decides and why are recorded in ops.held_delivery and the receipt."""

    receipt_id: str = Field(description="回执编号（redwall held 或 no_delivery_held 检查列出）")
    decision: Literal["release", "discard"] = Field(description="release 放行（按原样应用）或 discard 作废（不予应用）")
    by: str = Field(description="确认人")
    reason: str = Field(description="理由，记入回执和 ops.held_delivery")


@dg.op
def decide_held_delivery(context: dg.OpExecutionContext, config: DecisionConfig, redwall: RedwallHome) -> None:
    """Carry the decision out, then record what it changed: a new materialization of the silver
    table it applied to (none when a newer snapshot superseded it), of the source's receipts, and
    the table's held check."""
    home = redwall.home()
    contracts = load_contracts()
    entry = holds.waiting(home, config.receipt_id)
    table = contracts.table(entry["table"])
    before = _version(home, table)
    decide = release if config.decision == "release" else discard
    receipt = decide(home, config.receipt_id, config.by, config.reason, contracts)
    context.log.info(f"{config.receipt_id}: {config.decision} by {config.by}; receipt now {receipt.status}")
    if _version(home, table) != before:
        context.log_event(
            dg.AssetMaterialization(
                keys.silver(table),
                metadata={"released_receipt": receipt.receipt_id, "rows_accepted": receipt.rows_accepted},
            )
        )
    # the receipt changed (released or discarded): the warehouse publishes it
    context.log_event(dg.AssetMaterialization(keys.receipts(table.source), metadata={"receipt_id": receipt.receipt_id}))
    context.log_event(held_check_evaluation(home, table))  # type: ignore[arg-type]  # log_event takes check evaluations; its annotation omits them


def _version(home, table) -> int | None:
    return (
        lake.open_table(home, "silver", table.bronze_name).version()
        if lake.exists(home, "silver", table.bronze_name)
        else None
    )


@dg.job(
    description="放行或作废一份待确认的报送（配置回执编号、release 或 discard、确认人和理由），确认人和理由记入回执和 "
    "ops.held_delivery。"
)
def release_delivery():
    decide_held_delivery()


class LayoutReleaseConfig(dg.Config):
    """An analyst's release of the tables a delivery refused for its layout blocks (the
    ``feed_layout_intact`` check or ``redwall held`` names its receipt): the file stays refused,
    the tables are judged by their last good delivery again. Who and why go to ops.layout_release."""

    receipt_id: str = Field(description="被拒收报送的回执编号（feed_layout_intact 检查或 redwall held 列出）")
    by: str = Field(description="放行人")
    reason: str = Field(description="理由，记入 ops.layout_release")


@dg.op
def release_broken_layout(context: dg.OpExecutionContext, config: LayoutReleaseConfig, redwall: RedwallHome) -> None:
    """Record the release, then the source's layout check as it now stands (it passes unless
    another table of the source is broken too), so that what waited on it follows."""
    home = redwall.home()
    released = layouts.release(home, config.receipt_id, config.by, config.reason)
    context.log.info(f"{config.receipt_id}: layout released by {config.by} for {', '.join(released['tables'])}")
    context.log_event(dg.AssetCheckEvaluation(**layout_facts(home, released["source"])))  # type: ignore[arg-type]  # as above


@dg.job(
    description="放行因格式变化（表头或必填列变化）被整体拒收、阻断发布的报送（配置回执编号、放行人和理由）："
    "文件仍为拒收，相关数据表按最近一次正常报送继续发布；放行人和理由记入 ops.layout_release。"
)
def release_layout():
    release_broken_layout()
