"""Which contract table a delivered grid is, where its header is, and which rows are data.

Headers are matched through every spelling a contract column accepts (``Column.headers``), never by
position: clerks move, rename and add columns. The header row is the row among the first
:data:`HEADER_SCAN_ROWS` that matches most columns of a candidate table, so title rows above it are
skipped whatever they say. Below the header, rows that are no records are set aside and counted
with what they were (:data:`NOT_DATA`): total rows (合计/小计/总计, typed or a column formula such as
``=SUM(F4:F12)``), signature and date lines (制表人、审核人、填报日期…, in one cell or spread over
several), notes (备注、说明…), blank rows between records and header rows repeated on a second page.
Blank rows after the last record are formatting, not rows.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from redwall.ingest.formats import Grid, Unreadable
from redwall.lake import LINEAGE
from redwall.schemas import Column, Table, data_elements

HEADER_SCAN_ROWS = 30
# Kinds of rows below a header that are no records, as a receipt names them. A total row has a cell
# that is only its label (合计, 合计：12户, 本页小计); a signature line and a note *begin* with theirs
# (the first filled cell, which in a record is a name, a serial number or a code).
TOTAL, SIGNATURE, NOTE, BLANK, REPEATED = "合计行", "签名或日期行", "说明行", "空行", "重复表头"
NOT_DATA = (TOTAL, SIGNATURE, NOTE, BLANK, REPEATED)
TOTAL_CELL = r"^(本页|本表|全部|全)?(合计|小计|总计|共计|累计)([:：(（\d].*)?$"
SIGNATURE_START = (
    r"^(制表|填表|填报|报送|审核|审批|复核|核对|统计人|负责人|单位负责人|分管领导|经办人|联系人|联系电话"
    r"|日期|时间|单位[（(]?盖章)"
)
NOTE_START = r"^(备注|说明|注[:：]|注\d|注意|填表说明|数据来源|资料来源|以下空白|此页|第\d+页|共\d+页)"
# An error workbook redwall sent back (redwall.quality.outbox) names, in a hidden column, the row of the
# original file each of its rows is: kept in bronze as ``_returned_row`` whatever the clerk did to
# the rows around it, so that the loop closes the original row's issues when the row comes back.
RETURNED_HEADER = "行标识（请勿修改）"
RETURNED_ROW = "_returned_row"
# Prefix of the flags "this ID cell held a number", passed to the rules but not kept in bronze.
NUMBER_CELL = "_number_cell."
# Characters Delta/Parquet refuse in a column name without column mapping.
UNSAFE_NAME = re.compile(r"[ ,;{}()\n\t=]+")


def header_key(text: str) -> str:
    """A header as compared: full-width folded, spaces and required-marks (*) removed, lower case."""
    return re.sub(r"[\s*]+", "", unicodedata.normalize("NFKC", text)).lower()


@dataclass(frozen=True)
class Match:
    table: Table
    columns: dict[int, Column]  # position in the grid → contract column
    missing_required: tuple[Column, ...]

    @property
    def score(self) -> tuple[int, int]:
        return len(self.columns), -len(self.missing_required)

    @property
    def sufficient(self) -> bool:
        """Enough of the table recognised to call it this table (and then demand what is missing)."""
        return len(self.columns) >= max(2, math.ceil(len(self.table.required) / 2))


def match(spellings: list[tuple[str, ...]], table: Table) -> Match:
    """Map each delivered column (its spellings) to a contract column; the first delivered column
    wins when two name the same contract column."""
    lookup = {header_key(h): c for c in table.all_columns for h in c.headers}
    columns: dict[int, Column] = {}
    for position, names in enumerate(spellings):
        column = next((lookup[k] for k in map(header_key, names) if k in lookup), None)
        if column is not None and column not in columns.values():
            columns[position] = column
    missing = tuple(c for c in table.all_columns if c.required and c not in columns.values())
    return Match(table, columns, missing)


@dataclass(frozen=True)
class Block:
    """Rows of one table from one grid, as bronze keeps them: contract column names for recognised
    columns, the delivered header for extra ones, every value the delivered text; plus, for ID
    columns of a workbook, ``_number_cell.<column>`` flags (not kept in bronze)."""

    table: Table | None  # None: records that belong to no table (broken lines, unknown types)
    grid: Grid
    rows: pl.DataFrame
    extras: tuple[str, ...] = ()
    skipped: tuple[tuple[int, str], ...] = ()  # (row number, kind) of the rows that are no records
    rule: str | None = None  # why the records belong to no table
    labels: dict[str, str] = field(default_factory=dict)  # column → header as the sender wrote it
    order: tuple[str, ...] = ()  # the columns of ``rows`` in the order the sender laid them out


def blocks(grids: list[Grid], candidates: list[Table]) -> tuple[list[Block], list[str]]:
    """The blocks of a file and the names of the sheets that hold none of our tables.

    Raises :class:`Unreadable` when no grid is one of the candidate tables, or when a recognised
    table lacks a required column (the whole file is refused: its rows could never be accepted).
    """
    found: list[Block] = []
    ignored: list[str] = []
    for grid in grids:
        if grid.format == "jsonl":
            found.append(_records(grid, candidates))
            continue
        located = _locate(grid, candidates)
        if located is None:
            ignored.append(grid.sheet or "")
            continue
        header_row, best = located
        if best.missing_required:
            where = f"工作表「{grid.sheet}」" if grid.sheet else "文件"
            names = "、".join(f"「{c.label}」" for c in best.missing_required)
            # the headers a sender may write: a system's field code, the label and its aliases,
            # never our internal column name
            spelled = ["/".join(h for h in c.headers if h != c.name) for c in best.missing_required]
            raise Unreadable(
                "required_column_missing",
                f"{where}是{best.table.title}，但缺少必填列{names}（表头可写作："
                + "；".join(spelled)
                + "），整份文件未读入，请补上该列后重新报送",
                table=best.table.key,
            )
        found.append(_block(grid, best, header_row))
    if not found:
        titles = "、".join(t.title for t in candidates)
        raise Unreadable(
            "header_unrecognised",
            f"文件前{HEADER_SCAN_ROWS}行中找不到可识别的表头，不是本中心接收的{titles}，"
            "请使用中心下发的模板或核对报送目录。应有的表头（必填列，可用中文名称或括号中的标准数据元标识符）："
            + "；".join(
                f"{t.title}：" + "、".join(map(_expected, (t.column(n) for n in t.required))) for t in candidates
            ),
        )
    return found, ignored


def _expected(column: Column) -> str:
    """A required column as a refusal names it: its label, and its data element's identifier."""
    identifier = data_elements()[column.element]["identifier"] if column.element else None
    return f"{column.label}（{identifier}）" if identifier else column.label


def _spellings(grid: Grid, names: list[str | None]) -> list[tuple[str, ...]]:
    """A delivered header and, for exchange field codes, its Chinese name from the data dictionary."""
    return [tuple(filter(None, (n, grid.glossary.get(n or "")))) for n in names]


def _locate(grid: Grid, candidates: list[Table]) -> tuple[int | None, Match] | None:
    rows: list[tuple[int | None, Sequence[object]]]  # a header row read from the cells holds any value
    if grid.header is not None:
        rows = [(None, grid.header)]
    else:
        head = grid.cells.drop("_row_number").head(HEADER_SCAN_ROWS)
        rows = list(enumerate(head.rows()))
    best: tuple[int | None, Match] | None = None
    for index, names in rows:
        spellings = _spellings(grid, [n.strip() if isinstance(n, str) else None for n in names])
        for table in candidates:
            m = match(spellings, table)
            if m.sufficient and (best is None or m.score > best[1].score):
                best = (index, m)
    return best


def _block(grid: Grid, m: Match, header_row: int | None) -> Block:
    cells = grid.cells
    data_columns = [c for c in cells.columns if c != "_row_number"]
    skipped: tuple[tuple[int, str], ...] = ()
    if grid.numbers is not None:
        cells = cells.with_columns(
            grid.numbers(data_columns[i]).alias(NUMBER_CELL + c.name)
            for i, c in m.columns.items()
            if c.format == "person_id"
        )
    if header_row is None:
        assert grid.header is not None  # no header row located: the grid came with its names
        headers = list(grid.header)
    else:
        headers = [(v or "").strip() for v in cells.select(data_columns).row(header_row)]
        cells = cells.slice(header_row + 1)
        cells, skipped = _set_aside(
            cells, data_columns, [(data_columns[i], headers[i]) for i in m.columns], grid.totals
        )

    names = {data_columns[i]: c.name for i, c in m.columns.items()}
    returned = {
        data_columns[i]: RETURNED_ROW
        for i, h in enumerate(headers)
        if header_key(h or "") == header_key(RETURNED_HEADER) and data_columns[i] not in names
    }
    taken = {c.name for c in m.table.all_columns} | set(LINEAGE)
    extras = {}
    for i, column in enumerate(data_columns):
        if column in names or column in returned or (not headers[i] and cells[column].null_count() == cells.height):
            continue  # mapped, or an unlabelled column Excel merely formatted
        label = UNSAFE_NAME.sub("_", headers[i]) if headers[i] else f"未命名列{_column_label(grid, i)}"
        while label in taken:
            label += "_2"
        taken.add(label)
        extras[column] = label
    named = {**names, **extras, **dict(list(returned.items())[:1])}
    rows = cells.select(
        *(pl.col(src).alias(dst) for src, dst in named.items()),
        pl.col("_row_number").cast(pl.Int64),
        pl.lit(grid.sheet, dtype=pl.String).alias("_sheet"),
        pl.selectors.starts_with(NUMBER_CELL),
    )
    labels = {c.name: _label(grid, headers[i], c) for i, c in m.columns.items()}
    order = tuple(named[c] for c in data_columns if c in named and c not in returned)
    return Block(m.table, grid, rows, tuple(extras.values()), skipped, labels=labels, order=order)


def _label(grid: Grid, header: str, column: Column) -> str:
    """What the sender calls a column: a Chinese header as written (身份证号), a field code by its
    name in the data dictionary, else (codes, JSON keys) by the contract's label."""
    return grid.glossary.get(header) or (column.label if header.isascii() else header)


def _set_aside(
    cells: pl.DataFrame, columns: list[str], header: list[tuple[str, str]], totals: frozenset[int]
) -> tuple[pl.DataFrame, tuple[tuple[int, str], ...]]:
    """The record rows, and ``(row number, kind)`` of each row set aside (:data:`NOT_DATA`).
    ``totals``: rows holding a column formula (a total whose label was left out)."""
    filled = [pl.col(c).str.normalize("NFKC").str.replace_all(r"\s+", "").replace("", None) for c in columns]
    count = pl.sum_horizontal(f.is_not_null() for f in filled)
    first = pl.coalesce(filled)
    # a page's header repeated: most recognised columns hold their own header
    own = [
        pl.col(c).str.normalize("NFKC").str.replace_all(r"[\s*]+", "").str.to_lowercase().eq_missing(header_key(h))
        for c, h in header
    ]
    repeated = pl.sum_horizontal(own) >= max(1, math.ceil(len(header) / 2))
    total = pl.any_horizontal(f.str.contains(TOTAL_CELL).fill_null(False) for f in filled) | pl.col(
        "_row_number"
    ).is_in(list(totals))
    last = cells.filter(count > 0)["_row_number"].max()
    kind = (
        pl.when(count == 0)
        .then(pl.lit(BLANK))
        .when(repeated)
        .then(pl.lit(REPEATED))
        .when(total)
        .then(pl.lit(TOTAL))
        .when(first.str.contains(SIGNATURE_START))
        .then(pl.lit(SIGNATURE))
        .when(first.str.contains(NOTE_START))
        .then(pl.lit(NOTE))
    )
    cells = cells.with_columns(kind.alias("_aside"))
    if last is None:
        return cells.clear().drop("_aside"), ()
    cells = cells.filter(pl.col("_row_number") <= last)  # blank rows after the last record: formatting
    aside = tuple(cells.filter(pl.col("_aside").is_not_null()).select("_row_number", "_aside").iter_rows())
    return cells.filter(pl.col("_aside").is_null()).drop("_aside"), aside


def _column_label(grid: Grid, position: int) -> str:
    return grid.letters[position] if grid.letters else str(position + 1)


def _records(grid: Grid, candidates: list[Table]) -> Block:
    """A JSON Lines grid: its record type names the table; keys missing from every record of the
    file are simply empty values (each record is judged on its own)."""
    table = next((t for t in candidates if t.record_type and t.record_type == grid.record_type), None)
    if table is None:
        raw = grid.cells.select(
            pl.col("line").alias("_raw")
            if grid.broken
            else pl.struct(pl.exclude("_row_number")).struct.json_encode().alias("_raw"),
            pl.lit(grid.record_type, dtype=pl.String).alias("_record_type"),
            pl.col("_row_number").cast(pl.Int64),
            pl.lit(None, dtype=pl.String).alias("_sheet"),
        )
        return Block(None, grid, raw, rule="record_unreadable" if grid.broken else "record_type_unknown")
    assert grid.header is not None  # a grid with a known record type was read with its keys
    m = match(_spellings(grid, list(grid.header)), table)
    return _block(grid, Match(table, m.columns, ()), None)
