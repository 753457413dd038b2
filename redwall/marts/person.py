"""The person marts: one row per person (``person``), where each person lived when
(``person_history``), and which person each record names (``person_link``), from the records
person resolution (:mod:`redwall.marts.resolution`) put together: extracted from every source
(:mod:`~redwall.marts.resolution.records`), linked exactly by document or by the Splink model
(:mod:`~redwall.marts.resolution.linkage`), each attribute's value chosen by
:mod:`~redwall.marts.resolution.survivorship`. The marts hold the persons with a document (an ID,
or a sighting the model joined to one); the lake and the restricted warehouse hold the ID in clear,
the shared warehouse re-keys ``person_key`` with the secret pseudonym key.

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

import polars as pl

from redwall.marts.resolution.records import (
    FLOATING_TYPE,
    FOREIGN,
    REGISTERED,
    REGISTRATIONS,
    RESIDENTS,
    SOURCES,
)
from redwall.marts.resolution.survivorship import surviving_values, with_values_from_id
from redwall.marts.tables import communities
from redwall.schemas import load_contracts

# The register of who lives here (police) and the registrations of people from elsewhere (floating),
# as the contracts name them (``person: {kind: residents}``, ``registrations``); the rules below are
# about what such registers say, so they stay code.
POLICE, FLOATING = RESIDENTS, list(REGISTRATIONS)
# care_type codes (codes.csv) a record carries
LIVING_ALONE_CARE, VERY_OLD_CARE, DISABLED_CARE, DIBAO_CARE = "1", "2", "3", "4"

ACTIVE, MOVED_OUT, DECEASED = "1", "2", "3"
CARE_FLAGS = {  # the person flag each care_type sets
    LIVING_ALONE_CARE: "is_living_alone",
    VERY_OLD_CARE: "is_very_old",
    DISABLED_CARE: "is_disabled",
    DIBAO_CARE: "is_dibao",
}
VERY_OLD_AGE = 80


def _catch_up() -> dt.timedelta:
    """How long the police register takes to list a newcomer: its contract's ``catch_up_days``."""
    person = load_contracts().table(POLICE).person
    assert person is not None and person.catch_up_days is not None  # the contract loader requires it
    return dt.timedelta(days=person.catch_up_days)


POLICE_LAG = _catch_up()  # documented choice: a newcomer reaches the police register within it
# The residents counted per person type, and those with none: listed by neither the police register
# nor the floating registration (a resident a grid worker found at home, or one only municipal data or
# a ledger knows), 未登记人员, the people 人口采集 is out to register. Together they are all residents.
BY_PERSON_TYPE = {
    "registered_residents": REGISTERED,
    "floating_residents": FLOATING_TYPE,
    "foreign_residents": FOREIGN,
    "unregistered_residents": None,
}
RESIDENT_COUNTS = ["residents", *BY_PERSON_TYPE]


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
            registered=source.is_in([POLICE, *FLOATING]).any(),
            living_per_police=((source == POLICE) & pl.col("registered_now")).any(),
            left_police_on=pl.col("left_on").filter(source == POLICE).max(),
            floating_since=pl.col("registered_on").filter(source.is_in(FLOATING) & pl.col("registered_now")).max(),
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
    """One row per person from the resolved records (each attribute by
    :mod:`~redwall.marts.resolution.survivorship`) and their :func:`person_status`."""
    source = pl.col("source")
    persons = (
        resolved.filter(pl.col("person_key").is_not_null())
        .group_by("person_key")
        .agg(
            *surviving_values(),
            sources=pl.concat_str(
                [pl.when((source == s).any()).then(pl.lit(s)) for s in SOURCES], separator=",", ignore_nulls=True
            ),
            **{flag: (pl.col("care_type") == code).any() for code, flag in CARE_FLAGS.items()},
        )
        .unnest("residence")
        .join(statuses.select("person_key", "status"), on="person_key")
    )
    return (
        with_values_from_id(persons)
        .with_columns(age=_age(pl.col("birth_date"), today))
        .with_columns(is_very_old=pl.col("is_very_old") | (pl.col("age") >= VERY_OLD_AGE).fill_null(False))
        .join(communities(grids), on="community_code", how="left")
    )


def residents_by(persons: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Active residents (neither moved out nor deceased) per ``keys``, in all and by person type
    (:data:`BY_PERSON_TYPE`: those without one apart), so the counts by type add up to the residents."""
    kind = pl.col("person_type")
    return (
        persons.filter(pl.col("status") == ACTIVE)
        .group_by(keys)
        .agg(
            pl.len().alias(RESIDENT_COUNTS[0]),
            *(
                (kind.is_null() if code is None else kind == code).sum().alias(name)
                for name, code in BY_PERSON_TYPE.items()
            ),
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
        resolved.filter(key.is_not_null() & source.is_in([POLICE, *FLOATING]))
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
