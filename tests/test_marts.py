"""The marts on a small street built by hand, whose every answer is known.

Three grids in two communities; fifteen persons who live, move within the street, move away,
die, float in, are cared for, or are known only from a visit and an allowance list (on neither
register: 未登记); ten events across a weekend, the 调休 Saturday and the National
Day holiday (calendar.csv: 2026-10-01..07 off, 2026-10-10 worked); two components; two
organisations. ``street_silver`` writes it as silver tables following the ingestion's interface.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from redwall import lake
from redwall.home import Home
from redwall.identifiers import id_check_char, uscc_check_char
from redwall.marts import DEPENDS, INPUTS, build_marts, compute_marts
from redwall.marts.address import building_part, split
from redwall.marts.tables import HISTORY
from redwall.schemas import load_contracts, reference

TZ = ZoneInfo("Asia/Shanghai")
AS_OF = dt.datetime(2026, 11, 20, 10, 0, tzinfo=TZ)
G1, G2, G3 = "110102001001001", "110102001001002", "110102001002001"
C1, C2 = "110102001001", "110102001002"
B1, B2, B3 = "1101020010010001", "1101020010010002", "1101020010020001"
H1, H2, H3 = B1 + "0001", B1 + "0002", B2 + "0001"
OBJ1, OBJ2 = "1101020101000001", "1101020305000002"
SNAPSHOT_1, SNAPSHOT_2 = dt.date(2026, 1, 5), dt.date(2026, 11, 16)


def citizen_id(birth: str, seq: str) -> str:
    first17 = "110102" + birth + seq
    return first17 + id_check_char(first17)


P = {
    n: citizen_id(birth, seq)
    for n, birth, seq in [
        (1, "19400312", "002"),
        (2, "19850601", "011"),
        (3, "19700203", "021"),
        (4, "19920715", "032"),
        (5, "19380101", "041"),
        (6, "19450909", "052"),
        (7, "19880808", "061"),
        (8, "19951111", "072"),
        (9, "19990101", "082"),
        (10, "19600505", "091"),
        (11, "19500606", "102"),
        (13, "19751212", "111"),
        (14, "19910303", "121"),
        (15, "19500707", "131"),  # on neither register: seen at home with an ID, and on the allowance list
    ]
}
PASSPORT = "E12345678"
USCC = "91110102MA01ABCD1"  # without its check character
ADDRESS = {
    H1: "西城区府右街12号院3号楼2单元501",
    H2: "西城区府右街12号院3号楼1单元101",
    H3: "西城区西交民巷5号院1号楼1单元302",
    B3: "西城区钟声胡同5号",
}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def silver(key: str, rows: list[dict]) -> pl.DataFrame:
    """Rows of a contract table as the ingestion writes them: contract columns typed, lineage,
    and history (each row current since SNAPSHOT_1 unless it says otherwise)."""
    schema = {**load_contracts().table(key).schema(), **HISTORY}
    assert not (typos := {c for row in rows for c in row} - set(schema)), typos
    rows = [{"_valid_from": SNAPSHOT_1, **row} for row in rows]
    frame = pl.DataFrame({c: [row.get(c) for row in rows] for c in schema}, schema=schema)
    return frame.with_columns(
        _source_file=pl.lit(f"{key}.test"),
        _row_number=pl.int_range(pl.len()) + 1,
        _file_hash=pl.lit("0" * 64),
        _load_id=pl.lit("test"),
        _loaded_at=pl.lit(dt.datetime(2026, 11, 20, tzinfo=dt.UTC)),
    )


def police(n: int, address: str, *, kind: str = "1", reg: dt.date = dt.date(2000, 1, 1), **row) -> dict:
    ident = P.get(n, PASSPORT)
    born = dt.datetime.strptime(ident[6:14], "%Y%m%d").date() if n in P else dt.date(1990, 1, 1)
    return {
        "id_number": ident,
        "name": f"户籍{n}",
        "sex": "1",
        "birth_date": born,
        "residence_address": address,
        "hukou_match": "01",
        "person_type": kind,
        "registered_on": reg,
        "phone": f"1391234{n:04d}",
        **row,
    }


def street_rows() -> dict[str, list[dict]]:
    event_steps = {  # event -> [(status, local time)], shuffled on purpose where it matters
        "E1": [("01", "2026-09-30 15:00"), ("04", "2026-09-30 16:30"), ("08", "2026-10-08 11:00")],
        "E2": [("08", "2026-10-19 10:00"), ("04", "2026-10-16 17:00"), ("01", "2026-10-16 16:00")],
        "E3": [("04", "2026-10-09 17:00"), ("08", "2026-10-12 10:30")],
        "E4": [("04", "2026-11-02 09:00"), ("05", "2026-11-10 10:00")],
        "E5": [("04", "2026-11-19 14:00")],
        "E6": [
            ("08", "2026-10-20 15:30"),
            ("07", "2026-10-20 15:00"),
            ("04", "2026-10-20 09:30"),
            ("06", "2026-10-20 14:00"),
            ("01", "2026-10-20 08:00"),
            ("05", "2026-10-20 11:00"),
            ("02", "2026-10-20 08:30"),
            ("04", "2026-10-20 09:00"),
        ],
        "E7": [("01", "2026-11-03 09:00"), ("03", "2026-11-03 10:00")],
        "E8": [("01", "2026-11-19 09:00"), ("02", "2026-11-19 09:30")],
        "E9": [("04", "2026-11-18 09:00"), ("08", "2026-11-18 10:00"), ("11", "2026-11-18 11:00")],
        "E10": [("01", "2026-11-16 09:00")],
    }
    event_of = {  # event -> (major, minor, grid, object)
        "E1": ("01", "02", G1, None),
        "E2": ("05", "05", G1, None),
        "E3": ("01", "02", G2, None),
        "E4": ("01", "01", G1, None),
        "E5": ("03", "01", G3, None),
        "E6": ("04", "04", G2, None),
        "E7": ("01", "04", G3, None),
        "E9": ("05", "06", G1, None),
        "E10": ("01", "01", G1, OBJ1),  # component classes: 01 01 is 上水井盖 here, not 私搭乱建
    }
    grid_of = {e: g for e, (_, _, g, _) in event_of.items()} | {"E8": G2}
    return {
        "district.grid": [
            {"grid_code": G1, "community_code": C1, "community_name": "府右街南社区", "street_code": "110102001"},
            {"grid_code": G2, "community_code": C1, "community_name": "府右街南社区", "street_code": "110102001"},
            {"grid_code": G3, "community_code": C2, "community_name": "西交民巷社区", "street_code": "110102001"},
        ],
        "district.building": [
            {
                "building_code": B1,
                "community_code": C1,
                "grid_code": G1,
                "address": "西城区府右街12号院3号楼",
                "building_type": "1",
            },
            {
                "building_code": B2,
                "community_code": C1,
                "grid_code": G2,
                "address": "西城区西交民巷5号院1号楼",
                "building_type": "1",
            },
            {"building_code": B3, "community_code": C2, "grid_code": G3, "address": ADDRESS[B3], "building_type": "5"},
        ],
        "district.house": [
            {"house_code": H1, "building_code": B1, "unit": 2, "floor": 5, "room": "501", "use": "1"},
            {"house_code": H2, "building_code": B1, "unit": 1, "floor": 1, "room": "101", "use": "1"},
            {"house_code": H3, "building_code": B2, "unit": 1, "floor": 3, "room": "302", "use": "2"},
        ],
        "district.organization": [
            {
                "uscc": USCC + uscc_check_char(USCC),
                "name": "西单便民超市",
                "org_type": "1",
                "address": "北京市西城区西交民巷5号院1号楼",
            },
            {
                "uscc": USCC + next(c for c in "0123" if c != uscc_check_char(USCC)),
                "name": "错码商店",
                "org_type": "2",
                "grid_code": G1,
            },
        ],
        "district.component": [
            {"object_id": OBJ1, "major_code": "01", "minor_code": "01", "name": "井盖", "grid_code": G1, "status": "1"},
            {
                "object_id": OBJ2,
                "major_code": "03",
                "minor_code": "05",
                "name": "垃圾箱",
                "grid_code": G3,
                "status": "1",
            },
        ],
        "police.population": [
            police(1, ADDRESS[H1]),
            police(2, ADDRESS[H1], hukou_match="02", hukou_address="北京市西城区钟声胡同5号", _valid_to=SNAPSHOT_2),
            police(
                2,
                ADDRESS[H1],
                hukou_match="02",
                hukou_address="北京市西城区钟声胡同5号",
                phone="13700000002",
                _valid_from=SNAPSHOT_2,
            ),  # a new phone number: a new version, the same stay
            police(3, ADDRESS[H2], reg=dt.date(2010, 3, 1), _valid_to=dt.date(2026, 6, 1)),
            police(3, ADDRESS[H3], reg=dt.date(2010, 3, 1), _valid_from=dt.date(2026, 6, 1)),
            police(4, ADDRESS[H3], kind="2", name="王五"),
            police(5, ADDRESS[H1], deregistered_on=dt.date(2026, 8, 1), deregistration_reason="1"),
            police(6, ADDRESS[H2]),
            police(7, ADDRESS[H2], _valid_to=dt.date(2026, 9, 7)),
            police(8, ADDRESS[H3], kind="2", _valid_to=dt.date(2026, 5, 4)),
            police(10, ADDRESS[H2]),
            police(11, ADDRESS[H3]),
            police(12, ADDRESS[H3], kind="3"),
            police(13, "西城区西交民巷5号院1号楼302"),  # no unit, but B2 has one room 302
        ],
        "floating.registration": [
            {
                "name": "王伍",
                "doc_type": "111",
                "id_number": P[4],
                "residence_address": ADDRESS[H3],
                "registered_on": dt.date(2025, 3, 1),
            },
            {
                "name": "流入8",
                "doc_type": "111",
                "id_number": P[8],
                "residence_address": ADDRESS[B3],
                "registered_on": dt.date(2026, 6, 10),
                "_valid_from": dt.date(2026, 6, 11),
            },
            {
                "name": "流入9",
                "doc_type": "111",
                "id_number": P[9],
                "sex": "2",  # too recent for the police
                "residence_address": "北京市西城区府右街十二号院三号楼二单元501室",
                "registered_on": dt.date(2026, 11, 1),
                "_valid_from": dt.date(2026, 11, 2),
            },
            {
                "name": "流入14",
                "doc_type": "111",
                "id_number": P[14],
                "residence_address": ADDRESS[H2],
                "registered_on": dt.date(2025, 3, 1),
            },  # never on a police snapshot: gone
        ],
        "municipal.mz_death": [{"id_number": P[6], "name": "户籍6", "died_on": dt.date(2026, 10, 15)}],
        "municipal.cl_disability": [
            {
                "id_number": P[10],
                "certificate_number": P[10] + "41",
                "category": "4",
                "level": "1",
                "valid_until": dt.date(2030, 1, 1),
            }
        ],
        "municipal.mz_dibao": [
            {"household_id": "D1", "id_number": P[10], "name": "户籍10", "start_on": dt.date(2024, 1, 1)},
            {
                "household_id": "D2",
                "id_number": P[13],
                "name": "户籍13",
                "start_on": dt.date(2024, 1, 1),
                "end_on": dt.date(2026, 1, 31),
            },
        ],
        "municipal.rs_elderly_allowance": [
            {"id_number": P[11], "age_band": "1"},
            {"id_number": P[15], "name": "未登记15", "age_band": "1"},
        ],
        "ledgers.elderly_alone": [
            {
                "name": "户籍1",
                "id_number": P[1],
                "community": "府右街南社区",
                "address": ADDRESS[H1],
                "living_situation": "1",
                "emergency_phone": "13900001111",
                "last_visit_on": dt.date(2026, 10, 1),
            },
        ],
        "grid_app.visit": [
            {
                "record_id": "V1",
                "recorded_at": at("2026-11-10 10:00"),
                "worker_id": "W1",
                "grid_code": G1,
                "house_code": H1,
                "persons": json.dumps(
                    [{"name": "户籍1", "id_number": P[1].lower(), "phone": "13812345678"}], ensure_ascii=False
                ),
            },
            {
                "record_id": "V2",
                "recorded_at": at("2026-07-01 10:00"),
                "worker_id": "W1",
                "grid_code": G1,
                "house_code": H2,
                "persons": json.dumps([{"name": "某某"}], ensure_ascii=False),
            },
            {
                "record_id": "V4",
                "recorded_at": at("2026-11-12 10:00"),
                "worker_id": "W1",
                "grid_code": G1,
                "house_code": H2,
                "persons": json.dumps([{"name": "未登记15", "id_number": P[15]}], ensure_ascii=False),
            },
            {
                "record_id": "V3",
                "recorded_at": at("2026-11-19 10:00"),
                "worker_id": "W2",
                "grid_code": G2,
                "house_code": H3,
                "persons": "[]",
            },
        ],
        "grid_app.inspection": [
            {
                "record_id": "I2",
                "recorded_at": at("2026-11-15 10:00"),
                "worker_id": "W1",
                "grid_code": G1,
                "object_id": OBJ1,
                "status": "2",
            },
            {
                "record_id": "I1",
                "recorded_at": at("2026-11-01 10:00"),
                "worker_id": "W1",
                "grid_code": G1,
                "object_id": OBJ1,
                "status": "1",
            },
        ],
        "grid_app.event": [
            {
                "record_id": f"R{e}",
                "recorded_at": at(min(when for _, when in event_steps[e])),
                "worker_id": "W1",
                "grid_code": g,
                "event_id": e,
                "source": "1",
                "major_code": major,
                "minor_code": minor,
                "object_id": obj,
                "address": "西城区府右街12号",
            }
            for e, (major, minor, g, obj) in event_of.items()
        ],
        "grid_app.event_status": [
            {
                "record_id": f"S{e}{i}",
                "recorded_at": at(when),
                "worker_id": "W1",
                "grid_code": grid_of[e],
                "event_id": e,
                "status": status,
                "department": "城管",
                "at": at(when),
            }
            for e, steps in event_steps.items()
            for i, (status, when) in enumerate(steps)
        ],
    }


def street_silver() -> dict[str, pl.DataFrame]:
    return {key: silver(key, rows) for key, rows in street_rows().items()}


def write_silver(home: Home, frames: dict[str, pl.DataFrame]) -> None:
    for key, frame in frames.items():
        lake.write(home, "silver", load_contracts().table(key).bronze_name, frame)


@pytest.fixture(scope="module")
def marts(tmp_path_factory) -> dict[str, pl.DataFrame]:
    home = Home.at(tmp_path_factory.mktemp("street"))
    write_silver(home, street_silver())
    counts = build_marts(home, as_of=AS_OF)
    frames = {name: lake.read(home, "mart", name) for name in counts}
    assert counts == {name: f.height for name, f in frames.items()}
    return frames


def by_person(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["id_number"]: row for row in frame.iter_rows(named=True)}


# -- contracts --------------------------------------------------------------------------------------
def test_every_mart_matches_its_contract_on_data_and_when_silver_is_missing(tmp_path):
    contracts = {t.name: t for t in load_contracts().marts}
    built = compute_marts(street_silver() | {k: silver(k, []) for k in INPUTS if k not in street_rows()}, AS_OF)
    assert set(built) == set(contracts)
    for name, frame in built.items():
        assert set(frame.columns) == set(contracts[name].schema()), name
    counts = build_marts(Home.at(tmp_path), as_of=AS_OF)  # nothing was ever loaded
    assert set(counts) == set(contracts) and not any(counts.values())
    for name in counts:  # Delta keeps instants in UTC
        stored = {
            c: pl.Datetime("us", "UTC") if isinstance(d, pl.Datetime) else d
            for c, d in contracts[name].schema().items()
        }
        assert lake.read(Home.at(tmp_path), "mart", name).schema == pl.Schema(stored)


def test_contracts_name_every_silver_table_the_marts_read_and_marts_come_in_dependency_order(marts):
    contracts = load_contracts()
    related = {key for t in contracts.marts for key in t.related}
    assert {key for key in related if not key.startswith("mart.")} == set(INPUTS)
    order = list(marts)  # as build_marts returned them
    for name in order:
        for key in contracts.table(f"mart.{name}").related:
            if key.startswith("mart."):
                assert order.index(key.removeprefix("mart.")) < order.index(name), (key, name)


def test_what_decides_a_mart_is_computed_again_covers_every_table_its_contract_names():
    """An incremental build keeps a mart whose DEPENDS did not change: they must hold every silver
    table its contract names as related, through the marts it is computed from."""
    contracts = load_contracts()

    def reached(name: str) -> set[str]:
        related = contracts.table(f"mart.{name}").related
        marts = {key.removeprefix("mart.") for key in related if key.startswith("mart.")}
        return {key for key in related if not key.startswith("mart.")}.union(*map(reached, marts))

    for t in contracts.marts:
        assert reached(t.name) <= set(DEPENDS[t.name][0]), t.name


# -- addresses --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "written",
    [
        "西城区府右街12号院3号楼2单元501",
        "北京市西城区府右街12号院3号楼2单元501室",
        "府右街十二号院三号楼二单元501室",
        "西城区府右街12号院3楼2单元501",
        "西城区府右街12号院3-2-501",
        "西城区 府右街12号 院3号楼 2单元 501",
        "西城区府右街１２号院３号楼２单元５０１",
    ],
)
def test_address_spellings_split_alike(written):
    parts = pl.select(split(pl.lit(written)).alias("p"), building_part(pl.lit(written)).alias("shown")).row(0)
    assert parts == ({"building": "府右街12号院3号楼", "unit": "2", "room": "501"}, "府右街12号院3号楼")


def test_addresses_without_a_room_or_a_building():
    frame = pl.DataFrame({"a": ["西城区钟声胡同5号", "西城区钟声胡同5号-101", "北京市朝阳区某某大厦", None]})
    shown = frame.select(split(pl.col("a")).struct.field("building", "room"), b=building_part(pl.col("a")))
    assert shown.rows() == [
        ("钟声胡同5号", None, "钟声胡同5号"),
        ("钟声胡同5号", "101", "钟声胡同5号"),
        ("某某大厦", None, None),
        (None, None, None),
    ]


# -- person -----------------------------------------------------------------------------------------
def test_person_status_deceased_moved_out_and_floating_return(marts):
    people = by_person(marts["person"])
    assert len(people) == 15
    status = {n: people[P[n]]["status"] for n in P}
    assert status[5] == "3"  # police deregistered for death
    assert status[6] == "3"  # municipal death register, police still lists them
    assert status[7] == "2"  # absent from the latest police snapshot
    assert status[8] == "1"  # left the police register, then registered as floating
    assert status[9] == "1"  # floating, registered 15 days before the latest police snapshot
    assert status[14] == "2"  # floating, but absent from police snapshots taken since
    assert status[15] == "1" and people[P[15]]["person_type"] is None  # on neither register: 未登记
    assert {n for n, s in status.items() if s == "1"} == {1, 2, 3, 4, 8, 9, 10, 11, 13, 15}
    assert people[PASSPORT]["status"] == "1" and people[PASSPORT]["person_type"] == "3"


def test_person_survivorship_and_residence(marts):
    people = by_person(marts["person"])
    assert people[P[4]]["name"] == "王五"  # police before floating
    assert people[P[4]]["sources"] == "police.population,floating.registration"
    p8 = people[P[8]]  # residence follows the current floating registration, not the old police one
    assert (p8["person_type"], p8["building_code"], p8["house_code"], p8["grid_code"]) == ("2", B3, None, G3)
    assert people[P[9]]["house_code"] == H1  # "府右街十二号院三号楼二单元501室" resolved
    assert people[P[13]]["house_code"] == H3
    assert (people[P[3]]["house_code"], people[P[3]]["community_name"]) == (H3, "府右街南社区")
    assert people[P[2]]["hukou_match"] == "02"
    assert people[P[9]]["birth_date"] == dt.date(1999, 1, 1) and people[P[9]]["sex"] == "2"
    assert people[P[1]]["sex"] == "1" and people[P[1]]["age"] == 86
    assert people[P[15]]["house_code"] == H2  # where the grid worker saw them
    assert len(marts["person"]["person_key"].unique()) == 15


def test_person_key_is_stable_and_no_row_number(marts, tmp_path):
    home = Home.at(tmp_path)
    frames = street_silver()
    frames["police.population"] = frames["police.population"].reverse()
    write_silver(home, frames)
    build_marts(home, as_of=AS_OF)
    again = lake.read(home, "mart", "person").select("id_number", "person_key").sort("id_number")
    assert again.equals(marts["person"].select("id_number", "person_key").sort("id_number"))


def test_care_tags(marts):
    people = by_person(marts["person"])
    tagged = {
        flag: {n for n in P if people[P[n]][flag]}
        for flag in ("is_living_alone", "is_very_old", "is_disabled", "is_dibao")
    }
    assert tagged == {
        "is_living_alone": {1},
        "is_very_old": {1, 5, 6, 11, 15},  # born 1940/1938/1945, or the allowance list (11 and 15, aged 76)
        "is_disabled": {10},
        "is_dibao": {10},  # 13's membership ended in January
    }


def test_residence_history_answers_who_lived_in_a_grid_on_a_date(marts):
    history = marts["person_history"]
    number = {
        marts["person"].filter(pl.col("id_number") == ident)["person_key"].item(): n
        for n, ident in {**P, 12: PASSPORT}.items()
    }

    def lived_in(grid: str, day: dt.date) -> set[int]:
        keys = history.filter(
            (pl.col("grid_code") == grid)
            & (pl.col("valid_from") <= day)
            & (pl.col("valid_to").is_null() | (pl.col("valid_to") > day))
        )["person_key"]
        return {number[k] for k in keys}

    assert lived_in(G1, dt.date(2026, 5, 1)) == {1, 2, 3, 5, 6, 7, 10, 14}
    assert lived_in(G1, dt.date(2026, 7, 1)) == {1, 2, 5, 6, 7, 10, 14}
    assert lived_in(G1, dt.date(2026, 11, 15)) == {1, 2, 9, 10, 14}  # 14: gone by the 16 Nov snapshot
    assert lived_in(G1, dt.date(2026, 11, 20)) == {1, 2, 9, 10}
    assert lived_in(G2, dt.date(2026, 5, 1)) == {4, 8, 11, 12, 13}
    assert lived_in(G3, dt.date(2026, 7, 1)) == {8}
    assert lived_in(G1, dt.date(2009, 1, 1)) == {1, 2, 5, 6, 7, 10}  # registered in 2000; 3 only in 2010

    def stays(n: int) -> list[tuple]:
        key = next(k for k, m in number.items() if m == n)
        return (
            history.filter(pl.col("person_key") == key)
            .sort("valid_from")
            .select("house_code", "valid_from", "valid_to")
            .rows()
        )

    assert stays(3) == [(H2, dt.date(2010, 3, 1), dt.date(2026, 6, 1)), (H3, dt.date(2026, 6, 1), None)]
    assert stays(2) == [(H1, dt.date(2000, 1, 1), None)]  # two versions in one place: one stay


# -- place and grid -----------------------------------------------------------------------------------
def test_grid_population_counts_only_active_residents(marts):
    grid = {row["grid_code"]: row for row in marts["grid"].iter_rows(named=True)}
    counts = ["residents", "registered_residents", "floating_residents", "foreign_residents", "unregistered_residents"]
    assert {g: tuple(grid[g][c] for c in counts) for g in grid} == {
        G1: (5, 3, 1, 0, 1),  # 15, on neither register, counts as 未登记
        G2: (5, 3, 1, 1, 0),
        G3: (1, 0, 1, 0, 0),
    }
    care = ["living_alone", "very_old", "disabled", "dibao"]
    assert {g: tuple(grid[g][c] for c in care) for g in grid} == {G1: (1, 2, 1, 1), G2: (0, 1, 0, 0), G3: (0, 0, 0, 0)}
    # timeliness is the event mart's on_time: G1 has E1, E2 on time, E4, E9 late, E10 not yet judged
    events = ["events_open", "events_overdue", "events_closed", "events_judged", "events_on_time"]
    assert {g: tuple(grid[g][c] for c in events) for g in grid} == {
        G1: (3, 2, 2, 4, 2),
        G2: (1, 0, 2, 2, 1),
        G3: (1, 0, 0, 0, 0),
    }
    assert grid[G3]["community_name"] == "西交民巷社区"


def test_place_has_every_house_and_buildings_without_houses(marts):
    place = {(r["building_code"], r["house_code"]): r for r in marts["place"].iter_rows(named=True)}
    assert set(place) == {(B1, H1), (B1, H2), (B2, H3), (B3, None)}
    counts = ["residents", "registered_residents", "floating_residents", "foreign_residents", "unregistered_residents"]
    assert {k: tuple(place[k][c] for c in counts) for k in place} == {
        (B1, H1): (3, 2, 1, 0, 0),
        (B1, H2): (2, 1, 0, 0, 1),
        (B2, H3): (5, 3, 1, 1, 0),
        (B3, None): (1, 0, 1, 0, 0),
    }
    assert place[(B3, None)]["grid_code"] == G3 and place[(B1, H1)]["community_name"] == "府右街南社区"


# -- the marts' checks ----------------------------------------------------------------------------------
def judged(marts: dict[str, pl.DataFrame], check: str) -> tuple[bool, dict]:
    """What the mart check named ``check`` (redwall.assets.mart_checks) says of ``marts``."""
    from redwall.assets.mart_checks import CHECKS

    return next(c for c in CHECKS if c.name == check).judge(marts)


def test_every_mart_check_passes_on_the_street(marts):
    from redwall.assets.mart_checks import CHECKS

    assert {c.name: c.judge(marts) for c in CHECKS if not c.judge(marts)[0]} == {}


def test_a_grid_adds_up_with_its_unregistered_residents(marts):
    passed, facts = judged(marts, "grid_counts_add_up")
    assert passed and facts["unregistered_residents"] == 1 and facts["grid_residents"] == facts["placed_residents"]
    uncounted = marts | {"grid": marts["grid"].with_columns(unregistered_residents=pl.lit(0, pl.Int64))}
    assert judged(uncounted, "grid_counts_add_up") == (
        False,
        {"grids_not_adding_up": 1, "grid_residents": 11, "placed_residents": 11, "unregistered_residents": 0},
    )


def test_a_sighting_needs_no_person_but_a_documented_link_does(marts):
    links = marts["person_link"]
    passed, facts = judged(marts, "links_reach_a_person")
    sightings = links.filter(~pl.col("match_rule").is_in(["exact_id", "splink"]))
    assert passed and facts["sightings"] == sightings.height >= 1  # 某某, seen on visit V2 without an ID
    assert sightings.join(marts["person"], on="person_key", how="semi").is_empty()  # a person of its own
    documented = links.filter(pl.col("match_rule") == "exact_id").head(1)
    for rule, reaches in (("unmatched", True), ("splink_cluster", True), ("exact_id", False), ("splink", False)):
        stray = documented.with_columns(person_key=pl.lit("nobody"), match_rule=pl.lit(rule))
        passed, facts = judged(marts | {"person_link": pl.concat([links, stray])}, "links_reach_a_person")
        assert (passed, facts["without_person"]) == (reaches, 0 if reaches else 1), rule
    # a residence stay is always a person's
    stay = marts["person_history"].head(1).with_columns(person_key=pl.lit("nobody"))
    stays = marts | {"person_history": pl.concat([marts["person_history"], stay])}
    assert judged(stays, "stays_reach_a_person") == (
        False,
        {"rows": stays["person_history"].height, "without_person": 1},
    )


# -- event, object, organisation ------------------------------------------------------------------------
def test_event_working_time_on_the_working_calendar(marts):
    events = {r["event_id"]: r for r in marts["event"].iter_rows(named=True)}
    assert len(events) == 10
    # National Day: Wed 30 Sep 16:30 → Thu 8 Oct 11:00 is 90 + 120 working minutes
    assert (events["E1"]["working_minutes"], events["E1"]["limit_minutes"], events["E1"]["on_time"]) == (210, 240, True)
    # a weekend: Fri 17:00 → Mon 10:00 is 2 working hours, exactly the limit
    assert (events["E2"]["working_minutes"], events["E2"]["on_time"]) == (120, True)
    # the 调休 Saturday 10 Oct is a full working day: 60 + 480 + 90
    assert (events["E3"]["working_minutes"], events["E3"]["on_time"]) == (630, False)
    # lunch break skipped; first of two 派遣 counts; steps arrived shuffled
    e6 = events["E6"]
    assert (e6["working_minutes"], e6["on_time"], e6["status"]) == (330, True, "08")
    assert e6["dispatched_at"] == at("2026-10-20 09:00") and e6["reported_at"] == at("2026-10-20 08:00")
    assert (e6["class_name"], e6["major_name"], e6["time_limit"], e6["time_unit"]) == (
        "下水道堵塞",
        "突发事件",
        8,
        "working_hours",
    )


def test_event_status_open_and_overdue_as_of_build_time(marts):
    events = {r["event_id"]: r for r in marts["event"].iter_rows(named=True)}
    # 10 working days from Mon 2 Nov 09:00; by Fri 20 Nov 10:00 14 days and an hour have passed
    assert (events["E4"]["is_open"], events["E4"]["working_minutes"], events["E4"]["overdue"]) == (True, 6780, True)
    assert (events["E5"]["working_minutes"], events["E5"]["overdue"]) == (300, False)
    assert (events["E7"]["status"], events["E7"]["is_open"], events["E7"]["on_time"]) == ("03", False, None)
    e8 = events["E8"]  # its steps came, its report did not (yet)
    assert (e8["status"], e8["is_open"], e8["grid_code"], e8["overdue"], e8["class_name"]) == (
        "02",
        True,
        G2,
        None,
        None,
    )
    assert (events["E9"]["status"], events["E9"]["is_open"], events["E9"]["overdue"]) == ("11", True, True)
    assert events["E1"]["overdue"] is None and events["E1"]["community_code"] == C1
    e10 = events["E10"]  # a problem with a component: classed, and time-limited, by the component class
    assert (e10["class_name"], e10["time_limit"], e10["is_open"], e10["overdue"]) == ("上水井盖", 2, True, None)


def test_object_latest_inspection_and_open_events(marts):
    objects = {r["object_id"]: r for r in marts["object"].iter_rows(named=True)}
    o1 = objects[OBJ1]
    assert (o1["class_name"], o1["major_name"], o1["last_inspection_status"], o1["open_events"]) == (
        "上水井盖",
        "公用设施",
        "2",
        1,
    )
    assert o1["last_inspected_at"] == at("2026-11-15 10:00") and o1["community_code"] == C1
    assert (objects[OBJ2]["class_name"], objects[OBJ2]["open_events"], objects[OBJ2]["last_inspection_status"]) == (
        "垃圾箱",
        0,
        None,
    )


def test_organization_uscc_check_and_grid_by_address(marts):
    orgs = {r["name"]: r for r in marts["organization"].iter_rows(named=True)}
    assert (orgs["西单便民超市"]["uscc_valid"], orgs["西单便民超市"]["grid_code"]) == (True, G2)
    assert (orgs["错码商店"]["uscc_valid"], orgs["错码商店"]["community_name"]) == (False, "府右街南社区")


# -- care visits ------------------------------------------------------------------------------------
def test_care_visits_by_id_by_house_and_overdue(marts):
    numbers = {ident: n for n, ident in P.items()}
    visits = {
        numbers[r["id_number"]]: r
        for r in marts["care_visit"]
        .join(marts["person"].select("person_key", "id_number"), on="person_key")
        .iter_rows(named=True)
    }
    assert set(visits) == {1, 10, 11, 15}  # care-group persons still living here
    got = {
        n: (v["care_types"], v["visit_interval_days"], v["last_visit_on"], v["days_since_visit"], v["visit_overdue"])
        for n, v in visits.items()
    }
    assert got == {
        1: ("独居老人,高龄", 30, dt.date(2026, 11, 10), 10, False),  # seen with ID on a visit
        10: ("残疾人,低保", 90, dt.date(2026, 7, 1), 142, True),  # a visit to the house, no ID shown
        11: ("高龄", 30, None, None, True),  # never visited (the empty visit saw nobody)
        15: ("高龄", 30, dt.date(2026, 11, 12), 8, False),  # on neither register, cared for all the same
    }


def test_the_event_mart_warns_before_the_working_calendar_runs_out():
    import dagster as dg

    from redwall.assets.marts import CALENDAR_AHEAD_DAYS, calendar_check

    key = dg.AssetKey(["lake", "mart", "event"])
    ends = reference("calendar")["date"].max()
    early = calendar_check(key, ends - dt.timedelta(days=CALENDAR_AHEAD_DAYS))
    assert early.passed and early.metadata["days_left"].value == CALENDAR_AHEAD_DAYS
    late = calendar_check(key, ends - dt.timedelta(days=CALENDAR_AHEAD_DAYS - 1))
    assert not late.passed and late.severity == dg.AssetCheckSeverity.WARN
    assert "节假日安排" in late.description and "inbox/ledgers/data_center/" in late.description
