"""The data docs: the latest suite validation of each silver table as pages that open offline,
under ``published/quality/data_docs/`` (open ``index.html``).

Great Expectations' own site builder loads Bootstrap, jQuery, Font Awesome and Vega from public
CDNs, so on the centre's intranet it renders as an unstyled page of links. These pages are drawn
here instead (:mod:`redwall.offline`: inline CSS, nothing fetched): per table, each expectation
with its rule, column, rows checked, rows failing and the share.

The loop validates each table once, with the failing rows' positions (it needs them for issues);
what reaches the docs is a *summary* of that result: counts and percentages only. Every list of
unexpected values, indexes or rows is dropped before storing, and the pages show only the summary
keys, so no ID, phone or name can appear in the HTML. The site is rebuilt whole each run in a
sibling folder and swapped into place, so it shows exactly the latest validation per table.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

from redwall.home import Home
from redwall.offline import FONTS, escape, page, write_atomically
from redwall.schemas import code_lists, load_contracts
from redwall.worktime import TIME_ZONE

# what a summarised expectation result keeps: counts and shares, never values
SUMMARY_KEYS = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)
STYLE = (
    """
body{font-family:"""
    + FONTS
    + """;margin:24px;color:#1d2733;background:#f3f5f8}
h1{font-size:22px;margin:0 0 6px} p{margin:4px 0 14px;font-size:13px;color:#5b6672}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;box-shadow:0 1px 3px #0002}
th,td{border-bottom:1px solid #e1e5ea;padding:5px 8px;text-align:left} th{background:#f7f8fa;white-space:nowrap}
td.pass,td.fail{white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums} .fail{color:#b3261e;font-weight:bold} .pass{color:#1e7b34}
a{color:#8b1a1a}
"""
)


FIGURES = "tables.json"  # each page's counts, for the index when only some tables were validated


def docs_folder(home: Home) -> Path:
    return home.published / "quality" / "data_docs"


def docs_index(home: Home) -> Path:
    return docs_folder(home) / "index.html"


def summarise(result):
    """``result`` (an ExpectationSuiteValidationResult) stripped to counts, in place; returned."""
    for r in result.results:
        r.result = {k: v for k, v in (r.result or {}).items() if k in SUMMARY_KEYS}
        if r.exception_info and r.exception_info.get("exception_traceback"):
            r.exception_info = {**r.exception_info, "exception_traceback": None}
    return result


def _table_name(suite) -> str:
    return suite.name.removeprefix("silver.")


def _percent(value) -> str:
    return "" if value is None else f"{float(value):.2f}%"


def _table_page(suite, result, titles: dict[str, str], labels: dict[str, dict[str, str]]) -> str:
    from redwall.quality.suites import RULES_ZH

    name = _table_name(suite)
    severities = code_lists()["severity"]
    rows = []
    for r in result.results:
        meta = r.expectation_config.meta or {}
        column = meta.get("column") or r.expectation_config.kwargs.get("column") or ""
        label = labels.get(name, {}).get(column, column)
        rule, severity = meta.get("rule") or "", meta.get("severity") or ""
        counts = {k: r.result.get(k) for k in SUMMARY_KEYS}  # nothing but the summary, whatever was kept
        rows.append(
            f'<tr><td class="{"pass" if r.success else "fail"}">{"通过" if r.success else "未通过"}</td>'
            f"<td>{escape(label)}<br><small>{escape(column)}</small></td>"
            f"<td>{escape(RULES_ZH.get(rule, rule).format(label=label))}<br>"
            f"<small>{escape(r.expectation_config.type)}</small></td>"
            f"<td>{escape(severities.get(severity, severity))}</td>"
            f'<td class="num">{escape(counts["element_count"] if counts["element_count"] is not None else "")}</td>'
            f'<td class="num">{escape(counts["unexpected_count"] if counts["unexpected_count"] is not None else "")}</td>'
            f'<td class="num">{_percent(counts["unexpected_percent"])}</td>'
            f'<td class="num">{escape(counts["missing_count"] if counts["missing_count"] is not None else "")}</td></tr>'
        )
    body = (
        f"<h1>{escape(titles.get(name, name))}（{escape(name)}）</h1>"
        f'<p><a href="../index.html">← 全部数据表</a> · 规则集 {escape(suite.name)}：{len(result.results)} 条期望，'
        f"{sum(not r.success for r in result.results)} 条未通过；只列计数，不含任何取值。</p>"
        '<table><thead><tr><th>结果</th><th>字段</th><th>规则</th><th>严重程度</th><th class="num">检查行数</th>'
        '<th class="num">不符合行数</th><th class="num">不符合比例</th><th class="num">空值行数</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return page(f"数据质量：{titles.get(name, name)}", body, STYLE)


def _figures(suite, result) -> dict:
    """What the index shows of one table's validation: counts only."""
    return {
        "table": _table_name(suite),
        "checked": max((r.result.get("element_count") or 0 for r in result.results), default=0),
        "expectations": len(result.results),
        "failed": sum(not r.success for r in result.results),
    }


def _index_page(figures: list[dict], titles: dict[str, str], built_at: dt.datetime) -> str:
    rows = []
    for f in sorted(figures, key=lambda f: f["table"]):
        name = f["table"]
        rows.append(
            f'<tr><td><a href="validations/{escape(name)}.html">{escape(titles.get(name, name))}</a><br>'
            f'<small>{escape(name)}</small></td><td class="num">{f["checked"]:,}</td>'
            f'<td class="num">{f["expectations"]}</td>'
            f'<td class="num {"fail" if f["failed"] else "pass"}">{f["failed"]}</td></tr>'
        )
    local = built_at.astimezone(ZoneInfo(TIME_ZONE))
    body = (
        "<h1>数据质量校验（规则集）</h1>"
        f"<p>各接入数据表最近一次规则集校验，生成于 {local:%Y-%m-%d %H:%M}（北京时间）。"
        "日常运行只校验新增或变化的记录（检查行数即本次校验的行数），未变化的数据表保留上次的校验结果。"
        "未通过的记录进入整改问题（quality.issue），复核通过后自动关闭。</p>"
        '<table><thead><tr><th>数据表</th><th class="num">检查行数</th><th class="num">期望数</th>'
        f'<th class="num">未通过</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return page("数据质量校验", body, STYLE)


def build_data_docs(
    home: Home, validations: list[tuple], built_at: dt.datetime | None = None, keep_others: bool = False
) -> Path:
    """Write the data docs for ``validations`` (``(suite, summarised result)`` per table, as
    :func:`redwall.quality.suites.validate` keeps them); returns the path of ``index.html``. With
    ``keep_others``, the tables not validated now keep the page of their last validation."""
    contracts = load_contracts()
    tables = contracts.feeds + contracts.ledgers
    titles = {t.bronze_name: t.title for t in tables}
    labels = {t.bronze_name: {c.name: c.label for c in t.all_columns} for t in tables}
    target = docs_folder(home)
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    figures = {}
    if keep_others and (target / FIGURES).is_file():
        for f in json.loads((target / FIGURES).read_text(encoding="utf-8")):
            page_ = target / "validations" / f"{f['table']}.html"
            if page_.is_file():
                write_atomically(
                    building / "validations" / page_.name, page_.read_text(encoding="utf-8"), shared_from=home.published
                )
                figures[f["table"]] = f
    for suite, result in validations:
        write_atomically(
            building / "validations" / f"{_table_name(suite)}.html",
            _table_page(suite, result, titles, labels),
            shared_from=home.published,
        )
        figures[_table_name(suite)] = _figures(suite, result)
    write_atomically(
        building / "index.html",
        _index_page(list(figures.values()), titles, built_at or dt.datetime.now(dt.UTC)),
        shared_from=home.published,
    )
    write_atomically(
        building / FIGURES, json.dumps(sorted(figures.values(), key=lambda f: f["table"])), shared_from=home.published
    )
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    return docs_index(home)
