"""Free-text addresses resolved against the district's building and house registers.

This first version matches exactly after simple normalisation, applied alike to the registers'
addresses and to the ones people wrote: full-width characters folded, spaces dropped, Chinese
numerals read as digits (``十二号院`` → ``12号院``), the leading city/district/street names (from
reference data) dropped, the short and dashed spellings of a compound's building and unit written
out (``12号院3楼`` / ``12号院3-2-501`` → ``12号院3号楼2单元501``), and a trailing
``<unit>单元<room>室`` split off; a room given without its unit counts when the building has only one
room of that number. Anything else (typos, landmarks, missing door numbers) stays
unresolved for now.
"""

from __future__ import annotations

from functools import cache

import cn2an
import polars as pl

from schemas import reference

# The lazy building part stops where an optional "<n>单元" and a room number end the address; an
# address without a room number is all building.
ADDRESS_PARTS = r"^(?P<building>.+?)(?:(?:(?P<unit>\d+)单元)?(?P<room>\d+)室?)?$"
# Other spellings of a compound's building, unit and room, in the order they are rewritten.
SPELLINGS = (
    (r"号院(\d+)-(\d+)-(\d+)$", "号院${1}号楼${2}单元${3}"),
    (r"号院(\d+)-(\d+)$", "号院${1}号楼${2}"),
    (r"号-(\d+)-(\d+)$", "号${1}单元${2}"),
    (r"号-(\d+)$", "号${1}"),
    (r"号院(\d+)号$", "号院${1}号楼"),
    (r"院(\d+)楼", "院${1}号楼"),
)


@cache
def _numerals() -> tuple[list[str], list[str]]:
    """Chinese numerals 1–999 and their digits, longest first so 十二 wins over 十."""
    pairs = sorted(((cn2an.an2cn(i), str(i)) for i in range(1, 1000)), key=lambda p: -len(p[0]))
    return [cn for cn, _ in pairs], [digits for _, digits in pairs]


@cache
def _admin_prefix() -> str:
    divisions = reference("admin_division").filter(pl.col("code").str.starts_with("11"))
    counties = divisions.filter(pl.col("level") == "county")["name"].to_list()
    streets = reference("street")["name"].to_list()
    return rf"^(?:北京市?)?(?:市辖区)?(?:{'|'.join(counties)})?(?:{'|'.join(streets)})?"


def normalise(address: pl.Expr) -> pl.Expr:
    text = (address.str.normalize("NFKC").str.replace_all(r"\s+", "")
            .str.replace_many(*_numerals(), leftmost=True).str.replace(_admin_prefix(), ""))
    for pattern, spelled_out in SPELLINGS:
        text = text.str.replace(pattern, spelled_out)
    return text


def split(address: pl.Expr) -> pl.Expr:
    """A struct of the normalised address's ``building`` part, ``unit`` and ``room`` (text)."""
    return normalise(address).str.extract_groups(ADDRESS_PARTS)


def building_part(address: pl.Expr) -> pl.Expr:
    """The address down to its building (``府右街12号院3号楼``), null when no 号/楼/院 marks one:
    what may be shown where the full address may not."""
    return split(address).struct.field("building").str.extract(r"^(.*[号楼院])", 1)


def locate(frame: pl.DataFrame, address: str, buildings: pl.DataFrame, houses: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the ``building_code`` and ``house_code`` its ``address`` column resolves to
    (null where it does not). Addresses shared by two buildings resolve to neither. Each distinct
    address is parsed once."""
    index = (
        buildings.select("building_code", _key=split(pl.col("address")).struct.field("building"))
        .filter(pl.col("_key").is_unique())
    )
    rooms = houses.select("building_code", "house_code", "unit", _room=pl.col("room").str.strip_suffix("室"))
    # without a unit, a room number tells the house only if no other unit of the building has it
    lone_rooms = rooms.filter(pl.struct("building_code", "_room").is_unique()).select(
        "building_code", "_room", _lone_house="house_code")
    places = (
        frame.select(pl.col(address).drop_nulls().unique())
        .with_columns(_parts=split(pl.col(address)))
        .select(address, pl.col("_parts").struct.unnest().name.prefix("_"))
        .with_columns(pl.col("_unit").cast(pl.Int64))
        .join(index, left_on="_building", right_on="_key", how="left")
        .join(rooms, left_on=["building_code", "_unit", "_room"], right_on=["building_code", "unit", "_room"],
              how="left", nulls_equal=True)
        .join(lone_rooms, on=["building_code", "_room"], how="left")
        .select(address, "building_code",
                house_code=pl.coalesce("house_code", pl.when(pl.col("_unit").is_null()).then("_lone_house")))
    )
    return frame.join(places, on=address, how="left")
