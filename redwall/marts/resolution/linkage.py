"""Linkage: which person each record names (:func:`resolve`), exactly by its document, else by the
model, and incrementally across builds.

A valid identity gives its person exactly (:data:`EXACT_ID`), and an exact match always wins.
Records without one — today the people a grid worker saw on a household visit without being shown
an ID — are scored by the Splink model (:mod:`redwall.marts.resolution.model`) at or above the
match threshold its file holds, in two steps:

1. each is scored against the identified records: the persons it matches;
2. all of them are scored among themselves and linked into clusters strongest link first
   (:func:`redwall.marts.resolution.clustering.cluster_labels`); a cluster with members that match
   identified persons takes the best-scoring one's person it can take (:data:`SPLINK`,
   :func:`redwall.marts.resolution.clustering.choose_persons`), any other cluster is a person of
   its own (:data:`SPLINK_CLUSTER`, keyed by its first-seen record), a record linked to nothing
   stays alone (:data:`UNMATCHED`, keyed by itself). Two persons one visit lists never become one.

A day's increment re-scores only what changed: records resolved in an earlier run
(:func:`resolution_memory`) keep their links unless their compared values changed
(:func:`feature_digest`), and are only scored against the new or changed ones, so a new sighting
can still join an earlier person.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from redwall.marts.resolution.clustering import choose_persons, cluster_labels
from redwall.marts.resolution.model import COMPARED, MODEL, features, link
from redwall.marts.resolution.records import VISITS, identify, person_digest, record_id

EXACT_ID, SPLINK, SPLINK_CLUSTER, UNMATCHED = "exact_id", "splink", "splink_cluster", "unmatched"
DOCUMENTED = (EXACT_ID, SPLINK)  # rules that give a record a person with a document
MEMORY = pl.Schema(  # what an earlier run resolved each record to (resolution_memory)
    {
        "record_id": pl.String,
        "feature_hash": pl.String,
        "person_key": pl.String,
        "match_rule": pl.String,
        "match_probability": pl.Float64,
    }
)


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
        record_id=record_id(),
        person_key="person_key",
        match_rule="match_rule",
        match_probability="match_probability",
    ).join(state.select("record_id", "feature_hash", "person_key"), on=["record_id", "person_key"])


def resolve(records: pl.DataFrame, previous: pl.DataFrame | None = None, model: Path = MODEL) -> pl.DataFrame:
    """Each record with its ``record_id`` (source, record key and item: stable across runs), its
    ``person_key``, the ``match_rule`` that gave it, the ``match_probability``, its ``feature_hash``
    (:func:`feature_digest`) and, for a record without an ID, whether the model ``scored`` it this run.

    Keys never depend on row order, and an identified person's key never on what else arrived.
    The ``model`` (default: the committed one) links records at or above its match threshold
    (:func:`redwall.marts.resolution.model.match_threshold`).

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
    memory = pl.DataFrame(schema=MEMORY) if previous is None else previous.select(list(MEMORY)).cast(MEMORY)
    linked = _link(identified, unidentified, memory, model)
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


def documented(resolved: pl.DataFrame) -> pl.DataFrame:
    """``resolved`` with ``person_key`` only on records of persons with a document: the persons of
    the person marts. The others stay sightings (a visit of an unknown person counts for its house)."""
    return resolved.with_columns(person_key=pl.when(pl.col("match_rule").is_in(DOCUMENTED)).then("person_key"))


def _visit() -> pl.Expr:
    """The household visit a record comes from (null for any other source's record): the persons
    one visit lists are different persons. (By its key alone: one table of visits has them.)"""
    return pl.when(pl.col("source").is_in(VISITS)).then(pl.col("record_key"))


def _blocked_by(records: pl.DataFrame) -> pl.Expr:
    """Rows sharing a blocking value with one of ``records`` (the only ones that can match them)."""
    return pl.any_horizontal(
        pl.col(c).is_in(records[c].drop_nulls().implode())
        for c in ("phone", "house_code", "building_code", "birth_date")
    )


def _link(identified: pl.DataFrame, unidentified: pl.DataFrame, memory: pl.DataFrame, model: Path) -> pl.DataFrame:
    """``record_id``, ``person_key``, ``match_rule``, ``match_probability``, ``feature_hash`` and
    ``scored`` of the unidentified records (:func:`resolve`; ``memory``: :data:`MEMORY`)."""
    records = unidentified.unique("record_id").select(
        "record_id", "observed_on", "feature_hash", *COMPARED, visit=_visit()
    )
    # a record resolved before on the same values keeps its link; its person takes part in the
    # clustering as one node, with all its records, as it would in a full run
    kept = records.join(memory.filter(pl.col("match_rule") != EXACT_ID), on=["record_id", "feature_hash"])
    kept = kept.with_columns(node=pl.concat_str(pl.lit("person:"), "person_key"))
    fresh = records.join(kept, on="record_id", how="anti").with_columns(node="record_id")
    to_persons, within, kept_offers = _score(identified, fresh, kept, memory, model)
    members = pl.concat(
        [frame.select("record_id", "observed_on", "feature_hash", "node", "visit") for frame in (fresh, kept)]
    )
    clustered = _clustered(members, within)
    return _persons(clustered, identified, kept, to_persons, within, kept_offers)


def _score(
    identified: pl.DataFrame, fresh: pl.DataFrame, kept: pl.DataFrame, memory: pl.DataFrame, model: Path
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The model's links (:func:`redwall.marts.resolution.model.link`) that this run needs:
    ``to_persons`` and ``within`` of the ``fresh`` records (against identified persons, each other
    and the ``kept`` records they may match), and ``kept_offers``, the persons whose identified
    records are new or changed since ``memory`` offered to the kept records they may match."""

    def persons(frame: pl.DataFrame) -> pl.DataFrame:  # one identified record per person and features
        return features(frame.unique(["person_key", *COMPARED]).select("record_id", "person_key", *COMPARED))

    earlier = kept.filter(_blocked_by(fresh)).select("record_id", *COMPARED)
    to_persons, within = link(
        persons(identified.filter(_blocked_by(fresh))), features(fresh), features(earlier), model=model
    )
    arrived = identified.unique("record_id").join(
        memory.filter(pl.col("match_rule") == EXACT_ID), on=["record_id", "feature_hash"], how="anti"
    )
    near = kept.filter(_blocked_by(arrived)).select("record_id", *COMPARED)
    kept_offers, _ = link(persons(arrived.filter(_blocked_by(near))), features(near), within=False, model=model)
    return to_persons, within, kept_offers


def _clustered(members: pl.DataFrame, within: pl.DataFrame) -> pl.DataFrame:
    """``members`` (``record_id``, ``observed_on``, ``node``, ``visit``, …) with the ``label`` of
    their cluster of nodes linked by ``within`` and the cluster's ``first``-seen record; nodes are
    labelled in the order first seen, so a cluster's key never depends on row order."""
    order = (
        members.sort("observed_on", "record_id", nulls_last=True)
        .unique("node", keep="first", maintain_order=True)
        .select("node", first="record_id", label=pl.int_range(pl.len()))
    )
    node_of = members.select("record_id", "node")
    edges = (
        within.join(node_of, left_on="record_id_l", right_on="record_id")
        .join(node_of, left_on="record_id_r", right_on="record_id", suffix="_r")
        .select(a="node", b="node_r", p="match_probability")
    )
    labels = cluster_labels(order.select("node", "label"), members.select("node", "visit"), edges)
    return members.join(labels, on="node").join(order.select("first", "label"), on="label")


def _persons(
    clustered: pl.DataFrame,
    identified: pl.DataFrame,
    kept: pl.DataFrame,
    to_persons: pl.DataFrame,
    within: pl.DataFrame,
    kept_offers: pl.DataFrame,
) -> pl.DataFrame:
    """Each clustered record's person, rule and probability (:func:`_link`). A cluster with a fresh
    record or a new offer (``touched``) is resolved again: it joins its best-scoring offered person
    that lists none of its visits, else is a person of its own; any other cluster stands."""
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
            clustered.select("record_id", "label")
            .join(pl.concat([to_persons, kept_offers]), on="record_id")
            .drop("record_id"),
            kept_persons.join(clustered.select("node", "label").unique(), on="node").select(
                "label", "person_key", "match_probability"
            ),
        ]
    )
    best_offer = to_persons.sort("match_probability", "person_key", descending=[True, False]).unique(
        "record_id", keep="first"
    )
    clusters = (
        clustered.join(best_within.group_by("record_id").agg(p=pl.col("p").max()), on="record_id", how="left")
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
    # the persons' visits so far: an identified person's, and a standing cluster's
    visits = clustered.select("label", "visit")
    standing = clusters.filter(~pl.col("touched")).select(person_key="person_key_kept", label="label")
    listed = pl.concat(
        [
            identified.select("person_key", visit=_visit()),
            standing.join(visits, on="label").select("person_key", "visit"),
        ]
    )
    touched_offers = offers.join(clusters.filter("touched").select("label").unique(), on="label")
    clusters = clusters.join(choose_persons(touched_offers, visits, listed), on="label", how="left")
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
    touched = pl.col("touched")
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
