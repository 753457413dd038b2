"""Person resolution: Chinese name forms, the Splink linkage of records without an ID measured on
the generator's ground truth (small scale), stable person keys, and the person_link mart.
Only figures are printed, never a name or a number of a person."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from redwall import lake
from redwall.home import Home
from redwall.marts import INPUTS, STATE, build_marts
from redwall.marts.person import build_person_link
from redwall.marts.resolution.clustering import choose_persons, cluster_labels
from redwall.marts.resolution.evaluate import (
    MIN_PRECISION,
    SWEEP,
    check_model,
    choose_threshold,
    fit_model,
    pairwise,
    truth_of,
)
from redwall.marts.resolution.linkage import EXACT_ID, SPLINK, UNMATCHED, resolve
from redwall.marts.resolution.model import MODEL, match_threshold, set_match_threshold, with_name_forms
from redwall.marts.resolution.records import VISITS, person_digest, person_records, place_records
from redwall.marts.tables import current, read_silver
from redwall.schemas import load_contracts

TODAY = dt.date(2026, 11, 20)
AS_OF = dt.datetime(2026, 11, 20, 18, tzinfo=dt.UTC)

(VISIT,) = VISITS  # the household visits (grid_app.visit)


@pytest.fixture(scope="module")
def home(tmp_path_factory, street_taken_in) -> Home:
    return street_taken_in(tmp_path_factory.mktemp("small")).ensure()  # seed 7, 14 days to TODAY


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
    names = pl.DataFrame({"name": ["李建国", "李建國", "李　建国", "李 建国", "ＡＢ", "李健国", "李建华", None, " "]})
    forms = with_name_forms(names)
    assert forms["name_norm"].to_list()[:5] == ["李建国"] * 4 + ["AB"]
    assert forms["name_pinyin"][0] == forms["name_pinyin"][5] == "li jian guo"  # 建/健: a homophone typo
    assert forms["name_pinyin"][6] != forms["name_pinyin"][0]
    assert forms["surname"][0] == "李" and forms["name_norm"][7] is None and forms["name_norm"][8] is None


def clustered(edges: list[tuple[str, str, float]], visits: dict[str, str] | None = None) -> dict[str, int]:
    nodes = pl.DataFrame({"node": list("abcdef"), "label": range(6)})
    seen = pl.DataFrame(list((visits or {}).items()), schema={"node": pl.String, "visit": pl.String}, orient="row")
    links = pl.DataFrame(edges, schema={"a": pl.String, "b": pl.String, "p": pl.Float64}, orient="row")
    return dict(cluster_labels(nodes, seen, links).iter_rows())


def test_clusters_are_the_connected_components_labelled_by_their_first_node():
    labels = clustered([("b", "c", 0.95), ("c", "a", 0.91), ("e", "f", 0.99)])
    assert labels == {"a": 0, "b": 0, "c": 0, "d": 3, "e": 4, "f": 4}


def test_two_persons_of_one_visit_never_share_a_cluster_and_the_stronger_link_wins():
    twins = {"a": "visit-1", "b": "visit-1"}
    # c looks like both twins: it joins the one it matches best, the other twin stays apart
    assert clustered([("a", "c", 0.93), ("b", "c", 0.97)], twins) == {"a": 0, "b": 1, "c": 1, "d": 3, "e": 4, "f": 5}
    assert clustered([("a", "c", 0.97), ("b", "c", 0.93)], twins)["c"] == 0
    # no chain of links joins them either
    labels = clustered([("a", "c", 0.99), ("c", "d", 0.98), ("d", "b", 0.97)], twins)
    assert labels["a"] == labels["c"] == labels["d"] == 0 and labels["b"] == 1


def test_a_cluster_takes_its_best_offered_person_who_lists_none_of_its_visits():
    offers = pl.DataFrame(
        {"label": [0, 1, 1, 2], "person_key": ["P", "P", "Q", "R"], "match_probability": [0.99, 0.97, 0.92, 0.95]}
    )
    visits = pl.DataFrame({"label": [0, 1, 2], "visit": ["visit-1", "visit-1", "visit-2"]})
    listed = pl.DataFrame({"person_key": ["R"], "visit": ["visit-2"]})  # R is already on visit-2
    chosen = dict(choose_persons(offers, visits, listed).iter_rows())
    # cluster 1 would be P too, but P now lists visit-1 through cluster 0: it takes Q; R is refused
    assert chosen == {0: "P", 1: "Q"}


def test_person_digest_is_the_first_16_hex_of_sha256():
    import hashlib

    values = pl.Series(["110102194003120026", "414:E12345678", None])
    assert person_digest(values).to_list() == [hashlib.sha256(v.encode()).hexdigest()[:16] for v in values[:2]] + [None]


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
    assert linked.height and (linked["match_probability"] >= match_threshold()).all()
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
    counts = build_marts(home, as_of=AS_OF)
    assert list(counts).index("person_link") < list(counts).index("person")
    link = lake.read(home, "mart", "person_link")
    assert link.select("source", "record_key", "item").is_duplicated().sum() == 0
    assert set(link["match_rule"]) <= {EXACT_ID, SPLINK, "splink_cluster", UNMATCHED}
    persons = lake.read(home, "mart", "person")
    documented = link.filter(pl.col("match_rule").is_in([EXACT_ID, SPLINK]))
    assert set(documented["person_key"]) == set(persons["person_key"])


def test_a_day_later_only_new_records_without_id_are_scored_and_keys_match_a_full_run(home, silver, resolved, tmp_path):
    later = Home.at(tmp_path).ensure()
    last_day = silver[VISIT]["recorded_at"].dt.date().max()
    earlier_visits = silver[VISIT].filter(pl.col("recorded_at").dt.date() < last_day)["record_id"].implode()
    names = {key: load_contracts().table(key).bronze_name for key in INPUTS}
    for key, name in names.items():  # the same silver, visits of the last day held back
        frame = lake.read(home, "silver", name)
        if frame.height:
            lake.write(
                later,
                "silver",
                name,
                frame.filter(pl.col("record_id").is_in(earlier_visits)) if key == VISIT else frame,
            )

    def without_id() -> set[str]:  # record_id of the records the model resolves
        link = lake.read(later, "mart", "person_link").filter(pl.col("match_rule") != EXACT_ID)
        return set(
            link.select(
                pl.concat_str("source", "record_key", pl.col("item").cast(pl.String), separator="|", ignore_nulls=True)
            ).to_series()
        )

    build_marts(later, as_of=AS_OF)
    first, first_without = lake.read(later, *STATE), without_id()
    # nothing to remember: every record without an ID went through the model
    assert set(first.filter(pl.col("scored"))["record_id"]) == first_without
    lake.write(later, "silver", names[VISIT], lake.read(home, "silver", names[VISIT]))
    build_marts(later, as_of=AS_OF)
    second, second_without = lake.read(later, *STATE), without_id()
    new = second_without - first_without
    scored = set(second.filter(pl.col("scored"))["record_id"])
    print(f"\nsecond build: {len(scored)} of {len(second_without)} records without an ID scored")
    assert new and scored == new  # no earlier record changed, so only the new ones were scored
    full = build_person_link(resolved).select("source", "record_key", "item", "person_key", "match_rule")
    incremental = lake.read(later, "mart", "person_link").select(
        "source", "record_key", "item", "person_key", "match_rule"
    )
    both = full.join(incremental, on=["source", "record_key", "item"], nulls_equal=True, suffix="_incremental")
    assert both.height == full.height == incremental.height
    assert (both["person_key"] == both["person_key_incremental"]).all()
    assert (both["match_rule"] == both["match_rule_incremental"]).all()


def test_the_model_links_at_the_threshold_its_sweep_chose():
    record = json.loads(SWEEP.read_text(encoding="utf-8"))
    assert match_threshold() == record["chosen"] == choose_threshold(record["thresholds"])
    chosen = next(row for row in record["thresholds"] if row["threshold"] == record["chosen"])
    assert chosen["model_precision"] >= MIN_PRECISION
    assert check_model() == []


def test_a_model_out_of_step_with_its_sweep_is_told(tmp_path):
    model, sweep = tmp_path / MODEL.name, tmp_path / SWEEP.name
    model.write_text(MODEL.read_text(encoding="utf-8"), encoding="utf-8")
    assert [f"{sweep} is missing" in problem for problem in check_model(model)] == [True]
    sweep.write_text(SWEEP.read_text(encoding="utf-8"), encoding="utf-8")
    assert check_model(model) == []
    record = json.loads(sweep.read_text(encoding="utf-8"))
    other = next(row["threshold"] for row in record["thresholds"] if row["threshold"] != record["chosen"])
    set_match_threshold(other, model)
    assert ["match threshold" in problem for problem in check_model(model)] == [True]
    set_match_threshold(record["chosen"], model)
    # figures the rule would choose another threshold from
    for row in record["thresholds"]:
        row["model_correct_pairs"] = row["model_linked_pairs"] if row["threshold"] == other else 0
    sweep.write_text(json.dumps(record), encoding="utf-8")
    assert any("chosen" in problem for problem in check_model(model))
    # a model retrained without a new sweep
    sweep.write_text(SWEEP.read_text(encoding="utf-8"), encoding="utf-8")
    settings = json.loads(model.read_text(encoding="utf-8"))
    settings["probability_two_random_records_match"] *= 2
    model.write_text(json.dumps(settings), encoding="utf-8")
    assert ["model_sha256" in problem for problem in check_model(model)] == [True]


def test_fitting_the_model_twice_writes_the_same_model_and_sweep(home, tmp_path):
    world = {"scale": "small", "seed": 7, "days": 14, "end_date": TODAY.isoformat()}
    thresholds = (0.9, 0.99)
    written = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        written.append(fit_model(home, world, tmp_path / run / MODEL.name, thresholds=thresholds))
    for first, second in zip(*written, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name
    record = json.loads(written[0][1].read_text(encoding="utf-8"))
    assert [row["threshold"] for row in record["thresholds"]] == list(thresholds)
    assert match_threshold(written[0][0]) == record["chosen"] == choose_threshold(record["thresholds"])
