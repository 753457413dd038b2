"""What goes back to people: rectification lists (整改清单) per grid and per department, and for
each ledger file with problems an error workbook (错误标注表) of its own rows, bad cells highlighted
and commented. Regenerated whole each run from ``quality/issue`` and ``ops/rejection``."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import PatternFill

from quality.loop import ISSUE_LABELS
from redwall import lake
from redwall.home import Home
from redwall.ingest.receipts import OPS, REJECTIONS
from schemas import load_contracts

SEVERITY_ZH = {"error": "错误（未入库）", "warning": "警告（已入库待更正）"}
STATUS_ZH = {"open": "待整改", "closed": "已整改", "waived": "已豁免"}
BAD = PatternFill("solid", fgColor="FFC7CE")


def _listed(issues: pl.DataFrame) -> pl.DataFrame:
    contracts = load_contracts()
    titles = {t.key: t.title for t in contracts.tables.values()}
    labels = {(t.key, c.name): c.label for t in contracts.tables.values() for c in t.all_columns}
    # the issue columns a list shows, with values a reader understands, headed by their labels
    return issues.sort("severity", "first_seen").select(
        "issue_id", pl.col("table").replace_strict(titles, default=pl.col("table")),
        "file_path", "row_number",
        pl.struct("table", "column").map_elements(lambda r: labels.get((r["table"], r["column"]), ""),
                                                  return_dtype=pl.String).alias("column"),
        "message_zh", pl.col("severity").replace_strict(SEVERITY_ZH),
        pl.col("first_seen").dt.convert_time_zone("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M"),
        pl.col("last_seen").dt.convert_time_zone("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M"),
        "community_code", "grid_code",
    ).rename(ISSUE_LABELS, strict=False)


def write_outbox(home: Home, issues: pl.DataFrame) -> dict[str, int]:
    """Rectification lists of open issues, per grid (``网格_<code>.xlsx``), per ledger department
    (``部门_<code>.xlsx``), and issues no grid could be found for, per source system
    (``未定位_<source>.xlsx``); then the ledgers' error workbooks. Returns files written per kind."""
    folder = home.outbox / "rectification"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    open_ = issues.filter(pl.col("status") == "open")
    written = {"grid": 0, "department": 0, "unlocated": 0, "ledger_workbooks": 0}
    lists = [("grid", "网格", open_.filter(pl.col("grid_code").is_not_null()), "grid_code"),
             ("department", "部门", open_.filter(pl.col("department").is_not_null()), "department"),
             ("unlocated", "未定位", open_.filter(pl.col("grid_code").is_null() & pl.col("department").is_null()), "source")]
    for kind, prefix, part, by in lists:
        for (who,), rows in part.group_by(by):
            _listed(rows).write_excel(folder / f"{prefix}_{who}.xlsx", worksheet="整改清单", autofit=True)
            written[kind] += 1
    written["ledger_workbooks"] = write_error_workbooks(home, open_)
    return written


def write_error_workbooks(home: Home, open_issues: pl.DataFrame) -> int:
    """For each ledger file with open issues: its rows as delivered, each bad cell filled red with a
    comment saying what is wrong, under ``outbox/ledgers/<department>/``."""
    root = home.outbox / "ledgers"
    shutil.rmtree(root, ignore_errors=True)
    ledger = open_issues.filter(pl.col("source") == "ledgers")
    if not ledger.height:
        return 0
    cells = lake.read(home, OPS, REJECTIONS).filter(pl.col("source") == "ledgers")
    contracts = load_contracts()
    count = 0
    for (path, table_key), issues in ledger.group_by("file_path", "table"):
        table = contracts.table(table_key)
        rows = lake.read(home, "bronze", table.bronze_name, where=pl.col("_source_file") == path)
        if not rows.height:
            continue
        rows = rows.filter(pl.col("_file_hash") == rows["_file_hash"].sort().last()).sort("_row_number")
        marks = cells.filter(pl.col("file_hash") == rows["_file_hash"][0])
        columns = [c.name for c in table.all_columns if c.name in rows.columns]
        labels = {c.name: c.label for c in table.all_columns}
        book = Workbook()
        sheet = book.active
        sheet.title = "错误标注"
        sheet.append(["原行号", *(labels[c] for c in columns)])
        where = {}
        for i, row in enumerate(rows.select("_row_number", *columns).iter_rows(), start=2):
            sheet.append(list(row))
            where[row[0]] = i
        for number, column, message in marks.select("row_number", "column", "message_zh").iter_rows():
            if number not in where:
                continue
            col = columns.index(column) + 2 if column in columns else 1
            cell = sheet.cell(row=where[number], column=col)
            cell.fill = BAD
            cell.comment = Comment(message if cell.comment is None else cell.comment.text + "\n" + message, "数据中心")
        target = root / table.department["code"] / f"{Path(path).stem}_错误标注.xlsx"
        target.parent.mkdir(parents=True, exist_ok=True)
        book.save(target)
        count += 1
    return count
