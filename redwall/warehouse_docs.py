"""``docs/warehouse.md``: the shared warehouse for a dashboard author, generated from a published
warehouse's own catalogue (every table and column with its type and Chinese comment, which come
from the contracts, schemas/marts/ and schemas/system/) plus example queries that the test
suite runs. Regenerate after a contract change with ``redwall regenerate docs``
(:mod:`redwall.generated`: it describes a small demo home built for the purpose).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

DOCS = Path(__file__).resolve().parent.parent / "docs" / "warehouse.md"

SCHEMAS = {
    "mart": "主题库：人、地、事、物、组织，网格、关爱走访（已按共享属性脱敏）",
    "quality": "质量闭环：整改问题和闭环指标",
    "catalog": "信息资源目录和部门视图",
    "ops": "文件回执、拒收明细、文件登记",
    "ref": "代码表、工作日历、国家标准代码",
}

# Example queries per table (title, SQL); every one is run against the demo warehouse by the tests.
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "mart.community": [
        (
            "各社区现住人口、关爱对象和按时反馈率",
            "SELECT community_name, residents, floating_residents, living_alone + very_old + disabled + dibao AS care_tags,\n"
            "       round(on_time_rate * 100, 1) AS on_time_pct\nFROM mart.community ORDER BY residents DESC",
        ),
    ],
    "mart.grid": [
        (
            "全街道现住人口（sum 的结果是 HUGEINT，转成 BIGINT）",
            "SELECT sum(residents)::BIGINT AS residents, sum(floating_residents)::BIGINT AS floating FROM mart.grid",
        ),
        (
            "未登记人员最多的网格（人口采集从这里入手）",
            "SELECT grid_code, community_name, residents, unregistered_residents\n"
            "FROM mart.grid WHERE unregistered_residents > 0 ORDER BY unregistered_residents DESC LIMIT 5",
        ),
        (
            "按时反馈率最低的网格",
            "SELECT grid_code, community_name, events_judged, events_on_time,\n"
            "       round(events_on_time / nullif(events_judged, 0) * 100, 1) AS on_time_pct\n"
            "FROM mart.grid ORDER BY on_time_pct NULLS LAST LIMIT 5",
        ),
    ],
    "mart.event": [
        (
            "各类事件的按时反馈率（街道考核口径：avg(on_time)，空值不计）",
            "SELECT major_name, class_name, count(*) AS events, count(on_time) AS judged,\n"
            "       round(avg(on_time::INT) * 100, 1) AS on_time_pct, count(*) FILTER (WHERE overdue) AS overdue\n"
            "FROM mart.event GROUP BY ALL ORDER BY events DESC",
        ),
        (
            "按当前环节（代码和名称）",
            "SELECT status, status_name, count(*) AS events FROM mart.event GROUP BY ALL ORDER BY status",
        ),
        (
            "每周上报量（北京时间，周一起）",
            "SELECT date_trunc('week', timezone('Asia/Shanghai', reported_at))::DATE AS week, count(*) AS reported\n"
            "FROM mart.event GROUP BY 1 ORDER BY 1",
        ),
    ],
    "mart.person": [
        (
            "在册人口按人员类型和性别",
            "SELECT person_type_name, sex_name, count(*) AS persons FROM mart.person\n"
            "WHERE status = '1' GROUP BY ALL ORDER BY persons DESC",
        ),
        (
            "人户分离的在册人口，按社区",
            "SELECT community_name, count(*) AS persons FROM mart.person\n"
            "WHERE status = '1' AND hukou_match_name = '人户分离' GROUP BY ALL ORDER BY persons DESC",
        ),
    ],
    "mart.place": [
        (
            "各楼栋的坐标和现住人口（看板的楼栋分布图）",
            "SELECT building_code, any_value(lon) AS lon, any_value(lat) AS lat, sum(residents)::BIGINT AS residents\n"
            "FROM mart.place GROUP BY building_code ORDER BY residents DESC LIMIT 10",
        ),
        ("房屋用途", "SELECT use_name, count(*) AS houses FROM mart.place WHERE house_code IS NOT NULL GROUP BY ALL"),
    ],
    "mart.care_visit": [
        (
            "各社区走访逾期的关爱对象数",
            "SELECT community_name, count(*) AS care_persons, count(*) FILTER (WHERE visit_overdue) AS overdue\n"
            "FROM mart.care_visit GROUP BY ALL ORDER BY overdue DESC",
        ),
    ],
    "quality.issue": [
        (
            "待整改问题，按来源和规则",
            "SELECT source_name, rule, count(*) AS open_issues FROM quality.issue\n"
            "WHERE status = 'open' GROUP BY ALL ORDER BY open_issues DESC",
        ),
        (
            "整改用时中位数（小时），按来源",
            "SELECT source_name, median(date_diff('minute', first_seen, closed_at)) / 60 AS median_hours\n"
            "FROM quality.issue WHERE status = 'closed' GROUP BY ALL",
        ),
    ],
    "quality.loop_metrics": [
        (
            "最近一次统计的失败率，按来源",
            "SELECT source_name, sum(open_issues)::BIGINT AS open_issues, max(failure_rate) AS worst_grid_rate\n"
            "FROM quality.loop_metrics WHERE run_date = (SELECT max(run_date) FROM quality.loop_metrics)\n"
            "GROUP BY ALL ORDER BY open_issues DESC",
        ),
    ],
    "ops.file_receipt": [
        (
            "各来源的文件和行数（处理结果代码和中文名称）",
            "SELECT source_name, status, status_name, count(*) AS files, sum(rows_read)::BIGINT AS rows_read,\n"
            "       sum(rows_rejected)::BIGINT AS rows_rejected\nFROM ops.file_receipt GROUP BY ALL ORDER BY 1, 2",
        ),
    ],
    "ops.rejection": [
        (
            "拒收最多的字段",
            "SELECT table_name, column_label, rule, count(*) AS rows FROM ops.rejection\n"
            "WHERE severity = 'error' GROUP BY ALL ORDER BY rows DESC LIMIT 10",
        ),
    ],
    "catalog.department": [
        (
            "各部门台账的报送是否按期",
            "SELECT department_name, title, last_status, delivery, rows_rejected, open_issues\n"
            "FROM catalog.department WHERE relation = '提供' ORDER BY department_name",
        ),
    ],
    "ref.codes": [
        ("一个代码集的代码和名称", "SELECT code, name FROM ref.codes WHERE list = 'event_status' ORDER BY code"),
    ],
}

HEADER = """# 共享数据仓库 `warehouse/redwall.duckdb`

<!-- generated by redwall/warehouse_docs.py from a published warehouse; do not edit by hand -->

看板和分析笔记本读取的共享数据仓库（DuckDB 文件）。每次发布整库原子替换，读者总是看到一个完整的版本；
请**只读**打开（`duckdb.connect(path, read_only=True)`，或在 DBeaver 等工具里设为只读），用完即关，
下次连接就能看到新发布的版本。

使用约定：

- **已脱敏**：证件号码、电话只有 `<列>_key` 假名（同一人在各表的假名相同，可以关联），不给脱敏显示值；
  没有姓名和房屋，地址只到楼栋，年龄只给5岁一段（`age_band`），迁入迁出只到月；自由文本里的证件号、电话
  已替换为 `[证件号已隐去]` / `[电话已隐去]`；敏感字段不出现。人员类表满足 k-匿名（同一组准标识符取值至少
  5人）：过于少见的人，其楼栋等最能认出人的值置空，仍少见的不发布，所以按楼栋等细项统计会比实有人数少。
  完整数据只在受限库，看板不用。
- **代码列旁边都有中文名称**：`sex` → `sex_name`，`status` → `status_name`，`street_code` → `street_name`，
  取自 `ref.codes`（按代码筛选，按名称展示）。
- **整数都是 BIGINT**。注意 DuckDB 的 `sum()` 对整数返回 HUGEINT（128 位），很多工具显示成小数：
  写成 `sum(x)::BIGINT`，或直接用已汇总的视图 `mart.community`。
- **时效只有一个口径**：按时反馈率 = `avg(mart.event.on_time::INT)`（时限内反馈的事件 / 已有定论的事件，
  时限内尚未反馈和挂账的不计）；`mart.grid` 的 `events_on_time / events_judged` 与之相同。
  `overdue` 是“超时未办结”（仍未办结且已超时限）。时间列为带时区的时间戳（UTC 存储），按北京时间
  统计时用 `timezone('Asia/Shanghai', 列)`。
- **列名无需加引号**：没有列以 SQL 保留字命名（来源表、字段列为 `table_name`、`column_name`）。
"""


def _table_section(con: duckdb.DuckDBPyConnection, schema: str, name: str, comment: str, kind: str) -> list[str]:
    columns = con.execute(
        "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
        "ORDER BY column_index",
        [schema, name],
    ).fetchall()
    lines = [
        f"### `{schema}.{name}`{'（视图）' if kind == 'view' else ''}",
        "",
        comment or "",
        "",
        "| 列 | 类型 | 说明 |",
        "|---|---|---|",
    ]
    lines += [f"| `{c}` | {t} | {(label or '').replace('|', '／')} |" for c, t, label in columns]
    for title, sql in EXAMPLES.get(f"{schema}.{name}", []):
        lines += ["", f"{title}：", "", "```sql", sql, "```"]
    return [*lines, ""]


def describe(path: Path) -> str:
    """The markdown of ``docs/warehouse.md`` for the shared warehouse at ``path``."""
    with duckdb.connect(str(path), read_only=True) as con:
        relations = con.execute(
            "SELECT schema_name, table_name, comment, 'table' FROM duckdb_tables() WHERE NOT internal "
            "UNION ALL SELECT schema_name, view_name, comment, 'view' FROM duckdb_views() WHERE NOT internal "
            "ORDER BY 1, 2"
        ).fetchall()
        lines = [HEADER]
        for schema, title in SCHEMAS.items():
            lines += [f"## `{schema}`：{title}", ""]
            for s, name, comment, kind in relations:
                if s == schema:
                    lines += _table_section(con, s, name, comment, kind)
    return "\n".join(lines).rstrip() + "\n"
