"""The person model: Splink 5 on DuckDB, scoring pairs of person records by their compared values
(:data:`COMPARED`) for the records that carry no usable ID (:func:`link`).

The model is data: ``person_model.json`` holds the comparisons, blocking rules and trained m/u
probabilities, and the match threshold (:func:`match_threshold`); :func:`train` rewrites it from a
data home's records, and :mod:`redwall.marts.resolution.evaluate` chooses the threshold by a sweep
against the generator's ground truth, saved beside it (``person_model_sweep.json``). Predicting
never retrains, so a pair scores the same whatever else arrived.

Names compare in levels: exact; equal once normalised (full-width folded, spaces dropped,
traditional → simplified with OpenCC); the same toneless pinyin, a homophone typo (each
character's most common reading, the one a pinyin input method offers first); one character
different; else. Blocking (phone; house; building + surname; birth date + surname) keeps the
candidate pairs proportional to the records without an ID, not to the population.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from splink import SettingsCreator

MODEL = Path(__file__).with_name("person_model.json")
# the model file's one entry that is not Splink's: the match probability from which two records
# are one person, chosen by a sweep against the generator's ground truth (redwall.marts.resolution.evaluate)
THRESHOLD_KEY = "redwall_match_threshold"
DIGITS = 10  # significant digits of a trained probability (_rounded)
COMPARED = ["name", "birth_date", "sex", "phone", "house_code", "building_code"]  # what features() reads
FEATURES = ["name", "name_norm", "name_pinyin", "surname", "birth_date", "sex", "phone", "house_code", "building_code"]


# -- name forms -----------------------------------------------------------------------------------
@cache
def _character(char: str) -> tuple[str, str]:
    """A character's simplified form (OpenCC t2s) and toneless pinyin."""
    from pypinyin import Style, lazy_pinyin

    simple = _t2s().convert(char)
    return simple, lazy_pinyin(simple, style=Style.NORMAL)[0]


@cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def with_name_forms(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``name_norm`` (NFKC, no spaces, simplified), ``name_pinyin`` and ``surname``
    of its ``name``; characters are converted once each, names as lists of characters."""
    letters = pl.col("name").str.normalize("NFKC").str.replace_all(r"\s+", "").str.split("")
    chars = frame.select(letters.list.explode().drop_nulls().unique())["name"].to_list()
    simple = {c: _character(c)[0] for c in chars}
    pinyin = {c: _character(c)[1] for c in chars}
    norm = letters.list.eval(pl.element().replace(simple)).list.join("")
    return frame.with_columns(
        name_norm=pl.when(norm != "").then(norm),
        name_pinyin=pl.when(norm != "").then(letters.list.eval(pl.element().replace(pinyin)).list.join(" ")),
    ).with_columns(surname=pl.col("name_norm").str.slice(0, 1))


def features(frame: pl.DataFrame) -> pl.DataFrame:
    """The comparison columns of records (``name``, ``birth_date``, ``sex``, ``phone``,
    ``house_code``, ``building_code``), names in their compared forms, dates as text."""
    return with_name_forms(frame).select(pl.exclude("birth_date"), birth_date=pl.col("birth_date").cast(pl.String))


# -- the model ------------------------------------------------------------------------------------
def _model_spec() -> SettingsCreator:
    """Comparisons and blocking rules, untrained (what :func:`train` fits)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def exact(column: str, label: str) -> cl.CustomComparison:
        return cl.CustomComparison(
            [cll.NullLevel(column), cll.ExactMatchLevel(column), cll.ElseLevel()],
            output_column_name=column,
            comparison_description=label,
        )

    name = cl.CustomComparison(
        [
            cll.NullLevel("name_norm"),
            cll.ExactMatchLevel("name").configure(label_for_charts="exact"),
            cll.ExactMatchLevel("name_norm").configure(label_for_charts="normalised"),
            cll.ExactMatchLevel("name_pinyin").configure(label_for_charts="same pinyin"),
            cll.CustomLevel(
                "length(name_norm_l) = length(name_norm_r) AND damerau_levenshtein(name_norm_l, name_norm_r) = 1",
                "one character different",
            ),
            cll.ElseLevel(),
        ],
        output_column_name="name",
        comparison_description="name",
    )
    place = cl.CustomComparison(
        [
            cll.CustomLevel(
                "(house_code_l IS NULL AND building_code_l IS NULL) "
                "OR (house_code_r IS NULL AND building_code_r IS NULL)"
            ).configure(is_null_level=True),
            cll.ExactMatchLevel("house_code").configure(label_for_charts="same house"),
            cll.ExactMatchLevel("building_code").configure(label_for_charts="same building"),
            cll.ElseLevel(),
        ],
        output_column_name="place",
        comparison_description="house, else building",
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        linker_uid="person",  # Splink's default is random: a retrained model would differ for nothing
        comparisons=[name, exact("birth_date", "birth date"), exact("sex", "sex"), exact("phone", "phone"), place],
        blocking_rules_to_generate_predictions=[
            block_on("phone"),
            block_on("house_code"),
            block_on("building_code", "surname"),
            block_on("birth_date", "surname"),
        ],
    )


def train(records: pl.DataFrame, path: Path = MODEL) -> None:
    """Fit the model on ``records`` (:func:`features` columns and ``record_id``): u from random
    pairs, m by expectation maximisation on two blockings that leave each other's comparisons
    free; written to ``path`` as Splink settings JSON."""
    from splink import DuckDBAPI, Linker, block_on

    linker = Linker(DuckDBAPI().register(records.to_arrow(), dataset_display_name="records"), _model_spec())
    linker.training.estimate_probability_two_random_records_match(
        [block_on("name_norm", "phone"), block_on("name_norm", "house_code")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=7)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("house_code"))
    settings = linker.misc.save_model_to_json(str(path), overwrite=True)
    _write(_rounded(settings), path)


def _rounded(settings: dict) -> dict:
    """``settings`` with every trained probability to :data:`DIGITS` significant digits: DuckDB
    sums in thread order, so expectation maximisation differs between runs in the last digits, and
    a retrained model is to be the same file."""

    def significant(value: float) -> float:
        return float(f"{value:.{DIGITS}g}")

    levels = [level for comparison in settings["comparisons"] for level in comparison["comparison_levels"]]
    for level in levels:
        for key in ("m_probability", "u_probability"):
            if key in level:
                level[key] = significant(level[key])
    key = "probability_two_random_records_match"
    return {**settings, key: significant(settings[key])}


def _write(settings: dict, path: Path) -> None:
    path.write_text(json.dumps(settings, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def model_settings(path: Path = MODEL) -> dict:
    """The model file as JSON (Splink's settings and :data:`THRESHOLD_KEY`)."""
    return json.loads(path.read_text(encoding="utf-8"))


def match_threshold(path: Path = MODEL) -> float:
    """The match probability from which two records are one person, as the model file holds it."""
    settings = model_settings(path)
    if THRESHOLD_KEY not in settings:
        raise ValueError(f"{path} holds no {THRESHOLD_KEY}: choose it with `redwall regenerate model`")
    return float(settings[THRESHOLD_KEY])


def set_match_threshold(threshold: float, path: Path = MODEL) -> None:
    """Store ``threshold`` in the model file, beside Splink's settings."""
    _write({**model_settings(path), THRESHOLD_KEY: threshold}, path)


def _pairs(frame) -> pl.DataFrame:
    return frame.as_duckdbpyrelation().select("record_id_l, record_id_r, match_probability").pl()


def link(
    identified: pl.DataFrame,
    unidentified: pl.DataFrame,
    resolved: pl.DataFrame | None = None,
    within: bool = True,
    model: Path = MODEL,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scored links by ``model`` at or above its :func:`match_threshold`: ``(to_persons, within)``.

    ``identified`` holds :func:`features` with ``record_id`` and ``person_key``, ``unidentified``
    :func:`features` with ``record_id``: the records to score. ``resolved`` (optional,
    :func:`features` with ``record_id``) holds records without an ID resolved in an earlier run:
    they are scored against ``unidentified`` only, never among themselves. ``to_persons``: every
    person each unidentified record matches, at its best probability (``record_id``, ``person_key``,
    ``match_probability``; the caller chooses among them);
    ``within``: pairs among unidentified records and between an unidentified and a resolved one
    (``record_id_l``, ``record_id_r``, ``match_probability``), none unless ``within``."""
    from splink import DuckDBAPI, Linker

    schema = pl.Schema({"record_id": pl.String, "person_key": pl.String, "match_probability": pl.Float64})
    pair_schema = pl.Schema({"record_id_l": pl.String, "record_id_r": pl.String, "match_probability": pl.Float64})
    if unidentified.is_empty():
        return pl.DataFrame(schema=schema), pl.DataFrame(schema=pair_schema)
    db = DuckDBAPI()
    columns = ["record_id", *FEATURES]
    new = db.register(unidentified.select(columns).to_arrow(), dataset_display_name="unidentified")
    known = db.register(identified.select(columns).to_arrow(), dataset_display_name="identified")
    # Splink's own handler would print each blocking pass at INFO on the demo's terminal
    at = match_threshold(model)
    settings = {key: value for key, value in model_settings(model).items() if key != THRESHOLD_KEY}
    linker = Linker(new, settings, log_level=logging.WARNING)
    between = _pairs(linker.inference.predict_between(known, new, threshold_match_probability=at))
    pairs = pl.DataFrame(schema=pair_schema)
    if within:
        pairs = _pairs(linker.inference.predict_within(new, threshold_match_probability=at))
    if resolved is not None and not resolved.is_empty():
        earlier = db.register(resolved.select(columns).to_arrow(), dataset_display_name="resolved")
        pairs = pl.concat(
            [
                pairs.cast(pair_schema),
                _pairs(linker.inference.predict_between(earlier, new, threshold_match_probability=at)),
            ]
        )
    to_persons = (
        between.join(identified.select("record_id", "person_key"), left_on="record_id_l", right_on="record_id")
        .group_by(record_id="record_id_r", person_key="person_key")
        .agg(pl.col("match_probability").max())
    )
    return to_persons.cast(schema), pairs.cast(pair_schema)
