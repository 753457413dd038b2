"""National identifier rules: citizen ID (GB 11643), unified social credit code (GB 32100), phones.

Each rule exists twice: a scalar form for generators and single cells, and a vectorised polars
expression for tables. Both are tested against each other.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

PHONE_PATTERN = r"^1[3-9]\d{9}$"


# -- citizen ID --------------------------------------------------------------------------------
def id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def is_valid_citizen_id(value: str) -> bool:
    """18 characters, a real birth date and the right check character."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return id_check_char(value[:17]) == value[17].upper()


def upgrade_legacy_id(value: str) -> str:
    """A 15-digit ID (yyMMdd, born 19xx) becomes its 18-digit form."""
    first17 = value[:6] + "19" + value[6:15]
    return first17 + id_check_char(first17)


def id_birth_date(value: str) -> dt.date:
    return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def id_sex_code(value: str) -> str:
    """'1' male (odd sequence digit), '2' female: digit 17 of an 18-digit ID, the last of a 15-digit one."""
    return "1" if int(value[16 if len(value) == 18 else 14]) % 2 else "2"


def id_check_char_expr(first17: pl.Expr) -> pl.Expr:
    """The check character of 17 leading digits (vectorised :func:`id_check_char`)."""
    total = pl.sum_horizontal(
        first17.str.slice(i, 1).cast(pl.Int32, strict=False) * w for i, w in enumerate(ID_WEIGHTS)
    )
    return (total % 11).replace_strict(list(range(11)), list(ID_CHECK_CHARS), return_dtype=pl.String)


def citizen_id_check_expr(col: pl.Expr) -> pl.Expr:
    """True where an 18-character value carries the right check character (vectorised)."""
    return (col.str.len_chars() == 18) & col.str.slice(0, 17).str.contains(r"^\d{17}$") & (
        id_check_char_expr(col.str.slice(0, 17)) == col.str.slice(17, 1).str.to_uppercase()
    )


def upgrade_legacy_id_expr(col: pl.Expr) -> pl.Expr:
    """Vectorised :func:`upgrade_legacy_id` for 15-digit values."""
    first17 = pl.concat_str([col.str.slice(0, 6), pl.lit("19"), col.str.slice(6, 9)])
    return first17 + id_check_char_expr(first17)


def excel_rounded_id_expr(col: pl.Expr) -> pl.Expr:
    """True where an ID was stored as a number by Excel and so lost its last digits.

    Excel keeps 15 significant digits: an 18-digit ID typed into a numeric cell comes back as
    ``1.10102199003071E+17`` or as ``110102199003071000``. Such a value is destroyed, never
    repairable. A real ID may end in 000, so a value counts as rounded only when it also fails the
    check character.
    """
    scientific = col.str.contains(r"^\d(\.\d+)?[eE]\+?\d+$")
    padded = col.str.contains(r"^\d{15}000$") & ~citizen_id_check_expr(col)
    return scientific | padded


def id_birth_date_expr(col: pl.Expr) -> pl.Expr:
    """The birth date an 18-digit ID encodes (null when it encodes no real date)."""
    return col.str.slice(6, 8).str.to_date("%Y%m%d", strict=False)


def id_sex_code_expr(col: pl.Expr) -> pl.Expr:
    """The sex code an ID encodes (vectorised :func:`id_sex_code`): '1' male, '2' female, from the
    parity of digit 17 of an 18-character ID or the last digit of a 15-digit legacy one; null for
    any other value."""
    digit = (
        pl.when(col.str.contains(r"^\d{17}[\dXx]$")).then(col.str.slice(16, 1))
        .when(col.str.contains(r"^\d{15}$")).then(col.str.slice(14, 1))
    ).cast(pl.Int32, strict=False)
    return (digit % 2).replace_strict([1, 0], ["1", "2"], default=None, return_dtype=pl.String)


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
    expected = ((31 - total % 31) % 31).replace_strict(
        list(range(31)), list(USCC_ALPHABET), return_dtype=pl.String
    )
    return col.str.contains(f"^[{USCC_ALPHABET}]{{18}}$") & (expected == col.str.slice(17, 1))


# -- phone -------------------------------------------------------------------------------------
FIXED_LINE_PATTERN = r"^(0\d{2,3})?\d{7,8}$"


def is_phone_expr(col: pl.Expr) -> pl.Expr:
    """True for a normalised mobile number or a fixed-line number (with or without area code)."""
    return col.str.contains(PHONE_PATTERN) | col.str.contains(FIXED_LINE_PATTERN)


def normalise_phone_expr(col: pl.Expr) -> pl.Expr:
    """Digits only, +86/0086 dropped: '+86 138-1234-5678' -> '13812345678'."""
    digits = col.str.replace_all(r"[^\d]", "")
    return digits.str.replace(r"^(0086|86)(1[3-9]\d{9})$", "$2")
