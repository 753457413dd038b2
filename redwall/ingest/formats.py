"""Reading a delivered file as it really is: format and encoding come from the content, never from
the file name, and every cell is read as the text it holds.

A reader returns :class:`Grid` objects: the cells of a worksheet, a delimited text, a Parquet file
or one record type of a JSON Lines file, every value a string. Where the header is not known yet
(worksheets and delimited text, whose title rows and notes clerks add), the grid's ``header`` is
``None`` and :mod:`redwall.ingest.layout` finds it. A file that cannot be read at all raises
:class:`Unreadable` with the reason in Chinese.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import fastexcel
import msoffcrypto
import numpy as np
import polars as pl
import pyarrow.parquet as pq
from charset_normalizer import from_bytes

from redwall.ingest.inbox import DICT_SUFFIX
from redwall.ingest.limits import Limits, limits

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PARQUET_MAGIC = b"PAR1"
DELIMITERS = (",", "\t", ";", "|")
SNIFF_LINES = 30
QUOTED = r'"(?:[^"]|"")*"'  # a quoted CSV field
MERGE_REF = re.compile(rb'<mergeCell ref="([A-Z]+\d+:[A-Z]+\d+)"')
MIB = 1024 * 1024


class Unreadable(Exception):
    """The file cannot be taken in; ``reason_zh`` goes to the sender's receipt."""

    def __init__(self, rule: str, reason_zh: str, table: str | None = None):
        super().__init__(rule)
        self.rule = rule
        self.reason_zh = reason_zh
        self.table = table  # the contract table the file was recognised as, when it was


@dataclass(frozen=True)
class Grid:
    """Cells as delivered: one String column per delivered column, and ``_row_number``, the row's
    number in the file's own terms: the Excel row, the record of a JSON Lines file, and for a
    delimited text the row Excel shows when the clerk opens it (its line, a quoted line break
    aside), so every message's 第N行 is the row the sender sees."""

    format: str
    cells: pl.DataFrame
    sheet: str | None = None
    header: tuple[str, ...] | None = None  # known column names (Parquet, JSON), else locate it
    record_type: str | None = None  # JSON Lines: the records' ``type``
    broken: bool = False  # JSON Lines: lines that are not a JSON record
    letters: tuple[str, ...] = ()  # xlsx: the column letters, to name unlabelled columns
    encoding: str | None = None
    glossary: dict[str, str] = field(default_factory=dict)  # exchange code → Chinese name
    # Workbooks: the rows holding a column formula (=SUM(F4:F12)): totals, whatever their label says.
    totals: frozenset[int] = frozenset()
    # Workbooks: which cells of a column hold numbers (per grid row). Asked only for ID columns: an
    # ID Excel stored as a number lost its last digits, whatever its text looks like now.
    numbers: Callable[[str], pl.Series] | None = field(default=None, compare=False)

    @property
    def place(self) -> str:
        """How a sender finds row ``{}`` in this file, for messages."""
        if self.format in ("xlsx", "xls", "csv"):
            return "第{}行"
        if self.format == "jsonl":
            return "第{}行记录"
        return "第{}条记录"


def read_file(path: Path, beside: Path | None = None) -> list[Grid]:
    """All grids of a delivered file, or :class:`Unreadable`. ``beside``: where the delivery was
    dropped, when ``path`` is a copy of it (an exchange file's data dictionary lies beside it).
    A file over the :mod:`~redwall.ingest.limits` is refused before it is parsed."""
    bounds = limits()
    if (size := path.stat().st_size) > bounds.max_file_bytes:
        raise Unreadable(
            "too_large",
            f"文件过大（{size / MIB:.0f} MB，上限{bounds.max_file_bytes / MIB:.0f} MB），"
            "未读入；请拆分成几个较小的文件后重新报送",
        )
    with path.open("rb") as f:
        head = f.read(8)
    if not head:
        raise Unreadable("empty_file", "空文件（0字节），可能未传输完整，请重新报送")
    if head.startswith(ZIP_MAGIC):
        return _read_workbook(path, "xlsx")
    if head.startswith(OLE_MAGIC):
        with path.open("rb") as f:
            try:
                encrypted = msoffcrypto.OfficeFile(f).is_encrypted()
            except Exception:  # msoffcrypto raises its own zoo for non-Office OLE files
                raise Unreadable("not_a_table", "文件不是Excel工作簿，也不是CSV/JSON/Parquet数据文件") from None
        if encrypted:
            raise Unreadable("encrypted", "工作簿设置了打开密码，无法读取，请取消密码后重新报送")
        return _read_workbook(path, "xls")
    if head.startswith(PARQUET_MAGIC):
        return [_read_parquet(path, beside or path)]
    raw = path.read_bytes()
    _check_lines(raw, bounds)
    text, encoding = _decode(raw)
    del raw
    if text.lstrip("\ufeff \r\n\t").startswith("{"):
        return _read_jsonl(text, encoding)
    return [_read_delimited(text, encoding, _glossary(beside or path))]


def _check_lines(raw: bytes, bounds: Limits) -> None:
    """Refuse a text whose longest line exceeds ``max_line_bytes`` (no record is that long, and
    parsing one costs memory far beyond its size)."""
    ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 0x0A)
    bounds_of_lines = np.concatenate(([-1], ends, [len(raw)]))
    if (longest := int(np.diff(bounds_of_lines).max()) - 1) > bounds.max_line_bytes:
        raise Unreadable(
            "line_too_long",
            f"文件中有一行长达{longest / 1024:.0f} KB（上限{bounds.max_line_bytes / 1024:.0f} KB），"
            "不像是表格数据（可能缺少换行符或格式错误），未读入；请检查后重新导出",
        )


def _too_wide(width: int, bounds: Limits) -> None:
    if width > bounds.max_columns:
        raise Unreadable(
            "too_many_columns",
            f"表格有{width}列，超过上限{bounds.max_columns}列，不像是本中心的模板或数据，"
            "未读入；请检查分隔符或删除多余的列后重新报送",
        )


# -- text ----------------------------------------------------------------------------------------
def _decode(raw: bytes) -> tuple[str, str]:
    """Detect the encoding: a BOM, else strict UTF-8, else GB18030 (a superset of GBK, so a GBK
    ledger decodes too), else whatever charset-normalizer is confident about. UTF-8 comes first
    because Chinese text in GB18030 is almost never valid UTF-8, while the converse decodes."""
    boms = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    declared = [encoding for bom, encoding in boms if raw.startswith(bom)]
    if not declared and b"\x00" in raw[:4096]:
        raise Unreadable("wrong_format", "文件不是文本数据，也不是Excel/Parquet文件，无法识别格式")
    for encoding in declared or ("utf-8", "gb18030"):
        try:  # not final: a character cut off at the end (a copy broken off) is no encoding error
            return codecs.getincrementaldecoder(encoding)().decode(raw, final=False), encoding
        except UnicodeDecodeError:
            continue
    best = None if declared else from_bytes(raw).best()
    if best is None:
        raise Unreadable(
            "encoding", "无法识别文件的字符编码（或文件不完整），请另存为UTF-8或GB18030编码的CSV后重新报送"
        )
    return str(best), best.encoding


def _read_delimited(text: str, encoding: str, glossary: dict[str, str]) -> Grid:
    lines = text.split("\n", SNIFF_LINES)[:SNIFF_LINES]
    delimiter = max(DELIMITERS, key=lambda d: max(line.count(d) for line in lines))
    all_lines = pl.Series(text.split("\n"))
    # A width no line exceeds: title rows and ragged lines then read without loss.
    most = all_lines.str.count_matches(delimiter, literal=True).max()
    assert isinstance(most, int)  # a count over the text's lines, of which there is always one
    width = most + 1
    _too_wide(width, limits())
    # Fields, not delimiters: a delimiter inside quotes ("府右街12号,3号楼") separates nothing.
    fields = all_lines.str.replace_all(QUOTED, "").str.count_matches(delimiter, literal=True)
    last = all_lines[-1]
    if last.strip() and fields[-1] < fields.max():  # no line end, and fields missing
        raise Unreadable("incomplete", "文件最后一行不完整，可能仍在复制或传输中断，未读入；请传输完成后重新报送")
    try:
        cells = pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            has_header=False,
            separator=delimiter,
            schema={f"c{i}": pl.String for i in range(width)},
            missing_columns="insert",
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError:
        raise Unreadable("corrupt", "文件无法按CSV格式解析（引号或分隔符错乱），请检查后重新导出") from None
    return Grid("csv", _numbered(cells), encoding=encoding, glossary=glossary)


def _read_jsonl(text: str, encoding: str) -> list[Grid]:
    """One grid per record ``type``, values as delivered (nested objects stay JSON text), plus one
    grid of the lines that are not a JSON record at all (e.g. a line cut off by a broken upload)."""
    lines = (
        pl.Series("line", text.lstrip("\ufeff").split("\n"))
        .to_frame()
        .with_row_index("_row_number", offset=1)
        .filter(pl.col("line").str.strip_chars() != "")
        .with_columns(pl.col("line").str.json_path_match("$.type").alias("type"))
    )
    grids, broken = [], [lines.filter(pl.col("type").is_null())]
    for (record_type,), part in lines.filter(pl.col("type").is_not_null()).group_by("type", maintain_order=True):
        try:
            cells = _flatten(part["line"])
            _too_wide(cells.width, limits())
        except pl.exceptions.PolarsError:  # records polars cannot read as objects: kept as lines
            broken.append(part)
            continue
        grids.append(
            Grid(
                "jsonl",
                cells.with_columns(part["_row_number"]),
                header=tuple(cells.columns),
                record_type=record_type,
                encoding=encoding,
            )
        )
    if (lost := pl.concat(broken)).height:
        grids.append(
            Grid("jsonl", lost.select("_row_number", "line").sort("_row_number"), broken=True, encoding=encoding)
        )
    return grids


def _flatten(lines: pl.Series) -> pl.DataFrame:
    """The envelope's keys and the payload's, flattened into one row per record."""
    envelope = _ndjson_strings(lines)
    columns = [envelope.drop("type", "payload", strict=False)]
    if "payload" in envelope.columns:  # a payload that is no object yields no fields
        payload = envelope.select(
            pl.when(pl.col("payload").str.starts_with("{")).then("payload").otherwise(pl.lit("{}"))
        )
        fields = _ndjson_strings(payload.to_series())
        clashing = set(fields.columns) & set(columns[0].columns)
        columns.append(fields.rename({k: f"payload.{k}" for k in clashing}))
    return pl.concat(columns, how="horizontal")


def _ndjson_strings(lines: pl.Series) -> pl.DataFrame:
    """Parse JSON objects with every key read as text: numbers as written, nested values as JSON."""
    data = "\n".join(lines).encode("utf-8")
    keys = pl.scan_ndjson(io.BytesIO(data), infer_schema_length=None).collect_schema().names()
    return pl.read_ndjson(io.BytesIO(data), schema=dict.fromkeys(keys, pl.String))


# -- Parquet -------------------------------------------------------------------------------------
def _read_parquet(path: Path, beside: Path) -> Grid:
    bounds = limits()
    try:
        meta = pq.ParquetFile(path).metadata
        _too_wide(meta.num_columns, bounds)
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        _unpacked_within(unpacked, path.stat().st_size, bounds)
        frame = pl.from_arrow(pq.read_table(path))
    except Unreadable:
        raise
    except Exception:  # pyarrow raises ArrowInvalid/OSError for truncated or damaged files
        raise Unreadable("corrupt", "Parquet文件已损坏或未传输完整，无法读取，请重新报送") from None
    assert isinstance(frame, pl.DataFrame)  # from an Arrow table, not an array
    cells = frame.select(_as_text(name, dtype) for name, dtype in frame.schema.items())
    return Grid("parquet", _numbered(cells), header=tuple(frame.columns), glossary=_glossary(beside))


def _unpacked_within(unpacked: int, packed: int, bounds: Limits) -> None:
    """Refuse a file that unpacks to more than the limits allow (a decompression bomb)."""
    if unpacked > bounds.max_unzipped_bytes or unpacked > bounds.max_unzip_ratio * max(packed, MIB):
        raise Unreadable(
            "unpacks_too_large",
            f"文件解压后达{unpacked / MIB:.0f} MB（文件本身{packed / MIB:.1f} MB），"
            "远超正常表格，可能已损坏或是恶意文件，未读入；请另存为新文件后重新报送",
        )


def _numbered(cells: pl.DataFrame) -> pl.DataFrame:
    """Number the rows from 1 as the file counts them (Excel row, line, record)."""
    return cells.with_row_index("_row_number", offset=1)


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A Parquet column as the text it holds; nested values as JSON."""
    col = pl.col(name)
    if not dtype.is_nested():
        return col.cast(pl.String)
    # json_encode of the one-field struct {"name": value}; keep the value part
    encoded = pl.struct(col).struct.json_encode().str.slice(len(name) + 4).str.head(-1)
    return pl.when(col.is_null()).then(None).otherwise(encoded).alias(name)


# -- Excel ---------------------------------------------------------------------------------------
def _read_workbook(path: Path, fmt: str) -> list[Grid]:
    if fmt == "xlsx":
        try:
            with zipfile.ZipFile(path) as z:
                if "xl/workbook.xml" not in z.namelist():
                    raise Unreadable("wrong_format", "压缩文件不是Excel工作簿（.xlsx），无法读取")
                _unpacked_within(sum(i.file_size for i in z.infolist()), path.stat().st_size, limits())
                merges, totals = _xlsx_merges(z), _xlsx_totals(z)
        except zipfile.BadZipFile:
            raise Unreadable("corrupt", "Excel文件已损坏或未传输完整，无法打开，请重新报送") from None
    try:
        reader = fastexcel.read_excel(path.read_bytes())  # by content: clerks name xlsx files .xls
        grids = []
        for name in reader.sheet_names:
            sheet = reader.load_sheet(name, header_row=None, skip_rows=0, dtypes="string")
            cells = sheet.to_polars()
            letters = tuple(_letter(c.absolute_index) for c in sheet.available_columns())
            _too_wide(cells.width, limits())
            cells = cells.rename(dict(zip(cells.columns, (f"c{i}" for i in range(cells.width)), strict=True)))
            cells = cells.with_columns(_typed_number(pl.col(c)).alias(c) for c in cells.columns)
            if fmt == "xlsx":
                cells = _fill_merged(cells, merges.get(name, []), letters)
            grids.append(
                Grid(
                    fmt,
                    _numbered(cells),
                    sheet=name,
                    letters=letters,
                    totals=totals.get(name, frozenset()) if fmt == "xlsx" else frozenset(),
                    numbers=partial(_number_cells, reader, name, cells.height),
                )
            )
    except fastexcel.FastExcelError:
        raise Unreadable("corrupt", "Excel文件已损坏，无法打开，请用Excel打开检查后重新保存报送") from None
    return grids


# A number typed into a date cell (20261204) that calamine renders as a date beyond year 9999.
BEYOND_DATES = r"^\+(\d{5,})-(\d{2})-(\d{2}) 00:00:00$"


def _typed_number(cell: pl.Expr) -> pl.Expr:
    """A cell holding a number Excel formats as a date but no date can be (20261204 typed into a
    date column shows as +57373-04-15) as the number it holds: the day count since 1899-12-30,
    computed by the proleptic Gregorian calendar (Python's dates end with year 9999)."""
    parts = cell.str.extract_groups(BEYOND_DATES)
    year, month, day = (parts.struct.field(str(i)).cast(pl.Int64) for i in (1, 2, 3))
    year = year - (month <= 2).cast(pl.Int64)
    era = year // 400
    of_era = year - era * 400
    of_year = (153 * (month + pl.when(month > 2).then(-3).otherwise(9)) + 2) // 5 + day - 1
    days = era * 146097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719468  # since 1970-01-01
    return pl.when(cell.str.contains(BEYOND_DATES)).then((days + 25569).cast(pl.String)).otherwise(cell)


def _number_cells(reader: fastexcel.ExcelReader, sheet: str, height: int, column: str) -> pl.Series:
    """True where the cell of ``column`` (c<i>) holds a number. Read as booleans, a numeric cell
    converts and a text cell does not, even digits-only text (read as floats, "1101…" would)."""
    index = int(column[1:])
    values = (
        reader.load_sheet(sheet, header_row=None, skip_rows=0, use_columns=[index], dtypes={index: "boolean"})
        .to_polars()
        .to_series()
    )
    return values.is_not_null().extend_constant(False, height - values.len())


def _letter(index: int) -> str:
    """0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: str) -> int:
    """A → 0, AA → 26."""
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - 64
    return index - 1


def _sheet_members(z: zipfile.ZipFile) -> dict[str, str]:
    """The zip member holding each sheet, by sheet name."""
    ns = {
        "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "p": "http://schemas.openxmlformats.org/package/2006/relationships",
    }
    # a relationship without a target, or a sheet without a name (a damaged workbook): no member
    rels = {
        r.get("Id"): target
        for r in ET.fromstring(z.read("xl/_rels/workbook.xml.rels")).findall("p:Relationship", ns)
        if (target := r.get("Target")) is not None
    }
    members = {}
    for sheet in ET.fromstring(z.read("xl/workbook.xml")).iterfind("m:sheets/m:sheet", ns):
        target = rels.get(sheet.get(f"{{{ns['r']}}}id"), "")
        member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        if (name := sheet.get("name")) is not None and member in z.namelist():
            members[name] = member
    return members


def _xlsx_merges(z: zipfile.ZipFile) -> dict[str, list[bytes]]:
    """Merged ranges per sheet name, read from the sheet XML (calamine would parse every cell again)."""
    return {name: _stream_matches(z, member, MERGE_REF) for name, member in _sheet_members(z).items()}


def _stream_matches(z: zipfile.ZipFile, member: str, pattern: re.Pattern) -> list:
    """Every match of ``pattern`` (within one cell or merge element) in a sheet's XML, streamed: the
    XML is never held whole (it may unpack to hundreds of MB). Each chunk is searched up to its last
    element start; the rest is searched with the next chunk, so no match is cut in two."""
    found, carry = [], b""
    with z.open(member) as xml:
        for chunk in iter(lambda: xml.read(1 << 20), b""):
            data = carry + chunk
            cut = max(data.rfind(b"<c "), data.rfind(b"<mergeCell "), 0)
            found += pattern.findall(data, 0, cut)
            carry = data[cut:]
    return found + pattern.findall(carry)


# A formula aggregating a column over several rows: what a total row holds in its number cells.
COLUMN_FORMULA = re.compile(
    rb'<c r="[A-Z]+(\d+)"[^>]*>\s*<f[^>]*>(?:[^<]*?)(?:SUM|SUBTOTAL|COUNTA?|AVERAGE)\('
    rb"\$?[A-Z]+\$?(\d+):\$?[A-Z]+\$?(\d+)\)"
)


def _xlsx_totals(z: zipfile.ZipFile) -> dict[str, frozenset[int]]:
    """Per sheet name, the rows with a cell aggregating a column (``=SUM(F4:F12)``, not a sum
    across one row). calamine gives a formula's cached value, or nothing when no program computed
    it, so the formula itself is read from the sheet XML."""
    totals = {}
    for name, member in _sheet_members(z).items():
        if found := _stream_matches(z, member, COLUMN_FORMULA):
            totals[name] = frozenset(int(row) for row, first, last in found if first != last)
    return totals


def _fill_merged(cells: pl.DataFrame, ranges: list[bytes], letters: tuple[str, ...]) -> pl.DataFrame:
    """A cell merged down over several rows (a community over its residents) holds the value of
    every row it spans. Single-row merges are titles, notes and group headers: left as they are."""
    position = {_column_index(letter): i for i, letter in enumerate(letters)}
    fills: dict[int, tuple[list[int], list[str | None]]] = {}
    for ref in ranges:
        cell_range = re.fullmatch(r"([A-Z]+)(\d+):([A-Z]+)(\d+)", ref.decode())
        assert cell_range is not None  # MERGE_REF takes no other refs
        c0, r0, c1, r1 = cell_range.groups()
        top, bottom = int(r0) - 1, min(int(r1) - 1, cells.height - 1)
        if bottom <= top:
            continue
        first, last = _column_index(c0), _column_index(c1)
        value = cells[top, position[first]] if first in position else None
        for absolute in range(first, last + 1):
            if absolute in position:
                rows, values = fills.setdefault(position[absolute], ([], []))
                rows.extend(range(top, bottom + 1))
                values.extend([value] * (bottom - top + 1))
    return cells.with_columns(
        cells.to_series(i).scatter(rows, pl.Series(values, dtype=pl.String)) for i, (rows, values) in fills.items()
    )


# -- the city exchange's data dictionary ---------------------------------------------------------
def dictionary_of(path: Path) -> Path | None:
    """The ``<stem>.dict.json`` beside an exchange file, else the dataset's ``<dataset>.dict.json``."""
    candidates = [path.with_name(path.stem + DICT_SUFFIX)]
    if m := re.match(r"(.+?)_\d{6,10}$", path.stem):
        candidates.append(path.with_name(m.group(1) + DICT_SUFFIX))
    return next((c for c in candidates if c.exists()), None)


def _glossary(path: Path) -> dict[str, str]:
    """Field code → Chinese name from the exchange's data dictionary (``{"JTBH": {"name": "家庭编号",
    "type": "string"}, …}``); an unreadable dictionary just explains nothing."""
    dictionary = dictionary_of(path)
    try:
        doc = json.loads(dictionary.read_text(encoding="utf-8-sig")) if dictionary else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {
        code: entry["name"]
        for code, entry in doc.items()
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    }
