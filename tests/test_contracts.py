"""The contracts load, are consistent, and carry what every derived artefact needs."""

from __future__ import annotations

import datetime as dt
import shutil

import polars as pl
import pytest

from redwall import identifiers as ids
from redwall.schemas import HERE, PII_KINDS, SENSITIVITY, ContractError, code_lists, load_contracts, reference

FEED_SOURCES = {"police", "floating", "grid_app", "municipal", "district", "ledgers"}


def test_every_feed_of_feeds_md_has_a_contract():
    contracts = load_contracts()
    # and the streets' packages, which a district's redwall takes in (the upward leg of 市区街居)
    assert set(contracts.sources) == FEED_SOURCES | {"street_package"}
    assert {t.name for t in contracts.source_tables("municipal")} == {
        "mz_dibao",
        "cl_disability",
        "mz_death",
        "rs_elderly_allowance",
    }
    assert {t.name for t in contracts.source_tables("district")} == {
        "grid",
        "building",
        "house",
        "organization",
        "component",
    }
    assert {t.name for t in contracts.source_tables("grid_app")} == {"event", "event_status", "visit", "inspection"}


def test_tables_declare_what_catalogue_and_masking_need():
    for t in load_contracts().tables.values():
        assert t.title and t.abstract, t.key
        assert t.provider["name"] and t.provider["code"], t.key
        for c in t.all_columns:
            assert c.label and c.sensitivity in SENSITIVITY, (t.key, c.name)
            if c.pii:
                # Anything that can name a person is a direct identifier, never shared in clear;
                # the quasi-identifiers with a treatment of their own are named.
                assert c.sensitivity == PII_KINDS[c.pii], (t.key, c.name)
            assert c.sensitivity != "direct_identifier" or c.pii, (t.key, c.name)
        if t.kind in ("feed", "ledger"):  # delivered tables (not marts or system tables)
            assert t.files or t.kind == "ledger", t.key


def test_headers_are_unique_within_a_table():
    # Header mapping goes by name: one delivered header must never fit two columns.
    for t in load_contracts().tables.values():
        seen: dict[str, str] = {}
        for c in t.all_columns:
            for h in c.headers:
                assert seen.setdefault(h, c.name) == c.name, f"{t.key}: header {h} fits {seen[h]} and {c.name}"


def test_ledgers_carry_department_template_and_examples():
    contracts = load_contracts()
    assert set(contracts.departments) == {"civil_affairs", "city_management", "safety", "data_center"}
    for t in contracts.ledgers:
        assert t.template["version"] >= 1 and t.template["sheet"]
        assert all(c.example is not None for c in t.columns), t.key


def test_code_columns_name_a_known_code_list():
    lists = code_lists()
    for t in load_contracts().tables.values():
        for c in t.all_columns:
            if c.type == "code":
                assert c.codes in lists or c.codes in ("community", "grid"), (t.key, c.name)


def _broken_copy(tmp_path, text_from: str, text_to: str):
    root = tmp_path / "schemas"
    shutil.copytree(HERE, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    police = root / "feeds" / "police.yaml"
    police.write_text(police.read_text(encoding="utf-8").replace(text_from, text_to, 1), encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("text_from", "text_to", "message"),
    [
        ("type: code, codes: sex", "type: code, codes: gender", "unknown code list"),
        ("sensitivity: sensitive}", "sensitivity: secret}", "needs a sensitivity"),
        ("keys: [id_number]", "keys: [passport]", "are not columns"),
        ("sharing: 有条件共享", "sharing: 随便共享", "catalogue.sharing"),
        ("type: date, required: true", "type: timestamp, required: true", "unknown type"),
        ("hold: {closing: 0.2}", "hold: {closing: 20}", "hold shares must lie in"),
        ("hold: {closing: 0.2}", "hold: {closes: 0.2}", "hold has unknown limits"),
        ("load: snapshot", "load: increment", "only a delivered snapshot table can be held"),
        ("address: residence_address", "address: residence", "address must name a text column"),
        ("address: residence_address", "address: birth_date", "address must name a text column"),
        ("address: residence_address", "adress: residence_address", "unknown keys \\['adress'\\]"),
        ("trust: 0", "trust: first", "trust must be a rank"),
        ("trust: 0", "trust: 1", "two sources declare the same trust"),
        ("    keys: [id_number]", "    trust: 0\n    keys: [id_number]", "declared once at the top of its file"),
    ],
)
def test_inconsistent_contract_is_refused_at_load(tmp_path, text_from, text_to, message):
    with pytest.raises(ContractError, match=message):
        load_contracts(_broken_copy(tmp_path, text_from, text_to))


def test_reference_data_is_complete():
    assert reference("ethnicity").height == 56
    streets = reference("street")
    assert streets.height == 15 and streets["code"].str.starts_with("110102").all()
    assert streets.filter(pl.col("code") == "110102001")["name"].item() == "西长安街街道"
    events = reference("event_class")
    assert events["time_unit"].is_in(["working_hours", "working_days"]).all()
    assert events.filter((pl.col("major") == "01") & (pl.col("minor") == "02"))["name"].item() == "暴露垃圾"


def test_working_calendar_knows_holidays_and_adjusted_workdays():
    cal = reference("calendar").filter(pl.col("date").dt.year() == 2026)
    day = dict(zip(cal["date"], cal["is_workday"], strict=True))
    assert day[dt.date(2026, 10, 1)] is False  # 国庆节
    assert day[dt.date(2026, 11, 25)] is True  # an ordinary Wednesday
    assert day[dt.date(2026, 11, 28)] is False  # an ordinary Saturday
    adjusted = cal.filter(pl.col("kind") == "adjusted_workday")
    assert adjusted.height > 0 and (adjusted["date"].dt.weekday() >= 6).all()


def test_citizen_id_rules_scalar_and_vectorised_agree():
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(3)
    valid = [fake.ssn() for _ in range(300)]
    broken = [v[:17] + ("0" if v[17] != "0" else "1") for v in valid[:100]]
    frame = pl.DataFrame({"id": valid + broken + ["1.10102199003E+17", "", "11010219900101123"]})
    vectorised = frame.select(ids.citizen_id_check_expr(pl.col("id")).fill_null(False)).to_series().to_list()
    assert vectorised == [ids.is_valid_citizen_id(v) for v in frame["id"]]
    assert sum(vectorised) == 300


def test_legacy_id_upgrade_and_uscc_check():
    upgraded = ids.upgrade_legacy_id("110102900101123")
    assert upgraded.startswith("11010219900101123") and ids.is_valid_citizen_id(upgraded)
    assert ids.id_sex_code(upgraded) == "1" and ids.id_birth_date(upgraded) == dt.date(1990, 1, 1)
    first17 = "91110102MA01ABCD1"
    good = first17 + ids.uscc_check_char(first17)
    assert ids.is_valid_uscc(good)
    assert not ids.is_valid_uscc(first17 + ("0" if good[-1] != "0" else "1"))
    assert not ids.is_valid_uscc("91110102MA01ABCDI" + "X")  # I is not in the alphabet


# Columns about a person, a place or an organisation: each must name its standard data element.
ELEMENT_PII = ("name", "id_number", "phone", "address")
ELEMENT_FORMATS = ("person_id", "uscc", "grid_code", "community_code", "house_code", "phone")
ELEMENT_CODES = ("sex", "ethnicity", "community")


def test_person_place_and_organisation_columns_name_their_data_element():
    elements = reference("data_element")
    assert elements["element"].is_unique().all() and elements["identifier"].is_unique().all()
    assert elements.filter(pl.col("name").is_null() | pl.col("standard").is_null()).is_empty()  # named, cited
    citizen = elements.filter(pl.col("element") == "citizen_id").row(0, named=True)
    assert (citizen["name"], citizen["identifier"], citizen["internal_id"]) == ("公民身份号码", "GMSFHM", "DE00001")
    unnamed = [
        f"{t.key}.{c.name}"
        for t in load_contracts().tables.values()
        if t.kind != "mart"
        for c in t.all_columns
        if (c.pii in ELEMENT_PII or c.format in ELEMENT_FORMATS or c.codes in ELEMENT_CODES) and not c.element
    ]
    assert not unnamed, unnamed
    # a header spells the element the same way for every feed: its name, identifier and internal identifier
    for t in load_contracts().tables.values():
        for c in t.all_columns:
            if c.element == "citizen_id":
                assert {"公民身份号码", "GMSFHM", "DE00001"} <= set(c.headers), t.key


def test_a_header_naming_two_columns_or_an_unknown_element_is_a_contract_error(tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(HERE, root, ignore=shutil.ignore_patterns("__pycache__"))
    ledger = root / "ledgers" / "elderly_alone.yaml"
    text = ledger.read_text(encoding="utf-8")
    # the emergency contact's phone declared as the 联系电话 element: 联系电话 would name two columns
    ledger.write_text(text.replace("element: contact_phone", "element: phone"), encoding="utf-8")
    with pytest.raises(ContractError, match="would name both"):
        load_contracts.__wrapped__(root)
    ledger.write_text(text.replace("element: contact_phone", "element: no_such_element"), encoding="utf-8")
    with pytest.raises(ContractError, match="unknown data element"):
        load_contracts.__wrapped__(root)


def test_system_tables_have_contracts_in_the_same_language():
    """The tables redwall keeps itself are declared like every other: ops, quality, catalogue and
    reference data, with labels, keys, sensitivity and sharing type."""
    contracts = load_contracts()
    assert {t.key for t in contracts.system} >= {
        "ops.file_receipt",
        "ops.rejection",
        "ops.file_registry",
        "ops.held_delivery",
        "quality.issue",
        "quality.loop_metrics",
        "catalog.resource",
        "catalog.item",
        "catalog.department",
    }
    # every committed reference CSV has its contract, and is read with its types
    assert {t.name for t in contracts.layer("ref")} == {p.stem for p in (HERE / "reference").glob("*.csv")}
    for t in contracts.layer("ref"):
        assert reference(t.name).schema == pl.Schema(t.schema()), t.key
    for t in contracts.system:
        assert t.catalogue["sharing"] and t.hold is None, t.key
        assert t.source not in contracts.sources, t.key  # nobody delivers a system table


def test_a_system_only_type_in_a_feed_is_a_contract_error(tmp_path):
    root = _broken_copy(tmp_path, "type: date, required: true", "type: datetime_utc, required: true")
    with pytest.raises(ContractError, match="only system tables have"):
        load_contracts(root)


def _python_sources() -> list:
    root = HERE.parent
    return sorted(
        p for folder in ("redwall", "schemas", "assets", "pipelines", "quality") for p in (root / folder).rglob("*.py")
    )


def test_no_system_table_label_is_restated_in_code():
    """A system table's columns and labels live in its contract only: no Python file pairs its
    column names with their Chinese labels (a dict of labels, a field list: two pairs of one table
    are a restatement; one may be a page's own header), nor opens a string with its title and a
    colon (a hand-written table comment)."""
    import re

    restated = []
    for t in load_contracts().system:
        pairs = [rf"""["']{re.escape(c.name)}["']\s*[:,]\s*["']{re.escape(c.label)}["']""" for c in t.columns]
        for path in _python_sources():
            text = path.read_text(encoding="utf-8")
            if len(found := [p for p in pairs if re.search(p, text)]) > 1 or f'"{t.title}：' in text:
                restated.append(f"{path.relative_to(HERE.parent)}: {t.key} {found}")
    assert not restated, restated


def test_trust_and_addresses_are_the_contracts():
    """Survivorship's source order and the tables whose addresses are resolved are declared in the
    contracts, not named in code; a ledger type declares the ledgers' trust like the others."""
    contracts = load_contracts()
    assert contracts.trust == {"police": 0, "floating": 1, "municipal": 2, "ledgers": 3, "grid_app": 4}
    assert {t.trust for t in contracts.ledgers} == {3}
    assert contracts.addressed == {
        "district.organization": "address",
        "floating.registration": "residence_address",
        "grid_app.event": "address",
        "police.population": "residence_address",
        "ledgers.elderly_alone": "address",
    }
    for key, column in contracts.addressed.items():
        assert contracts.table(key).column(column).free_text, key


def test_a_ledger_whose_trust_differs_from_the_other_ledgers_is_a_contract_error(tmp_path):
    root = _broken_copy(tmp_path, "title: 公安实有人口", "title: 公安实有人口")
    ledger = root / "ledgers" / "fire_hazard.yaml"
    ledger.write_text(ledger.read_text(encoding="utf-8").replace("trust: 3", "trust: 5", 1), encoding="utf-8")
    with pytest.raises(ContractError, match=r"sources \['ledgers'\]: every table of a source declares the same trust"):
        load_contracts(root)


def test_what_each_person_table_gives_resolution_is_its_contract():
    """Person resolution reads the tables whose contracts say their rows name persons, most trusted
    source first, each as its kind says; no table is named in code."""
    contracts = load_contracts()
    assert [(t.key, t.person.kind) for t in contracts.persons if t.person] == [
        ("police.population", "residents"),
        ("floating.registration", "registrations"),
        ("municipal.mz_dibao", "listed"),
        ("municipal.cl_disability", "listed"),
        ("municipal.mz_death", "listed"),
        ("municipal.rs_elderly_allowance", "listed"),
        ("ledgers.elderly_alone", "listed"),
        ("ledgers.hardship_aid", "listed"),
        ("grid_app.visit", "visits"),
    ]
    hardship = contracts.table("ledgers.hardship_aid").person
    assert hardship and hardship.column("name") == "head_name" and hardship.column("id_number") == "id_number"
    # the person marts are derived from every one of them, and address issues from every address resolved
    assert contracts.table("mart.person_link").related[:-2] == tuple(t.key for t in contracts.persons)
    assert contracts.table("mart.address_issue").related[:5] == tuple(contracts.addressed)
    care = contracts.table("ledgers.elderly_alone").person
    assert care and care.care and care.care.type == "1" and care.care.when == (("living_situation", "1"),)


def _edited(tmp_path, file: str, text_from: str, text_to: str):
    root = tmp_path / "schemas"
    shutil.copytree(HERE, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    path = root / file
    text = path.read_text(encoding="utf-8")
    assert text_from in text, (file, text_from)
    path.write_text(text.replace(text_from, text_to, 1), encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("file", "text_from", "text_to", "message"),
    [
        ("feeds/police.yaml", "kind: residents", "kind: resident", "person kind 'resident' is none of"),
        ("feeds/police.yaml", "catch_up_days: 30", "catch_up_days: soon", "catch_up_days, a count of days"),
        ("feeds/police.yaml", "catch_up_days: 30,", "", "catch_up_days, a count of days"),
        (
            "feeds/police.yaml",
            "person: {kind: residents,",
            "person: {kind: residents, cares: 1,",
            r"unknown keys \['cares'\]",
        ),
        (
            "feeds/police.yaml",
            "         person_type, hukou_match",
            "         person_kind, hukou_match",
            "unknown attributes",
        ),
        (
            "feeds/floating.yaml",
            "from: {hukou_address: hukou_place}",
            "from: {hukou_address: hukou}",
            r"columns \['hukou'\]",
        ),
        ("feeds/floating.yaml", "from: {hukou_address: hukou_place}", "from: {phone: landlord_phone}", "does not take"),
        ("feeds/floating.yaml", "person_type: 2", "person_type: 7", "person_type code"),
        (
            "feeds/floating.yaml",
            "kind: registrations, person_type: 2",
            "kind: residents, catch_up_days: 3",
            "one register",
        ),
        ("feeds/municipal.yaml", "type: 4, from: start_on", "type: 9, from: start_on", "no care_type code"),
        ("feeds/municipal.yaml", "until: valid_until", "until: category", "must name a date column"),
        ("ledgers/elderly_alone.yaml", "when: {living_situation: 1}", "when: {living_situation: 7}", "no code"),
        ("ledgers/elderly_alone.yaml", "when: {living_situation: 1}", "when: {name: 1}", "no code of a coded column"),
        ("ledgers/elderly_alone.yaml", "care: {type: 1,", "care: {type: 1, since: last_visit_on,", "care has unknown"),
        ("feeds/grid_app.yaml", "trust: 4\n", "", "needs its source's trust"),
        ("marts/person.yaml", "related: [persons,", "related: [people,", r"unknown groups \['people'\]"),
    ],
)
def test_a_person_declaration_that_does_not_hold_is_a_contract_error(tmp_path, file, text_from, text_to, message):
    with pytest.raises(ContractError, match=message):
        load_contracts(_edited(tmp_path, file, text_from, text_to))
