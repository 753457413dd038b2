"""The quality-control closed loop in Dagster: ``quality/issue`` (detect, route, re-check, close,
waive; rectification lists to the outbox) and ``quality/loop_metrics`` (how well the loop works).

The error rate over the threshold is a blocking check: a wrong load would mislead everyone
downstream. (A police snapshot far smaller than the register is held at ingestion, before it
reaches silver: see :mod:`assets.holds`.)"""

import datetime as dt
from typing import cast
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
from pydantic import Field

from redwall import lake
from redwall.assets import keys
from redwall.assets.automation import follows_deliveries
from redwall.assets.metadata import centre_owners, description
from redwall.assets.resources import RedwallHome
from redwall.quality.docs import docs_index
from redwall.quality.loop import CLOSED, ISSUES, LAYER, METRICS, OPEN, WAIVED, Waiver, loop_metrics, markdown, run_loop
from redwall.quality.outbox import write_outbox
from redwall.schemas import load_contracts
from redwall.worktime import TIME_ZONE

ISSUE_KEY, METRICS_KEY = keys.QUALITY_ISSUE, keys.QUALITY_METRICS
ERROR_RATE = "open_error_rate_below_threshold"
MAX_ERROR_RATE = 0.5  # half of a source failing means a broken feed, not sloppy rows


class WaiverConfig(dg.Config):
    issue_id: str = Field(description="问题编号（quality.issue 的 issue_id）")
    reason: str = Field(description="豁免理由")
    by: str = Field(description="批准人")


class LoopConfig(dg.Config):
    """Waivers granted by an authorised analyst for this run (recorded in the issue table)."""

    waivers: list[WaiverConfig] = Field(
        default_factory=list, description="授权分析员本次运行批准的豁免（记入整改问题表）"
    )
    full_rebuild: bool = Field(
        default=False,
        description="全量复核：规则集校验全部现行记录、重新从 bronze 还原全部拒收记录，而不只是有变化的（结果相同）",
    )


def _error_rate(metrics: pl.DataFrame) -> dg.AssetCheckResult:
    by_source = metrics.group_by("source").agg(pl.col("failure_rate").sum()).sort("source")
    worst = cast(float | None, by_source["failure_rate"].max()) if by_source.height else 0.0
    return dg.AssetCheckResult(
        check_name=ERROR_RATE,
        asset_key=METRICS_KEY,
        passed=(worst or 0.0) <= MAX_ERROR_RATE,
        metadata={"threshold": MAX_ERROR_RATE, **{f"failure_rate/{s}": round(r, 4) for s, r in by_source.iter_rows()}},
    )


def quality_assets() -> list:
    contracts = load_contracts()
    silver = [keys.silver(t) for t in contracts.feeds + contracts.ledgers]
    marts = [keys.mart(contracts.table(name)) for name in ("mart.person", "mart.address_issue")]
    # the rows a receipt refused are issues too, a wholly refused file's included
    receipts = [keys.receipts(source) for source in contracts.sources]

    # Automated like the marts: the blocking checks below only guard what they run before.
    @dg.asset(
        key=ISSUE_KEY,
        deps=[*silver, *marts, *receipts],
        group_name="quality",
        kinds={"delta", "polars"},
        automation_condition=follows_deliveries(),
        owners=centre_owners(),
        description=description(contracts.table(f"{LAYER}.{ISSUES}"), LAYER)
        + "；入库拒收/警告、规则集、跨源规则和地址核实发现的问题，按街道、网格、社区和报送部门分派，"
        "复核后自动关闭；各街道的整改清单写入 outbox/rectification/<街道编码>/，台账错误标注表写入 outbox/ledgers/。",
    )
    def issue(context: dg.AssetExecutionContext, config: LoopConfig, redwall: RedwallHome):
        home = redwall.home()
        cost: dict[str, tuple[int, int]] = {}
        waivers = [Waiver(w.issue_id, w.reason, w.by) for w in config.waivers]
        issues = run_loop(home, waivers, full=config.full_rebuild, cost=cost)
        files = write_outbox(home, issues, full=config.full_rebuild)
        # one numeric entry per figure, so the UI plots each over the runs
        by_status = dict(issues.group_by("status").len().iter_rows())
        open_by_rule = issues.filter(pl.col("status") == OPEN).group_by("rule").len().sort("rule")
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": issues.height,
                **{status: int(by_status.get(status, 0)) for status in (OPEN, CLOSED, WAIVED)},
                **{f"open/{rule}": n for rule, n in open_by_rule.iter_rows()},
                "waivers_applied": len(config.waivers),
                # what this run cost: rows judged again against rows the lake holds (silver, rejections)
                "rows_processed": sum(done for done, _ in cost.values()),
                "rows_in_lake": sum(rows for _, rows in cost.values()),
                **{f"processed/{table}": done for table, (done, _) in sorted(cost.items())},
                **{f"outbox_files/{kind}": n for kind, n in files.items()},
                "data_docs": dg.MetadataValue.path(str(docs_index(home))),
            }
        )

    @dg.asset(
        key=METRICS_KEY,
        deps=[ISSUE_KEY],
        group_name="quality",
        kinds={"delta", "polars"},
        automation_condition=follows_deliveries(),
        check_specs=[
            dg.AssetCheckSpec(
                ERROR_RATE,
                asset=METRICS_KEY,
                blocking=True,
                description=f"各来源待整改问题率不超过{MAX_ERROR_RATE:.0%}",
            )
        ],
        owners=centre_owners(),
        description=description(contracts.table(f"{LAYER}.{METRICS}"), LAYER)
        + f"；明细在共享数据仓库 {LAYER}.{METRICS}。",
    )
    def loop_metrics_asset(context: dg.AssetExecutionContext, redwall: RedwallHome):
        home = redwall.home()
        today = dt.datetime.now(ZoneInfo(TIME_ZONE)).date()
        metrics = loop_metrics(home, lake.read(home, LAYER, ISSUES), today)
        # the UI shows a summary per source; every row is in the warehouse's quality.loop_metrics
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": metrics.height,
                "loop_by_source": dg.MetadataValue.md(markdown(metrics)),
                "table": f"{LAYER}.{METRICS}（共享数据仓库，全部 {metrics.height} 行）",
            }
        )
        yield _error_rate(metrics)

    return [issue, loop_metrics_asset]
