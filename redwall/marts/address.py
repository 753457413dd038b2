"""Free-text addresses resolved against the district's building and house registers.

Standardisation (:func:`normalise`) is applied alike to the registers' addresses and to the ones
people wrote, all in polars string expressions:

- full-width characters folded, spaces dropped, dashes unified, ``3#楼`` read as ``3号楼``;
- Chinese numerals read as digits only where they number a part (``十二号院三号楼二单元五零一`` →
  ``12号院3号楼2单元501``), so road names such as 六部口 keep theirs; :mod:`cn2an` reads each
  distinct numeral once;
- the leading city, district and street names (from reference data) dropped, and a trailing
  position words an event's reporter adds (``门口``, ``东侧``, ``北侧约20米``, ``对面``);
- a compound's building and unit written out from their aliases and short forms (``3楼``, ``3栋``,
  ``3-2-501``, ``2门``), a floor before the room dropped (the room number holds it), ``501号`` /
  ``501室`` read as room 501.

Matching (:func:`locate`): the part up to the building must equal exactly one register building;
a unit and room then name the house, and a room without its unit counts when no other unit of the
building has that room. Nothing is guessed: an address that does not resolve to the level it was
written at carries the reason (:data:`ISSUES`) instead.
"""

from __future__ import annotations

from functools import cache

import cn2an
import polars as pl

from redwall.schemas import reference

# The lazy building part stops where an optional "<n>单元" and a room number end the address; an
# address without a room number is all building.
ADDRESS_PARTS = r"^(?P<building>.+?)(?:(?:(?P<unit>\d+)单元)?(?P<room>\d+)室?)?$"
CN_DIGITS = "〇零一二两三四五六七八九十百千"
# A run of Chinese numerals numbering a part: before a part word, a dash, or ending the address (a room).
CN_NUMBER = rf"[{CN_DIGITS}]+(?:号|院|楼|栋|幢|座|单元|门|室|层|-|$)"
# Where a reporter stands relative to the place, after its door or building number.
POSITION = rf"([\d号楼院])(?:[东南西北]侧|对面|门口|门前|院内|附近|旁边?|路口|楼下)(?:约?[\d{CN_DIGITS}]+米)?$"
# Other spellings of a compound's building, unit and room, in the order they are rewritten.
SPELLINGS = (
    (r"号院(\d+)-(\d+)-(\d+)$", "号院${1}号楼${2}单元${3}"),
    (r"号院(\d+)-(\d+)$", "号院${1}号楼${2}"),
    (r"号-(\d+)-(\d+)$", "号${1}单元${2}"),
    (r"号-(\d+)$", "号${1}"),
    (r"号院(\d+)号$", "号院${1}号楼"),
    (r"院(\d+)(?:号?[栋幢座]|楼)", "院${1}号楼"),
    (r"号楼(\d+)门", "号楼${1}单元"),
    (r"(\d+)层(\d+)", "${2}"),
    (r"(号楼|单元)(\d+)号$", "${1}${2}"),  # a "号" after the building or unit numbers the room
)
# Why an address does not resolve to the place it was written at.
NO_BUILDING, NO_HOUSE, AMBIGUOUS = "未匹配到楼栋", "未匹配到房屋", "多个候选"
ISSUES = (NO_BUILDING, NO_HOUSE, AMBIGUOUS)


@cache
def _number(written: str) -> str:
    """One numeral run with its part word as digits (``十二号`` → ``12号``, ``五零一`` → ``501``)."""
    numeral = written.rstrip("号院楼栋幢座单元门室层-")
    return str(cn2an.cn2an(numeral.replace("两", "二"), "smart")) + written[len(numeral) :]


def _with_digits(addresses: pl.Series) -> pl.Series:
    runs = addresses.str.extract_all(CN_NUMBER).explode().drop_nulls().unique()
    if runs.is_empty():
        return addresses
    return addresses.str.replace_many(runs.to_list(), [_number(r) for r in runs], leftmost=True)


@cache
def _admin_prefix() -> str:
    divisions = reference("admin_division").filter(pl.col("code").str.starts_with("11"))
    counties = divisions.filter(pl.col("level") == "county")["name"].to_list()
    streets = reference("street")["name"].to_list()
    return rf"^(?:北京市?)?(?:市辖区)?(?:{'|'.join(counties)})?(?:{'|'.join(streets)})?"


def normalise(address: pl.Expr) -> pl.Expr:
    text = (
        address.str.normalize("NFKC")
        .str.replace_all(r"\s+", "")
        .str.replace_all(r"[‐‑‒–—―−]", "-")
        .str.replace_all(r"(\d)#", "${1}号")
        .map_batches(_with_digits, return_dtype=pl.String, is_elementwise=True)
        .str.replace(_admin_prefix(), "")
        .str.replace(POSITION, "${1}")
    )
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


def _only(codes: pl.Expr) -> pl.Expr:
    """The one code of a group, null when there are several: ambiguity is never guessed."""
    return pl.when(codes.n_unique() == 1).then(codes.first())


def resolve_addresses(addresses: pl.Series, buildings: pl.DataFrame, houses: pl.DataFrame) -> pl.DataFrame:
    """One row per distinct address: the ``building_code`` and ``house_code`` it resolves to and,
    where it does not resolve to the level it was written at, the ``address_issue``. A house is
    looked for in every building the address may mean, so a unit and room that only one of two
    same-named buildings has settle which; a room without its unit, in every unit. ``address_grid``
    is the grid every building the address may mean lies in (null if they differ), so even an
    ambiguous address reaches the grid worker who can settle it."""
    keyed = buildings.select("building_code", "grid_code", _building=split(pl.col("address")).struct.field("building"))
    candidates = keyed.group_by("_building").agg(
        _buildings=pl.col("building_code").n_unique(),
        building_code=_only(pl.col("building_code")),
        address_grid=_only(pl.col("grid_code")),
    )
    rooms = houses.join(keyed, on="building_code").select(
        "_building", "unit", "building_code", "house_code", _room=pl.col("room").str.strip_suffix("室")
    )
    found = [
        pl.col("house_code").n_unique().alias("_houses"),
        _only(pl.col("house_code")).alias("_house"),
        _only(pl.col("building_code")).alias("_house_building"),
    ]
    in_unit, in_any_unit = (
        rooms.group_by(*by).agg(*found) for by in (("_building", "unit", "_room"), ("_building", "_room"))
    )
    room_given, house_found = pl.col("_room").is_not_null(), pl.col("_house").is_not_null()
    several = (pl.col("_buildings") > 1) | (pl.col("_houses") > 1)
    return (
        addresses.drop_nulls()
        .unique()
        .to_frame("address")
        .with_columns(split(pl.col("address")).struct.rename_fields(["_building", "_unit", "_room"]).alias("_p"))
        .unnest("_p")
        .with_columns(pl.col("_unit").cast(pl.Int64))
        .join(candidates, on="_building", how="left")
        .join(in_unit, left_on=["_building", "_unit", "_room"], right_on=["_building", "unit", "_room"], how="left")
        .join(in_any_unit, on=["_building", "_room"], how="left", suffix="_any")
        .with_columns(
            pl.when(pl.col("_unit").is_null()).then(pl.col(f"{c}_any")).otherwise(c).alias(c)
            for c in ("_houses", "_house", "_house_building")
        )
        .select(
            "address",
            "address_grid",
            building_code=pl.coalesce("building_code", "_house_building"),
            house_code="_house",
            address_issue=pl.when(pl.col("_buildings").is_null())
            .then(pl.lit(NO_BUILDING))
            .when(house_found)
            .then(None)
            .when(several)
            .then(pl.lit(AMBIGUOUS))
            .when(room_given)
            .then(pl.lit(NO_HOUSE)),
        )
    )


def locate(frame: pl.DataFrame, address: str, buildings: pl.DataFrame, houses: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the ``building_code``, ``house_code``, ``address_grid`` and ``address_issue`` its ``address``
    column resolves to (:func:`resolve_addresses`; all null where the address is). Each distinct
    address is parsed once."""
    places = resolve_addresses(frame[address], buildings, houses).rename({"address": address})
    return frame.join(places, on=address, how="left")
