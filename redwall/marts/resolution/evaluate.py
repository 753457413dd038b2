"""Person resolution measured on the generator's ground truth, and the person model trained and its
match threshold chosen on it.

    redwall evaluate [--home HOME]   # pairwise precision and recall (and address matching) of a home
    redwall regenerate model         # retrain the model, sweep, choose (redwall.generated)
    redwall check model              # is the model in step with its sweep?

A record's true person comes from ``truth/records.parquet`` for the records without an ID (a
visit's record id and item) and from ``truth/persons.parquet`` by document for the others.
Precision and recall are pairwise: of the record pairs put in one person, the share that are
one person; of the pairs that are one person, the share put together. They are given over all
records and over the pairs the model decides (at least one record without an ID).

The model is trained on a generated street (:data:`WORLD`) and its match threshold chosen there
(:func:`regenerate_model`): every threshold of :data:`THRESHOLDS` is swept, the figures saved
beside the model (``person_model_sweep.json``), and the threshold chosen by :data:`RULE` stored in
the model file, which is where resolution reads it. Precision weighs more than recall: a false
merge joins two people's records (one person's care flags or address on another), a missed one
leaves a sighting of a known person apart, still counted for its house.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import TypedDict

import polars as pl

from redwall.generator import generate
from redwall.home import Home
from redwall.identifiers import person_identity_expr
from redwall.ingest import process_source
from redwall.marts import INPUTS
from redwall.marts.resolution.linkage import resolve
from redwall.marts.resolution.model import (
    COMPARED,
    MODEL,
    THRESHOLD_KEY,
    features,
    model_settings,
    set_match_threshold,
    train,
)
from redwall.marts.resolution.records import identify, person_records, place_records
from redwall.marts.tables import current, read_silver
from redwall.schemas import code_lists, load_contracts

SWEEP = MODEL.with_name("person_model_sweep.json")


class World(TypedDict):
    """A generated world (:func:`redwall.generator.generate`'s arguments)."""

    scale: str
    seed: int
    days: int
    end_date: str  # ISO date


# the generated street the model is trained on and its threshold chosen in (the demo's and the benchmarks')
WORLD: World = {"scale": "street", "seed": 7, "days": 14, "end_date": "2026-11-20"}
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 0.999)
MIN_PRECISION = 0.999
RULE = (
    "the threshold with the highest F1 of the model's pairs, 2 * model_correct_pairs / (model_linked_pairs "
    f"+ model_pairs), among those whose model precision, model_correct_pairs / model_linked_pairs, is at least "
    f"{MIN_PRECISION}; of equal ones, the middle one (of two, the higher), as far from where precision "
    "falls as from where recall does"
)


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
    """Pairwise precision, recall and F1 of ``person_key`` against ``person_id``, over all records
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
        precision = correct / predicted if predicted else 1.0
        recall = correct / true if true else 1.0
        figures[f"{part}_precision"] = round(precision, 4)
        figures[f"{part}_recall"] = round(recall, 4)
        figures[f"{part}_f1"] = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
        figures[f"{part}_pairs"] = counts[f"{part}_true"]
        figures[f"{part}_linked_pairs"], figures[f"{part}_correct_pairs"] = predicted, correct
    return figures


def measure(home: Home) -> dict[str, float | int]:
    """Resolve the home's records and measure them against its truth (figures only, no values)."""
    started = time.perf_counter()
    resolved = resolve(placed_records(home))
    figures = pairwise(truth_of(home, resolved))
    return {**figures, "seconds": round(time.perf_counter() - started, 1)}


def train_on(home: Home, model: Path = MODEL) -> None:
    """Refit ``model`` on the home's records: the identified ones once per person and distinct
    attributes, and every record without an ID (its match threshold is then to be chosen again)."""
    records = (
        identify(placed_records(home))
        .sort("record_id")
        .unique(["person_key", *COMPARED], keep="first", maintain_order=True)
    )
    train(features(records.select("record_id", *COMPARED)), model)


def sweep(home: Home, model: Path = MODEL, thresholds: tuple[float, ...] = THRESHOLDS) -> list[dict]:
    """Pairwise figures (:func:`pairwise`) of the home's records resolved by ``model`` at each of
    ``thresholds``, lowest first."""
    placed = placed_records(home)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        at = Path(work) / model.name
        at.write_text(model.read_text(encoding="utf-8"), encoding="utf-8")
        for threshold in sorted(thresholds):
            set_match_threshold(threshold, at)
            rows.append({"threshold": threshold, **pairwise(truth_of(home, resolve(placed, model=at)))})
    return rows


def choose_threshold(rows: list[dict]) -> float:
    """The threshold :data:`RULE` chooses among a :func:`sweep`'s ``rows``."""

    # from the pair counts, not the rounded figures: thresholds a few pairs apart are told apart
    def precision(row: dict) -> float:
        return row["model_correct_pairs"] / row["model_linked_pairs"] if row["model_linked_pairs"] else 1.0

    def f1(row: dict) -> float:
        both = row["model_linked_pairs"] + row["model_pairs"]
        return 2 * row["model_correct_pairs"] / both if both else 1.0

    eligible = [row for row in rows if precision(row) >= MIN_PRECISION]
    if not eligible:
        raise ValueError(f"no threshold of the sweep reaches a model precision of {MIN_PRECISION}")
    best = max(f1(row) for row in eligible)
    equal = sorted(row["threshold"] for row in eligible if f1(row) == best)
    return equal[len(equal) // 2]


def _trained_digest(model: Path) -> str:
    """SHA-256 of the model's trained settings (all but its match threshold): which model a sweep measured."""
    settings = {key: value for key, value in model_settings(model).items() if key != THRESHOLD_KEY}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def generated_world(root: Path) -> Home:
    """A new home at ``root`` with :data:`WORLD` generated and every feed taken in."""
    home = Home.at(root).ensure()
    generate(
        home,
        scale=WORLD["scale"],
        seed=WORLD["seed"],
        days=WORLD["days"],
        end_date=dt.date.fromisoformat(WORLD["end_date"]),
    )
    for source in load_contracts().sources:
        process_source(home, source)
    return home


def fit_model(
    home: Home,
    world: World,
    model: Path = MODEL,
    sweep_file: Path | None = None,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> list[Path]:
    """Train ``model`` on the home's records, sweep its ``thresholds``, store the threshold
    :data:`RULE` chooses in it and the sweep, made in the generated ``world``, beside it
    (``sweep_file``, default ``<model>_sweep.json``); returns the files written."""
    sweep_file = sweep_file or model.with_name(f"{model.stem}_sweep.json")
    train_on(home, model)
    rows = sweep(home, model, thresholds)
    chosen = choose_threshold(rows)
    set_match_threshold(chosen, model)
    record = {
        "world": world,
        "model_sha256": _trained_digest(model),
        "rule": RULE,
        "chosen": chosen,
        "thresholds": rows,
    }
    sweep_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return [model, sweep_file]


def regenerate_model(model: Path = MODEL, sweep_file: Path | None = None) -> list[Path]:
    """:func:`fit_model` on a newly generated :data:`WORLD`: the committed model and its sweep
    (``redwall regenerate model``)."""
    with tempfile.TemporaryDirectory() as root:
        return fit_model(generated_world(Path(root)), WORLD, model, sweep_file)


def check_model(model: Path = MODEL, sweep_file: Path | None = None) -> list[str]:
    """What makes ``model`` and its sweep disagree (none: in step): a missing sweep, one made on
    another world, thresholds, rule or trained model, a chosen threshold the rule does not choose
    from its figures, or a model using another threshold. Cheap: it retrains nothing (whether
    :func:`regenerate_model` reproduces both files byte for byte is for a full regeneration to tell)."""
    sweep_file = sweep_file or model.with_name(f"{model.stem}_sweep.json")
    if not sweep_file.exists():
        return [f"{sweep_file} is missing: regenerate it (redwall regenerate model)"]
    record = json.loads(sweep_file.read_text(encoding="utf-8"))
    expected = {
        "world": WORLD,
        "model_sha256": _trained_digest(model),
        "rule": RULE,
        "chosen": choose_threshold(record["thresholds"]),
    }
    problems = [
        f"{sweep_file}: {key} is {record.get(key)!r}, expected {value!r}"
        for key, value in expected.items()
        if record.get(key) != value
    ]
    if [row["threshold"] for row in record["thresholds"]] != sorted(THRESHOLDS):
        problems.append(f"{sweep_file}: thresholds swept differ from {sorted(THRESHOLDS)}")
    stored = model_settings(model).get(THRESHOLD_KEY)
    if stored != record["chosen"]:
        problems.append(f"{model}: match threshold {stored} is not the sweep's {record['chosen']}")
    return problems
