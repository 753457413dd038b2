"""Identity documents as people hold and write them: the citizen-ID rule (one implementation behind
its scalar, vectorised and Great Expectations forms, checked against python-stdnum), the numbers of
permits, residence permits, permanent-residence cards and passports normalised so that one document
is one person whichever source wrote it, and every ID path through the same normalisation."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import polars as pl
import pytest
from stdnum.cn import ric
from test_marts import AS_OF, silver, street_rows

from redwall.identifiers import (
    citizen_id_valid_expr,
    document_kind_expr,
    document_number_expr,
    id_check_char,
    is_valid_citizen_id,
    person_identity_expr,
)
from redwall.ingest.normalise import judge
from redwall.marts import INPUTS, compute_marts
from redwall.schemas import load_contracts

TODAY = dt.date(2026, 12, 1)


def cid(area: str, birth: str, seq: str) -> str:
    first17 = area + birth + seq
    return first17 + id_check_char(first17)


VALID = [
    cid("110102", "19400312", "002"),
    cid("110104", "19851231", "011"),
    cid("440106", "20000229", "999"),
    cid("510104", "19700101", "100"),
    cid("110102", "20261130", "003"),
]
INVALID = {
    "check character": VALID[0][:17] + ("1" if VALID[0][17] != "1" else "2"),
    "Arabic-Indic digit": VALID[0][:5] + "٢" + VALID[0][6:],
    "Devanagari digit": VALID[0][:9] + "४" + VALID[0][10:],
    "full-width digit": VALID[0][:3] + "１" + VALID[0][4:],
    "future birth date": cid("110102", "20261202", "001"),
    "no such date": cid("110102", "19900230", "001"),
    "area 000000": cid("000000", "19900101", "001"),
    "area 99xxxx": cid("990101", "19900101", "001"),
    "sequence 000": cid("110102", "19900101", "000"),
    "17 characters": VALID[0][:17],
}


def test_citizen_id_rule_refuses_impossible_numbers_in_every_form():
    from redwall.quality.expectations import _apply, _citizen_id

    values = VALID + list(INVALID.values())
    scalar = [is_valid_citizen_id(v, TODAY) for v in values]
    vectorised = (
        pl.DataFrame({"id": values}).select(citizen_id_valid_expr(pl.col("id"), TODAY).fill_null(False))["id"].to_list()
    )
    assert scalar == vectorised == [True] * len(VALID) + [False] * len(INVALID), dict(zip(values, scalar, strict=True))
    # the quality loop's expectation evaluates the same rule (today's date: these are long past)
    past = values[:4] + [v for k, v in INVALID.items() if k != "future birth date"]
    assert _apply(_citizen_id, pd.Series(past)).tolist() == [True] * 4 + [False] * (len(past) - 4)


def _stdnum_structure(number: str) -> bool:
    """stdnum.cn.ric's checks of length, digits, check character and birth date (its county check
    also needs the county to exist in the birth year, a table finer than ours)."""
    try:
        number = ric.compact(number)
        ric.get_birth_date(number)
        return len(number) == 18 and number[:17].isdigit() and ric.calc_check_digit(number) == number[17]
    except (ValueError, ric.ValidationError):
        return False


def test_citizen_id_rule_agrees_with_python_stdnum():
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(11)
    samples = [fake.ssn() for _ in range(200)]
    samples += [s[:17] + ("0" if s[17] != "0" else "1") for s in samples[:50]]  # broken check characters
    samples += [s[:14] + "000" + id_check_char(s[:14] + "000") for s in samples[:20]]  # sequence 000
    samples += [s[:10] + "1302" + s[14:17] + id_check_char(s[:10] + "1302" + s[14:17]) for s in samples[:20]]
    ours = [is_valid_citizen_id(s) for s in samples]
    assert ours == [_stdnum_structure(s) and s[14:17] != "000" for s in samples]
    assert all(
        o for o, s in zip(ours, samples, strict=True) if ric.is_valid(s) and s[14:17] != "000"
    )  # stdnum's valid pass
    assert sum(ours) == 200
    assert not any(is_valid_citizen_id(s) for s in ("000000199001010018", "990101199001010019"))
    assert not any(ric.is_valid(s) for s in ("000000199001010018", "990101199001010019"))


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (["G-12345678", "g12345678", "Ｇ１２３４５６７８", "G 1234 5678"], "414:G12345678"),
        (["H1234567801", "H12345678", "h-12345678"], "516:H12345678"),  # lifelong number, old cards add the issue count
        (["M87654321", "Ｍ８７６５４３２１"], "516:M87654321"),
        (["12345678", "1234567802"], "511:12345678"),
        (["ABC123456789012", "abc-123456789012"], "553:ABC123456789012"),
    ],
)
def test_one_document_is_one_identity_however_it_is_written(written, expected):
    frame = pl.DataFrame({"raw": written}).with_columns(number=document_number_expr(pl.col("raw")))
    identity = frame.select(person_identity_expr(document_kind_expr(pl.col("number")), pl.col("number")))
    assert identity.to_series().to_list() == [expected] * len(written)


def test_residence_permits_and_the_new_permanent_residence_card_are_numbers_on_the_id_pattern():
    permit, card = cid("810000", "19900101", "012"), cid("912345", "19800101", "011")
    frame = pl.DataFrame(
        {"number": [permit, card, cid("820000", "19900101", "012")[:-1] + "X", cid("810001", "19900101", "012")]}
    )
    kinds = frame.select(document_kind_expr(pl.col("number"))).to_series().to_list()
    assert kinds[:2] == ["118", "553"]
    identity = frame.select(person_identity_expr(pl.Series(kinds), pl.col("number"))).to_series().to_list()
    assert identity[:2] == [permit, card]
    assert identity[3] is None  # 810001 is no residence permit's address code
    assert is_valid_citizen_id(permit) and not is_valid_citizen_id(card)  # a 9 is no province


def _judged(key: str, rows: list[dict[str, str]]) -> pl.DataFrame:
    """Rows delivered as text to a contract table, typed by ingestion; ``rule`` lists the issues."""
    table = load_contracts().table(key)
    bronze = pl.DataFrame(
        {c.name: [r.get(c.label) for r in rows] for c in table.all_columns},
        schema={c.name: pl.String for c in table.all_columns},
    ).with_columns(_file_hash=pl.lit("f"), _row_number=pl.int_range(pl.len()) + 1, _sheet=pl.lit(None, pl.String))
    judged = judge(table, bronze, "第{}行")
    issues = judged.issues.group_by("_row_number").agg(pl.col("rule").sort())
    return judged.rows.join(issues, on="_row_number", how="left").sort("_row_number")


def test_ingestion_normalises_document_numbers_and_checks_them_against_their_type():
    base = {"姓名": "某", "现住地址": "西城区府右街12号", "登记日期": "2026-11-01"}
    rows = _judged(
        "floating.registration",
        [
            {**base, "证件类型": "港澳居民来往内地通行证", "证件号码": "h-1234 5678"},
            {**base, "证件类型": "港澳居民来往内地通行证", "证件号码": "E12345678"},  # a passport's number
            {**base, "证件类型": "护照", "证件号码": "Ｇ－12345678"},
            {**base, "证件类型": "居民身份证", "证件号码": INVALID["Arabic-Indic digit"]},
            {**base, "证件类型": "居民身份证", "证件号码": cid("110102", "20990101", "001")},
            {**base, "证件类型": "港澳台居民居住证", "证件号码": cid("830000", "19900101", "012")},
            {**base, "证件类型": "港澳台居民居住证", "证件号码": VALID[0]},  # a citizen ID, not a permit
        ],
    )
    assert rows["id_number"].to_list()[:3] == ["H12345678", None, "G12345678"]
    assert rows["rule"].to_list() == [
        None,
        ["document_format"],
        None,
        ["id_format"],
        ["id_checksum"],
        None,
        ["document_format"],
    ]
    police = _judged(
        "police.population",
        [
            {
                "公民身份号码": "m 8765 4321",
                "姓名": "某",
                "性别": "男",
                "出生日期": "19900101",
                "居住地址": "某处",
                "人员类型": "境外人员",
                "登记日期": "2026-01-01",
            },
            {
                "公民身份号码": "8765432",
                "姓名": "某",
                "性别": "男",
                "出生日期": "19900101",
                "居住地址": "某处",
                "人员类型": "户籍人口",
                "登记日期": "2026-01-01",
            },
        ],
    )
    assert police["id_number"].to_list() == ["M87654321", None] and police["rule"][1].to_list() == ["id_format"]


def _silver_of(rows: dict[str, list[dict]]) -> dict[str, pl.DataFrame]:
    return {key: silver(key, rows.get(key, [])) for key in INPUTS}


def test_a_permit_holder_in_both_registers_is_one_resident():
    """The police register lists a Hong Kong resident as 境外人员 by permit number; the floating
    register by 证件类型 and the number as the clerk typed it: one person, living here."""
    rows = street_rows()
    police = next(r for r in rows["police.population"] if r["person_type"] == "3")
    police["id_number"] = "H12345678"
    rows["floating.registration"].append(
        {
            "name": police["name"],
            "doc_type": "516",
            "id_number": "H1234567801",
            "residence_address": police["residence_address"],
            "registered_on": dt.date(2026, 3, 1),
        }
    )
    persons = compute_marts(_silver_of(rows), AS_OF)["person"]
    holder = persons.filter(pl.col("doc_type") == "516")
    assert holder.height == 1
    assert holder["status"].to_list() == ["1"] and holder["sources"][0] == "police.population,floating.registration"


def test_visit_ids_go_through_the_same_normalisation_and_upgrade():
    from test_marts import P

    rows = street_rows()
    width = P[1].translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})  # full-width digits
    legacy = P[2][:6] + P[2][8:17]  # the 15-digit form
    rows["grid_app.visit"].append(
        {
            "record_id": "V9",
            "recorded_at": dt.datetime(2026, 11, 12, 10, tzinfo=AS_OF.tzinfo),
            "worker_id": "W1",
            "grid_code": "110102001001001",
            "persons": json.dumps(
                [{"name": "甲", "id_number": width}, {"name": "乙", "id_number": legacy}], ensure_ascii=False
            ),
        }
    )
    marts = compute_marts(_silver_of(rows), AS_OF)
    link = marts["person_link"].filter(pl.col("record_key") == "V9").sort("item")
    assert link["match_rule"].to_list() == ["exact_id", "exact_id"]
    owners = marts["person"].filter(pl.col("id_number").is_in([P[1], P[2]])).sort("id_number")
    assert link["person_key"].to_list() == owners.sort(pl.col("id_number") == P[2])["person_key"].to_list()


def _visit_rows(persons: list[dict], house: str) -> dict:
    return {
        "record_id": "V8",
        "recorded_at": dt.datetime(2026, 11, 12, 10, tzinfo=AS_OF.tzinfo),
        "worker_id": "W1",
        "grid_code": "110102001001001",
        "house_code": house,
        "persons": json.dumps(persons, ensure_ascii=False),
    }


@pytest.mark.parametrize("second", ["李玮", "李伟"])  # a homophone son, a son of the same name
def test_two_persons_one_visit_lists_are_never_one_person(second):
    """A father on the police register and, on one household visit, the father and his son, by
    name and the household's phone only: without the visit's word that they are two, the model
    would take both for the father."""
    from test_marts import H1, P

    rows = street_rows()
    father = rows["police.population"][0]  # 户籍1, in H1
    father.update(name="李伟", phone="13912340001")
    rows["grid_app.visit"].append(
        _visit_rows([{"name": "李伟", "phone": "13912340001"}, {"name": second, "phone": "13912340001"}], H1)
    )
    link = compute_marts(_silver_of(rows), AS_OF)["person_link"]
    seen = link.filter(pl.col("record_key") == "V8").sort("item")
    father_key = link.filter((pl.col("source") == "police.population") & (pl.col("record_key") == P[1]))
    assert seen["person_key"].n_unique() == 2
    assert father_key["person_key"][0] in seen["person_key"].to_list()
    assert seen["match_rule"][0] == "splink"


def test_two_persons_of_one_visit_are_not_clustered_together_through_another_record():
    """Brothers of one name seen together, and one of them alone on another visit: the lone
    sighting joins one brother, never both into one."""
    from test_marts import H3

    rows = street_rows()
    brothers = [{"name": "赵磊", "phone": "13700007777"}, {"name": "赵磊", "phone": "13700007777"}]
    rows["grid_app.visit"] += [
        _visit_rows(brothers, H3),
        {
            **_visit_rows([{"name": "赵磊", "phone": "13700007777"}], H3),
            "record_id": "V7",
            "recorded_at": dt.datetime(2026, 11, 13, 10, tzinfo=AS_OF.tzinfo),
        },
    ]
    link = compute_marts(_silver_of(rows), AS_OF)["person_link"]
    seen = link.filter(pl.col("record_key").is_in(["V7", "V8"]))
    assert seen.filter(pl.col("record_key") == "V8")["person_key"].n_unique() == 2
    assert seen["person_key"].n_unique() == 2  # the lone sighting is one of the two
