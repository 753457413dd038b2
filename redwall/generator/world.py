"""The one synthetic world every feed is a view of.

Streets -> communities -> grids -> buildings -> houses -> households -> persons, plus
organisations, components and grid workers, and what happens to people during the period
(deaths, households moving out, arriving, relocating inside the street). Everything is built as
polars/numpy columns: no per-person Python.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from redwall.generator import ids, vocab
from redwall.generator.addresses import address_expr
from redwall.schemas import reference

DISTRICT_CODE = "110102"
OLD_XUANWU = "110104"
OTHER_BEIJING = ["110101", "110105", "110106", "110108"]


@dataclass(frozen=True)
class Scale:
    name: str
    persons: int
    streets: int  # how many streets of reference/street.csv, 西长安街 first
    home_communities: int  # 西长安街's communities used (names from vocab)
    home_grids: int  # grids in 西长安街
    communities_per_street: tuple[int, int] = (10, 15)  # other streets, invented names
    grids_per_community: tuple[int, int] = (5, 7)


SCALES = {
    "small": Scale("small", persons=2_000, streets=1, home_communities=3, home_grids=12),
    "street": Scale("street", persons=50_000, streets=1, home_communities=11, home_grids=71),
    "district": Scale("district", persons=1_100_000, streets=15, home_communities=11, home_grids=71),
}


class Dice:
    """Independent random streams by name, so adding one draw never shifts another feed's data."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, name: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])


@dataclass
class Period:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def end_moment(self) -> np.datetime64:
        return np.datetime64(self.end + dt.timedelta(days=1), "s") - np.timedelta64(1, "s")


@dataclass
class World:
    scale: Scale
    period: Period
    streets: pl.DataFrame
    communities: pl.DataFrame
    grids: pl.DataFrame
    workers: pl.DataFrame
    buildings: pl.DataFrame
    houses: pl.DataFrame
    persons: pl.DataFrame
    organizations: pl.DataFrame
    components: pl.DataFrame
    extras: dict = field(default_factory=dict)

    def street_name(self, code: str) -> str:
        return self.streets.filter(pl.col("street_code") == code)["street_name"][0]


# -- names ------------------------------------------------------------------------------------
def pick(rng: np.random.Generator, options: Mapping[str, float] | list, n: int) -> np.ndarray:
    if isinstance(options, Mapping):
        p = np.array(list(options.values()), float)
        return np.array(list(options))[rng.choice(len(p), n, p=p / p.sum())]
    return np.array(options)[rng.integers(0, len(options), n)]


def surnames(rng: np.random.Generator, n: int) -> np.ndarray:
    return pick(rng, vocab.SURNAMES, n)


def given_names(rng: np.random.Generator, sex: np.ndarray, birth_year: np.ndarray) -> np.ndarray:
    """One- or two-character given names; a third are the typical names of the person's cohort."""
    n = len(sex)
    male = sex == 1
    out = np.empty(n, dtype="<U2")
    for is_male, pool in ((True, vocab.GIVEN_MALE), (False, vocab.GIVEN_FEMALE)):
        rows = np.flatnonzero(male == is_male)
        cp = np.frombuffer("".join(pool).encode("utf-32-le"), dtype=np.uint32)[
            rng.integers(0, len(pool), (len(rows), 2))
        ]
        cp[rng.random(len(rows)) < 0.25, 1] = 0  # single-character given names
        out[rows] = ids.join_chars(cp)
        eras = vocab.ERA_NAMES_MALE if is_male else vocab.ERA_NAMES_FEMALE
        era_of = np.array(sorted(eras))[np.clip(np.searchsorted(sorted(eras), birth_year[rows], "right") - 1, 0, None)]
        classic = rng.random(len(rows)) < 0.35
        for era, names in eras.items():
            take = rows[classic & (era_of == era)]
            out[take] = pick(rng, names, len(take))
    return out


# -- geography --------------------------------------------------------------------------------
def _community_names(rng: np.random.Generator, street: str, n: int) -> list[str]:
    if street == vocab.HOME_STREET:
        return vocab.HOME_COMMUNITIES[:n]
    names = [r.removesuffix("大街").removesuffix("路") for r in vocab.STREET_ROADS.get(street, [])][: n // 2]
    while len(names) < n:
        a, b = pick(rng, vocab.COMMUNITY_PARTS, 2)
        name = a + b + pick(rng, vocab.COMMUNITY_SUFFIXES, 1)[0]
        if name not in names and a != b:
            names.append(name)
    return names


def _roads(rng: np.random.Generator, street: str, n: int) -> list[str]:
    roads = list(vocab.STREET_ROADS.get(street, []))
    while len(roads) < n:
        a, b = pick(rng, vocab.HUTONG_CHARS, 2)
        name = a + b + pick(rng, vocab.HUTONG_SUFFIXES, 1)[0]
        if a != b and name not in roads:
            roads.append(name)
    return roads


def build_geography(
    scale: Scale, dice: Dice, street: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The world's streets, communities and grids: the scale's first streets of reference/street.csv,
    or the one ``street`` (a single-street scale only), which then takes the home street's sizes."""
    rng = dice("geography")
    streets = reference("street").select(pl.col("code").alias("street_code"), pl.col("name").alias("street_name"))
    if street is None:
        streets = streets.head(scale.streets)
    elif scale.streets != 1 or street not in streets["street_code"]:
        raise ValueError(
            f"a world of one chosen street needs a one-street scale and a street code of street.csv: {street}"
        )
    else:
        streets = streets.filter(pl.col("street_code") == street)
    centre = streets["street_code"][0]  # the street with the scale's home sizes
    # Streets laid on a 4x4 raster over 西城区 (116.30–116.40 E, 39.86–39.96 N); 西长安街 at its real spot.
    k = np.arange(streets.height)
    lon = np.where(k == 0, 116.372, 116.305 + (k % 4) * 0.025)
    lat = np.where(k == 0, 39.905, 39.955 - (k // 4) * 0.025)
    streets = streets.with_columns(lon=pl.Series(lon), lat=pl.Series(lat))
    community_rows, grid_rows = [], []
    for street, s_lon, s_lat in streets.select("street_code", "lon", "lat").iter_rows():
        home = street == centre
        n_comm = scale.home_communities if home else int(rng.integers(*scale.communities_per_street, endpoint=True))
        if home:
            per = np.full(n_comm, scale.home_grids // n_comm)
            per[: scale.home_grids % n_comm] += 1
        else:
            per = rng.integers(*scale.grids_per_community, n_comm, endpoint=True)
        for i, (name, n_grid) in enumerate(zip(_community_names(rng, street, n_comm), per, strict=True)):
            code = f"{street}{i + 1:03d}"
            c_lon, c_lat = s_lon + rng.uniform(-0.009, 0.009), s_lat + rng.uniform(-0.009, 0.009)
            community_rows.append((code, name + "社区", street, c_lon, c_lat))
            for g in range(n_grid):  # numbered west→east, north→south
                grid_rows.append(
                    (
                        f"{code}{g + 1:03d}",
                        code,
                        street,
                        c_lon - 0.003 + (g % 3) * 0.003,
                        c_lat + 0.003 - (g // 3) * 0.003,
                    )
                )
    communities = pl.DataFrame(
        community_rows, orient="row", schema=["community_code", "community_name", "street_code", "lon", "lat"]
    )
    grids = pl.DataFrame(grid_rows, orient="row", schema=["grid_code", "community_code", "street_code", "lon", "lat"])
    area = np.where(grids["street_code"].to_numpy() == centre, 4.2e6 / max(scale.home_grids, 1), 50_000.0)
    grids = grids.with_columns(area_m2=pl.Series((area * rng.uniform(0.6, 1.4, grids.height)).round(1)))
    return streets, communities, grids


def build_workers(grids: pl.DataFrame, dice: Dice) -> pl.DataFrame:
    """One or two grid workers (网格员) per grid, numbered within their street."""
    rng = dice("workers")
    per = rng.choice([1, 2], grids.height, p=[0.6, 0.4])
    workers = (
        grids.select("grid_code", "street_code")
        .with_columns(n=pl.Series(per))
        .select(pl.col("grid_code", "street_code").repeat_by("n").explode())
    )
    sex = rng.choice([1, 2], workers.height)
    year = rng.integers(1970, 2000, workers.height)
    return workers.with_columns(
        worker_id=pl.concat_str(
            [
                pl.lit("WG"),
                pl.col("street_code"),
                (pl.int_range(pl.len()).over("street_code") + 1).cast(pl.String).str.zfill(3),
            ]
        ),
        name=pl.Series(np.char.add(surnames(rng, workers.height), given_names(rng, sex, year))),
    )


# -- buildings and houses ---------------------------------------------------------------------
BUILDING_TYPES = {"住宅": 0.45, "平房院落": 0.35, "综合": 0.08, "商业": 0.07, "办公": 0.05}


def build_places(grids: pl.DataFrame, households_per_grid: np.ndarray, dice: Dice) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = dice("places")
    needed = np.ceil(households_per_grid / 0.9).astype(int) + 2  # about one home in ten stands empty
    candidates = needed // 8 + 6
    gi = np.repeat(np.arange(grids.height), candidates)
    n = len(gi)
    btype = pick(rng, BUILDING_TYPES, n)
    floors = np.select(
        [btype == "住宅", btype == "平房院落", btype == "综合", btype == "商业"],
        [rng.integers(4, 13, n), np.ones(n, int), rng.integers(6, 21, n), rng.integers(1, 5, n)],
        rng.integers(4, 16, n),
    )
    units = np.select([btype == "住宅", btype == "综合"], [rng.integers(1, 5, n), rng.integers(1, 3, n)], 0)
    per_floor = np.select(
        [btype == "平房院落", btype == "住宅"], [rng.integers(4, 13, n), rng.integers(2, 4, n)], rng.integers(2, 5, n)
    )
    total = floors * np.maximum(units, 1) * per_floor
    commercial_floors = np.select([btype == "综合", np.isin(btype, ["商业", "办公"])], [2, floors], 0)
    residential = total - commercial_floors * np.maximum(units, 1) * per_floor
    frame = pl.DataFrame(
        {
            "gi": gi,
            "building_type": btype,
            "floors_above": floors,
            "units": units,
            "per_floor": per_floor,
            "houses": total,
            "residential": residential,
        }
    )
    # Keep a grid's candidates until their homes cover the grid's households.
    frame = (
        frame.with_columns(
            before=pl.col("residential").cum_sum().over("gi") - pl.col("residential"),
            needed=pl.Series(needed[gi]),
        )
        .filter(pl.col("before") < pl.col("needed"))
        .drop("before", "needed")
    )
    frame = frame.join(
        grids.with_row_index("gi").with_columns(pl.col("gi").cast(pl.Int64)), on="gi", maintain_order="left"
    ).drop("gi")
    frame = _building_addresses(frame, rng)
    b = frame.height
    frame = frame.with_columns(
        building_code=pl.concat_str(
            [pl.col("grid_code"), (pl.int_range(pl.len()).over("grid_code") + 1).cast(pl.String).str.zfill(4)]
        ),
        floors_below=pl.Series(
            np.where(
                np.isin(frame["building_type"].to_numpy(), ["平房院落"]), 0, rng.choice([0, 1, 2], b, p=[0.4, 0.5, 0.1])
            )
        ),
        lon=(pl.col("lon") + pl.Series(rng.uniform(-0.0015, 0.0015, b))).round(6),
        lat=(pl.col("lat") + pl.Series(rng.uniform(-0.0012, 0.0012, b))).round(6),
    )
    houses = _houses(frame, rng)
    households = houses.group_by("building_code").agg(households=pl.col("residential").sum())
    buildings = frame.join(households, on="building_code", how="left", maintain_order="left").with_columns(
        units=pl.when(pl.col("units") > 0).then(pl.col("units")), households=pl.col("households").cast(pl.Int64)
    )
    return buildings.drop("per_floor", "houses", "residential"), houses


def _building_addresses(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Roads per grid, door numbers along each road, compounds (X号院) of numbered apartment blocks."""
    road_rows = []
    for street in frame["street_code"].unique(maintain_order=True).to_list():
        grids = frame.filter(pl.col("street_code") == street)["grid_code"].n_unique()
        road_rows += [(street, i, r) for i, r in enumerate(_roads(rng, street, max(8, grids // 2 + 6)))]
    roads = pl.DataFrame(road_rows, orient="row", schema=["street_code", "road_idx", "road"])
    n_roads = roads.group_by("street_code").agg(n_roads=pl.len())
    # Each grid lies along three neighbouring roads of its street.
    frame = (
        frame.join(n_roads, on="street_code", maintain_order="left")
        .with_columns(
            road_idx=(
                (
                    pl.col("grid_code").rank("dense").over("street_code").cast(pl.Int64) * 2
                    + pl.Series(rng.integers(0, 3, frame.height))
                )
                % pl.col("n_roads")
            ),
        )
        .join(roads, on=["street_code", "road_idx"], maintain_order="left")
        .drop("road_idx", "n_roads")
    )
    n = frame.height
    apartment = frame["building_type"].is_in(["住宅", "综合"]).to_numpy()
    block_size = rng.integers(2, 7, n)
    frame = frame.with_columns(apartment=pl.Series(apartment), block=pl.Series(block_size)).with_columns(
        k=pl.int_range(pl.len()).over("grid_code", "road", "apartment")
    )
    frame = frame.with_columns(
        building_no=pl.when("apartment").then(pl.col("k") % pl.col("block") + 1),
        lot=pl.when("apartment").then(pl.col("k") // pl.col("block")).otherwise(pl.col("k")),
    )
    # One door number per lot (a compound or a single building), increasing along the road.
    lots = frame.select("street_code", "road", "grid_code", "apartment", "lot").unique(maintain_order=True)
    lots = (
        lots.with_columns(gap=pl.Series(rng.integers(1, 4, lots.height)))
        .with_columns(door_no=pl.col("gap").cum_sum().over("street_code", "road"))
        .drop("gap")
    )
    frame = frame.join(
        lots, on=["street_code", "road", "grid_code", "apartment", "lot"], how="left", maintain_order="left"
    )
    return frame.with_columns(address=address_expr("canonical", "building")).drop("apartment", "block", "k", "lot")


def _houses(buildings: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    counts = buildings["houses"].to_numpy()
    b = np.repeat(np.arange(buildings.height), counts)
    j = np.arange(len(b)) - np.repeat(np.cumsum(counts) - counts, counts)
    per_floor = buildings["per_floor"].to_numpy()[b]
    floors = buildings["floors_above"].to_numpy()[b]
    floor = (j // per_floor) % floors + 1
    unit = j // (per_floor * floors) + 1
    room = floor * 100 + j % per_floor + 1
    btype = buildings["building_type"].to_numpy()[b]
    use_of_building = np.select(
        [btype == "商业", btype == "办公", (btype == "综合") & (floor <= 2)], ["商用", "办公", "商用"], ""
    )
    area = np.select(
        [btype == "平房院落", use_of_building != ""],
        [rng.uniform(12, 40, len(b)), rng.uniform(20, 300, len(b))],
        rng.uniform(38, 125, len(b)),
    )
    parts = buildings.select(
        "building_code",
        "grid_code",
        "community_code",
        "street_code",
        "road",
        "door_no",
        "building_no",
        "units",
        "lon",
        "lat",
    )[b]
    houses = parts.with_columns(
        house_code=pl.concat_str([pl.col("building_code"), pl.Series(ids.digit_strings(j + 1, 4))]),
        unit=pl.when(pl.col("units") > 0).then(pl.Series(unit)),
        floor=pl.Series(floor),
        room=pl.Series(room).cast(pl.String),
        area_m2=pl.Series(area).round(1),
        building_use=pl.Series(use_of_building),
        residential=pl.Series(use_of_building == ""),
    ).drop("units")
    return houses.with_columns(address=address_expr("canonical", "house"))


# -- households and persons -------------------------------------------------------------------
# Household kind -> (share of households, size distribution 1..5). About 30% of persons float.
HOUSEHOLD_KINDS = {
    "户籍人口": (0.640, [0.25, 0.33, 0.25, 0.11, 0.06]),
    "流动人口": (0.354, [0.45, 0.30, 0.18, 0.07, 0.00]),
    "境外人员": (0.006, [0.60, 0.30, 0.10, 0.00, 0.00]),
}
ETHNICITY = {"01": 0.95, "03": 0.022, "11": 0.012, "02": 0.005, "10": 0.004, "08": 0.003, "04": 0.002, "15": 0.002}
FOREIGN_ORIGINS = {"护照": 0.7, "香港": 0.15, "澳门": 0.05, "台湾": 0.10}
PERMIT_DOC = {"香港": "港澳居民来往内地通行证", "澳门": "港澳居民来往内地通行证", "台湾": "台湾居民来往大陆通行证"}


def build_households(scale: Scale, grids: pl.DataFrame, dice: Dice) -> pl.DataFrame:
    rng = dice("households")
    kinds = list(HOUSEHOLD_KINDS)
    share = np.array([v[0] for v in HOUSEHOLD_KINDS.values()])
    n = int(scale.persons / 1.9)
    kind = rng.choice(len(kinds), n, p=share)
    size = np.empty(n, int)
    for k, (_, dist) in enumerate(HOUSEHOLD_KINDS.values()):
        rows = kind == k
        size[rows] = rng.choice(np.arange(1, 6), rows.sum(), p=dist)
    keep = np.cumsum(size) <= scale.persons
    kind, size = kind[keep], size[keep]
    weight = rng.gamma(4.0, 1.0, grids.height)
    grid = rng.choice(grids.height, len(kind), p=weight / weight.sum())
    return pl.DataFrame(
        {
            "household_id": np.char.add("H", ids.digit_strings(np.arange(1, len(kind) + 1), 7)),
            "kind": np.array(kinds)[kind],
            "size": size,
            "grid_code": grids["grid_code"].to_numpy()[grid],
        }
    )


def _nullable(values: np.ndarray, keep: np.ndarray) -> pl.Series:
    """A text column from a numpy string array, null where ``keep`` is false."""
    return pl.Series(np.where(keep, values, "")).replace("", None)


def _birth_dates(rng: np.random.Generator, age: np.ndarray, on: dt.date) -> np.ndarray:
    days = (age * 365.25 + rng.uniform(0, 365, len(age))).astype(int)
    return np.datetime64(on, "D") - days.astype("timedelta64[D]")


def build_persons(households: pl.DataFrame, houses: pl.DataFrame, period: Period, dice: Dice) -> pl.DataFrame:
    rng = dice("persons")
    hh = households.to_dict(as_series=False)
    size = np.array(hh["size"])
    h = np.repeat(np.arange(len(size)), size)
    member = np.arange(len(h)) - np.repeat(np.cumsum(size) - size, size)
    n = len(h)
    kind = np.array(hh["kind"])[h]
    registered, floating, foreign = kind == "户籍人口", kind == "流动人口", kind == "境外人员"
    # Heads: registered residents are older (西城 is ageing), floating ones mostly of working age.
    head_age = np.select(
        [registered, floating],
        [25 + rng.beta(1.8, 1.6, n) * 70, 18 + rng.beta(2, 4, n) * 50],
        22 + rng.beta(2, 3, n) * 45,
    )
    head_age = head_age[np.repeat(np.cumsum(size) - size, size)]
    partner = (member == 1) & ((~floating) | (rng.random(n) < 0.6))
    relation = np.select([member == 0, partner, floating | foreign], ["户主", "配偶", "合租"], "子女")
    child_age = head_age - rng.uniform(22, 36, n)
    child_age = np.where(child_age > 0, child_age, rng.uniform(0, 4, n))
    age = np.select(
        [member == 0, relation == "配偶", relation == "合租"],
        [head_age, np.clip(head_age + rng.normal(0, 3, n), 18, 100), 18 + rng.beta(2, 4, n) * 40],
        child_age,
    )
    alone_old = (size[h] == 1) & (age >= 70)
    sex = np.where(rng.random(n) < np.where(alone_old, 0.35, 0.5), 1, 2)
    head_sex = sex[np.repeat(np.cumsum(size) - size, size)]
    sex = np.where(relation == "配偶", 3 - head_sex, sex)
    birth = _birth_dates(rng, age, period.end)
    birth_year = birth.astype("datetime64[Y]").astype(int) + 1970

    # Names: children take the father's surname (the head's, or the head's husband's).
    family = surnames(rng, n)
    first = np.repeat(np.cumsum(size) - size, size)
    spouse_idx = np.where(size[h] >= 2, first + 1, first)
    father_surname = np.where((head_sex == 1) | (relation[spouse_idx] != "配偶"), family[first], family[spouse_idx])
    family = np.select([relation == "户主", relation == "子女"], [family[first], father_surname], family)
    name = np.char.add(family, given_names(rng, sex, birth_year))

    # Identity documents.
    divisions = reference("admin_division").filter(pl.col("level") == "county")
    elsewhere = divisions.filter(~pl.col("code").str.starts_with("11"))["code"].to_numpy()
    region = np.select(
        [
            registered & (rng.random(n) < 0.62),
            registered & (birth_year < 2010) & (rng.random(n) < 0.55),
            registered & (rng.random(n) < 0.5),
        ],
        [DISTRICT_CODE, OLD_XUANWU, pick(rng, OTHER_BEIJING, n)],
        elsewhere[rng.integers(0, len(elsewhere), n)],
    )
    id_number = ids.citizen_ids(region, birth, sex, rng)
    doc_type = np.full(n, "居民身份证", dtype="<U16")
    origin = np.where(foreign, pick(rng, FOREIGN_ORIGINS, n), "")[first]
    passport = origin == "护照"
    permit = foreign & ~passport
    id_number[passport] = ids.passports(passport.sum(), rng)
    id_number[permit] = ids.travel_permits(origin[permit], rng)
    doc_type[passport] = "护照"
    doc_type[permit] = [PERMIT_DOC[o] for o in origin[permit]]
    name = name.astype("<U24")
    name[passport] = np.char.add(
        np.char.add(pick(rng, vocab.FOREIGN_FAMILY, passport.sum()), " "),
        pick(rng, vocab.FOREIGN_GIVEN, passport.sum()),
    )
    if permit.any():  # Hong Kong, Macao and Taiwan residents write traditional characters.
        from redwall.generator.text import traditional

        name[permit] = [traditional(v, rng) or v for v in name[permit]]
    ethnicity = _nullable(pick(rng, ETHNICITY, n), ~foreign)
    phone = _nullable(ids.phones(n, rng), (age >= 14) & (rng.random(n) < np.where(age > 85, 0.6, 0.95)))

    persons = pl.DataFrame(
        {
            "person_id": np.char.add("P", ids.digit_strings(np.arange(1, n + 1), 8)),
            "household_id": np.array(hh["household_id"])[h],
            "relation": relation,
            "name": name,
            "doc_type": doc_type,
            "id_number": id_number,
            "sex": np.where(sex == 1, "1", "2"),
            "birth_date": birth.astype("datetime64[D]"),
            "ethnicity": ethnicity,
            "person_type": kind,
            "origin": _nullable(origin, foreign),
            "phone": phone,
            "id_region": _nullable(region, ~foreign),
        }
    )
    return _hukou(persons, households, houses, rng)


def _hukou(
    persons: pl.DataFrame, households: pl.DataFrame, houses: pl.DataFrame, rng: np.random.Generator
) -> pl.DataFrame:
    """Where each person's hukou is: the home for most residents, another address for 人户分离,
    the home county for floating persons, the country or region for foreigners."""
    persons = persons.join(
        households.select("household_id", "house_code"), on="household_id", how="left", maintain_order="left"
    )
    persons = persons.join(
        houses.select(
            "house_code",
            "building_code",
            "grid_code",
            "community_code",
            "street_code",
            pl.col("address").alias("residence_address"),
        ),
        on="house_code",
        how="left",
        maintain_order="left",
    )
    n = persons.height
    divisions = reference("admin_division").filter(pl.col("level") == "county")
    county = pl.col("id_region").replace_strict(
        dict(zip(divisions["code"], divisions["name"], strict=True)), default=None
    )
    province = pl.col("id_region").str.slice(0, 2).replace_strict(vocab.PROVINCES, default="")
    separated = pl.Series(rng.random(n) < 0.2)
    village = pl.Series(
        np.char.add(
            np.char.add(
                np.char.add(pick(rng, vocab.VILLAGE_PARTS, n), pick(rng, vocab.VILLAGE_PARTS, n)),
                pick(rng, vocab.TOWN_SUFFIXES, n),
            ),
            np.char.add(pick(rng, vocab.VILLAGE_PARTS, n), "庄村"),
        )
    )
    door = pl.Series(rng.integers(1, 300, n)).cast(pl.String)
    foreign_place = (
        pl.when(pl.col("origin") == "护照")
        .then(pl.Series(pick(rng, vocab.FOREIGN_REGIONS, n)))
        .otherwise(pl.col("origin"))
    )
    other_home = pl.Series(houses["address"].to_numpy()[rng.integers(0, houses.height, n)])
    persons = persons.with_columns(
        hukou_place=pl.when(pl.col("person_type") == "流动人口").then(
            pl.when(county.str.starts_with(province)).then(county).otherwise(pl.concat_str([province, county]))
        ),
        separated=(pl.col("person_type") == "户籍人口") & separated,
    )
    return persons.with_columns(
        hukou_division=pl.when(pl.col("person_type") == "户籍人口")
        .then(pl.lit(DISTRICT_CODE))
        .when(pl.col("person_type") == "流动人口")
        .then(pl.col("id_region")),
        hukou_address=pl.when(pl.col("separated"))
        .then(pl.concat_str([pl.lit("北京市"), other_home]))
        .when(pl.col("person_type") == "户籍人口")
        .then(pl.concat_str([pl.lit("北京市"), pl.col("residence_address")]))
        .when(pl.col("person_type") == "流动人口")
        .then(pl.concat_str([pl.col("hukou_place"), village, door, pl.lit("号")]))
        .otherwise(foreign_place),
        hukou_match=pl.when(pl.col("person_type") == "境外人员")
        .then(None)
        .when((pl.col("person_type") == "户籍人口") & ~pl.col("separated"))
        .then(pl.lit("01"))
        .otherwise(pl.lit("02")),
    ).drop("separated")


def house_households(households: pl.DataFrame, houses: pl.DataFrame, dice: Dice) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each household gets a home in its grid; the use of every house follows who lives there."""
    rng = dice("housing")
    homes = (
        houses.filter("residential")
        .select("house_code", "grid_code")
        .with_columns(key=pl.Series(rng.random(int(houses["residential"].sum()))))
        .with_columns(rank=pl.col("key").rank("ordinal").over("grid_code").cast(pl.Int64) - 1)
        .drop("key")
    )
    households = (
        households.with_columns(rank=pl.int_range(pl.len()).over("grid_code"))
        .join(homes, on=["grid_code", "rank"], how="left", maintain_order="left")
        .drop("rank")
    )
    occupant = households.select("house_code", "kind")
    houses = (
        houses.join(occupant, on="house_code", how="left", maintain_order="left")
        .with_columns(
            use=pl.when(pl.col("building_use") != "")
            .then(pl.col("building_use"))
            .when(pl.col("kind") == "户籍人口")
            .then(pl.when(pl.Series(rng.random(houses.height)) < 0.95).then(pl.lit("自住")).otherwise(pl.lit("出租")))
            .when(pl.col("kind").is_not_null())
            .then(pl.lit("出租"))
            .when(pl.Series(rng.random(houses.height)) < 0.8)
            .then(pl.lit("空置"))
            .otherwise(pl.lit("出租"))
        )
        .drop("kind")
    )
    return households, houses


# -- what happens to people -------------------------------------------------------------------
def _hazard(age: np.ndarray) -> np.ndarray:
    """Yearly probability of death (Gompertz)."""
    return np.minimum(0.0004 * np.exp(0.09 * (age - 30)), 0.35)


def _choose(rng: np.random.Generator, p: np.ndarray, eligible: np.ndarray, minimum: int) -> np.ndarray:
    """Draw each eligible item with probability p; at least ``minimum`` of them (the likeliest)."""
    hit = eligible & (rng.random(len(p)) < p)
    if hit.sum() < minimum:
        extra = np.flatnonzero(eligible & ~hit)
        score = p[extra] * rng.random(len(extra))
        hit[extra[np.argsort(-score)[: minimum - hit.sum()]]] = True
    return hit


def _days(rng: np.random.Generator, n: int, first: dt.date, last: dt.date) -> np.ndarray:
    return np.datetime64(first, "D") + rng.integers(0, (last - first).days + 1, n).astype("timedelta64[D]")


def life_events(
    persons: pl.DataFrame, households: pl.DataFrame, houses: pl.DataFrame, period: Period, dice: Dice
) -> pl.DataFrame:
    """Deaths and moves in the year before the period and during it; arrivals and relocations."""
    rng = dice("life")
    n = persons.height
    weeks = ((period.end - period.start).days + 1) / 7
    year_before = period.start - dt.timedelta(days=365)
    age = (np.datetime64(period.start, "D") - persons["birth_date"].to_numpy()).astype(int) / 365.25
    kind = persons["person_type"].to_numpy()
    registered = kind == "户籍人口"
    status = np.full(n, "active", dtype=object)
    status_on = np.full(n, np.datetime64("NaT"), "datetime64[D]")

    # Households leave, arrive or relocate together.
    hh_kind = households["kind"].to_numpy()
    moving = hh_kind != "户籍人口"
    leave = _choose(rng, np.where(moving, 0.015, 0.003) * weeks, np.ones(len(hh_kind), bool), 2)
    arrive = _choose(rng, 0.012 * weeks * moving, moving & ~leave, 2)
    relocate = _choose(rng, 0.006 * weeks * (hh_kind == "流动人口"), (hh_kind == "流动人口") & ~leave & ~arrive, 2)
    day_of = _days(rng, len(hh_kind), period.start + dt.timedelta(days=1), period.end)
    hh_index = households.with_row_index("h").select("household_id", "h")
    h = persons.join(hh_index, on="household_id", how="left", maintain_order="left")["h"].to_numpy()
    status[leave[h]] = "moved_out"
    status_on[leave[h]] = day_of[h][leave[h]]
    arrived_in_period = arrive[h]

    # Deaths: a year's worth before the period, and during it (nobody in a moving household).
    settled = ~leave[h] & ~arrive[h]
    died_before = _choose(rng, _hazard(age), settled, 1)
    status[died_before] = "deceased"
    status_on[died_before] = _days(rng, n, year_before, period.start - dt.timedelta(days=1))[died_before]
    died_during = _choose(rng, _hazard(age) * weeks / 52, settled & ~died_before, 3)
    status[died_during] = "deceased"
    status_on[died_during] = _days(rng, n, period.start, period.end)[died_during]
    # Young registered adults moving their hukou away during the last year.
    gone = _choose(rng, np.full(n, 0.008), settled & registered & (age > 18) & (age < 40) & (status == "active"), 1)
    status[gone] = "moved_out"
    status_on[gone] = _days(rng, n, year_before, period.start - dt.timedelta(days=1))[gone]

    # Relocating households take an empty home of their street.
    empty = houses.filter(pl.col("use") == "空置").select("house_code", "street_code")
    movers = households.filter(pl.Series(relocate)).select("household_id", "grid_code")
    movers = movers.join(
        houses.select("grid_code", "street_code").unique(maintain_order=True), on="grid_code", maintain_order="left"
    ).with_columns(k=pl.int_range(pl.len()).over("street_code"))
    targets = (
        empty.with_columns(key=pl.Series(rng.random(empty.height)))
        .sort("key", maintain_order=True)
        .with_columns(k=pl.int_range(pl.len()).over("street_code"))
        .drop("key")
    )
    movers = movers.join(targets, on=["street_code", "k"], how="inner", maintain_order="left").select(
        "household_id", pl.col("house_code").alias("new_house")
    )
    persons = (
        persons.with_columns(
            status=pl.Series(status, dtype=pl.String),
            status_on=pl.Series(status_on),
            day=pl.Series(day_of[h]),
            arrived=pl.Series(arrived_in_period),
        )
        .join(movers, on="household_id", how="left", maintain_order="left")
        .with_columns(
            moved_in_on=pl.when("arrived").then(pl.col("day")),
            previous_house_code=pl.when(pl.col("new_house").is_not_null()).then(pl.col("house_code")),
            relocated_on=pl.when(pl.col("new_house").is_not_null()).then(pl.col("day")),
            house_code=pl.coalesce("new_house", "house_code"),
        )
        .drop("new_house", "day", "arrived")
    )
    places = houses.select(
        "house_code",
        "building_code",
        "grid_code",
        "community_code",
        "street_code",
        pl.col("address").alias("residence_address"),
    )
    return persons.drop(places.columns[1:]).join(places, on="house_code", how="left", maintain_order="left")


# -- care, registrations, floating details ------------------------------------------------------
DISABILITY_CATEGORIES = {"4": 0.45, "1": 0.15, "2": 0.15, "3": 0.02, "5": 0.08, "6": 0.10, "7": 0.05}
DISABILITY_LEVELS = {"1": 0.10, "2": 0.25, "3": 0.30, "4": 0.35}
# Who the floating-population managers register: people from other provinces and from Hong Kong,
# Macao and Taiwan (foreigners with passports are the exit-entry police's business).
FLOATING_REGISTER = (pl.col("person_type") == "流动人口") | pl.col("doc_type").str.contains("通行证")
INFLOW_REASONS = {"务工": 0.60, "经商": 0.20, "就学": 0.05, "投亲": 0.10, "其他": 0.05}
HOUSING_TYPES = {"租赁": 0.80, "单位宿舍": 0.12, "自有": 0.03, "其他": 0.05}


def circumstances(persons: pl.DataFrame, period: Period, dice: Dice) -> pl.DataFrame:
    rng = dice("care")
    n = persons.height
    start = pl.lit(period.start)
    persons = persons.with_columns(
        age=((pl.lit(period.end) - pl.col("birth_date")).dt.total_days() / 365.25).floor().cast(pl.Int32),
        present=(pl.col("status") == "active") | (pl.col("status_on") >= start),
    )
    # Living situation of people over 60, from who shares their home at the start of the period.
    household = persons.filter("present").group_by("household_id").agg(members=pl.len(), youngest=pl.col("age").min())
    persons = (
        persons.join(household, on="household_id", how="left", maintain_order="left")
        .with_columns(
            living_situation=pl.when((pl.col("age") < 60) | ~pl.col("present"))
            .then(None)
            .when(pl.col("members") == 1)
            .then(pl.lit("独居"))
            .when(pl.col("youngest") >= 60)
            .then(pl.lit("空巢"))
            .when(pl.col("youngest") <= pl.col("age") - 18)
            .then(pl.lit("与子女同住"))
            .otherwise(pl.lit("与其他亲属同住"))
        )
        .drop("members", "youngest")
    )
    age = persons["age"].to_numpy()
    registered = (persons["person_type"] == "户籍人口").to_numpy()
    disabled = registered & (rng.random(n) < 0.015 + 0.05 * (age >= 70))
    category = _nullable(pick(rng, DISABILITY_CATEGORIES, n), disabled)
    level = _nullable(pick(rng, DISABILITY_LEVELS, n), disabled)
    valid_until = _days(rng, n, period.end - dt.timedelta(days=200), period.end + dt.timedelta(days=5 * 365))
    persons = persons.with_columns(
        disability_category=category,
        disability_level=level,
        disability_valid_until=pl.when(pl.Series(disabled)).then(pl.Series(valid_until)),
    ).with_columns(disability_certificate=pl.concat_str(["id_number", "disability_category", "disability_level"]))
    # 低保 households: poorer where someone is disabled or an old person lives alone.
    hh = persons.group_by("household_id", maintain_order=True).agg(
        registered=(pl.col("person_type") == "户籍人口").all(),
        disabled=pl.col("disability_category").is_not_null().any(),
        alone=(pl.col("living_situation") == "独居").any(),
        street=pl.col("street_code").first(),
    )
    p = 0.012 + 0.08 * hh["disabled"].to_numpy() + 0.03 * hh["alone"].to_numpy()
    dibao = _choose(rng, p, hh["registered"].to_numpy(), 2)
    m = hh.height
    ended = dibao & (rng.random(m) < 0.1)
    hh = hh.with_columns(
        dibao_household_id=pl.when(pl.Series(dibao)).then(
            pl.concat_str([pl.lit("DB"), pl.col("street"), pl.Series(ids.digit_strings(np.arange(1, m + 1), 6))])
        ),
        dibao_start_on=pl.when(pl.Series(dibao)).then(pl.Series(_days(rng, m, dt.date(2016, 1, 1), period.start))),
        dibao_end_on=pl.when(pl.Series(ended)).then(
            pl.Series(_days(rng, m, period.end - dt.timedelta(days=330), period.start - dt.timedelta(days=20)))
        ),
    ).with_columns(dibao_end_on=pl.when(pl.col("dibao_end_on") > pl.col("dibao_start_on")).then("dibao_end_on"))
    persons = persons.join(
        hh.select("household_id", "dibao_household_id", "dibao_start_on", "dibao_end_on"),
        on="household_id",
        how="left",
        maintain_order="left",
    )
    eightieth = pl.col("birth_date").dt.offset_by("80y")
    persons = persons.with_columns(
        elderly_allowance_since=pl.when(pl.Series(registered & (age >= 80) & (rng.random(n) < 0.95))).then(
            pl.max_horizontal(eightieth.dt.month_start().dt.offset_by("1mo"), pl.lit(dt.date(2010, 1, 1)))
        ),
    )
    return persons.with_columns(
        care_tags=pl.concat_list(
            [
                pl.when(pl.col("living_situation") == "独居").then(pl.lit("独居老人")),
                pl.when(pl.col("age") >= 80).then(pl.lit("高龄")),
                pl.when(pl.col("disability_category").is_not_null()).then(pl.lit("残疾人")),
                pl.when(pl.col("dibao_household_id").is_not_null() & pl.col("dibao_end_on").is_null()).then(
                    pl.lit("低保")
                ),
            ]
        ).list.drop_nulls()
    ).drop("present")


def registrations(persons: pl.DataFrame, houses: pl.DataFrame, period: Period, dice: Dice) -> pl.DataFrame:
    """When the police and the floating-population managers registered each person, and what the
    managers wrote down about floating persons (reason, permit, housing, landlord)."""
    rng = dice("registrations")
    n = persons.height
    start = np.datetime64(period.start, "D")
    birth = persons["birth_date"].to_numpy()
    settled_since = np.maximum(birth, _days(rng, n, dt.date(1990, 1, 1), period.start - dt.timedelta(days=30)))
    came = _days(rng, n, period.start - dt.timedelta(days=8 * 365), period.start - dt.timedelta(days=10))
    came = np.maximum(came, birth + np.timedelta64(16 * 365, "D"))
    came = np.where(came >= start, start - np.timedelta64(10, "D"), came)
    moved_in = persons["moved_in_on"].to_numpy()
    arrived_on = np.where(np.isnat(moved_in), came, moved_in)
    kind = persons["person_type"].to_numpy()
    incomer = kind != "户籍人口"
    police_lag = rng.integers(1, 11, n).astype("timedelta64[D]")
    manager_lag = np.where(np.isnat(moved_in), rng.integers(0, 20, n), rng.integers(0, 3, n)).astype("timedelta64[D]")
    status_on = persons["status_on"].to_numpy()
    died = (persons["status"] == "deceased").to_numpy()
    police_deregistered = np.where(
        died,
        status_on + (2 + rng.exponential(10, n)).astype(int).astype("timedelta64[D]"),
        np.where((persons["status"] == "moved_out").to_numpy() & ~incomer, status_on, np.datetime64("NaT")),
    )
    landlords = persons.filter(
        (pl.col("person_type") == "户籍人口") & (pl.col("age") >= 30) & (pl.col("status") == "active")
    )["person_id"].to_numpy()
    rented = (
        persons.join(houses.select("house_code", "use"), on="house_code", how="left", maintain_order="left")[
            "use"
        ].to_numpy()
        == "出租"
    )
    permit = incomer & ((start - arrived_on).astype(int) > 180) & (rng.random(n) < 0.65)
    return persons.with_columns(
        registered_on=pl.Series(np.where(incomer, arrived_on + police_lag, settled_since)),
        police_deregistered_on=pl.Series(police_deregistered),
        arrived_on=pl.when(pl.Series(incomer)).then(pl.Series(arrived_on)),
        floating_registered_on=pl.when(FLOATING_REGISTER).then(pl.Series(arrived_on + manager_lag)),
        inflow_reason=pl.when(pl.Series(incomer)).then(pl.Series(pick(rng, INFLOW_REASONS, n))),
        housing_type=pl.when(pl.Series(incomer)).then(pl.Series(pick(rng, HOUSING_TYPES, n))),
        permit_number=pl.when(pl.Series(permit)).then(
            pl.concat_str(
                [
                    pl.lit("BJJZ"),
                    pl.Series(arrived_on).dt.year().cast(pl.String),
                    pl.Series(ids.digit_strings(rng.integers(0, 10**8, n), 8)),
                ]
            )
        ),
        permit_expires=pl.when(pl.Series(permit)).then(
            pl.Series(_days(rng, n, period.end - dt.timedelta(days=60), period.end + dt.timedelta(days=365)))
        ),
        landlord_person_id=pl.when(pl.Series(incomer & rented)).then(
            pl.Series(landlords[rng.integers(0, max(len(landlords), 1), n)] if len(landlords) else [None] * n)
        ),
    )


# -- organisations and components ----------------------------------------------------------------
ORG_MIX = {
    "商用": {"个体工商户": 0.5, "企业": 0.45, "社会组织": 0.05},
    "办公": {"企业": 0.6, "事业单位": 0.15, "社会组织": 0.1, "机关": 0.15},
}
USCC_CATEGORY = {"企业": "91", "个体工商户": "92", "事业单位": "12", "社会组织": "52", "机关": "11"}
GOVERNMENT_UNITS = ["司法所", "市场监管所", "税务所", "派出所", "环卫所"]


def build_organizations(houses: pl.DataFrame, persons: pl.DataFrame, scale: Scale, dice: Dice) -> pl.DataFrame:
    rng = dice("organizations")
    premises = houses.filter(pl.col("use").is_in(["商用", "办公"]))
    n = max(scale.persons // 20, 40)
    at = premises[rng.integers(0, premises.height, n)]
    use = at["use"].to_numpy()
    org_type = np.where(use == "商用", pick(rng, ORG_MIX["商用"], n), pick(rng, ORG_MIX["办公"], n))
    trade = np.char.add(pick(rng, vocab.TRADE_NAMES, n), pick(rng, vocab.TRADE_NAMES, n))
    shop = np.char.add(trade, pick(rng, vocab.SHOP_KINDS, n))
    road = at["road"].to_numpy().astype(str)
    name = np.select(
        [
            (org_type == "个体工商户"),
            (org_type == "企业") & (use == "商用"),
            org_type == "企业",
            org_type == "事业单位",
            org_type == "社会组织",
        ],
        [
            np.char.add("北京市西城区", shop),
            np.char.add(np.char.add("北京", shop), "有限公司"),
            np.char.add(np.char.add(np.char.add("北京", trade), pick(rng, vocab.FIRM_TRADES, n)), "有限公司"),
            np.char.add(np.char.add("北京市西城区", road), pick(rng, vocab.PUBLIC_UNITS, n)),
            np.char.add(np.char.add("北京市西城区", trade), pick(rng, vocab.SOCIAL_ORGS, n)),
        ],
        np.char.add(np.char.add("北京市西城区", road), pick(rng, GOVERNMENT_UNITS, n)),
    )
    employees = np.select(
        [org_type == "个体工商户", org_type == "企业"],
        [rng.integers(1, 9, n), np.round(rng.lognormal(2.5, 1.0, n)).astype(int) + 1],
        rng.integers(5, 120, n),
    )
    adults = persons.filter(
        (pl.col("age") >= 25) & (pl.col("status") == "active") & (pl.col("doc_type") == "居民身份证")
    )["person_id"].to_numpy()
    category = np.vectorize(USCC_CATEGORY.get)(org_type)
    return (
        at.select(
            "house_code",
            "building_code",
            "grid_code",
            "community_code",
            "street_code",
            "road",
            "door_no",
            "building_no",
            "unit",
            "room",
        )
        .with_columns(
            uscc=pl.Series(ids.usccs(category, DISTRICT_CODE, rng)),
            name=pl.Series(name),
            org_type=pl.Series(org_type),
            employees=pl.Series(employees),
            is_shop=pl.Series((use == "商用") & np.isin(org_type, ["个体工商户", "企业"])),
            responsible_person_id=pl.Series(adults[rng.integers(0, len(adults), n)]),
        )
        .unique("uscc", keep="first", maintain_order=True)
    )


COMPONENT_MIX = {
    ("01", "01"): 12,
    ("01", "02"): 12,
    ("01", "03"): 11,
    ("01", "13"): 5,
    ("01", "18"): 15,
    ("01", "21"): 0.5,
    ("02", "03"): 1,
    ("02", "09"): 4,
    ("02", "14"): 1,
    ("03", "01"): 0.5,
    ("03", "05"): 10,
    ("04", "01"): 2,
    ("04", "02"): 20,
    ("05", "01"): 3,
}
COMPONENT_STATUS = {"正常": 0.95, "停用": 0.03, "拆除": 0.02}


def build_components(grids: pl.DataFrame, period: Period, dice: Dice) -> pl.DataFrame:
    rng = dice("components")
    per = rng.poisson(60, grids.height)
    g = np.repeat(np.arange(grids.height), per)
    n = len(g)
    classes = list(COMPONENT_MIX)
    weights = np.array(list(COMPONENT_MIX.values()), float)
    k = rng.choice(len(classes), n, p=weights / weights.sum())
    names = {(r["major"], r["minor"]): r["name"] for r in reference("component_class").iter_rows(named=True)}
    major = np.array([c[0] for c in classes])[k]
    minor = np.array([c[1] for c in classes])[k]
    frame = (
        grids.select("grid_code", "street_code", "lon", "lat")[g]
        .with_columns(
            major_code=pl.Series(major),
            minor_code=pl.Series(minor),
            gap=pl.Series(rng.integers(1, 4, n)),
        )
        .with_columns(serial=pl.col("gap").cum_sum().over("major_code", "minor_code"))
        .drop("gap")
    )
    installed = _days(rng, n, dt.date(2005, 1, 1), period.start - dt.timedelta(days=400))
    updated = installed + (rng.random(n) * (np.datetime64(period.start, "D") - installed).astype(int)).astype(
        "timedelta64[D]"
    )
    owner = [vocab.COMPONENT_OWNER_BY_CLASS.get(c, vocab.COMPONENT_OWNERS[c[0]]) for c in classes]
    return frame.with_columns(
        object_id=pl.concat_str(
            [pl.lit(DISTRICT_CODE), "major_code", "minor_code", pl.col("serial").cast(pl.String).str.zfill(6)]
        ),
        name=pl.Series(np.array([names[c] for c in classes])[k]),
        status=pl.Series(pick(rng, COMPONENT_STATUS, n)),
        owner_department=pl.Series(np.array(owner)[k]),
        maintainer=pl.Series(pick(rng, vocab.MAINTAINERS, n)),
        lon=(pl.col("lon") + pl.Series(rng.uniform(-0.0015, 0.0015, n))).round(6),
        lat=(pl.col("lat") + pl.Series(rng.uniform(-0.0012, 0.0012, n))).round(6),
        installed_on=pl.Series(installed),
        updated_on=pl.Series(updated),
    ).drop("serial", "street_code")


def build_world(scale: Scale, period: Period, dice: Dice, street: str | None = None) -> World:
    streets, communities, grids = build_geography(scale, dice, street)
    households = build_households(scale, grids, dice)
    per_grid = households.group_by("grid_code").len()
    counts = grids.join(per_grid, on="grid_code", how="left", maintain_order="left")["len"].fill_null(0).to_numpy()
    buildings, houses = build_places(grids, counts, dice)
    households, houses = house_households(households, houses, dice)
    persons = build_persons(households, houses, period, dice)
    persons = life_events(persons, households, houses, period, dice)
    persons = circumstances(persons, period, dice)
    persons = registrations(persons, houses, period, dice)
    workers = build_workers(grids, dice)
    grids = grids.join(
        workers.group_by("grid_code", maintain_order=True).agg(worker_ids=pl.col("worker_id").str.join(",")),
        on="grid_code",
        how="left",
    ).join(communities.select("community_code", "community_name"), on="community_code", maintain_order="left")
    return World(
        scale=scale,
        period=period,
        streets=streets,
        communities=communities,
        grids=grids,
        workers=workers,
        buildings=buildings,
        houses=houses,
        persons=persons,
        organizations=build_organizations(houses, persons, scale, dice),
        components=build_components(grids, period, dice),
    )
