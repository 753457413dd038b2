"""How people and systems mangle text: the cell-level flaws the feeds carry.

Each flaw is a function ``value -> flawed value`` (``None`` when the flaw cannot apply to that
value, e.g. a lowercase x on an ID without X). :func:`plant` applies them to a random share of a
column and returns, beside the new column, the flaw kind of every cell, which the feed writers
turn into ``defects.parquet`` rows. Flaws touch a few per cent of the rows, so they run in Python
on that share only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache

import numpy as np
import polars as pl

from redwall.generator import vocab
from redwall.identifiers import ID_CHECK_CHARS

FULLWIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")
CN_DIGITS = "〇一二三四五六七八九"
EXCEL_EPOCH = dt.date(1899, 12, 30)


# -- numbers and dates as people write them ---------------------------------------------------
def chinese_number(n: int) -> str:
    """12 -> 十二, 105 -> 一百零五 (house numbers and floors as written in words)."""
    if n < 10:
        return CN_DIGITS[n]
    if n < 20:
        return "十" + (CN_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return CN_DIGITS[n // 10] + "十" + (CN_DIGITS[n % 10] if n % 10 else "")
    rest = n % 100
    tail = (
        ""
        if rest == 0
        else (
            "零" + CN_DIGITS[rest]
            if rest < 10
            else CN_DIGITS[rest // 10] + "十" + (CN_DIGITS[rest % 10] if rest % 10 else "")
        )
    )
    return CN_DIGITS[n // 100] + "百" + tail


def chinese_numbers(expr: pl.Expr, upto: int = 1000) -> pl.Expr:
    return expr.replace_strict({str(i): chinese_number(i) for i in range(upto)}, default=expr)


DATE_STYLES: dict[str, Callable[[dt.date], str]] = {
    "iso": lambda d: d.isoformat(),
    "slash": lambda d: f"{d.year}/{d.month}/{d.day}",
    "chinese": lambda d: f"{d.year}年{d.month}月{d.day}日",
    "compact": lambda d: d.strftime("%Y%m%d"),
    "dotted": lambda d: f"{d.year}.{d.month}.{d.day}",
}


def date_text(expr: pl.Expr, style: str) -> pl.Expr:
    """Vectorised form of :data:`DATE_STYLES`."""
    y, m, d = expr.dt.year().cast(pl.String), expr.dt.month().cast(pl.String), expr.dt.day().cast(pl.String)
    return {
        "iso": expr.dt.strftime("%Y-%m-%d"),
        "slash": pl.concat_str([y, m, d], separator="/"),
        "chinese": pl.concat_str([y, pl.lit("年"), m, pl.lit("月"), d, pl.lit("日")]),
        "compact": expr.dt.strftime("%Y%m%d"),
        "dotted": pl.concat_str([y, m, d], separator="."),
    }[style]


def excel_rounded(value: str) -> float:
    """What Excel keeps of an 18-digit number typed into a cell: 15 significant digits."""
    return float(f"{int(value):.15g}")


# -- flaws of one cell ----------------------------------------------------------------------------
def fullwidth_digits(v: str, rng: np.random.Generator) -> str | None:
    out = v.translate(FULLWIDTH)
    return out if out != v else None


def lowercase_x(v: str, rng: np.random.Generator) -> str | None:
    return v[:-1] + "x" if v.endswith("X") else None


def padded_spaces(v: str, rng: np.random.Generator) -> str:
    return [" " + v, v + " ", "  " + v + " "][rng.integers(3)]


def invalid_checksum(v: str, rng: np.random.Generator) -> str | None:
    """A mistyped check character (the other 17 characters stay right)."""
    if len(v) != 18:
        return None
    wrong = ID_CHECK_CHARS.replace(v[-1].upper(), "")
    return v[:-1] + wrong[rng.integers(len(wrong))]


def transposed_digits(v: str, rng: np.random.Generator) -> str | None:
    """Two neighbouring digits of the sequence part swapped (breaks the check character)."""
    i = 14 + int(rng.integers(2))
    out = v[:i] + v[i + 1] + v[i] + v[i + 2 :]
    return out if out != v and len(v) == 18 else None


def legacy_id(v: str, rng: np.random.Generator) -> str | None:
    if len(v) != 18 or v[6:8] != "19":
        return None
    return v[:6] + v[8:17]


def phone_format(v: str, rng: np.random.Generator) -> str:
    return [f"+86{v}", f"{v[:3]}-{v[3:7]}-{v[7:]}", f"{v[:3]} {v[3:7]} {v[7:]}", f"86-{v}"][rng.integers(4)]


@cache
def _s2t() -> dict[str, str]:
    """Simplified -> traditional for every character names are made of (OpenCC, per character)."""
    import opencc

    chars = (
        set("".join(vocab.SURNAMES))
        | set(vocab.GIVEN_MALE)
        | set(vocab.GIVEN_FEMALE)
        | set(vocab.HOMOPHONE_POOL)
        | {c for names in (*vocab.ERA_NAMES_MALE.values(), *vocab.ERA_NAMES_FEMALE.values()) for n in names for c in n}
    )
    converter = opencc.OpenCC("s2t")
    return {c: t for c in sorted(chars) if (t := converter.convert(c)) != c}


@cache
def _homophones() -> dict[str, list[str]]:
    """Name characters -> other characters of the same toneless pinyin (what a pinyin IME offers)."""
    from pypinyin import Style, lazy_pinyin

    pool = sorted(
        set(vocab.GIVEN_MALE)
        | set(vocab.GIVEN_FEMALE)
        | set(vocab.HOMOPHONE_POOL)
        | {c for names in (*vocab.ERA_NAMES_MALE.values(), *vocab.ERA_NAMES_FEMALE.values()) for n in names for c in n}
    )
    by_sound: dict[str, list[str]] = {}
    for c in pool:
        by_sound.setdefault(lazy_pinyin(c, style=Style.NORMAL)[0], []).append(c)
    return {c: [o for o in group if o != c] for group in by_sound.values() for c in group if len(group) > 1}


def traditional(v: str, rng: np.random.Generator) -> str | None:
    table = _s2t()
    out = "".join(table.get(c, c) for c in v)
    return out if out != v else None


def homophone(v: str, rng: np.random.Generator) -> str | None:
    """One character of the given name replaced by a homophone."""
    table = _homophones()
    places = [i for i, c in enumerate(v) if i > 0 and c in table]
    if not places:
        return None
    i = places[rng.integers(len(places))]
    options = table[v[i]]
    return v[:i] + options[rng.integers(len(options))] + v[i + 1 :]


def inner_space(v: str, rng: np.random.Generator) -> str | None:
    """A space typed between surname and given name, ASCII or the full-width U+3000."""
    if len(v) < 2:
        return None
    return v[0] + (" " if rng.random() < 0.5 else "\u3000") + v[1:]


NAME_VARIANTS: dict[str, Callable] = {
    "traditional": traditional,
    "homophone": homophone,
    "inner_space": inner_space,
}
ID_FLAWS: dict[str, Callable] = {
    "fullwidth_digits": fullwidth_digits,
    "lowercase_x": lowercase_x,
    "padded_spaces": padded_spaces,
    "invalid_checksum": invalid_checksum,
    "transposed_digits": transposed_digits,
    "legacy_id": legacy_id,
}


def plant(
    values: pl.Series,
    flaws: dict[str, float],
    rng: np.random.Generator,
    functions: dict[str, Callable],
    eligible: np.ndarray | None = None,
    encodable: str | None = None,
) -> tuple[pl.Series, pl.Series]:
    """Apply each flaw to a random share of the non-null values.

    Returns the new values and, per cell, the flaw kind planted there (null where none). A flaw
    whose function returns None for a value, or whose result cannot be written in ``encodable``
    (e.g. GBK), is not planted there.
    """
    draw = rng.random(len(values))
    ok = values.is_not_null().to_numpy()
    if eligible is not None:
        ok &= eligible
    cuts = np.cumsum(list(flaws.values()))
    chosen = np.flatnonzero(ok & (draw < cuts[-1]))
    which = np.searchsorted(cuts, draw[chosen], side="right")
    names = list(flaws)
    rows, new_values, new_kinds = [], [], []
    for i, k, v in zip(chosen, which, values.gather(chosen).to_list(), strict=True):
        new = functions[names[k]](v, rng)
        if new is None or (encodable and not _encodes(new, encodable)):
            continue
        rows.append(int(i))
        new_values.append(new)
        new_kinds.append(names[k])
    out = values.cast(pl.String).clone()
    kinds = pl.Series(values.name, [None] * len(values), dtype=pl.String)
    if rows:
        out.scatter(rows, new_values)
        kinds.scatter(rows, new_kinds)
    return out, kinds


def _encodes(value: str, encoding: str) -> bool:
    try:
        value.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True
