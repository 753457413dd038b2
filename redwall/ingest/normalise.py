"""From bronze text to silver types: clean, parse and judge every value, column by column with
vectorised polars expressions (no Python per row).

Each column yields its typed value and, where something is wrong, a rule code. A rule on a required
column (or a business key) rejects the row; on any other column the value becomes null and the row
is accepted with a warning. Messages name the row and the column and say what to do; they never
repeat the value, which may be personal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import polars as pl

from redwall.identifiers import (
    CITIZEN_ID_DOC,
    CITIZEN_NUMBERED,
    citizen_id_valid_expr,
    document_kind_expr,
    document_number_expr,
    document_valid_expr,
    excel_rounded_id_expr,
    is_phone_expr,
    normalise_phone_expr,
    upgrade_legacy_id_expr,
    uscc_check_expr,
)
from redwall.ingest.layout import NUMBER_CELL
from redwall.lake import LINEAGE
from redwall.schemas import DYNAMIC_CODES, Column, Table, code_lists, reference

FULL_WIDTH = [chr(c) for c in range(0xFF01, 0xFF5F)] + ["\u3000"]
HALF_WIDTH = [chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)] + [" "]
CJK = r"[\u3400-\u9fff]"
EXCEL_EPOCH = dt.date(1899, 12, 30)
EXCEL_SERIALS = (3000, 80000)  # 1908–2119; a bare year such as 2024 is no serial date
TWO_DIGIT_YEAR_DATE = r"^([0-9]{2})年([0-9]{1,2})月([0-9]{1,2})日$"  # LibreOffice zh-CN short date
TWO_DIGIT_YEAR_REACH = 5  # years from today within which a two-digit year cannot mean another century
CURRENCY = r"^(?:[¥￥]|RMB|人民币)"
UNIT = r"(?:元|块|人|口|户|层|间|套|个|名|岁|平方米|平米|㎡|m²|m2)$"  # what clerks type after a number
TIME_ZONE = "Asia/Shanghai"
# A person_id column holds a 公民身份号码 unless the row's document type says otherwise, or its
# person type is 境外人员 (then the number's form tells the document).
CITIZEN_DOCUMENTS = {"doc_type": CITIZEN_NUMBERED, "person_type": ("1", "2")}
PATTERNS = {
    "object_id": (r"^[0-9]{16}$", "16位部件标识码"),
    "community_code": (r"^[0-9]{12}$", "12位社区编码"),
}
WARNING_SUFFIX = "（非必填项，已按空值入库）"

# rule → (what it is, in a receipt's summary; the message for the row, after "第N行")
RULES = {
    "required_missing": ("为空", "「{label}」为空，该项必填，请补填后重新报送"),
    "id_excel_number": (
        "被Excel按数字保存、末几位已丢失",
        "「{label}」被Excel按数字保存，末几位已丢失，请将该列设为文本后重新填写",
    ),
    "id_checksum": (
        "校验位或出生日期不符",
        "「{label}」的校验位、出生日期、地区码或顺序码不符，不是有效的公民身份号码，请核对证件后重新填写",
    ),
    "id_format": (
        "不符合证件号码格式",
        "「{label}」的位数或字符不符合证件号码格式（应为18位数字，末位可为X），请核对证件后重新填写",
    ),
    "document_format": (
        "与证件类型不符",
        "「{label}」不符合所填证件类型的号码格式（如港澳居民来往内地通行证为H或M加8位数字），"
        "请核对证件类型和号码后重新填写",
    ),
    "phone_invalid": (
        "不是有效的电话号码",
        "「{label}」不是有效的手机或固定电话号码（手机为11位；固定电话可带区号和分机，"
        "如010-66012345转8001），请核对后重新填写",
    ),
    "uscc_invalid": (
        "不是有效的统一社会信用代码",
        "「{label}」不是有效的统一社会信用代码（校验位不符），请核对营业执照后重新填写",
    ),
    "format_invalid": ("不符合编码规则", "「{label}」不符合{what}的规则，请核对后重新填写"),
    "code_unknown": ("取值不在代码表中", "「{label}」的取值不在代码表中，请填写{allowed}"),
    "date_invalid": ("无法识别为日期", "「{label}」无法识别为日期，请填写如2024-03-05的日期"),
    "date_two_digit_year": (
        "年份只有两位",
        "「{label}」的年份只写了两位，无法确定是哪个世纪，请写成四位年份，如2026-11-08或2026年11月8日",
    ),
    "datetime_invalid": ("无法识别为时间", "「{label}」无法识别为时间，应为如2024-03-05T08:30:00+08:00的时间"),
    "number_invalid": (
        "不是数字",
        "「{label}」不是可识别的数字，请只填写数字（可带千分位逗号或单位“元”，如1,500.00或1500元）",
    ),
    "bool_invalid": ("不是“是/否”", "「{label}」应填写“是”或“否”"),
}
RULE_NAMES = {rule: short for rule, (short, _) in RULES.items()}
ISSUE_SCHEMA = {
    "_file_hash": pl.String,
    "_row_number": pl.Int64,
    "_sheet": pl.String,
    "column": pl.String,
    "column_label": pl.String,
    "rule": pl.String,
    "severity": pl.String,
    "message_zh": pl.String,
}


@dataclass(frozen=True)
class Judged:
    """Typed rows (every bronze row, with ``_rejected``/``_warned`` flags) and their issues."""

    rows: pl.DataFrame  # typed values, lineage and flags
    issues: pl.DataFrame  # ISSUE_SCHEMA


def column_labels(table: Table, labels: dict[str, str]) -> dict[str, str]:
    """What messages call each column: the header the sender wrote where given, else its contract label."""
    return {c.name: labels.get(c.name, c.label) for c in table.all_columns}


def judge(table: Table, bronze: pl.DataFrame, place: str, labels: dict[str, str] | None = None) -> Judged:
    """Type the contract columns of ``bronze`` (rows of one or more files, with their lineage) and
    list every problem found. Messages call a column by :func:`column_labels`. Each row is judged on
    its own, so the rows of many files cost one call.

    Three stages, each a plain ``with_columns`` (one expression tree per column would nest the
    ID check within the ID upgrade within the cleaning, and cost more to plan than to run): the
    text cleaned, the value parsed into ``<column>.value``, then each column's rule."""
    columns = table.all_columns
    frame = (
        bronze.with_columns(
            pl.lit(False).alias(NUMBER_CELL + c.name)
            for c in columns
            if c.format == "person_id" and NUMBER_CELL + c.name not in bronze.columns
        )
        .with_columns(pl.lit(None, dtype=pl.String).alias(c.name) for c in columns if c.name not in bronze.columns)
        .with_columns(_prepare(c).alias(c.name) for c in columns)
    )
    frame = frame.with_columns(_parse(c).alias(f"{c.name}.value") for c in columns)
    values: list[pl.Expr] = []
    errors: list[pl.Expr] = []
    warnings: list[pl.Expr] = []
    for column in columns:
        value, rule = _check(table, column)
        if _required(table, column):
            rule = pl.when(pl.col(column.name).is_null()).then(pl.lit("required_missing")).otherwise(rule)
        values.append(pl.when(rule.is_null()).then(value).otherwise(None).cast(column.dtype).alias(column.name))
        (errors if _required(table, column) else warnings).append(rule.alias(f"_rule.{column.name}"))
    judged = frame.select(*values, *errors, *warnings, *(c for c in LINEAGE if c in frame.columns))
    # pl.lit(False) first: a table whose columns are all required has no warning rule at all
    rejected = pl.any_horizontal(pl.lit(False), *(pl.col(r.meta.output_name()).is_not_null() for r in errors))
    warned = pl.any_horizontal(pl.lit(False), *(pl.col(r.meta.output_name()).is_not_null() for r in warnings))
    rows = judged.with_columns(rejected.alias("_rejected"), (warned & ~rejected).alias("_warned"))
    return Judged(
        rows.drop(pl.selectors.starts_with("_rule.")), _issues(table, judged, place, column_labels(table, labels or {}))
    )


def _required(table: Table, column: Column) -> bool:
    """Required by the contract, or part of the business key: a row without it cannot be placed."""
    return column.required or column.name in table.keys


def _issues(table: Table, judged: pl.DataFrame, place: str, labels: dict[str, str]) -> pl.DataFrame:
    lookup = pl.DataFrame(
        [_message(table, column, rule, labels[column.name]) for column in table.all_columns for rule in RULES],
        schema={
            "column": pl.String,
            "column_label": pl.String,
            "rule": pl.String,
            "severity": pl.String,
            "text": pl.String,
        },
        orient="row",
    )
    return (
        judged.select("_file_hash", "_row_number", "_sheet", pl.selectors.starts_with("_rule."))
        .unpivot(index=["_file_hash", "_row_number", "_sheet"], variable_name="column", value_name="rule")
        .drop_nulls("rule")
        .with_columns(pl.col("column").str.strip_prefix("_rule."))
        .join(lookup, on=["column", "rule"], how="left")
        .select(*ISSUE_SCHEMA.keys() - {"message_zh"}, at_row(place, pl.col("text")).alias("message_zh"))
        .select(ISSUE_SCHEMA.keys())
        .sort("_file_hash", "_row_number", "column")
    )


def at_row(place: str, text: pl.Expr) -> pl.Expr:
    """``place`` ("第{}行") filled with each row's number, followed by ``text``."""
    before, after = place.split("{}")
    return pl.concat_str(pl.lit(before), pl.col("_row_number").cast(pl.String), pl.lit(after), text)


def _message(table: Table, column: Column, rule: str, label: str) -> tuple[str, str, str, str, str]:
    required = _required(table, column)
    what = format_rules().get(column.format or "", ("", "格式"))[1]
    text = RULES[rule][1].format(label=label, what=what, allowed=_allowed(column))
    severity = "error" if required else "warning"
    return column.name, label, rule, severity, text + ("" if required else WARNING_SUFFIX)


@cache
def format_rules() -> dict[str, tuple[str, str]]:
    """Identifier formats checked by pattern: format → (pattern, what it is called). The grid code
    scheme is reference data (Beijing's 15 digits, CJ/T 349's 20)."""
    grid = "|".join(reference("grid_code_scheme")["pattern"])
    return {"grid_code": (grid, "单元网格编码"), **PATTERNS}


def _allowed(column: Column) -> str:
    names = list(code_lists().get(column.codes or "", {}).values())
    if not names:
        return "代码表中的名称"
    return "以下之一：" + "、".join(names) if len(names) <= 12 else f"代码表中的名称（如{names[0]}）"


# -- cleaning ------------------------------------------------------------------------------------
def _clean(col: pl.Expr) -> pl.Expr:
    """Full-width folded to half-width, outer spaces trimmed, empty as null."""
    return col.str.replace_many(FULL_WIDTH, HALF_WIDTH).str.strip_chars().replace("", None)


def _compact(col: pl.Expr) -> pl.Expr:
    """For identifiers, codes and numbers: no spaces at all, and the ``.0`` a numeric cell adds."""
    return _clean(col).str.replace_all(r"\s+", "").str.replace(r"^(\d+)\.0+$", "$1").replace("", None)


def _text(col: pl.Expr) -> pl.Expr:
    """Free text: inner runs of spaces made one, none left between Chinese characters (张 三)."""
    text = _clean(col).str.replace_all(r"\s+", " ")
    for _ in range(2):  # a second pass catches every other gap of 张 三 丰
        text = text.str.replace_all(f"({CJK}) ({CJK})", "$1$2")
    return text


# -- values --------------------------------------------------------------------------------------
def _prepare(column: Column) -> pl.Expr:
    """Stage 1: the delivered text, cleaned as the column's kind wants it (null when empty)."""
    raw = pl.col(column.name)
    if column.type == "json":
        return raw
    if column.format == "person_id":
        return document_number_expr(_compact(raw))
    if _is_code(column) or column.format in ("uscc", "phone", *format_rules()):
        compact = _compact(raw)
        return compact.str.to_uppercase() if column.format == "uscc" else compact
    return _text(raw) if column.type == "string" else _clean(raw)


def _parse(column: Column) -> pl.Expr:
    """Stage 2: the value the cleaned text stands for (null when it stands for none)."""
    text = pl.col(column.name)
    if _is_code(column):
        return _to_code(column, text)
    if column.format == "person_id":  # upgraded where it is a legacy 15-digit ID
        return upgrade_legacy_id_expr(text)
    if column.format == "phone":
        return normalise_phone_expr(text)
    return PARSERS[column.type][0](text) if column.type in PARSERS else text


def _check(table: Table, column: Column) -> tuple[pl.Expr, pl.Expr]:
    """Stage 3: the typed value and the rule it breaks (null when it breaks none)."""
    text, value = pl.col(column.name), pl.col(f"{column.name}.value")
    if _is_code(column):
        return value, _rule(text.is_not_null() & value.is_null(), "code_unknown")
    if column.format == "person_id":
        return _person_id(text, value, pl.col(NUMBER_CELL + column.name), _document_kind(table, value))
    if column.format == "phone":
        return value, _rule(value.is_not_null() & ~is_phone_expr(value), "phone_invalid")
    if column.format == "uscc":
        return value, _rule(value.is_not_null() & ~uscc_check_expr(value), "uscc_invalid")
    if column.format in format_rules():
        pattern = format_rules()[column.format][0]
        return value, _rule(value.is_not_null() & ~value.str.contains(pattern), "format_invalid")
    if column.type in PARSERS:
        rule = PARSERS[column.type][1]
        if column.type == "date":  # a two-digit year is told apart: the clerk can fix it in one go
            two_digits = text.str.contains(TWO_DIGIT_YEAR_DATE)
            broken = text.is_not_null() & value.is_null()
            return value, pl.when(broken & two_digits).then(pl.lit("date_two_digit_year")).when(broken).then(
                pl.lit(rule)
            )
        return value, _rule(text.is_not_null() & value.is_null(), rule)
    return value, pl.lit(None, dtype=pl.String)


def _rule(broken: pl.Expr, rule: str) -> pl.Expr:
    return pl.when(broken).then(pl.lit(rule)).otherwise(pl.lit(None, dtype=pl.String))


def _person_id(text: pl.Expr, upgraded: pl.Expr, number_cell: pl.Expr, kind: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Document numbers of the row's document type (``kind``): a number Excel rounded is refused as
    such; a 公民身份号码 counts in its 18-digit form (15-digit legacy IDs upgraded) and must pass the
    citizen-ID rule (:func:`redwall.identifiers.citizen_id_valid_expr`); any other document's
    number must have that document's form (:func:`redwall.identifiers.document_valid_expr`).

    A workbook says which cells held numbers: there any ID longer than Excel's 15 significant
    digits is destroyed, even when what is left happens to pass the check. Text (CSV) shows the
    rounding itself: 1.10102E+17, or 15 digits and 000 that fail the check."""
    numbered = kind.is_in(CITIZEN_NUMBERED)
    value = pl.when(numbered).then(upgraded).otherwise(text)
    rounded = excel_rounded_id_expr(text) | (number_cell & text.str.contains(r"^[0-9]{16,}$"))
    rule = (
        pl.when(text.is_null())
        .then(None)
        .when(rounded)
        .then(pl.lit("id_excel_number"))
        .when(document_valid_expr(kind, value))
        .then(None)
        .when(numbered & citizen_id_valid_expr(value))
        .then(pl.lit("document_format"))  # another document's
        .when(numbered & text.str.contains(r"^([0-9]{17}[0-9X]|[0-9]{15})$"))
        .then(pl.lit("id_checksum"))
        .when(numbered)
        .then(pl.lit("id_format"))
        .otherwise(pl.lit("document_format"))
    )
    return value, rule


def _document_kind(table: Table, number: pl.Expr) -> pl.Expr:
    """The document type of each row's person_id (:data:`CITIZEN_DOCUMENTS`): the row's doc_type;
    for 境外人员 the type the number's form shows; a citizen ID otherwise."""
    for column in table.all_columns:
        code = pl.col(f"{column.name}.value")
        if column.codes == "doc_type":
            return code.fill_null(CITIZEN_ID_DOC)
        if column.codes == "person_type":
            citizen = code.is_null() | code.is_in(CITIZEN_DOCUMENTS["person_type"])
            return pl.when(citizen).then(pl.lit(CITIZEN_ID_DOC)).otherwise(document_kind_expr(number))
    return pl.lit(CITIZEN_ID_DOC)


def _is_code(column: Column) -> bool:
    return bool(column.codes) and column.codes not in DYNAMIC_CODES


def _to_code(column: Column, value: pl.Expr) -> pl.Expr:
    """A value given as code or as name (男 → 1, 汉族 → 01, 立案 → 02); codes that Excel turned into
    numbers (1 for 01) are recognised too."""
    assert column.codes is not None  # asked only for a code column (_is_code)
    spellings: dict[str, str] = {}
    for code, name in code_lists()[column.codes].items():
        if code.isdigit():
            spellings.setdefault(str(int(code)), code)
        spellings[name] = code
        spellings[code] = code
    return value.replace_strict(spellings, default=None, return_dtype=pl.String)


def _date(text: pl.Expr) -> pl.Expr:
    """Every date form the feeds and spreadsheet programs write: 19900501, 1990-05-01, 1990/5/1,
    1990年5月1日, 1990.5.1, a datetime (date part), an Excel serial day number, or the two-digit-year
    short date LibreOffice writes in a Chinese locale (26年11月8日: :func:`_two_digit_year`)."""
    parts = text.str.extract_groups(
        r"^((?:19|20)[0-9]{2})\s*[-/.年]?\s*([0-9]{1,2})\s*[-/.月]?\s*([0-9]{1,2})\s*日?(?:[ T].*)?$"
    )
    compact_ok = text.str.contains(r"^[0-9]{8}$") | text.str.contains(r"[^0-9]")  # no 1990511 guesswork
    written = pl.when(compact_ok).then(_ymd(parts.struct.field("1"), parts.struct.field("2"), parts.struct.field("3")))
    serial = text.str.extract(r"^([0-9]{4,5})(?:\.[0-9]+)?$").cast(pl.Int64, strict=False)
    from_serial = pl.when(serial.is_between(*EXCEL_SERIALS)).then(pl.lit(EXCEL_EPOCH) + pl.duration(days=serial))
    return pl.coalesce(written, from_serial.cast(pl.Date), _two_digit_year(text))


def _ymd(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    return pl.concat_str(year, month.str.zfill(2), day.str.zfill(2), separator="-").str.to_date(
        "%Y-%m-%d", strict=False
    )


def _two_digit_year(text: pl.Expr) -> pl.Expr:
    """``26年11月8日``: read as the spreadsheet program reads it back (00–29 as 20xx, 30–99 as
    19xx) where that lands within :data:`TWO_DIGIT_YEAR_REACH` years of today, so that the other
    century is out of the question; any other such date is refused (``date_two_digit_year``): it
    may be a birth date a century earlier."""
    parts = text.str.extract_groups(TWO_DIGIT_YEAR_DATE)
    yy = parts.struct.field("1")
    year = pl.concat_str(pl.when(yy.cast(pl.Int32) < 30).then(pl.lit("20")).otherwise(pl.lit("19")), yy)
    date = _ymd(year, parts.struct.field("2"), parts.struct.field("3"))
    today = dt.datetime.now(ZoneInfo(TIME_ZONE)).date()
    reach = dt.timedelta(days=365 * TWO_DIGIT_YEAR_REACH)
    return pl.when(date.is_between(pl.lit(today - reach), pl.lit(today + reach))).then(date)


def _datetime(text: pl.Expr) -> pl.Expr:
    """ISO 8601 with an offset (the app's +08:00, or Z), or a local time without one."""
    # "${1}T", not "$1T": that would name a group "1T" and drop the date
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T").str.replace(r"Z$", "+00:00")
    with_offset = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False).dt.convert_time_zone(TIME_ZONE)
    local = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False).dt.replace_time_zone(TIME_ZONE)
    return pl.coalesce(with_offset, local)


def _number(text: pl.Expr) -> pl.Expr:
    """The number a cell means, as Float64: thousands separators only in groups of three
    (1,500.00; a 1,50 is refused, it may mean 1.50), a currency sign or a unit around it (¥1500,
    1500元, 3人, 120平方米) and 万 (1.5万 = 15000) read; anything else null."""
    bare = text.str.replace_all(r"\s+", "").str.replace(CURRENCY, "").str.replace(UNIT, "")
    ten_thousand = bare.str.ends_with("万")
    bare = bare.str.strip_suffix("万")
    digits = (
        pl.when(bare.str.contains(r"^-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$"))
        .then(bare.str.replace_all(",", ""))
        .when(bare.str.contains(r"^-?[0-9]+(\.[0-9]+)?$"))
        .then(bare)
    )
    return digits.cast(pl.Float64, strict=False) * pl.when(ten_thousand).then(10_000).otherwise(1)


def _int(text: pl.Expr) -> pl.Expr:
    """A whole number (3, 3.0 from a numeric cell, 1.5万); 2.5 is no count and null."""
    number = _number(text)
    return pl.when(number == number.round(0)).then(number.cast(pl.Int64))


def _float(text: pl.Expr) -> pl.Expr:
    return _number(text)


def _bool(text: pl.Expr) -> pl.Expr:
    return text.str.to_lowercase().replace_strict(
        {"是": True, "否": False, "true": True, "false": False, "1": True, "0": False, "y": True, "n": False},
        default=None,
        return_dtype=pl.Boolean,
    )


# contract type → (parser of cleaned text, the rule a text it cannot parse breaks)
PARSERS = {
    "date": (_date, "date_invalid"),
    "datetime": (_datetime, "datetime_invalid"),
    "int": (_int, "number_invalid"),
    "float": (_float, "number_invalid"),
    "bool": (_bool, "bool_invalid"),
}
