"""What goes back to people: rectification lists (整改清单) per street, and in it per grid and per department, and for
each ledger file with open issues an error workbook (错误标注表) of its own rows as the clerk typed
them, bad cells highlighted and commented. Derived each run from ``quality/issue``, the ledgers'
bronze rows and ``ops/rejection``; a file is written again only where what it is made from changed
(``outbox/.written.json`` and each street folder's ``.written.json`` keep what each was made from),
and a file no longer due is removed.

Personal values go into one place only: a ledger file's own rows, in the workbook going back to the
department that sent it — and there not in free text (an ID or phone typed into a note is masked). Lists and the workbooks' issue sheets carry rows, columns and messages."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import polars as pl
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from redwall import lake
from redwall.home import Home
from redwall.ingest.formats import Unreadable, read_file
from redwall.ingest.layout import RETURNED_HEADER, blocks
from redwall.ingest.normalise import judge
from redwall.ingest.receipts import OPS, RECEIPTS, REJECTIONS
from redwall.locks import exclusive
from redwall.privacy import known_names, masked_in, scrub_free_text
from redwall.quality.loop import INGEST, ISSUE_LABELS, OPEN, PLACE, returned_row
from redwall.schemas import Contracts, Table, load_contracts
from redwall.templates import (
    IDENTITY_SHEET,
    code_list_range,
    code_values,
    column_validation,
    dynamic_code_values,
    stamp_identity,
)

SEVERITY_ZH = {"error": "错误（未入库）", "warning": "警告（已入库待更正）"}
FOUND_LATER = "待核实（已入库，复核时发现）"  # the severity of an issue found on loaded rows
BAD = PatternFill("solid", fgColor="FFC7CE")
BOLD = Font(bold=True)
AUTHOR = "数据中心"
# How a cell of a contract type is written back when its text is a value of that type; any other
# text (a date that is no date) goes back as the text it was. Columns with an identifier format
# (ID numbers, phones, codes) are always text cells, formatted as text.
FORMATS = {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss", "int": "0", "float": "General"}
TEXT = "@"
# How the workbook reader renders a date cell: the cell of a column the clerk added goes back as a date.
DATE_CELL = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
TITLE = (
    "{file}：红色单元格有问题，鼠标移到单元格上可看说明（全部问题见「问题说明」工作表）；改正后保存报送即可，文件名可改"
)
VALIDATED_ROWS = 1000  # drop-downs and date checks reach this many rows below the last one


def _listed(issues: pl.DataFrame) -> pl.DataFrame:
    contracts = load_contracts()
    titles = {t.key: t.title for t in contracts.tables.values()}
    labels = {(t.key, c.name): c.label for t in contracts.tables.values() for c in t.all_columns}
    # the issue columns a list shows, with values a reader understands, headed by their labels
    return (
        issues.sort("severity", "first_seen")
        .select(
            "issue_id",
            pl.col("table").replace_strict(titles, default=pl.col("table")),
            "file_path",
            "row_number",
            pl.struct("table", "column")
            .map_elements(lambda r: labels.get((r["table"], r["column"]), ""), return_dtype=pl.String)
            .alias("column"),
            "message_zh",
            _severity_zh(),
            pl.col("first_seen").dt.convert_time_zone("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M"),
            pl.col("last_seen").dt.convert_time_zone("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M"),
            "street_code",
            "community_code",
            "grid_code",
        )
        .rename(ISSUE_LABELS, strict=False)
    )


def _severity_zh() -> pl.Expr:
    """What an issue's severity means for the record: kept out or loaded blank (found at
    ingestion), or loaded as it is and to be checked (found later, on loaded rows)."""
    severity = pl.col("severity")
    return (
        pl.when(pl.col("origin") == INGEST)
        .then(severity.replace_strict(SEVERITY_ZH, default=severity))
        .otherwise(pl.lit(FOUND_LATER))
        .alias("severity")
    )


RECTIFICATION = "rectification"  # outbox/rectification/<street code>/: one street's lists
UNPLACED_STREET = "未定位街道"  # a district's issues no register, grid code or record places in a street


def rectification_folder(home: Home, street: str | None) -> Path:
    """Where a street's rectification lists are: ``outbox/rectification/<street code>/`` (a street
    centre's home has one such folder, a district's one per street); issues no street could be
    found for, in a district's home, under ``outbox/rectification/未定位街道/``."""
    return home.outbox / RECTIFICATION / (street or UNPLACED_STREET)


def write_outbox(home: Home, issues: pl.DataFrame, full: bool = False) -> dict[str, int]:
    """Every street's rectification lists (:func:`write_street_lists`), a street no longer with
    open issues emptied; then the ledgers' error workbooks. Returns files written per kind, and
    the streets (folders) with lists."""
    root = home.outbox / RECTIFICATION
    root.mkdir(parents=True, exist_ok=True)
    for stray in root.glob("*.xlsx"):  # lists an earlier release kept for all streets in one folder
        stray.unlink()
    open_ = issues.filter(pl.col("status") == OPEN)
    named = sorted(open_["street_code"].drop_nulls().unique())
    due: list[str | None] = [*named, *([None] if open_["street_code"].is_null().any() else [])]
    held = {p.name for p in root.iterdir() if p.is_dir()} - {rectification_folder(home, s).name for s in due}
    written = {"grid": 0, "department": 0, "unlocated": 0, "streets": 0, "ledger_workbooks": 0}
    for street in [*due, *sorted(held)]:
        counts = write_street_lists(home, issues, None if street == UNPLACED_STREET else street, full)
        written["streets"] += any(counts.values())
        for kind, n in counts.items():
            written[kind] += n
    before: dict[str, str] = {} if full else _written(home)
    after: dict[str, str] = {}
    written["ledger_workbooks"] = write_error_workbooks(home, open_, before, after)
    (home.outbox / WRITTEN).write_text(json.dumps(after, sort_keys=True), encoding="utf-8")
    return written


def write_street_lists(home: Home, issues: pl.DataFrame, street: str | None, full: bool = False) -> dict[str, int]:
    """One street's rectification lists of open issues (``street``: a street code; none: the issues
    no street was found for), in :func:`rectification_folder`: per grid (``网格_<code>.xlsx``), per
    ledger department (``部门_<code>.xlsx``), and issues no grid could be found for, per source
    system (``未定位_<source>.xlsx``). A list whose issues did not change since it was written is
    not written again (unless ``full``); a list no longer due is removed, and the folder with the
    last. Streets are written side by side (a lock per street). Returns files per kind."""
    folder = rectification_folder(home, street)
    memo = folder / WRITTEN
    with exclusive(home.taking / "outbox" / f"{folder.name}.lock"):
        before: dict[str, str] = {} if full or not memo.is_file() else json.loads(memo.read_text(encoding="utf-8"))
        after: dict[str, str] = {}
        mine = pl.col("street_code").is_null() if street is None else pl.col("street_code") == street
        open_ = issues.filter(pl.col("status") == OPEN, mine)
        written = {"grid": 0, "department": 0, "unlocated": 0}
        lists = [
            ("grid", "网格", open_.filter(pl.col("grid_code").is_not_null()), "grid_code"),
            ("department", "部门", open_.filter(pl.col("department").is_not_null()), "department"),
            (
                "unlocated",
                "未定位",
                open_.filter(pl.col("grid_code").is_null() & pl.col("department").is_null()),
                "source",
            ),
        ]
        for kind, prefix, part, by in lists:
            for (who,), rows in part.group_by(by):
                listed, target = _listed(rows), folder / f"{prefix}_{who}.xlsx"
                if _changed(home, target, _fingerprint(listed), before, after):
                    folder.mkdir(parents=True, exist_ok=True)
                    listed.write_excel(target, worksheet="整改清单", autofit=True)
                written[kind] += 1
        _remove_others(home, folder, after)
        if after:
            memo.write_text(json.dumps(after, sort_keys=True), encoding="utf-8")
        elif folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return written


WRITTEN = ".written.json"  # in the outbox and in each street's folder: what each file was last written from


def _written(home: Home) -> dict[str, str]:
    path = home.outbox / WRITTEN
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _fingerprint(*frames: pl.DataFrame, extra: object = None) -> str:
    """What a file is written from: its frames' rows (as this polars hashes them) and ``extra``."""
    digest = hashlib.sha256(json.dumps([pl.__version__, extra], default=str, sort_keys=True).encode())
    for frame in frames:
        digest.update(json.dumps(frame.columns).encode())
        digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()


def _changed(home: Home, target: Path, fingerprint: str, before: dict, after: dict) -> bool:
    """Whether ``target`` must be written: it is missing, or was written from something else. A file
    whose issues did not change since it was written is not written again (the rest of the outbox
    neither: only what a delivery changed costs time)."""
    name = str(target.relative_to(home.outbox))
    after[name] = fingerprint
    return before.get(name) != fingerprint or not target.is_file()


def _remove_others(home: Home, folder: Path, after: dict) -> None:
    """Remove the files under ``folder`` this run did not list (their issues closed), and folders
    left empty."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and str(path.relative_to(home.outbox)) not in after:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def write_error_workbooks(
    home: Home, open_issues: pl.DataFrame, before: dict | None = None, after: dict | None = None
) -> int:
    """For each ledger file with open issues, whichever step found them (ingestion, the suites, the
    cross-source rules, the address check): its rows as the clerk typed them, each bad cell filled
    red with a comment saying what is wrong, and a sheet listing every issue of the file, under
    ``outbox/ledgers/<department>/<file>_错误标注.xlsx``. Regenerated whole: the workbook of a file
    whose issues are all closed or waived is gone. A workbook is made again only when what it is made
    from changed since ``before`` (fingerprints by outbox path; ``after`` receives this run's).
    Returns the workbooks the outbox holds."""
    root = home.outbox / "ledgers"
    before, after = before or {}, {} if after is None else after
    ledger = open_issues.filter(
        pl.col("source").is_in(list(load_contracts().departmental)),
        pl.col("status") == OPEN,
        pl.col("file_path").is_not_null(),
    )
    if not ledger.height:
        _remove_others(home, root, after)
        return 0
    contracts = load_contracts()
    names = known_names(home)
    rows = _delivered_rows(home, contracts, ledger["file_path"].unique())
    masked = _masked(rows, contracts, names)  # a workbook is made again when the names masked in it change
    marks = _marks(home, ledger, rows)
    dynamic = dynamic_code_values(home, contracts)
    written: set[Path] = set()
    due = []  # (file, workbook, its tables' rows, its marks): the workbooks to make again
    for path in sorted(ledger["file_path"].unique()):
        parts = [(contracts.table(key), files[path]) for key, files in rows.items() if path in files]
        department = (
            parts[0][0].department_code
            if parts
            else next(
                iter(ledger.filter(pl.col("file_path") == path)["department"].drop_nulls()), Path(path).parent.name
            )
        )
        target = root / department / f"{Path(path).stem}_错误标注.xlsx"
        if target in written:  # 台账.xlsx and 台账.csv of one department
            target = target.with_name(f"{Path(path).name}_错误标注.xlsx")
        written.add(target)
        marked = marks.filter(pl.col("file_path") == path)
        made_from = _fingerprint(
            marked.drop("mark"),
            ledger.filter(pl.col("file_path") == path).sort("issue_id"),
            *(rows for _, rows in parts),
            extra=(dynamic, masked.get(path, [])),
        )
        if _changed(home, target, made_from, before, after):
            due.append((path, target, parts, marked))
    for (path, target, _, marked), parts in zip(due, _scrubbed([parts for _, _, parts, _ in due], names), strict=True):
        book = Workbook()
        layouts = _layouts(home, path, [table for table, _ in parts])
        _issue_sheet(book, _mark_sheets(book, parts, marked, layouts, dynamic))
        target.parent.mkdir(parents=True, exist_ok=True)
        book.save(target)
    _remove_others(home, root, after)
    return len(written)


def _masked(rows: dict[str, dict[str, pl.DataFrame]], contracts: Contracts, names: list[str]) -> dict[str, list[str]]:
    """Per delivered file, the known ``names`` scrubbing masks in its free text: what its workbook
    depends on of the names (:func:`redwall.privacy.masked_in`)."""
    texts = [pl.DataFrame(schema={"path": pl.String, "text": pl.String})] + [
        pl.DataFrame({"path": path, "text": frame[c].cast(pl.String)})
        for key, files in rows.items()
        for path, frame in files.items()
        for c in _free_text(contracts.table(key), frame)
    ]
    return masked_in(pl.concat(texts), "path", names)


def _scrubbed(
    files: list[list[tuple[Table, pl.DataFrame]]], names: list[str]
) -> list[list[tuple[Table, pl.DataFrame]]]:
    """Each file's rows with an ID, phone or known name (``names``) typed into a note, or into a
    column the clerk added, scrubbed: it goes no further than the lake. Every cell of every file in
    one pass: the known names of a district are half a million patterns, and making their matcher costs
    seconds each time (and once per chunk of the column: rechunked)."""
    cells = [
        (i, j, c)
        for i, parts in enumerate(files)
        for j, (table, rows) in enumerate(parts)
        for c in _free_text(table, rows)
    ]
    if not cells:
        return files
    typed = pl.concat([files[i][j][1][c].cast(pl.String).rename("text") for i, j, c in cells], rechunk=True)
    clean = typed.to_frame().select(scrub_free_text(pl.col("text"), names)).to_series()
    done = [[rows for _, rows in parts] for parts in files]
    offset = 0
    for i, j, c in cells:
        height = done[i][j].height
        done[i][j] = done[i][j].with_columns(clean.slice(offset, height).alias(c))
        offset += height
    return [
        [(table, rows) for (table, _), rows in zip(parts, mine, strict=True)]
        for parts, mine in zip(files, done, strict=True)
    ]


def _delivered_rows(home: Home, contracts: Contracts, paths: pl.Series) -> dict[str, dict[str, pl.DataFrame]]:
    """``{table key: {file path: rows}}``: the bronze rows of each file, every value the text
    delivered, of the file's latest delivery (a clerk re-sends a file of the same name), in the
    file's order."""
    wanted = pl.col("_source_file").is_in(paths.implode())
    frames = {t.key: lake.read(home, "bronze", t.bronze_name, where=wanted) for t in contracts.ledgers}
    frames = {key: frame for key, frame in frames.items() if frame.height}
    if not frames:
        return {}
    versions = pl.concat([f.select("_source_file", "_file_hash", "_loaded_at").unique() for f in frames.values()])
    latest = versions.group_by("_source_file").agg(pl.col("_file_hash").sort_by("_loaded_at", "_file_hash").last())
    return {
        key: {
            path: rows
            for (path,), rows in frame.join(latest, on=["_source_file", "_file_hash"], how="semi")
            .sort("_row_number")
            .group_by("_source_file", maintain_order=True)
        }
        for key, frame in frames.items()
    }


def _free_text(table: Table, rows: pl.DataFrame) -> list[str]:
    """The columns of a ledger's delivered ``rows`` a clerk could type anything into: its
    contract's free-text columns and every column the clerk added."""
    contract = {c.name: c for c in table.columns}
    return [c for c in rows.columns if not c.startswith("_") and (c not in contract or contract[c].free_text)]


def _marks(home: Home, ledger: pl.DataFrame, rows: dict[str, dict[str, pl.DataFrame]]) -> pl.DataFrame:
    """The cells to mark: every open issue of a ledger file, and every problem ingestion recorded in
    the file's latest delivery on a row and rule with an open issue (the loop keeps one issue per
    record and rule: a row missing two required cells is one issue, its two cells two marks)."""
    columns = ["file_path", "table", "row_number", "column", "message_zh", "severity", "origin"]
    delivered = pl.DataFrame(
        [(path, files[path]["_file_hash"][0]) for files in rows.values() for path in files],
        schema={"file_path": pl.String, "file_hash": pl.String},
        orient="row",
    ).unique()
    recorded = lake.read(
        home,
        OPS,
        REJECTIONS,
        where=pl.col("source").is_in(list(load_contracts().departmental))
        & pl.col("file_hash").is_in(delivered["file_hash"].implode()),
    )
    found = [ledger.select(columns)]
    if recorded.height:
        found.append(
            recorded.join(delivered, on="file_hash")
            .join(
                ledger.filter(pl.col("origin") == INGEST), on=["file_path", "table", "row_number", "rule"], how="semi"
            )
            .with_columns(origin=pl.lit(INGEST))
            .select(columns)
        )
    return (
        pl.concat(found)
        .unique(["file_path", "table", "row_number", "column", "message_zh"], maintain_order=True)
        .sort("row_number", "column", nulls_last=True, maintain_order=True)
        .with_row_index("mark")
    )


def _layouts(home: Home, path: str, tables: list[Table]) -> dict[tuple[str, str | None], tuple[dict, tuple]]:
    """How the clerk laid out each sheet of the file's latest delivery: ``{(table key, sheet):
    (column → header as written, columns in their order)}``, read again from the kept copy (bronze
    keeps values, not layout). Empty when the copy cannot be read: the template's layout then."""
    kept = lake.read(home, OPS, RECEIPTS, where=pl.col("file_path") == path, columns=["stored_as", "received_at"])
    if not kept.height or not tables:
        return {}
    try:
        found, _ = blocks(read_file(home.root / kept.sort("received_at")["stored_as"][-1]), tables)
    except (Unreadable, OSError):
        return {}
    return {(b.table.key, b.grid.sheet): (b.labels, b.order) for b in found if b.table is not None}


def _mark_sheets(
    book: Workbook,
    parts: list[tuple[Table, pl.DataFrame]],
    marks: pl.DataFrame,
    layouts: dict,
    dynamic: dict[str, list[str]],
) -> pl.DataFrame:
    """One sheet per table and delivered sheet of the file: its rows (:func:`_write_rows`), each
    marked cell filled and commented (a mark without a column of the sheet, on the row's first
    cell; an issue names no sheet, so where two sheets of one table hold its row, on both); the
    template's identity and drop-down lists in a very hidden sheet. Returns ``marks`` with the
    sheets each is shown on (null: its row is not among the file's rows)."""
    sheets = [
        (table, sheet, frame)
        for table, rows in parts
        for (sheet,), frame in rows.group_by("_sheet", maintain_order=True)
    ]
    lists = book.create_sheet(IDENTITY_SHEET)
    if sheets:
        stamp_identity(book, lists, sheets[0][0])
    lists.sheet_state = "veryHidden"
    shown = []
    for i, (table, sheet_name, frame) in enumerate(sheets):
        sheet = book.active if i == 0 else book.create_sheet(index=i)
        assert isinstance(sheet, Worksheet)  # the new workbook's own sheet, or a worksheet made here
        sheet.title = (
            (sheet_name or "错误标注")[:31] if len(sheets) == 1 else f"{i + 1}_{sheet_name or table.title}"[:31]
        )
        columns = _write_rows(sheet, table, frame, layouts.get((table.key, sheet_name)), lists, dynamic)
        mine = marks.filter(pl.col("table") == table.key, pl.col("row_number").is_in(frame["_row_number"].implode()))
        for number, column, message in mine.select("row_number", "column", "message_zh").iter_rows():
            cell = sheet.cell(row=number, column=columns.index(column) + 1 if column in columns else 1)
            cell.fill = BAD
            text = message if cell.comment is None else f"{cell.comment.text}\n{message}"
            cell.comment = Comment(text, AUTHOR, width=320, height=60 + 40 * text.count("\n"))
        shown.append(mine.select("mark", sheet=pl.lit(sheet.title)))
    if not sheets:
        blank = book.active
        assert blank is not None  # the new workbook's own sheet
        blank.title = "错误标注"
    on = (
        pl.concat(shown).group_by("mark").agg(pl.col("sheet").str.join("、"))
        if shown
        else pl.DataFrame(schema={"mark": pl.UInt32, "sheet": pl.String})
    )
    return marks.join(on, on="mark", how="left")


def _write_rows(
    sheet: Worksheet,
    table: Table,
    frame: pl.DataFrame,
    layout: tuple[dict, tuple] | None,
    lists: Worksheet,
    dynamic: dict[str, list[str]],
) -> list[str]:
    """The clerk's rows where they were in the file, so that 第N行 of every message is row N here:
    the header above the first row, under a line saying what the workbook is; the clerk's columns
    in the clerk's order under the clerk's headers (``layout``, else the template's), the
    template's drop-downs and date checks on them; each value as the clerk typed it: where the text
    is a value of its column's type, a date as a date cell, a number of a numeric column as a
    number; ID numbers, phones and other identifiers as text cells formatted as text, so that Excel
    cannot round them again; any other text as delivered. Last, a hidden column naming each row's
    place in the original file (:func:`redwall.quality.loop.returned_row`): the loop closes the original
    row's issues when the row comes back and passes, whatever the file is then called and however
    its rows were sorted, deleted or added. Returns the sheet's columns, from column 1."""
    labels, order = layout or ({}, ())
    present = [
        c for c in frame.columns if not c.startswith("_") and (c in table.schema() or frame[c].is_not_null().any())
    ]
    columns = [c for c in order if c in present] + [c for c in present if c not in order]
    contract = {c.name: c for c in table.columns}
    kinds = {c.name: "text" if c.format else c.type for c in table.columns}
    typed = judge(table, frame, PLACE).rows.select(
        pl.col(c).dt.replace_time_zone(None) if kinds[c] == "datetime" else pl.col(c)
        for c in contract
        if kinds[c] in FORMATS
    )
    first, last = frame["_row_number"].min(), frame["_row_number"].max()
    assert isinstance(first, int) and isinstance(last, int)  # a sheet's rows, one at least, are numbered
    header = max(first - 1, 1)
    if header > 1:
        sheet.cell(1, 1, TITLE.format(file=table.title)).font = BOLD
    names = [labels.get(c) or (contract[c].label if c in contract else c) for c in columns]
    for j, name in enumerate([*names, RETURNED_HEADER], start=1):
        sheet.cell(header, j, name).font = BOLD
    values = {c: typed[c].to_list() if c in typed.columns else [None] * frame.height for c in contract}
    delivered = {c: frame[c].to_list() for c in columns}
    tokens = [returned_row(path, n) for path, n in zip(frame["_source_file"], frame["_row_number"], strict=True)]
    for i, r in enumerate(frame["_row_number"]):
        for j, c in enumerate(columns, start=1):
            if c in contract:
                value = values[c][i]
                cell = _put(sheet, r, j, delivered[c][i] if value is None else value)
                if kinds[c] == "text":
                    cell.number_format = TEXT
                elif value is not None:
                    cell.number_format = FORMATS[kinds[c]]
                continue
            text = delivered[c][i]
            if text is not None and DATE_CELL.match(text):
                moment = dt.datetime.fromisoformat(text)
                _put(sheet, r, j, moment).number_format = FORMATS["date" if moment.time() == dt.time() else "datetime"]
            else:
                _put(sheet, r, j, text)
        _put(sheet, r, len(columns) + 1, tokens[i])
    for j, c in enumerate(columns, start=1):
        letter = get_column_letter(j)
        sheet.column_dimensions[letter].width = 22 if kinds.get(c) == "text" else 14
        if c in contract and (contract[c].codes or contract[c].type == "date"):
            values_ = code_values(contract[c], dynamic)
            validation = column_validation(contract[c], values_, code_list_range(lists, contract[c], values_))
            validation.add(f"{letter}{header + 1}:{letter}{last + VALIDATED_ROWS}")
            sheet.add_data_validation(validation)
    sheet.column_dimensions[get_column_letter(len(columns) + 1)].hidden = True
    sheet.freeze_panes = sheet.cell(header + 1, 1).coordinate
    return columns


def _put(sheet: Worksheet, row: int, column: int, value):
    """Write a value as itself: an integral float as an integer, text as text (never a formula,
    without the control characters a worksheet cannot hold)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = sheet.cell(row, column, value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def _issue_sheet(book: Workbook, listed: pl.DataFrame) -> None:
    """Every issue of the file in row order, and the sheet it is marked on: rows, columns and what
    to do, no values."""
    sheet = book.create_sheet("问题说明", index=len(book.sheetnames) - 1)
    sheet.append(["标注所在工作表", "行号", "问题说明", "严重程度"])
    for cell in sheet[1]:
        cell.font = BOLD
    for name, number, message, severity in listed.select(
        "sheet", "row_number", "message_zh", _severity_zh()
    ).iter_rows():
        sheet.append([name or "（文件中无此行）", number, message, severity])
    sheet.column_dimensions["A"].width = 16
    sheet.column_dimensions["C"].width = 90
