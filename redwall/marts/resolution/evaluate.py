"""Person resolution measured on the generator's ground truth, and the person model trained on it.

    python -m redwall.marts.resolution.evaluate HOME            # pairwise precision and recall
    python -m redwall.marts.resolution.evaluate HOME --train    # refit person_model.json first

A record's true person comes from ``truth/records.parquet`` for the records without an ID (a
visit's record id and item) and from ``truth/persons.parquet`` by document for the others.
Precision and recall are pairwise: of the record pairs put in one person, the share that are
one person; of the pairs that are one person, the share put together. They are given over all
records and over the pairs the model decides (at least one record without an ID).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

import polars as pl

from redwall.home import Home
from redwall.identifiers import person_identity_expr
from redwall.marts import INPUTS
from redwall.marts.resolution.linkage import resolve
from redwall.marts.resolution.model import COMPARED, features, train
from redwall.marts.resolution.records import identify, person_records, place_records
from redwall.marts.tables import current, read_silver
from redwall.schemas import code_lists


def placed_records(home: Home) -> pl.DataFrame:
    """Every person record of the home's silver, placed as the marts place them."""
    silver = read_silver(home, INPUTS)
    buildings, houses = (current(silver[f"district.{name}"]) for name in ("building", "house"))
    return place_records(person_records(silver, dt.date.today()), buildings, houses)


def truth_of(home: Home, resolved: pl.DataFrame) -> pl.DataFrame:
    """``resolved``'s distinct records with their true ``person_id`` (where the truth knows it)."""
    documents = {name: code for code, name in code_lists()["doc_type"].items()}  # the truth names them
    persons = pl.read_parquet(home.truth / "persons.parquet").select(
        "person_id", identity=person_identity_expr(pl.col("doc_type").replace_strict(documents), pl.col("id_number"))
    )
    seen = (
        pl.read_parquet(home.truth / "records.parquet")
        .filter((pl.col("source") == "grid_app") & (pl.col("table") == "visit"))
        .select("record_key", seen_id="person_id")
        .unique("record_key")
    )
    return (
        resolved.unique("record_id")
        .select("record_id", "source", "record_key", "item", "identity", "person_key")
        .join(persons, on="identity", how="left")
        # the truth keys a visit's persons as "<record id>#<item>"
        .join(seen, left_on=pl.concat_str("record_key", pl.lit("#"), "item"), right_on="record_key", how="left")
        .select("record_id", "identity", "person_key", person_id=pl.coalesce("person_id", "seen_id"))
        .filter(pl.col("person_id").is_not_null())
    )


def _pairs(frame: pl.DataFrame, by: list[str]) -> int:
    sizes = frame.group_by(by).len()["len"].cast(pl.Int64)
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise(labelled: pl.DataFrame) -> dict[str, float | int]:
    """Pairwise precision and recall of ``person_key`` against ``person_id``, over all records
    and over the pairs with at least one record without an ID (all minus identified-only pairs)."""
    identified = labelled.filter(pl.col("identity").is_not_null())
    counts = {
        name: _pairs(labelled, by) - (_pairs(identified, by) if part == "model" else 0)
        for part in ("all", "model")
        for name, by in (
            (f"{part}_predicted", ["person_key"]),
            (f"{part}_true", ["person_id"]),
            (f"{part}_correct", ["person_key", "person_id"]),
        )
    }
    figures: dict[str, float | int] = {"records": labelled.height, "without_id": labelled.height - identified.height}
    for part in ("all", "model"):
        correct, predicted, true = (counts[f"{part}_{n}"] for n in ("correct", "predicted", "true"))
        figures[f"{part}_precision"] = round(correct / predicted, 4) if predicted else 1.0
        figures[f"{part}_recall"] = round(correct / true, 4) if true else 1.0
        figures[f"{part}_pairs"] = counts[f"{part}_true"]
    return figures


def measure(home: Home) -> dict[str, float | int]:
    """Resolve the home's records and measure them against its truth (figures only, no values)."""
    started = time.perf_counter()
    resolved = resolve(placed_records(home))
    figures = pairwise(truth_of(home, resolved))
    return {**figures, "seconds": round(time.perf_counter() - started, 1)}


def train_on(home: Home) -> None:
    """Refit ``person_model.json`` on the home's records: the identified ones once per person and
    distinct attributes, and every record without an ID."""
    records = identify(placed_records(home)).unique(["person_key", *COMPARED])
    train(features(records.select("record_id", *COMPARED)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home")
    parser.add_argument("--train", action="store_true")
    args = parser.parse_args()
    home = Home.at(args.home)
    if args.train:
        train_on(home)
    print(json.dumps(measure(home)))


if __name__ == "__main__":
    main()
