"""The curated marts (人、地、事、物、组织, grid and care visits) and their publication to the
shared DuckDB warehouse. Each mart's lineage comes from its contract's ``related`` tables."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
from pydantic import Field

from redwall import lake
from redwall.assets import keys
from redwall.assets.automation import follows_deliveries
from redwall.assets.mart_checks import mart_check_results, mart_check_specs
from redwall.assets.metadata import centre_owners, description, freshness, owners, spec_metadata
from redwall.assets.resources import PseudonymKey, RedwallHome
from redwall.assets.streets import register_streets
from redwall.marts import STATE, build_marts
from redwall.marts.resolution.linkage import EXACT_ID
from redwall.marts.tables import read_silver
from redwall.schemas import Contracts, load_contracts
from redwall.templates import template_file_name
from redwall.warehouse import k_anonymity, publish, too_rare
from redwall.worktime import SCHEDULE, TIME_ZONE, calendar_reach

CALENDAR_CHECK = "working_calendar_ahead"
K_ANONYMITY_CHECK = "shared_person_tables_k_anonymous"
CALENDAR_AHEAD_DAYS = 60  # time to add next year's holidays once the State Council publishes them


def calendar_check(asset_key: dg.AssetKey, today: dt.date, schedule: pl.DataFrame | None = None) -> dg.AssetCheckResult:
    """Warn while the working calendar (committed, plus the holiday schedules delivered as
    ``schedule``) ends within :data:`CALENDAR_AHEAD_DAYS`, saying how to extend it."""
    table = load_contracts().table(SCHEDULE)
    left = calendar_reach(today, schedule)
    ends = today + dt.timedelta(days=left)
    template = f"published/templates/{table.department_code}/{template_file_name(table)}"
    inbox = f"inbox/ledgers/{table.department_code}/"
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=CALENDAR_CHECK,
        passed=left >= CALENDAR_AHEAD_DAYS,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"days_left": left, "calendar_ends": str(ends), "template": template, "inbox": inbox},
        description=None
        if left >= CALENDAR_AHEAD_DAYS
        else f"工作日历只到{ends:%Y年%m月%d日}：请在国务院办公厅公布{ends.year + 1}年放假安排后，"
        f"按模板 {template} 填写该年度的放假日和调休上班日，放入 {inbox}；"
        "在此之前，超出日历的日期只按周一至周五计算，相关事件的时限标为暂算（provisional）。",
    )


class MartsConfig(dg.Config):
    # after a model change, or to settle links whose bridging record has since vanished
    full_resolution: bool = Field(
        default=False,
        description="对所有无证件号码的记录重新匹配打分，而不只是新增或变化的记录"
        "（更换匹配模型后，或起桥接作用的记录已消失时）",
    )
    full_rebuild: bool = Field(
        default=False, description="全量重建：每个主题库都重新写入，即使内容未变（结果与增量构建相同）"
    )


class PublishConfig(dg.Config):
    full_rebuild: bool = Field(
        default=False, description="全量发布：每张表都重新生成写入，而不只是自上次发布以来有变化的表（结果相同）"
    )


def mart_assets(contracts: Contracts | None = None) -> list[dg.AssetsDefinition]:
    contracts = contracts or load_contracts()
    marts = contracts.marts
    inputs = {
        t.name: [keys.silver(src) if src.kind != "mart" else keys.mart(src) for src in map(contracts.table, t.related)]
        for t in marts
    }
    # Built in one step: every mart waits for the blocking checks of all the step's inputs.
    step_inputs = set().union(*inputs.values()) - {keys.mart(t) for t in marts}
    specs = [
        dg.AssetSpec(
            keys.mart(t),
            deps=inputs[t.name],
            group_name="marts",
            kinds={"delta", "polars"},
            description=description(t, "mart"),
            metadata=spec_metadata(t, "mart"),
            tags={"layer": "mart"},
            owners=owners(t),
            freshness_policy=freshness(t),
            automation_condition=follows_deliveries(step_inputs),
        )
        for t in marts
    ]

    event = keys.mart(contracts.table("mart.event"))

    # Marts are built together: person resolution feeds person, place, grid and care_visit alike.
    @dg.multi_asset(
        name="marts",
        specs=specs,
        can_subset=False,
        check_specs=[
            dg.AssetCheckSpec(
                CALENDAR_CHECK,
                asset=event,
                description=f"工作日历（法定节假日和调休）至少覆盖未来{CALENDAR_AHEAD_DAYS}天，办结时限才算得准",
            ),
            *mart_check_specs(contracts),
        ],
    )
    def _marts(context: dg.AssetExecutionContext, config: MartsConfig, redwall: RedwallHome):
        home = redwall.home()
        written: dict[str, bool] = {}
        cost: dict[str, tuple[int, int]] = {}
        counts = build_marts(home, full=config.full_resolution or config.full_rebuild, written=written, cost=cost)
        computed = [name for name, (done, _) in cost.items() if done]
        context.log.info(f"marts computed again: {len(computed)} of {len(cost)} ({', '.join(computed) or 'none'})")
        # How incremental the resolution was: records without an ID the model scored this run.
        state = lake.read(home, *STATE)
        by_model = lake.read(home, "mart", "person_link").filter(pl.col("match_rule") != EXACT_ID).height
        scored = int(state["scored"].sum())
        resolution = {"resolution/records_scored": scored, "resolution/records_kept": by_model - scored}
        context.log.info(f"person resolution: {scored} of {by_model} records without an ID scored by the model")
        if new := register_streets(context.instance, home):  # each street of the register is a partition
            context.log.info(f"streets now partitions: {', '.join(new)}")
        # Dagster wants a mart after the marts it depends on: build_marts counts in that order.
        for name, rows in counts.items():
            yield dg.MaterializeResult(
                asset_key=keys.mart(contracts.table(f"mart.{name}")),
                metadata={
                    "dagster/row_count": rows,
                    # what this run cost: a mart whose inputs and as_of-dependence did not change is
                    # not computed at all; one computed the same as before is not written again (the
                    # publish keeps it too)
                    "rows_computed": cost[name][0],
                    "rows_written": rows if written[name] else 0,
                    **(resolution if name == "person_link" else {}),
                },
            )
        schedule = read_silver(home, (SCHEDULE,))[SCHEDULE]
        yield calendar_check(event, dt.datetime.now(ZoneInfo(TIME_ZONE)).date(), schedule)
        yield from mart_check_results(home, contracts)

    @dg.asset(
        # Quality comes first: its blocking checks keep a bad load out of the shared warehouse.
        key=keys.WAREHOUSE,
        # every source's receipts too: a refused or duplicate file's answer is published without waiting
        # for a real delivery (the marts then go out as they stand)
        deps=[
            *(keys.mart(t) for t in marts),
            keys.CATALOG,
            keys.QUALITY_ISSUE,
            keys.QUALITY_METRICS,
            *(keys.receipts(source) for source in contracts.sources),
        ],
        group_name="publish",
        kinds={"duckdb"},
        owners=centre_owners(),
        description=(
            "共享数据仓库 warehouse/redwall.duckdb：各主题库（mart）按目录共享属性脱敏后发布，代码列旁附中文名称，"
            "整库原子替换，看板读取时不会看到写了一半的库。完整数据只写入受限库（仅属主可读）。表和示例查询见 docs/warehouse.md。"
        ),
        freshness_policy=freshness(*marts),  # as fresh as the most often updated mart it publishes
        check_specs=[
            dg.AssetCheckSpec(
                K_ANONYMITY_CHECK,
                asset=keys.WAREHOUSE,
                blocking=True,
                description="共享库每张人员表的 k-匿名度（同一组准标识符取值的最少人数）不低于其共享类型的要求："
                "有条件共享至少5人，无条件共享至少10人；人员表之间按人员假名关联后同样计算（join/person_key）；"
                "网格、房屋表公布的人数（1至k-1的小数已置空）最小值同样不低于k；不达标的库不会发布",
            )
        ],
        automation_condition=follows_deliveries(),
    )
    def warehouse(
        context: dg.AssetExecutionContext, config: PublishConfig, redwall: RedwallHome, pseudonym_key: PseudonymKey
    ) -> dg.MaterializeResult:
        home = redwall.home()
        cost: dict[str, tuple[int, int]] = {}
        # refuses to switch in a warehouse whose person tables are too rare
        counts = publish(home, pseudonym_key.secret, full=config.full_rebuild, cost=cost)
        figures = k_anonymity(home.warehouse)
        made = sum(done for done, _ in cost.values())
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(home.warehouse)),
                "tables": len(counts),
                # what this publish cost: tables made again against tables kept from the last version
                "tables_made": made,
                "tables_kept": len(cost) - made,
                **{f"rows/{table}": rows for table, rows in counts.items()},
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=K_ANONYMITY_CHECK,
                    passed=not any(map(too_rare, figures.values())),
                    metadata={f"{table}/{name}": value for table, f in figures.items() for name, value in f.items()},
                )
            ],
        )

    return [_marts, warehouse]
