"""The street dashboard (街道驾驶舱): one self-contained HTML file a leader opens in a browser on the
intranet, with no internet and no server (``published/dashboard/index.html``).

Everything is drawn here, from the shared warehouse only, as inline CSS and SVG
(:mod:`redwall.offline`: nothing is fetched, and the browser is told to refuse any request). It
shows aggregates only — counts per street, community and grid, trends per day, buildings as points sized by their
residents — never a row about a person.

The file is written beside the old one and renamed into place, so a leader who reloads never sees
half a page.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from redwall.home import Home
from redwall.marts.person import BY_PERSON_TYPE, RESIDENT_COUNTS
from redwall.offline import FONTS, page, write_atomically
from redwall.offline import escape as _e
from redwall.schemas import load_contracts
from redwall.worktime import TIME_ZONE

TREND_DAYS = 28
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
)


# The residents a key figure counts, all and by person type with those no register lists (key figure →
# mart.grid column: registered → registered_residents), each labelled as its contract labels it.
RESIDENT_FIGURES = {c.removesuffix("_residents"): c for c in RESIDENT_COUNTS}
BY_TYPE = list(BY_PERSON_TYPE)  # the columns of mart.grid and mart.community by person type


def _label(table: str, column: str) -> str:
    return load_contracts().table(table).column(column).label


def dashboard_path(home: Home) -> Path:
    return home.published / "dashboard" / "index.html"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: int | float | None
    unit: str = ""

    @property
    def shown(self) -> str:
        return fmt(self.value) + self.unit if self.value is not None else "—"


def fmt(value: int | float | None) -> str:
    """Whole numbers with thousands separators, shares as one-decimal percentages' numbers."""
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> dict:
    return _rows(con, sql)[0]


# -- what the page shows, from the warehouse -----------------------------------------------------------
def key_figures(con: duckdb.DuckDBPyConnection) -> list[Figure]:
    residents = ", ".join(f"sum({c})::BIGINT AS {c}" for c in RESIDENT_FIGURES.values())
    people = _one(
        con,
        f"""
        SELECT {residents},
               coalesce(sum(living_alone), 0)::BIGINT AS living_alone, coalesce(sum(very_old), 0)::BIGINT AS very_old,
               coalesce(sum(disabled), 0)::BIGINT AS disabled, coalesce(sum(dibao), 0)::BIGINT AS dibao,
               count(DISTINCT community_code)::BIGINT AS communities, count(*)::BIGINT AS grids
        FROM mart.grid""",
    )
    events = _one(
        con,
        """
        SELECT count(*) AS events, count(*) FILTER (WHERE is_open) AS open, count(*) FILTER (WHERE overdue) AS overdue,
               round(avg(on_time::INT) * 100, 1) AS on_time_pct
        FROM mart.event""",
    )
    issues = _one(
        con,
        """
        SELECT count(*) FILTER (WHERE status = 'open') AS open, count(*) FILTER (WHERE status = 'closed') AS closed
        FROM quality.issue""",
    )
    care = _one(
        con, "SELECT count(*) AS persons, count(*) FILTER (WHERE visit_overdue) AS overdue FROM mart.care_visit"
    )
    return [
        *(Figure(key, _label("mart.grid", c), people[c], "人") for key, c in RESIDENT_FIGURES.items()),
        Figure("communities", "社区", people["communities"], "个"),
        Figure("grids", "网格", people["grids"], "个"),
        Figure("living_alone", "独居老人", people["living_alone"], "人"),
        Figure("very_old", "高龄老人", people["very_old"], "人"),
        Figure("disabled", "残疾人", people["disabled"], "人"),
        Figure("dibao", "低保对象", people["dibao"], "人"),
        Figure("care_overdue", "关爱走访逾期", care["overdue"], "人"),
        Figure("events", "城市管理事件", events["events"], "件"),
        Figure("events_open", "未办结", events["open"], "件"),
        Figure("events_overdue", "超时未办结", events["overdue"], "件"),
        Figure(
            "on_time_pct", "按时反馈率", None if events["on_time_pct"] is None else float(events["on_time_pct"]), "%"
        ),
        Figure("issues_open", "待整改问题", issues["open"], "条"),
        Figure("issues_closed", "已整改问题", issues["closed"], "条"),
    ]


def _daily(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], end: dt.date) -> list[dict]:
    """Per Beijing day of the last :data:`TREND_DAYS` up to ``end``: a count per ``columns`` (label →
    timestamp column, with an optional ``column:condition``)."""
    start = end - dt.timedelta(days=TREND_DAYS - 1)
    counts = {}
    for label, spec in columns.items():
        column, _, condition = spec.partition(":")
        for day, n in con.execute(
            f"SELECT timezone('{TIME_ZONE}', {column})::DATE AS day, count(*) FROM {table} "
            f"WHERE {column} IS NOT NULL {'AND ' + condition if condition else ''} GROUP BY 1"
        ).fetchall():
            counts[(label, day)] = n
    days = [start + dt.timedelta(days=i) for i in range(TREND_DAYS)]
    return [{"day": d, **{label: counts.get((label, d), 0) for label in columns}} for d in days]


def _latest_day(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The day of the newest event or issue the warehouse knows of (the data's day, not the clock's)."""
    (day,) = con.execute(f"""
        SELECT max(d) FROM (
            SELECT max(timezone('{TIME_ZONE}', reported_at))::DATE AS d FROM mart.event
            UNION ALL SELECT max(timezone('{TIME_ZONE}', last_seen))::DATE FROM quality.issue)""").fetchall()[0]
    return day or dt.datetime.now(ZoneInfo(TIME_ZONE)).date()


# -- drawing ---------------------------------------------------------------------------------------
def bar_chart(rows: list[dict], series: dict[str, str], *, title: str, x: str = "day") -> str:
    """Grouped vertical bars: ``series`` maps a row field to its colour; a legend names them."""
    width, height, left, bottom, top = 900, 240, 40, 36, 28
    peak = max([r[s] for r in rows for s in series] + [1])
    slot = (width - left - 10) / max(len(rows), 1)
    bar = slot * 0.8 / len(series)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f'<text x="{left}" y="16" class="chart-title">{_e(title)}</text>',
    ]
    for step in range(5):
        value = peak * step / 4
        y = height - bottom - (height - bottom - top) * step / 4
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid-line"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value:.0f}</text>'
        )
    for i, row in enumerate(rows):
        x0 = left + i * slot + slot * 0.1
        for j, (field, colour) in enumerate(series.items()):
            h = (height - bottom - top) * row[field] / peak
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(row[x])} {_e(field)}：{row[field]}</title></rect>'
            )
        if len(rows) <= 14 or i % 7 == 0:
            label = row[x].strftime("%m-%d") if isinstance(row[x], dt.date) else str(row[x])
            parts.append(
                f'<text x="{x0 + slot * 0.4:.1f}" y="{height - bottom + 14}" class="axis" '
                f'text-anchor="middle">{_e(label)}</text>'
            )
    for j, (field, colour) in enumerate(series.items()):
        parts.append(
            f'<rect x="{width - 220 + j * 105}" y="6" width="12" height="12" fill="{colour}"/>'
            f'<text x="{width - 204 + j * 105}" y="17" class="axis">{_e(field)}</text>'
        )
    return "".join(parts) + "</svg>"


def _hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull of ``points`` (Andrew's monotone chain), counter-clockwise."""
    points = sorted(set(points))
    if len(points) < 3:
        return points

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in points:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(points):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def building_map(buildings: list[dict], communities: list[str]) -> str:
    """Buildings as points from their district-register coordinates, sized by residents and coloured
    by community, over the outline (convex hull) of each grid's buildings."""
    placed = [b for b in buildings if b["lon"] is not None and b["lat"] is not None]
    if not placed:
        return '<p class="note">楼栋登记中没有坐标，无法绘制分布图。</p>'
    pad = 20
    lons, lats = [b["lon"] for b in placed], [b["lat"] for b in placed]
    west, south = min(lons), min(lats)
    squeeze = math.cos(math.radians(sum(lats) / len(lats)))  # a degree of longitude is shorter here
    span_x, span_y = max((max(lons) - west) * squeeze, 1e-6), max(max(lats) - south, 1e-6)
    scale = min((1200 - 2 * pad) / span_x, (640 - 2 * pad) / span_y)  # the street's shape, at most 1200×640
    width, height = span_x * scale + 2 * pad, span_y * scale + 2 * pad

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return pad + (lon - west) * squeeze * scale, height - pad - (lat - south) * scale

    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(communities)}
    parts = [
        f'<svg viewBox="0 0 {width:.0f} {height:.0f}" class="map" style="max-width:{width:.0f}px" role="img" '
        'aria-label="楼栋分布">'
    ]
    grids: dict[str, list[tuple[float, float]]] = {}
    for b in placed:
        grids.setdefault(b["grid_code"] or "", []).append(xy(b["lon"], b["lat"]))
    for grid, points in sorted(grids.items()):
        hull = _hull(points)
        if len(hull) >= 3:
            cx, cy = sum(p[0] for p in hull) / len(hull), sum(p[1] for p in hull) / len(hull)
            parts.append(
                f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in hull)}" class="grid-area">'
                f"<title>网格 {_e(grid)}</title></polygon>"
                f'<text x="{cx:.1f}" y="{cy:.1f}" class="grid-label" text-anchor="middle">{_e(grid[-3:])}</text>'
            )
    peak = max(b["residents"] for b in placed) or 1
    for b in placed:
        x, y = xy(b["lon"], b["lat"])
        r = 2 + 7 * math.sqrt(b["residents"] / peak)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour.get(b["community_name"], "#999")}" '
            f'fill-opacity="0.75"><title>{_e(b["community_name"])} 网格{_e((b["grid_code"] or "")[-3:])}'
            f" 现住{b['residents']}人</title></circle>"
        )
    parts.append("</svg>")
    legend = "".join(f'<span class="legend"><i style="background:{colour[c]}"></i>{_e(c)}</span>' for c in communities)
    return "".join(parts) + f'<div class="legends">{legend}</div>'


def table(rows: list[dict], columns: dict[str, str], *, numeric: set[str]) -> str:
    head = "".join(
        f'<th class="num">{_e(label)}</th>' if c in numeric else f"<th>{_e(label)}</th>" for c, label in columns.items()
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{fmt(r[c])}</td>' if c in numeric else f"<td>{_e(r[c])}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = (
    """
body{font-family:"""
    + FONTS
    + """;margin:0;background:#f3f5f8;color:#1d2733}
header{background:#8b1a1a;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:26px} header p{margin:4px 0 0;font-size:14px;opacity:.9}
main{padding:18px 28px;max-width:1400px}
section{background:#fff;border-radius:6px;padding:14px 18px;margin-bottom:18px;box-shadow:0 1px 3px #0002}
h2{font-size:18px;margin:0 0 10px;border-left:4px solid #8b1a1a;padding-left:8px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{border:1px solid #e1e5ea;border-radius:6px;padding:8px 12px}
.card .label{font-size:13px;color:#5b6672} .card .value{font-size:24px;font-weight:bold;color:#8b1a1a}
.two{display:grid;grid-template-columns:1fr 1fr;gap:18px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e1e5ea;padding:4px 6px;text-align:left} th{background:#f7f8fa}
.num{text-align:right;font-variant-numeric:tabular-nums}
svg{width:100%;height:auto} .chart-title{font-size:14px;font-weight:bold} .axis{font-size:12px;fill:#5b6672}
.grid-line{stroke:#e1e5ea} .grid-area{fill:#8b1a1a10;stroke:#8b1a1a60;stroke-dasharray:4 3}
.grid-label{font-size:12px;fill:#8b1a1a}
.legends{font-size:13px} .legend{margin-right:14px;white-space:nowrap}
.legend i{display:inline-block;width:11px;height:11px;border-radius:50%;margin-right:4px;vertical-align:-1px}
.note{font-size:12px;color:#5b6672}
"""
)


def render(con: duckdb.DuckDBPyConnection, built_at: dt.datetime) -> str:
    street = _one(con, "SELECT any_value(street_name) AS name FROM mart.grid")["name"] or "街道"
    figures = key_figures(con)
    end = _latest_day(con)
    communities = _rows(con, "SELECT * FROM mart.community ORDER BY community_code")
    grids = _rows(
        con,
        """
        SELECT community_name, grid_code, residents, floating_residents, coalesce(living_alone, 0) + coalesce(very_old, 0) + coalesce(disabled, 0) + coalesce(dibao, 0) AS care,
               events_open, events_overdue, events_judged, events_on_time,
               round(events_on_time / nullif(events_judged, 0) * 100, 1) AS on_time_pct
        FROM mart.grid ORDER BY community_code, grid_code""",
    )
    care = {
        r["community_code"]: r
        for r in _rows(
            con,
            """
        SELECT community_code, count(*) FILTER (WHERE visit_overdue) AS care_overdue FROM mart.care_visit GROUP BY 1""",
        )
    }
    for c in communities:
        c["on_time_pct"] = None if c["on_time_rate"] is None else round(c["on_time_rate"] * 100, 1)
        # a grid's small care counts are not shared (null): the community's sum counts those shared
        c["care"] = sum(c[k] or 0 for k in ("living_alone", "very_old", "disabled", "dibao"))
        c["care_overdue"] = care.get(c["community_code"], {}).get("care_overdue", 0)
    buildings = _rows(
        con,
        """
        SELECT building_code, any_value(lon) AS lon, any_value(lat) AS lat, any_value(grid_code) AS grid_code,
               any_value(community_name) AS community_name, sum(residents)::BIGINT AS residents
        FROM mart.place GROUP BY building_code""",
    )
    events = _daily(con, "mart.event", {"上报": "reported_at", "结案": "closed_at:status = '08'"}, end)
    issues = _daily(con, "quality.issue", {"新发现": "first_seen", "已整改": "closed_at:status = 'closed'"}, end)
    by_source = _rows(
        con,
        """
        SELECT source_name, count(*) FILTER (WHERE status = 'open') AS open, count(*) FILTER (WHERE status = 'closed') AS closed
        FROM quality.issue GROUP BY 1 ORDER BY open DESC""",
    )
    cards = "".join(
        f'<div class="card"><div class="label">{_e(f.label)}</div>'
        f'<div class="value" data-figure="{f.key}">{_e(f.shown)}</div></div>'
        for f in figures
    )
    counts = {
        "residents",
        *BY_TYPE,
        "care",
        "care_overdue",
        "events_open",
        "events_overdue",
        "events_judged",
        "events_on_time",
        "on_time_pct",
        "grids",
        "open",
        "closed",
    }
    community_table = table(
        communities,
        {
            "community_name": "社区",
            "grids": "网格",
            "residents": "现住人口",
            **{c: _label("mart.community", c) for c in BY_TYPE},
            "care": "关爱标签",
            "care_overdue": "走访逾期",
            "events_open": "未办结",
            "events_overdue": "超时",
            "on_time_pct": "按时反馈率%",
        },
        numeric=counts,
    )
    grid_table = table(
        grids,
        {
            "community_name": "社区",
            "grid_code": "网格编码",
            "residents": "现住人口",
            "floating_residents": "流动",
            "care": "关爱标签",
            "events_open": "未办结",
            "events_overdue": "超时",
            "events_judged": "已判定",
            "events_on_time": "按时",
            "on_time_pct": "按时反馈率%",
        },
        numeric=counts,
    )
    source_table = table(by_source, {"source_name": "来源系统", "open": "待整改", "closed": "已整改"}, numeric=counts)
    local = built_at.astimezone(ZoneInfo(TIME_ZONE))
    return page(
        f"{street}驾驶舱",
        f"""<header><h1>{_e(street)} · 街道驾驶舱</h1>
<p>数据截至 {end:%Y年%m月%d日} · 生成于 {local:%Y-%m-%d %H:%M}（北京时间） · 仅含汇总数，不含个人信息</p></header>
<main>
<section><h2>关键指标</h2><div class="cards">{cards}</div>
<p class="note">按时反馈率：派遣后在处置时限内（按工作日历）反馈的事件占已有定论事件的比例；时限内尚未反馈和挂账的不计。
关爱标签：独居老人、高龄、残疾人、低保人数之和（一人可有多项）。</p></section>
<section><h2>楼栋分布</h2>{building_map(buildings, [c["community_name"] for c in communities])}
<p class="note">每个点是一栋楼（区级楼栋登记的坐标），大小表示现住人口；虚线为各网格楼栋的外包范围，数字为网格序号。</p></section>
<section class="two"><div><h2>事件趋势（近{TREND_DAYS}天）</h2>{bar_chart(events, {"上报": "#1f77b4", "结案": "#2ca02c"}, title="每日上报与结案事件数")}</div>
<div><h2>质量闭环趋势（近{TREND_DAYS}天）</h2>{bar_chart(issues, {"新发现": "#d62728", "已整改": "#2ca02c"}, title="每日新发现与已整改问题数")}
{source_table}</div></section>
<section><h2>各社区</h2>{community_table}</section>
<section><h2>各网格</h2>{grid_table}</section>
</main>""",
        STYLE,
    )


def build_dashboard(home: Home, built_at: dt.datetime | None = None) -> tuple[Path, list[Figure]]:
    """Write the dashboard of ``home``'s shared warehouse; returns its path and key figures."""
    built_at = built_at or dt.datetime.now(dt.UTC)
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        text, figures = render(con, built_at), key_figures(con)
    return write_atomically(dashboard_path(home), text, shared_from=home.published), figures
