"""Record extraction: every record of every source that names a person, in one shape, with the
identity its document gives (:func:`person_records`) and the place its address or visit gives
(:func:`place_records`), before any linkage.

A record names a person by a valid citizen ID (GB 11643), or, for foreigners and 港澳台 residents,
by document type and number (``414:E12345678``): :func:`redwall.identifiers.person_identity_expr`,
the same for every source, so that one document is one person wherever it was written. A record's
``record_id`` is its source, its contract key and, for a household visit, the person's place in the
visit's list: stable across runs. The ``person_key`` of an identity is the first 16 hex digits of
SHA-256 of it (:func:`person_digest`): stable across runs and machines, with no row numbers involved.
"""

from __future__ import annotations

import datetime as dt

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
from redwall.schemas import load_contracts

POLICE, FLOATING, VISIT = "police.population", "floating.registration", "grid_app.visit"
SOURCES = (
    POLICE,
    FLOATING,
    "municipal.mz_dibao",
    "municipal.cl_disability",
    "municipal.mz_death",
    "municipal.rs_elderly_allowance",
    "ledgers.elderly_alone",
    "ledgers.hardship_aid",
    VISIT,
)
CITIZEN_ID = CITIZEN_ID_DOC
# documents a visit's ID field is taken as: the forms no typo or phone number takes by chance
# (a Taiwan permit's 8 digits and a passport's letters and digits could be anything)
VISIT_DOCUMENTS = (*CITIZEN_NUMBERED, PERMANENT_RESIDENCE, HK_MACAO_PERMIT)
REGISTERED, FLOATING_TYPE, FOREIGN = "1", "2", "3"  # person_type codes
DIED = "1"  # police deregistration reason 死亡
ALONE = "1"  # ledger living situation 独居
# care_type codes (codes.csv) a record carries
LIVING_ALONE_CARE, VERY_OLD_CARE, DISABLED_CARE, DIBAO_CARE = "1", "2", "3", "4"
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


def _citizen(frame: pl.DataFrame, source: str, name: str = "name", **columns: pl.Expr) -> pl.DataFrame:
    """Records of a source that names people by citizen ID only."""
    return _record(
        source,
        frame,
        identity=_identity(pl.lit(CITIZEN_ID)),
        id_number=pl.col("id_number"),
        doc_type=pl.lit(CITIZEN_ID),
        name=pl.col(name),
        registered_now=pl.lit(False),
        observed_on=pl.col("_valid_from"),
        **columns,
    )


def person_records(silver: dict[str, pl.DataFrame], today: dt.date) -> pl.DataFrame:
    """Every record of every source that names a person, in one shape, before resolution: the
    police and floating registers with their whole history (for status and residence history),
    the other snapshot sources as their latest snapshot stands, the append-only ones whole."""
    # the police register gives the document number of people from outside the mainland (境外人员)
    # without its type: the number's form tells it
    police_document = (
        pl.when(pl.col("person_type") == FOREIGN)
        .then(document_kind_expr(pl.col("id_number")))
        .otherwise(pl.lit(CITIZEN_ID))
    )
    police = _record(
        POLICE,
        silver[POLICE].with_columns(document=police_document),
        identity=_identity(pl.col("document")),
        doc_type=pl.col("document"),
        registered_now=pl.col("_valid_to").is_null() & pl.col("deregistered_on").is_null(),
        observed_on=pl.col("_valid_from"),
        left_on=pl.coalesce("deregistered_on", "_valid_to"),
        died_on=pl.when(pl.col("deregistration_reason") == DIED).then(pl.coalesce("deregistered_on", "_valid_from")),
        **{
            c: pl.col(c)
            for c in (
                "id_number",
                "name",
                "sex",
                "birth_date",
                "ethnicity",
                "phone",
                "hukou_address",
                "residence_address",
                "person_type",
                "hukou_match",
                "registered_on",
                "deregistered_on",
                "_valid_from",
                "_valid_to",
            )
        },
    )
    # a 公民身份号码 (of a citizen or a residence permit's holder from outside the mainland)
    floating_document = pl.col("doc_type").fill_null(CITIZEN_ID)
    by_citizen_id = floating_document == CITIZEN_ID
    floating = _record(
        FLOATING,
        silver[FLOATING],
        identity=_identity(floating_document),
        doc_type=floating_document,
        person_type=pl.when(by_citizen_id).then(pl.lit(FLOATING_TYPE)).otherwise(pl.lit(FOREIGN)),
        hukou_address=pl.col("hukou_place"),
        registered_now=pl.col("_valid_to").is_null(),
        observed_on=pl.col("registered_on"),
        **{
            c: pl.col(c)
            for c in (
                "id_number",
                "name",
                "sex",
                "birth_date",
                "residence_address",
                "registered_on",
                "_valid_from",
                "_valid_to",
            )
        },
    )
    dibao = current(silver["municipal.mz_dibao"])
    disability = current(silver["municipal.cl_disability"])
    ledger = current(silver["ledgers.elderly_alone"])
    records = [
        police,
        floating,
        _citizen(
            dibao,
            "municipal.mz_dibao",
            care_type=pl.when(
                (pl.col("start_on") <= today) & (pl.col("end_on").is_null() | (pl.col("end_on") >= today))
            ).then(pl.lit(DIBAO_CARE)),
        ),
        _citizen(
            disability,
            "municipal.cl_disability",
            care_type=pl.when(pl.col("valid_until").is_null() | (pl.col("valid_until") >= today)).then(
                pl.lit(DISABLED_CARE)
            ),
        ),
        _citizen(current(silver["municipal.mz_death"]), "municipal.mz_death", died_on=pl.col("died_on")),
        _citizen(
            current(silver["municipal.rs_elderly_allowance"]),
            "municipal.rs_elderly_allowance",
            care_type=pl.lit(VERY_OLD_CARE),
        ),
        _citizen(
            ledger,
            "ledgers.elderly_alone",
            phone=pl.col("phone"),
            residence_address=pl.col("address"),
            care_type=pl.when(pl.col("living_situation") == ALONE).then(pl.lit(LIVING_ALONE_CARE)),
            visited_on=pl.col("last_visit_on"),
        ),
        _citizen(silver["ledgers.hardship_aid"], "ledgers.hardship_aid", name="head_name"),
        _visit_records(silver[VISIT]),
    ]
    return pl.concat(records, how="diagonal_relaxed")


def _visit_records(visits: pl.DataFrame) -> pl.DataFrame:
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
        VISIT,
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
