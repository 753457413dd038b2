"""Person resolution: Chinese name forms, the Splink linkage of records without an ID measured on
the generator's ground truth (small scale), stable person keys, and the person_link mart.
Only figures are printed, never a name or a number of a person."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from redwall import lake
from redwall.generator import generate
from redwall.home import Home
from redwall.ingest import process_source
from redwall.marts import INPUTS, build_marts
from redwall.marts.evaluate import pairwise, truth_of
from redwall.marts.person import (
    EXACT_ID, SPLINK, UNMATCHED, VISIT, person_digest, person_records, place_records, resolve,
)
from redwall.marts.resolution import with_name_forms
from redwall.marts.tables import current, read_silver
from schemas import load_contracts

TODAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    home = Home.at(tmp_path_factory.mktemp("small")).ensure()
    generate(home, scale="small", seed=7, days=14, end_date=TODAY)
    for source in load_contracts().sources:
        process_source(home, source)
    return home


def resolved_from(silver: dict[str, pl.DataFrame]) -> pl.DataFrame:
    buildings, houses = (current(silver[f"district.{name}"]) for name in ("building", "house"))
    return resolve(place_records(person_records(silver, TODAY), buildings, houses))


@pytest.fixture(scope="module")
def silver(home) -> dict[str, pl.DataFrame]:
    return read_silver(home, INPUTS)


@pytest.fixture(scope="module")
def resolved(silver) -> pl.DataFrame:
    return resolved_from(silver)


def test_name_forms_fold_width_spaces_traditional_and_homophones():
    names = pl.DataFrame({"name": ["李建国", "李建國", "李　建国", "李 建国", "ＡＢ", "李健国", "李建华", None,
                                   " "]})
    forms = with_name_forms(names)
    assert forms["name_norm"].to_list()[:5] == ["李建国"] * 4 + ["AB"]
    assert forms["name_pinyin"][0] == forms["name_pinyin"][5] == "li jian guo"  # 建/健: a homophone typo
    assert forms["name_pinyin"][6] != forms["name_pinyin"][0]
    assert forms["surname"][0] == "李" and forms["name_norm"][7] is None and forms["name_norm"][8] is None


def test_person_digest_is_the_first_16_hex_of_sha256():
    import hashlib

    values = pl.Series(["110102194003120026", "414:E12345678", None])
    assert person_digest(values).to_list() == [
        hashlib.sha256(v.encode()).hexdigest()[:16] for v in values[:2]] + [None]


def test_resolution_precision_and_recall_on_ground_truth(home, resolved):
    figures = pairwise(truth_of(home, resolved))
    print("\nperson resolution, small scale:", figures)
    assert figures["without_id"] > 100 and figures["model_pairs"] > 100  # the model had work to do
    assert figures["model_precision"] >= 0.995 and figures["model_recall"] >= 0.98
    assert figures["all_precision"] >= 0.999 and figures["all_recall"] >= 0.995


def test_exact_id_wins_and_every_record_is_explained(resolved):
    with_id = resolved.filter(pl.col("identity").is_not_null())
    assert (with_id["match_rule"] == EXACT_ID).all()
    assert with_id["person_key"].equals(person_digest(with_id["identity"]))
    without = resolved.filter(pl.col("identity").is_null())
    assert without["person_key"].null_count() == 0 and (without["match_rule"] != EXACT_ID).all()
    linked = without.filter(pl.col("match_rule") == SPLINK)
    assert linked.height and (linked["match_probability"] >= 0.9).all()
    # a person known only from ID-less records is keyed by its first-seen record, not a row number
    alone = without.filter(pl.col("match_rule") == UNMATCHED)
    assert alone["person_key"].equals(person_digest(alone["record_id"]))


def test_one_more_day_of_visits_renumbers_nobody(silver, resolved):
    last_day = silver[VISIT]["recorded_at"].dt.date().max()
    earlier = resolved_from({**silver, VISIT: silver[VISIT].filter(pl.col("recorded_at").dt.date() < last_day)})
    before, after = (frame.unique("record_id").select("record_id", "person_key") for frame in (earlier, resolved))
    assert after.height > before.height
    both = before.join(after, on="record_id", suffix="_after")
    assert both.height == before.height
    changed = both.filter(pl.col("person_key") != pl.col("person_key_after"))
    assert changed.is_empty(), f"{changed.height} of {both.height} records changed person"


def test_person_link_mart_explains_each_record(home):
    counts = build_marts(home, as_of=dt.datetime(2026, 11, 20, 18, tzinfo=dt.UTC))
    assert list(counts).index("person_link") < list(counts).index("person")
    link = lake.read(home, "mart", "person_link")
    assert link.select("source", "record_key", "item").is_duplicated().sum() == 0
    assert set(link["match_rule"]) <= {EXACT_ID, SPLINK, "splink_cluster", UNMATCHED}
    persons = lake.read(home, "mart", "person")
    documented = link.filter(pl.col("match_rule").is_in([EXACT_ID, SPLINK]))
    assert set(documented["person_key"]) == set(persons["person_key"])
