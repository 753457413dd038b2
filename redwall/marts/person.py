"""The person marts: every record that names a person, resolved to one ``person_key``, then one row
per person (``person``) and where each person lived when (``person_history``).

**Resolution** (this version: exact). A record names a person by a valid citizen ID (GB 11643),
or, for foreigners and 港澳台 residents, by document type and number (``414:E12345678``). The
``person_key`` is the first 16 hex digits of SHA-256 of that identity: stable across runs and
machines, with no row numbers involved. The lake and the restricted warehouse hold the ID in clear
anyway; the shared warehouse re-keys ``person_key`` with the secret pseudonym key. Records without
an identity stay unresolved (``person_key`` null), waiting for the probabilistic linkage to come.

**Survivorship.**
- Identity attributes (ID, name, sex, birth date, ethnicity, phone, hukou address): the first
  non-null value by source priority — police, floating, municipal, ledgers, grid app — and the
  most recent record first within a source. Birth date and sex fall back to what the ID encodes.
- Residence (address, house, building, grid, community, person type, 人户一致): all from one
  record, so they never contradict each other: the person's current registration of residence
  (police: in the latest snapshot and not deregistered, before floating: the latest registration);
  without one, the first record carrying an address or a house in the order above.

**Status.** 死亡 (``3``) when the municipal death register has the person or the police register
deregistered them for death. 迁出 (``2``) when a residence register (police or floating) knows the
person but the latest police snapshot does not list them as living here (absent, or
deregistered), unless the floating register holds a current registration dated on or after they
left the police register (for someone it never listed: at most 30 days before its latest
snapshot, the time the police register takes to catch up with a newcomer).
Otherwise 在册 (``1``), including people only municipal data, ledgers or visits know of, so that
a flawed police record never drops someone from a care list. Without any police snapshot loaded,
nobody has moved out.

**Care tags.** 独居老人: in the current 独居老人台账 as living alone (居住情况 独居). 高龄: 80 or
older on the build date, or on the current elderly-allowance list. 残疾人: a current disability
certificate not expired. 低保: a current minimum-income membership covering the build date.
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
    id_birth_date_expr,
    normalise_phone_expr,
    person_identity_expr,
    upgrade_legacy_id_expr,
)
from redwall.marts.address import locate
from redwall.marts.resolution import features, link
from redwall.marts.tables import communities, current
from redwall.schemas import load_contracts

POLICE, FLOATING, VISIT = "police.population", "floating.registration", "grid_app.visit"
PRIORITY = {"police": 0, "floating": 1, "municipal": 2, "ledgers": 3, "grid_app": 4}
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
REGISTERED, FLOATING_TYPE, FOREIGN = "1", "2", "3"
ACTIVE, MOVED_OUT, DECEASED = "1", "2", "3"
DIED = "1"  # police deregistration reason 死亡
ALONE = "1"  # ledger living situation 独居
# care_type codes (codes.csv) and the person flag each sets
LIVING_ALONE_CARE, VERY_OLD_CARE, DISABLED_CARE, DIBAO_CARE = "1", "2", "3", "4"
CARE_FLAGS = {
    LIVING_ALONE_CARE: "is_living_alone",
    VERY_OLD_CARE: "is_very_old",
    DISABLED_CARE: "is_disabled",
    DIBAO_CARE: "is_dibao",
}
VERY_OLD_AGE = 80
POLICE_LAG = dt.timedelta(days=30)  # documented choice: a newcomer reaches the police register within it
PERSON_TYPES = (REGISTERED, FLOATING_TYPE, FOREIGN)
RESIDENT_COUNTS = ["residents", "registered_residents", "floating_residents", "foreign_residents"]

IDENTITY = ["id_number", "doc_type", "name", "sex", "birth_date", "ethnicity", "phone", "hukou_address"]
RESIDENCE = [
    "residence_address",
    "house_code",
    "building_code",
    "grid_code",
    "community_code",
    "person_type",
    "hukou_match",
]
COMPARED = ["name", "birth_date", "sex", "phone", "house_code", "building_code"]  # what features() reads
VISIT_PERSONS = pl.List(pl.Struct({"name": pl.String, "id_number": pl.String, "phone": pl.String}))


# -- records ------------------------------------------------------------------------------------
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
        priority=pl.lit(PRIORITY[source.split(".")[0]]),
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


# -- resolution ---------------------------------------------------------------------------------
EXACT_ID, SPLINK, SPLINK_CLUSTER, UNMATCHED = "exact_id", "splink", "splink_cluster", "unmatched"
DOCUMENTED = (EXACT_ID, SPLINK)  # rules that give a record a person with a document


def person_digest(values: pl.Series) -> pl.Series:
    """First 16 hex digits of SHA-256 of each value (null stays null)."""
    frame = values.rename("value").to_frame()
    return duckdb.sql("SELECT left(sha256(value), 16) AS digest FROM frame").pl()["digest"]


def identify(records: pl.DataFrame) -> pl.DataFrame:
    """Each record with its ``record_id`` and, where it has a valid identity, ``person_key``."""
    records = records.with_columns(
        record_id=pl.concat_str(
            "source", "record_key", pl.col("item").cast(pl.String), separator="|", ignore_nulls=True
        )
    )
    keys = records.select(pl.col("identity").drop_nulls().unique())
    keys = keys.with_columns(person_key=person_digest(keys["identity"]))
    return records.join(keys, on="identity", how="left")


def _feature_text() -> pl.Expr:
    """A record's :data:`COMPARED` values as one text (nulls marked), for :func:`feature_digest`."""
    return pl.concat_str([pl.col(c).cast(pl.String).fill_null("\x00") for c in COMPARED], separator="\x1f")


def feature_digest(records: pl.DataFrame) -> pl.Series:
    """``feature_hash``: first 16 hex digits of SHA-256 of each record's compared values, to tell
    whether a record changed since it was resolved."""
    return person_digest(records.select(_feature_text()).to_series()).rename("feature_hash")


def resolution_memory(person_link: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame | None:
    """What an earlier run resolved, for :func:`resolve`'s ``previous``: its ``person_link`` rows
    (``record_id``, ``person_key``, ``match_rule``, ``match_probability``) with the ``feature_hash``
    each record was resolved on (``state``: ``record_id``, ``feature_hash``, ``person_key``). Both
    must agree on the person, so a run that wrote one and not the other leaves its records to be
    scored again. None without either."""
    if person_link.is_empty() or state.is_empty():
        return None
    return person_link.select(
        record_id=pl.concat_str(
            "source", "record_key", pl.col("item").cast(pl.String), separator="|", ignore_nulls=True
        ),
        person_key="person_key",
        match_rule="match_rule",
        match_probability="match_probability",
    ).join(state.select("record_id", "feature_hash", "person_key"), on=["record_id", "person_key"])


def resolve(records: pl.DataFrame, previous: pl.DataFrame | None = None) -> pl.DataFrame:
    """Each record with its ``record_id`` (source, record key and item: stable across runs), its
    ``person_key``, the ``match_rule`` that gave it, the ``match_probability``, its ``feature_hash``
    (:func:`feature_digest`) and, for a record without an ID, whether the model ``scored`` it this run.

    A valid identity gives its person exactly (:data:`EXACT_ID`). Records without one are linked
    by the model of :mod:`redwall.marts.resolution`: to an identified person (:data:`SPLINK`),
    else into a person known only from such records (:data:`SPLINK_CLUSTER`, keyed by its
    first-seen record), else alone (:data:`UNMATCHED`, keyed by itself). Keys never depend on row
    order, and an identified person's key never on what else arrived.

    ``previous`` (:func:`resolution_memory`) makes it incremental: a record without an ID that it
    holds with the same ``feature_hash`` keeps its link unscored; only new or changed records go
    through the model, against the identified records, each other and the kept records sharing a
    blocking value with them, so a new sighting still joins an earlier person (then the persons it
    bridges merge, as a full run would merge them). Kept records are also compared with identified
    records that are new or changed, so a newly documented person still claims earlier sightings.
    Without ``previous``, everything is scored. Not covered (a full run, ``previous`` None, settles
    them): a kept record that vanished or changed and so no longer bridges or heads its cluster."""
    exact = identify(records)
    exact = exact.with_columns(feature_digest(exact))
    unidentified = exact.filter(pl.col("identity").is_null())
    identified = exact.filter(pl.col("identity").is_not_null())
    linked = _link(identified, unidentified, previous)
    return (
        exact.join(linked, on="record_id", how="left", suffix="_linked")
        .with_columns(
            person_key=pl.coalesce("person_key", "person_key_linked"),
            match_rule=pl.when(pl.col("identity").is_not_null()).then(pl.lit(EXACT_ID)).otherwise("match_rule"),
            match_probability=pl.when(pl.col("identity").is_not_null())
            .then(pl.lit(1.0))
            .otherwise("match_probability"),
        )
        .drop("person_key_linked", "feature_hash_linked")
    )


def _blocked_by(records: pl.DataFrame) -> pl.Expr:
    """Rows sharing a blocking value with one of ``records`` (the only ones that can match them)."""
    return pl.any_horizontal(
        pl.col(c).is_in(records[c].drop_nulls().implode())
        for c in ("phone", "house_code", "building_code", "birth_date")
    )


def _link(identified: pl.DataFrame, unidentified: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """``record_id``, ``person_key``, ``match_rule``, ``match_probability``, ``feature_hash`` and
    ``scored`` of the unidentified records (:func:`resolve`)."""
    records = unidentified.unique("record_id").select(
        "record_id", "observed_on", "feature_hash", *COMPARED, visit=_visit()
    )
    memory = pl.DataFrame(
        schema={
            "record_id": pl.String,
            "feature_hash": pl.String,
            "person_key": pl.String,
            "match_rule": pl.String,
            "match_probability": pl.Float64,
        }
    )
    if previous is not None:
        memory = previous.select(memory.columns).cast(memory.schema)
    remembered = memory.filter(pl.col("match_rule") != EXACT_ID)
    kept = records.join(remembered, on=["record_id", "feature_hash"])
    fresh = records.join(kept, on="record_id", how="anti")

    def persons(frame: pl.DataFrame) -> pl.DataFrame:  # one identified record per person and features
        return features(frame.unique(["person_key", *COMPARED]).select("record_id", "person_key", *COMPARED))

    earlier = kept.filter(_blocked_by(fresh)).select("record_id", *COMPARED)
    to_persons, within = link(persons(identified.filter(_blocked_by(fresh))), features(fresh), features(earlier))
    # identified records new or changed since: kept records they may match are scored against them
    arrived = identified.unique("record_id").join(
        memory.filter(pl.col("match_rule") == EXACT_ID), on=["record_id", "feature_hash"], how="anti"
    )
    near = kept.filter(_blocked_by(arrived)).select("record_id", *COMPARED)
    kept_offers, _ = link(persons(arrived.filter(_blocked_by(near))), features(near), within=False)
    # nodes: each fresh record, and each person of kept records (their links stand), labelled in
    # the order first seen; clusters as in a full run, a kept person taking part with all its records
    group = pl.concat_str(pl.lit("person:"), "person_key")
    kept = kept.with_columns(node=group)
    members = pl.concat(
        [
            fresh.select("record_id", "observed_on", "feature_hash", node="record_id"),
            kept.select("record_id", "observed_on", "feature_hash", "node"),
        ]
    )
    order = (
        members.sort("observed_on", "record_id", nulls_last=True)
        .unique("node", keep="first", maintain_order=True)
        .select("node", first="record_id", label=pl.int_range(pl.len()))
    )
    node_of = members.select("record_id", "node")
    # two persons one visit lists are two persons: no cluster, and no person, takes both
    visit_of = members.join(records.select("record_id", "visit"), on="record_id")
    labels = _clusters(
        order.select("node", "label"),
        visit_of.select("node", "visit"),
        within.join(node_of, left_on="record_id_l", right_on="record_id")
        .join(node_of, left_on="record_id_r", right_on="record_id", suffix="_r")
        .select(a="node", b="node_r", p="match_probability"),
    )
    best_within = pl.concat(
        [
            within.select(record_id="record_id_l", p="match_probability"),
            within.select(record_id="record_id_r", p="match_probability"),
        ]
    )
    # a kept person found by the model offers itself at its best probability
    kept_persons = (
        kept.filter(pl.col("match_rule") == SPLINK)
        .group_by("node")
        .agg(pl.col("person_key").first(), pl.col("match_probability").max())
    )
    offers = pl.concat(
        [
            members.select("record_id", "node")
            .join(pl.concat([to_persons, kept_offers]), on="record_id")
            .drop("record_id"),
            kept_persons.select("node", "person_key", "match_probability"),
        ]
    )
    best_offer = to_persons.sort("match_probability", "person_key", descending=[True, False]).unique(
        "record_id", keep="first"
    )
    clusters = (
        members.join(labels, on="node")
        .join(order.select(first="first", label="label"), on="label")
        .join(best_within.group_by("record_id").agg(p=pl.col("p").max()), on="record_id", how="left")
        .join(best_offer, on="record_id", how="left")
        .join(
            kept.select("record_id", "person_key", "match_rule", "match_probability"),
            on="record_id",
            how="left",
            suffix="_kept",
        )
        .join(kept_offers.select("record_id", offered="match_probability"), on="record_id", how="left")
        .with_columns(
            size=pl.len().over("label"),
            touched=(pl.col("person_key_kept").is_null() | pl.col("offered").is_not_null()).any().over("label"),
        )
    )
    # a cluster with members linked to identified persons joins its best-scoring one that lists
    # none of its visits; a cluster that stands keeps its person, visits and all
    standing = clusters.filter(~pl.col("touched")).select(person_key="person_key_kept", label="label")
    listed = pl.concat(
        [
            identified.select("person_key", visit=_visit()),
            standing.join(visit_of.join(labels, on="node").select("label", "visit"), on="label").select(
                "person_key", "visit"
            ),
        ]
    )
    touched_offers = offers.join(labels, on="node").join(
        clusters.filter("touched").select("label").unique(), on="label"
    )
    joined = _choose_persons(touched_offers, visit_of.join(labels, on="node").select("label", "visit"), listed)
    clusters = clusters.join(joined, on="label", how="left")
    rule = (
        pl.when(pl.col("cluster_person").is_not_null())
        .then(pl.lit(SPLINK))
        .when(pl.col("size") > 1)
        .then(pl.lit(SPLINK_CLUSTER))
        .otherwise(pl.lit(UNMATCHED))
    )
    kept_probability = pl.max_horizontal(
        "offered",
        pl.when(pl.col("match_rule") == SPLINK)
        .then("match_probability_kept")
        .otherwise(pl.max_horizontal("match_probability_kept", "p")),
    )
    touched = pl.col("touched")  # a cluster with a fresh record or a new offer is resolved again; any other stands
    return clusters.select(
        "record_id",
        person_key=pl.when(touched)
        .then(pl.coalesce("cluster_person", person_digest(clusters["first"])))
        .otherwise("person_key_kept"),
        match_rule=pl.when(touched).then(rule).otherwise("match_rule"),
        match_probability=pl.when(touched & pl.col("match_rule").is_null())
        .then(pl.coalesce("match_probability", "p"))
        .when(touched)
        .then(kept_probability)
        .otherwise("match_probability_kept"),
        feature_hash="feature_hash",
        scored=pl.col("person_key_kept").is_null(),
    )


def _visit() -> pl.Expr:
    """The household visit a record comes from (null for any other source's record): the persons
    one visit lists are different persons."""
    return pl.when(pl.col("source") == VISIT).then(pl.col("record_key"))


def _clusters(nodes: pl.DataFrame, visits: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """Each node's cluster ``label``: the connected components of ``edges`` (``a``, ``b``, ``p``),
    joined strongest link first, except that two parts are never joined when both hold a record of
    the same visit (``visits``: ``node``, ``visit``); a cluster is labelled by its smallest node
    ``label`` (``nodes``: ``node``, ``label``, the order first seen). Without such a conflict this
    is the plain connected components."""
    label = dict(nodes.iter_rows())
    parent = {node: node for node in label}
    seen: dict[str, set[str]] = {node: set() for node in label}
    for node, visit in visits.drop_nulls("visit").iter_rows():
        seen[node].add(visit)

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b, _ in edges.sort("p", "a", "b", descending=[True, False, False]).iter_rows():
        ra, rb = root(a), root(b)
        if ra == rb or seen[ra] & seen[rb]:
            continue
        if label[rb] < label[ra]:
            ra, rb = rb, ra
        parent[rb] = ra
        seen[ra] |= seen.pop(rb)
    return pl.DataFrame(
        {"node": list(label), "label": [label[root(n)] for n in label]},
        schema={"node": pl.String, "label": nodes.schema["label"]},
    )


def _choose_persons(offers: pl.DataFrame, visits: pl.DataFrame, listed: pl.DataFrame) -> pl.DataFrame:
    """``label``, ``cluster_person``: for each cluster, the best-scoring person it is offered
    (``offers``: ``label``, ``person_key``, ``match_probability``) none of whose records comes from
    a visit the cluster holds a record of (``visits``: ``label``, ``visit``; the persons' visits so
    far: ``listed``, ``person_key``, ``visit``), strongest offers first."""
    held: dict[int, set[str]] = {}
    for cluster, visit in visits.drop_nulls("visit").iter_rows():
        held.setdefault(cluster, set()).add(visit)
    taken: dict[str, set[str]] = {}
    for person, visit in listed.drop_nulls().iter_rows():
        taken.setdefault(person, set()).add(visit)
    chosen: dict[int, str] = {}
    ranked = offers.sort("match_probability", "person_key", "label", descending=[True, False, False])
    for cluster, person in ranked.select("label", "person_key").iter_rows():
        if cluster in chosen or held.get(cluster, set()) & taken.get(person, set()):
            continue
        chosen[cluster] = person
        taken.setdefault(person, set()).update(held.get(cluster, ()))
    return pl.DataFrame(
        {"label": list(chosen), "cluster_person": list(chosen.values())},
        schema={"label": visits.schema["label"], "cluster_person": pl.String},
    )


def documented(resolved: pl.DataFrame) -> pl.DataFrame:
    """``resolved`` with ``person_key`` only on records of persons with a document: the persons of
    the person marts. The others stay sightings (a visit of an unknown person counts for its house)."""
    return resolved.with_columns(person_key=pl.when(pl.col("match_rule").is_in(DOCUMENTED)).then("person_key"))


def build_person_link(resolved: pl.DataFrame) -> pl.DataFrame:
    """One row per record naming a person: which person, by which rule, how likely."""
    return (
        resolved.unique(["record_id"], keep="first")
        .select("source", "record_key", "item", "person_key", "match_rule", "match_probability")
        .sort("source", "record_key", "item", nulls_last=True)
    )


# -- the person mart ----------------------------------------------------------------------------
def _age(birth: pl.Expr, today: dt.date) -> pl.Expr:
    before_birthday = (birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day()) > today.month * 100 + today.day
    return (today.year - birth.dt.year() - before_birthday.cast(pl.Int32)).cast(pl.Int64)


def _first(value: pl.Expr, rank: pl.Expr, where: pl.Expr) -> pl.Expr:
    """In a group, ``value`` of the best-ranked (lowest) row where ``where`` holds; no sort."""
    return value.get(pl.when(where).then(rank).arg_min())


def person_status(resolved: pl.DataFrame) -> pl.DataFrame:
    """Per person: ``status`` and, for whoever died or moved out, ``gone_on``, the day from which
    they no longer live here (for a move noticed by absence, the snapshot that noticed it)."""
    source = pl.col("source")
    # The latest police snapshot's date, as far as silver tells: the last day a snapshot opened or
    # closed a version (a later snapshot that changed nothing leaves no trace).
    snapshot_on = (
        resolved.filter(source == POLICE)
        .select(pl.max_horizontal(pl.col("_valid_from").max(), pl.col("_valid_to").max()))
        .item()
    )
    snapshot = pl.lit(snapshot_on, pl.Date)
    gone_since = pl.coalesce("left_police_on", snapshot)  # someone it never listed: gone by then
    # A floating registration after that says they are (back) here; for someone the register never
    # listed, one up to POLICE_LAG before its snapshot too: it takes time to catch up with newcomers.
    back = pl.col("floating_since") >= pl.coalesce("left_police_on", snapshot - POLICE_LAG)
    moved_out = (
        pl.lit(snapshot_on is not None) & pl.col("registered") & ~pl.col("living_per_police") & ~back.fill_null(False)
    )
    return (
        resolved.filter(pl.col("person_key").is_not_null())
        .group_by("person_key")
        .agg(
            registered=source.is_in([POLICE, FLOATING]).any(),
            living_per_police=((source == POLICE) & pl.col("registered_now")).any(),
            left_police_on=pl.col("left_on").filter(source == POLICE).max(),
            floating_since=pl.col("registered_on").filter((source == FLOATING) & pl.col("registered_now")).max(),
            died_on=pl.col("died_on").min(),
            died=pl.col("died_on").is_not_null().any(),
        )
        .select(
            "person_key",
            status=pl.when(pl.col("died"))
            .then(pl.lit(DECEASED))
            .when(moved_out)
            .then(pl.lit(MOVED_OUT))
            .otherwise(pl.lit(ACTIVE)),
            gone_on=pl.when(pl.col("died")).then(pl.col("died_on")).when(moved_out).then(gone_since),
        )
    )


def build_person(resolved: pl.DataFrame, statuses: pl.DataFrame, grids: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """One row per person from the resolved records and their :func:`person_status`."""
    source = pl.col("source")
    # Survivorship order as one number, lowest first: source priority, then the most recent.
    days = 100_000  # more than any date's days since 1970
    rank = pl.col("priority").cast(pl.Int64) * days - pl.col("observed_on").cast(pl.Int64).fill_null(-days)
    residence_rank = rank + (~pl.col("registered_now")).cast(pl.Int64) * len(PRIORITY) * 2 * days
    has_place = pl.col("residence_address").is_not_null() | pl.col("house_code").is_not_null()
    id_sex = pl.col("id_number").str.slice(16, 1).cast(pl.Int32, strict=False) % 2
    is_citizen = pl.col("doc_type").is_in(CITIZEN_NUMBERED)
    return (
        resolved.filter(pl.col("person_key").is_not_null())
        .group_by("person_key")
        .agg(
            *(_first(pl.col(c), rank, pl.col(c).is_not_null()).alias(c) for c in IDENTITY),
            residence=_first(pl.struct(RESIDENCE), residence_rank, has_place),
            sources=pl.concat_str(
                [pl.when((source == s).any()).then(pl.lit(s)) for s in SOURCES], separator=",", ignore_nulls=True
            ),
            **{flag: (pl.col("care_type") == code).any() for code, flag in CARE_FLAGS.items()},
        )
        .unnest("residence")
        .join(statuses.select("person_key", "status"), on="person_key")
        .with_columns(
            birth_date=pl.coalesce("birth_date", pl.when(is_citizen).then(id_birth_date_expr(pl.col("id_number")))),
            sex=pl.coalesce("sex", pl.when(is_citizen).then((2 - id_sex).cast(pl.String))),  # odd: male "1"
        )
        .with_columns(age=_age(pl.col("birth_date"), today))
        .with_columns(is_very_old=pl.col("is_very_old") | (pl.col("age") >= VERY_OLD_AGE).fill_null(False))
        .join(communities(grids), on="community_code", how="left")
    )


def residents_by(persons: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Active residents (neither moved out nor deceased) per ``keys``, in all and by person type."""
    kind = pl.col("person_type")
    return (
        persons.filter(pl.col("status") == ACTIVE)
        .group_by(keys)
        .agg(
            pl.len().alias(RESIDENT_COUNTS[0]),
            *((kind == code).sum().alias(name) for code, name in zip(PERSON_TYPES, RESIDENT_COUNTS[1:])),
        )
        .with_columns(pl.col(RESIDENT_COUNTS).cast(pl.Int64))
    )


# -- residence history --------------------------------------------------------------------------
def build_person_history(resolved: pl.DataFrame, statuses: pl.DataFrame) -> pl.DataFrame:
    """Non-overlapping stays per person (``valid_to`` exclusive, null = until now).

    The police register's versions are the backbone; floating registrations fill the time after a
    person left it, or the whole story of someone it never knew. Each stay starts at its version's
    ``_valid_from`` (a person's first version per source at the registration date, when earlier)
    and ends at its version's end, deregistration, the next stay's start, or the day the person
    died or was found gone (:func:`person_status`). Consecutive stays in the same place merge into one.
    """
    key, source = pl.col("person_key"), pl.col("source")
    place = ["grid_code", "community_code", "house_code"]
    stays = (
        resolved.filter(key.is_not_null() & source.is_in([POLICE, FLOATING]))
        .select(
            "person_key", "source", "priority", *place, "_valid_from", "_valid_to", "registered_on", "deregistered_on"
        )
        .sort("person_key", "_valid_from", "priority")
        .with_columns(
            valid_from=pl.when(pl.struct("person_key", "source").is_first_distinct())
            .then(pl.min_horizontal("registered_on", "_valid_from"))
            .otherwise(pl.col("_valid_from")),
            valid_to=pl.min_horizontal("_valid_to", "deregistered_on"),
        )
    )
    # until when the police register covers each person: for good while a version is open
    police_end = (
        stays.filter(source == POLICE)
        .group_by("person_key")
        .agg(
            police_end=pl.when(pl.col("valid_to").is_null().any())
            .then(pl.lit(dt.date.max))
            .otherwise(pl.col("valid_to").max())
        )
    )
    same_person_next = key.shift(-1) == key
    stays = (
        stays.join(police_end, on="person_key", how="left")
        .filter((source == POLICE) | pl.col("police_end").is_null() | (pl.col("valid_from") >= pl.col("police_end")))
        .join(statuses.select("person_key", "gone_on"), on="person_key", how="left")
        .sort("person_key", "valid_from", "priority")
        .with_columns(
            valid_to=pl.min_horizontal(
                "valid_to", "gone_on", pl.when(same_person_next).then(pl.col("valid_from").shift(-1))
            )
        )
        .filter(pl.col("valid_to").is_null() | (pl.col("valid_from") < pl.col("valid_to")))
    )
    continues = (
        (key == key.shift(1))
        & (pl.col("valid_from") == pl.col("valid_to").shift(1))
        & pl.all_horizontal(pl.col(c).eq_missing(pl.col(c).shift(1)) for c in place)
    )
    return (
        stays.with_columns(stay=(~continues.fill_null(False)).cum_sum())
        .group_by("stay", maintain_order=True)
        .agg(pl.col("person_key", *place, "valid_from").first(), pl.col("valid_to").last())
        .drop("stay")
    )
