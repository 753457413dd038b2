"""Record extraction: every record of every source that names a person, in one shape, with the
identity its document gives (:func:`person_records`) and the place its address or visit gives
(:func:`place_records`), before any linkage.

Which tables name persons, and what each gives, is their contracts' ``person`` (kind, the attributes
taken and the columns they are in, a care tag and when it holds; see ``redwall.schemas.PERSON_KINDS``)
with the table's ``address`` as the residence address and its source's ``trust`` as its priority;
a new list of people by citizen ID is a contract alone. The code here is what each *kind* of table
tells: the police register's rules for who lives here, left or died, a registration's person type,
the persons a visit lists.

A record names a person by a valid citizen ID (GB 11643), or, for foreigners and 港澳台 residents,
by document type and number (``414:E12345678``): :func:`redwall.identifiers.person_identity_expr`,
the same for every source, so that one document is one person wherever it was written. A record's
``record_id`` is its source, its contract key and, for a household visit, the person's place in the
visit's list: stable across runs. The ``person_key`` of an identity is the first 16 hex digits of
SHA-256 of it (:func:`person_digest`): stable across runs and machines, with no row numbers involved.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator

import duckdb
import polars as pl

from redwall.identifiers import (
    CITIZEN_ID_DOC,
    CITIZEN_NUMBERED,
    HK_MACAO_PERMIT,
    PERMANENT_RESIDENCE,
    PHONE_PATTERN,
    document_kind_expr,
    document_number_expr,
    normalise_phone_expr,
    person_identity_expr,
    upgrade_legacy_id_expr,
)
from redwall.marts.address import locate
from redwall.marts.resolution.survivorship import PRIORITY
from redwall.marts.tables import current
from redwall.schemas import Care, PersonRecords, Table, load_contracts

# The tables whose rows name persons, as their contracts declare them (``person``), most trusted first:
# the order their records are read in. What a kind of table tells (redwall.schemas.PERSON_KINDS) is
# the code below; which tables are of each kind, and what each contributes, is the contracts'.
SOURCES = tuple(t.key for t in load_contracts().persons)
(RESIDENTS,) = load_contracts().person_kind("residents")  # the register of who lives here (the police's)
REGISTRATIONS = tuple(load_contracts().person_kind("registrations"))  # of people from elsewhere (floating)
VISITS = tuple(load_contracts().person_kind("visits"))
CITIZEN_ID = CITIZEN_ID_DOC
# documents a visit's ID field is taken as: the forms no typo or phone number takes by chance
# (a Taiwan permit's 8 digits and a passport's letters and digits could be anything)
VISIT_DOCUMENTS = (*CITIZEN_NUMBERED, PERMANENT_RESIDENCE, HK_MACAO_PERMIT)
REGISTERED, FLOATING_TYPE, FOREIGN = "1", "2", "3"  # person_type codes
DIED = "1"  # deregistration_reason 死亡
VISIT_PERSONS = pl.List(pl.Struct({"name": pl.String, "id_number": pl.String, "phone": pl.String}))


def _identity(kind: pl.Expr, number: pl.Expr = pl.col("id_number")) -> pl.Expr:
    """The identity of a document: :func:`redwall.identifiers.person_identity_expr`, the same for
    every source, so that one document is one person wherever it was written."""
    return person_identity_expr(kind, number)


def record_key(source: str) -> pl.Expr:
    """A record's key in its source table: the contract key, as text."""
    return pl.concat_str([pl.col(k).cast(pl.String) for k in load_contracts().table(source).keys], separator="|")


def _record(source: str, frame: pl.DataFrame, **columns: pl.Expr) -> pl.DataFrame:
    """One source's records in the common shape (absent columns are added null by the union),
    each with its :func:`record_key`."""
    return frame.select(
        source=pl.lit(source),
        priority=pl.lit(PRIORITY[load_contracts().table(source).source]),
        record_key=record_key(source),
        **columns,
    )


def _taken(table: Table, person: PersonRecords) -> dict[str, pl.Expr]:
    """The attributes the table's contract says its records take as they are, and its ``address``
    as the residence address."""
    taken = {a: pl.col(person.column(a)) for a in person.takes}
    return taken | ({"residence_address": pl.col(table.address)} if table.address else {})


def _care(care: Care | None, today: dt.date) -> dict[str, pl.Expr]:
    """``care_type`` of a listed record, where its contract's ``care`` holds on ``today``."""
    if care is None:
        return {}
    holds = [
        *([pl.col(care.start) <= today] if care.start else []),
        *([pl.col(care.until).is_null() | (pl.col(care.until) >= today)] if care.until else []),
        *(pl.col(column) == code for column, code in care.when),
    ]
    code = pl.lit(care.type)
    return {"care_type": pl.when(functools.reduce(operator.and_, holds)).then(code) if holds else code}


def _listed(table: Table, person: PersonRecords, frame: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """Records of a list that names people by citizen ID only: as its latest snapshot stands, or
    all of an append-only list."""
    return _record(
        table.key,
        current(frame) if table.load == "snapshot" else frame,
        identity=_identity(pl.lit(CITIZEN_ID), pl.col(person.column("id_number"))),
        doc_type=pl.lit(CITIZEN_ID),
        registered_now=pl.lit(False),
        observed_on=pl.col("_valid_from"),
        **_taken(table, person),
        **_care(person.care, today),
    )


def _residents(table: Table, person: PersonRecords, frame: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """The register of who lives here, every version: living here now while its version is open
    and not deregistered; left when deregistered or absent from a later snapshot; died when
    deregistered for death. It gives the document number of people from outside the mainland
    (境外人员) without its type: the number's form tells it."""
    number = pl.col(person.column("id_number"))
    document = (
        pl.when(pl.col(person.column("person_type")) == FOREIGN)
        .then(document_kind_expr(number))
        .otherwise(pl.lit(CITIZEN_ID))
    )
    deregistered = pl.col(person.column("deregistered_on"))
    return _record(
        table.key,
        frame.with_columns(document=document),
        identity=_identity(pl.col("document"), number),
        doc_type=pl.col("document"),
        registered_now=pl.col("_valid_to").is_null() & deregistered.is_null(),
        observed_on=pl.col("_valid_from"),
        left_on=pl.coalesce(deregistered, "_valid_to"),
        died_on=pl.when(pl.col("deregistration_reason") == DIED).then(pl.coalesce(deregistered, "_valid_from")),
        **_taken(table, person),
        _valid_from=pl.col("_valid_from"),
        _valid_to=pl.col("_valid_to"),
    )


def _registrations(table: Table, person: PersonRecords, frame: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """Residence registrations of people from elsewhere, every version, current while open: by a
    公民身份号码 (of a citizen or a residence permit's holder from outside the mainland, the
    contract's ``person_type``) or by another document (境外人员)."""
    document = pl.col("doc_type").fill_null(CITIZEN_ID)
    return _record(
        table.key,
        frame,
        identity=_identity(document, pl.col(person.column("id_number"))),
        doc_type=document,
        person_type=pl.when(document == CITIZEN_ID).then(pl.lit(person.person_type)).otherwise(pl.lit(FOREIGN)),
        registered_now=pl.col("_valid_to").is_null(),
        observed_on=pl.col(person.column("registered_on")),
        **_taken(table, person),
        _valid_from=pl.col("_valid_from"),
        _valid_to=pl.col("_valid_to"),
    )


def _visits(table: Table, person: PersonRecords, visits: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """One record per person seen on a household visit; the visit places them in its house."""
    seen = (
        visits.select(
            "record_id",
            "house_code",
            visited_on=pl.col("recorded_at").dt.date(),
            person=pl.col("persons").str.json_decode(VISIT_PERSONS),
        )
        .with_columns(item=pl.int_ranges(pl.col("person").list.len()))
        .explode("person", "item")
        .unnest("person")
        .filter(pl.any_horizontal(pl.col("name", "id_number", "phone").is_not_null()))
        .with_columns(
            id_number=upgrade_legacy_id_expr(document_number_expr(pl.col("id_number"))),
            phone=normalise_phone_expr(pl.col("phone").str.normalize("NFKC")),
        )
        .with_columns(document=document_kind_expr(pl.col("id_number")))
        .with_columns(identity=pl.when(pl.col("document").is_in(VISIT_DOCUMENTS)).then(_identity(pl.col("document"))))
    )
    return _record(
        table.key,
        seen,
        identity=pl.col("identity"),
        id_number=pl.when(pl.col("identity").is_not_null()).then(pl.col("id_number")),
        doc_type=pl.when(pl.col("identity").is_not_null()).then(pl.col("document")),
        name=pl.col("name"),
        phone=pl.when(pl.col("phone").str.contains(PHONE_PATTERN)).then(pl.col("phone")),
        item=pl.col("item"),
        visit_house_code=pl.col("house_code"),
        visited_on=pl.col("visited_on"),
        observed_on=pl.col("visited_on"),
        registered_now=pl.lit(False),
    )


KINDS = {"listed": _listed, "residents": _residents, "registrations": _registrations, "visits": _visits}


def person_records(silver: dict[str, pl.DataFrame], today: dt.date) -> pl.DataFrame:
    """Every record of every table whose contract says its rows name persons (``person``), in one
    shape, before resolution, most trusted source first: the registers of residents and
    registrations with their whole history (for status and residence history), the other snapshot
    tables as their latest snapshot stands, the append-only ones whole."""
    records = [
        KINDS[table.person.kind](table, table.person, silver[table.key], today)
        for table in load_contracts().persons
        if table.person is not None
    ]
    return pl.concat(records, how="diagonal_relaxed")


def place_records(records: pl.DataFrame, buildings: pl.DataFrame, houses: pl.DataFrame) -> pl.DataFrame:
    """Records with the house, building, grid and community their address (or visit) resolves to,
    and the ``address_issue`` where their address does not resolve (:func:`locate`). An address
    that may mean several buildings of one grid still places its record in that grid."""
    grid_community = buildings.select("grid_code", "community_code").unique("grid_code")
    return (
        locate(records, "residence_address", buildings, houses)
        .with_columns(house_code=pl.coalesce("house_code", "visit_house_code"))
        .join(houses.select("house_code", house_building="building_code"), on="house_code", how="left")
        .with_columns(building_code=pl.coalesce("building_code", "house_building"))
        .join(buildings.select("building_code", "grid_code", "community_code"), on="building_code", how="left")
        .join(
            grid_community.rename({"grid_code": "address_grid", "community_code": "address_community"}),
            on="address_grid",
            how="left",
        )
        .with_columns(
            grid_code=pl.coalesce("grid_code", "address_grid"),
            community_code=pl.coalesce("community_code", "address_community"),
        )
        .drop("visit_house_code", "house_building", "address_community")
    )


def person_digest(values: pl.Series) -> pl.Series:
    """First 16 hex digits of SHA-256 of each value (null stays null)."""
    frame = values.rename("value").to_frame()  # noqa: F841 (read by name by DuckDB)
    return duckdb.sql("SELECT left(sha256(value), 16) AS digest FROM frame").pl()["digest"]


def record_id() -> pl.Expr:
    """A record's ``record_id``: its source, its :func:`record_key` and, for a visit, its person's
    ``item`` in the visit's list."""
    return pl.concat_str("source", "record_key", pl.col("item").cast(pl.String), separator="|", ignore_nulls=True)


def identify(records: pl.DataFrame) -> pl.DataFrame:
    """Each record with its ``record_id`` and, where it has a valid identity, ``person_key``."""
    records = records.with_columns(record_id=record_id())
    keys = records.select(pl.col("identity").drop_nulls().unique())
    keys = keys.with_columns(person_key=person_digest(keys["identity"]))
    return records.join(keys, on="identity", how="left")
