"""National identifier rules: citizen ID (GB 11643), the other identity documents (permits,
residence permits, permanent-residence cards, passports), unified social credit code (GB 32100),
phones.

Rules are vectorised polars expressions for tables. The citizen-ID rule's scalar form (for
generators and single cells) evaluates that same expression, so the two cannot disagree; the
USCC's scalar form is its own and tested against the expression.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

import polars as pl

from redwall.schemas import reference
from redwall.worktime import TIME_ZONE

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

PHONE_PATTERN = r"^1[3-9][0-9]{9}$"


# -- citizen ID --------------------------------------------------------------------------------
# The rule itself is :func:`citizen_id_valid_expr`; the scalar form evaluates that expression, so
# the two cannot disagree. Patterns spell digits [0-9]: ``\d`` matches any Unicode digit, and an
# Arabic-Indic ٣ or a Devanagari ३ is no digit of a citizen ID.
CITIZEN_ID_FORM = r"^[0-9]{17}[0-9Xx]$"
LEGACY_ID_FORM = r"^[0-9]{15}$"
EXCEL_SCIENTIFIC = r"^[0-9](\.[0-9]+)?[eE]\+?[0-9]+$"  # 1.10102E+17: a number Excel rounded
# 港澳台居民居住证 carry a 公民身份号码 with these address codes (GB 11643 otherwise): Hong Kong,
# Macao, Taiwan residents.
RESIDENCE_PERMIT_AREAS = ("810000", "820000", "830000")


@cache
def _provinces() -> tuple[str, ...]:
    """The two-digit province prefixes of mainland address codes (GB/T 2260, reference data);
    81/82 (Hong Kong, Macao) appear in IDs only as the residence permits' whole codes."""
    divisions = reference("admin_division")
    codes = divisions.filter((pl.col("level") == "province") & (pl.col("code") < "800000"))["code"]
    return tuple(codes.str.slice(0, 2))


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(TIME_ZONE)).date()


def id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def citizen_id_valid_expr(col: pl.Expr, today: dt.date | None = None) -> pl.Expr:
    """GB 11643, the one implementation: 18 ASCII characters (17 digits and a digit or X), an
    assigned address code (a province's, or a residence permit's 810000/820000/830000), a real
    birth date not after ``today`` (default: today in Beijing), a sequence other than 000 and the
    right check character. Null input gives null."""
    area = col.str.slice(0, 6)
    known_area = area.str.slice(0, 2).is_in(_provinces()) | area.is_in(RESIDENCE_PERMIT_AREAS)
    birth = id_birth_date_expr(col)
    return (
        col.str.contains(CITIZEN_ID_FORM)
        & known_area
        & birth.is_not_null()
        & (birth <= pl.lit(today or _today()))
        & (col.str.slice(14, 3) != "000")
        & citizen_id_check_expr(col)
    )


def is_valid_citizen_id(value: str, today: dt.date | None = None) -> bool:
    """Scalar :func:`citizen_id_valid_expr`."""
    return bool(pl.select(citizen_id_valid_expr(pl.lit(value, pl.String), today)).item())


def upgrade_legacy_id(value: str) -> str:
    """A 15-digit ID (yyMMdd, born 19xx) becomes its 18-digit form (scalar :func:`upgrade_legacy_id_expr`)."""
    return pl.select(upgrade_legacy_id_expr(pl.lit(value, pl.String))).item()


def id_birth_date(value: str) -> dt.date:
    return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def id_sex_code(value: str) -> str:
    """'1' male (odd sequence digit), '2' female: digit 17 of an 18-digit ID, the last of a 15-digit one."""
    return "1" if int(value[16 if len(value) == 18 else 14]) % 2 else "2"


def id_check_char_expr(first17: pl.Expr) -> pl.Expr:
    """The check character of 17 leading ASCII digits (null where any is not one)."""
    digit = {str(d): d for d in range(10)}
    total = pl.sum_horizontal(
        first17.str.slice(i, 1).replace_strict(digit, default=None, return_dtype=pl.Int32) * w
        for i, w in enumerate(ID_WEIGHTS)
    )
    return (total % 11).replace_strict(list(range(11)), list(ID_CHECK_CHARS), return_dtype=pl.String)


def citizen_id_check_expr(col: pl.Expr) -> pl.Expr:
    """True where an 18-character value of ASCII digits carries the right MOD 11-2 check character
    (the check alone: :func:`citizen_id_valid_expr` is the whole rule)."""
    return col.str.contains(CITIZEN_ID_FORM) & (
        id_check_char_expr(col.str.slice(0, 17)) == col.str.slice(17, 1).str.to_uppercase()
    )


def upgrade_legacy_id_expr(col: pl.Expr) -> pl.Expr:
    """A 15-digit legacy ID (yyMMdd, born 19xx) in its 18-digit form; any other value unchanged."""
    first17 = pl.concat_str([col.str.slice(0, 6), pl.lit("19"), col.str.slice(6, 9)])
    return pl.when(col.str.contains(LEGACY_ID_FORM)).then(first17 + id_check_char_expr(first17)).otherwise(col)


def excel_rounded_id_expr(col: pl.Expr) -> pl.Expr:
    """True where an ID was stored as a number by Excel and so lost its last digits.

    Excel keeps 15 significant digits: an 18-digit ID typed into a numeric cell comes back as
    ``1.10102199003071E+17`` or as ``110102199003071000``. Such a value is destroyed, never
    repairable. A real ID may end in 000 (sequence x00, check 0), so a value counts as rounded only
    when it also fails the check character.
    """
    scientific = col.str.contains(EXCEL_SCIENTIFIC)
    padded = col.str.contains(r"^[0-9]{15}000$") & ~citizen_id_check_expr(col)
    return scientific | padded


def id_birth_date_expr(col: pl.Expr) -> pl.Expr:
    """The birth date an 18-digit ID encodes (null when it encodes no real date)."""
    return pl.when(col.str.slice(6, 8).str.contains(r"^[0-9]{8}$")).then(
        col.str.slice(6, 8).str.to_date("%Y%m%d", strict=False)
    )


def id_sex_code_expr(col: pl.Expr) -> pl.Expr:
    """The sex code an ID encodes (vectorised :func:`id_sex_code`): '1' male, '2' female, from the
    parity of digit 17 of an 18-character ID or the last digit of a 15-digit legacy one; null for
    any other value."""
    digit = (
        pl.when(col.str.contains(r"^[0-9]{17}[0-9Xx]$"))
        .then(col.str.slice(16, 1))
        .when(col.str.contains(LEGACY_ID_FORM))
        .then(col.str.slice(14, 1))
    ).cast(pl.Int32, strict=False)
    return (digit % 2).replace_strict([1, 0], ["1", "2"], default=None, return_dtype=pl.String)


# -- identity documents --------------------------------------------------------------------------
# Document types (doc_type, schemas/reference/codes.csv). The 港澳台居民居住证 and the 2023
# 外国人永久居留身份证 carry 18-character numbers on the GB 11643 pattern (MOD 11-2 check), the
# permanent-residence card's starting with 9, which no citizen ID does.
CITIZEN_ID_DOC, RESIDENCE_PERMIT, PASSPORT = "111", "118", "414"
TAIWAN_PERMIT, HK_MACAO_PERMIT, PERMANENT_RESIDENCE, OTHER_DOCUMENT = "511", "516", "553", "990"
CITIZEN_NUMBERED = (CITIZEN_ID_DOC, RESIDENCE_PERMIT)  # numbers that are 公民身份号码
# Each document's number once normalised. The permits' numbers are a lifelong number (H/M and 8
# digits; 8 digits for Taiwan) followed, on older cards, by a 2-digit count of issues, which a
# renewal changes: the lifelong part is the document's identity.
DOCUMENT_FORMS = {
    HK_MACAO_PERMIT: r"^[HM][0-9]{8}([0-9]{2})?$",
    TAIWAN_PERMIT: r"^[0-9]{8}([0-9]{2})?$",
    PERMANENT_RESIDENCE: r"^(9[0-9]{16}[0-9X]|[A-Z]{3}[0-9]{12})$",  # 2023 card, or the 15-character older one
    PASSPORT: r"^[A-Z0-9]{5,17}$",
    OTHER_DOCUMENT: r"^[A-Z0-9]{4,20}$",
}
LIFELONG_LENGTH = {HK_MACAO_PERMIT: 9, TAIWAN_PERMIT: 8}
# What people put between the parts of a number: spaces, dashes, dots, slashes, middle dots
SEPARATORS = r"[\s\-‐‑‒–—―_./·・•]"


def document_number_expr(col: pl.Expr) -> pl.Expr:
    """A document number as written, normalised: full-width folded (NFKC), upper case, no
    separators ('ｇ-1234 5678' -> 'G12345678'); null when nothing is left. Other scripts' digits are
    kept as they are, for the rules to refuse."""
    number = col.str.normalize("NFKC").str.to_uppercase()
    scientific = number.str.contains(EXCEL_SCIENTIFIC)  # Excel's rounding, kept to be refused as such
    number = pl.when(scientific).then(number).otherwise(number.str.replace_all(SEPARATORS, ""))
    return pl.when(number != "").then(number)


def document_kind_expr(number: pl.Expr) -> pl.Expr:
    """The document type a normalised number's form shows, for sources that give the number of a
    person from outside the mainland without its type (the police register's 境外人员): permits,
    permanent-residence cards and residence permits by their patterns, anything else a passport."""
    return (
        pl.when(number.str.contains(CITIZEN_ID_FORM) & number.str.slice(0, 6).is_in(RESIDENCE_PERMIT_AREAS))
        .then(pl.lit(RESIDENCE_PERMIT))
        .when(number.str.contains(CITIZEN_ID_FORM) & number.str.starts_with("9"))
        .then(pl.lit(PERMANENT_RESIDENCE))
        .when(number.str.contains(CITIZEN_ID_FORM) | number.str.contains(LEGACY_ID_FORM))
        .then(pl.lit(CITIZEN_ID_DOC))
        .when(number.str.contains(DOCUMENT_FORMS[HK_MACAO_PERMIT]))
        .then(pl.lit(HK_MACAO_PERMIT))
        .when(number.str.contains(DOCUMENT_FORMS[TAIWAN_PERMIT]))
        .then(pl.lit(TAIWAN_PERMIT))
        .when(number.str.contains(DOCUMENT_FORMS[PERMANENT_RESIDENCE]))
        .then(pl.lit(PERMANENT_RESIDENCE))
        .otherwise(pl.lit(PASSPORT))
    )


def document_valid_expr(kind: pl.Expr, number: pl.Expr, today: dt.date | None = None) -> pl.Expr:
    """True where a normalised ``number`` (15-digit citizen IDs already upgraded) is a valid number
    of a document of type ``kind``: the citizen-ID rule for 公民身份号码 (residence permits with
    their 810000/820000/830000), the check character and birth date for the 2023 permanent-residence
    card, the pattern for the others (a passport: 5 to 17 letters or digits, at least one digit)."""
    permanent_new = (
        number.str.contains(CITIZEN_ID_FORM)
        & number.str.starts_with("9")
        & citizen_id_check_expr(number)
        & id_birth_date_expr(number).is_between(pl.lit(dt.date(1900, 1, 1)), pl.lit(today or _today()))
    )
    shaped = number.str.contains(kind.replace_strict(DOCUMENT_FORMS, default=DOCUMENT_FORMS[OTHER_DOCUMENT]))
    return (
        pl.when(kind == CITIZEN_ID_DOC)
        .then(citizen_id_valid_expr(number, today))
        .when(kind == RESIDENCE_PERMIT)
        .then(citizen_id_valid_expr(number, today) & number.str.slice(0, 6).is_in(RESIDENCE_PERMIT_AREAS))
        .when((kind == PERMANENT_RESIDENCE) & number.str.starts_with("9"))
        .then(permanent_new)
        .when(kind == PASSPORT)
        .then(shaped & number.str.contains("[0-9]"))
        .otherwise(shaped)
    )


def person_identity_expr(kind: pl.Expr, number: pl.Expr, today: dt.date | None = None) -> pl.Expr:
    """The identity a valid document gives its holder, the same whichever source wrote it: a
    number on the GB 11643 pattern (citizen ID, residence permit, 2023 permanent-residence card)
    is itself; any other is ``<type>:<number>``, a permit by its lifelong number
    (``516:H12345678``). Null where the number is no valid one of its type."""
    length = kind.replace_strict(LIFELONG_LENGTH, default=None, return_dtype=pl.Int64)
    on_id_pattern = number.str.contains(CITIZEN_ID_FORM) & kind.is_in([*CITIZEN_NUMBERED, PERMANENT_RESIDENCE])
    return pl.when(document_valid_expr(kind, number, today)).then(
        pl.when(on_id_pattern)
        .then(number)
        .otherwise(pl.concat_str(kind, pl.lit(":"), number.str.slice(0, pl.coalesce(length, number.str.len_chars()))))
    )


# -- unified social credit code ------------------------------------------------------------------
def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first8, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def is_valid_uscc(value: str) -> bool:
    value = value.upper()
    if len(value) != 18 or any(c not in USCC_ALPHABET for c in value):
        return False
    return uscc_check_char(value[:17]) == value[17]


def uscc_check_expr(col: pl.Expr) -> pl.Expr:
    """Vectorised :func:`is_valid_uscc` on upper-case values."""
    values = {c: i for i, c in enumerate(USCC_ALPHABET)}
    total = pl.sum_horizontal(
        col.str.slice(i, 1).replace_strict(values, default=None, return_dtype=pl.Int32) * w
        for i, w in enumerate(USCC_WEIGHTS)
    )
    expected = ((31 - total % 31) % 31).replace_strict(list(range(31)), list(USCC_ALPHABET), return_dtype=pl.String)
    return col.str.contains(f"^[{USCC_ALPHABET}]{{18}}$") & (expected == col.str.slice(17, 1))


# -- phone -------------------------------------------------------------------------------------
FIXED_LINE_PATTERN = r"^(0[0-9]{2,3})?[0-9]{7,8}$"
EXTENSION = "转"  # how a normalised number gives its extension: 01066012345转8001
# an extension as people write it: 转8001, 转分机8001, 分机8001, ext 8001, x8001, #8001
_WITH_EXTENSION = r"(?i)^(.*?[0-9)）])\s*(?:转分机|转|分机|ext\.?|x|#)\s*([0-9]{1,6})$"


def is_phone_expr(col: pl.Expr) -> pl.Expr:
    """True for a normalised mobile number or a fixed-line number (with or without area code),
    either with an extension (``转8001``)."""
    main = col.str.replace(f"{EXTENSION}[0-9]{{1,6}}$", "")
    return main.str.contains(PHONE_PATTERN) | main.str.contains(FIXED_LINE_PATTERN)


def normalise_phone_expr(col: pl.Expr) -> pl.Expr:
    """Digits only, the country code dropped, an extension kept after 转: '+86 138-1234-5678' ->
    '13812345678', '+86 10 6601 2345' -> '01066012345', '(010)66012345 转 8001' ->
    '01066012345转8001'. Anything else in it (letters, other scripts' digits) leaves it as written, for
    the rule to refuse."""
    parts = col.str.extract_groups(_WITH_EXTENSION)
    main = pl.coalesce(parts.struct.field("1"), col)
    international = main.str.contains(r"^\s*(\+|00)\s*86")
    digits = main.str.replace_all(r"[^0-9]", "")
    national = (
        pl.when(international)
        .then(digits.str.replace(r"^(00)?86", ""))
        .otherwise(digits.str.replace(r"^(0086|86)(1[3-9][0-9]{9})$", "$2"))
    )
    # after the country code a fixed line drops its trunk 0 (+86 10 …): it comes back
    national = (
        pl.when(international & ~national.str.contains(PHONE_PATTERN)).then(pl.lit("0") + national).otherwise(national)
    )
    extension = parts.struct.field("2")
    normalised = (
        pl.when(extension.is_not_null()).then(pl.concat_str(national, pl.lit(EXTENSION), extension)).otherwise(national)
    )
    # letters or other signs in it: no phone number as written, left for the rule to refuse
    return pl.when(main.str.contains(r"[^0-9\s\-()（）+.]")).then(col).otherwise(normalised)
