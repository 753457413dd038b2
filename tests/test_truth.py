"""The marts against the generator's ground truth: one small generated street, ingested and built
once for the module. Persons are matched to the truth through ``person_link`` and the truth's
record list; events by their id. Assertions print counts only, never a person's values."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from redwall import lake
from redwall.marts import build_marts
from redwall.marts.person import ACTIVE, DECEASED, MOVED_OUT
from redwall.schemas import code_lists
from redwall.worktime import TIME_ZONE, with_working_clocks, working_days

DAYS, LAST_DAY = 14, dt.date(2026, 11, 20)
END = dt.datetime.combine(LAST_DAY, dt.time(23, 59, 59)).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
STATUS = {"active": ACTIVE, "moved_out": MOVED_OUT, "deceased": DECEASED}
CARE = {"is_living_alone": "独居老人", "is_very_old": "高龄", "is_disabled": "残疾人", "is_dibao": "低保"}
# the roles in which a delivered record names the person it is about (not a landlord or a contact)
NAMED = pl.col("role").is_in(["subject", "seen"]) | (
    (pl.col("table") == "hardship_aid") & (pl.col("role") == "household_head")
)


@pytest.fixture(scope="module")
def built(tmp_path_factory, street_taken_in) -> dict[str, pl.DataFrame]:
    # DAYS and LAST_DAY are the street street_taken_in generated: 14 days to 2026-11-20 (seed 7)
    home = street_taken_in(tmp_path_factory.mktemp("truth"))
    build_marts(home, as_of=END)
    frames = {
        name: pl.read_parquet(home.truth / f"{name}.parquet") for name in ("persons", "events", "records", "defects")
    }
    frames |= {f"mart_{name}": lake.read(home, "mart", name) for name in ("person", "person_link", "grid", "event")}
    named = (
        frames["records"]
        .filter(NAMED)
        .select(
            source=pl.concat_str("source", pl.lit("."), "table"),
            record_key="record_key",
            item="item",
            person_id="person_id",
        )
    )
    linked = (
        frames["mart_person_link"]
        .filter(pl.col("person_key").is_not_null())
        .join(named, on=["source", "record_key", "item"], nulls_equal=True)
    )
    frames["person_of_key"] = linked.group_by("person_key").agg(person_id=pl.col("person_id").unique())
    return frames


@pytest.fixture(scope="module")
def persons(built) -> pl.DataFrame:
    """Every mart person with the truth person its records name, and the truth's status, grid, tags."""
    keys = built["person_of_key"]
    assert (keys["person_id"].list.len() == 1).all(), "a person_key gathers records of several true persons"
    truth = built["persons"].select(
        "person_id",
        true_status="status",
        true_grid="grid_code",
        tags="care_tags",
        disability_valid_until="disability_valid_until",
    )
    return (
        built["mart_person"]
        .join(keys.explode("person_id"), on="person_key", how="left")
        .join(truth, on="person_id", how="left")
    )


def test_every_mart_person_is_one_true_person(built, persons):
    assert persons["person_id"].null_count() == 0
    assert persons["person_id"].n_unique() == persons.height


def test_statuses_match_truth_for_every_person(persons):
    expected = persons["true_status"].replace_strict(STATUS)
    assert int((persons["status"] != expected).sum()) == 0
    # deceased and moved-out persons are never residents
    gone = persons.filter(pl.col("true_status") != "active")
    assert gone.height > 0
    assert gone.filter(pl.col("status") == ACTIVE).height == 0


def test_population_per_grid_is_the_truth_minus_persons_no_source_can_name(built, persons):
    """Truth's active residents per grid, less those no record names with a usable identity: no
    delivered record names them (they registered after the period), or every record naming them
    carries a broken ID (an invalid check digit)."""
    truth = built["persons"]
    unknown = truth.filter(~pl.col("person_id").is_in(persons["person_id"].implode()))
    records = built["records"].filter(NAMED).join(unknown.select("person_id"), on="person_id")
    id_defects = (
        built["defects"]
        .filter(pl.col("kind").is_in(["invalid_checksum", "legacy_id"]))
        .select("source", "table", "file", "row", "person_id")
        .unique()
    )
    unexplained = records.join(id_defects, on=["source", "table", "file", "row", "person_id"], how="anti")
    assert unexplained.height == 0
    assert unknown.height <= 0.005 * truth.height

    knowable = truth.filter(pl.col("status") == "active").join(unknown, on="person_id", how="anti")
    expected = knowable.group_by("grid_code").agg(truth=pl.len().cast(pl.Int64))
    got = built["mart_grid"].select("grid_code", "residents").join(expected, on="grid_code", how="full", coalesce=True)
    assert got.filter(~pl.col("residents").eq_missing(pl.col("truth"))).height == 0
    # and each resident sits in the truth's grid
    active = persons.filter(pl.col("status") == ACTIVE)
    assert active.filter(pl.col("grid_code") != pl.col("true_grid")).height == 0


def test_care_groups_as_far_as_the_sources_know(built, persons):
    active = persons.filter(pl.col("status") == ACTIVE)
    tag = {flag: pl.col("tags").list.contains(name) for flag, name in CARE.items()}
    # no one is tagged whom the truth does not tag
    for flag in CARE:
        assert active.filter(pl.col(flag) & ~tag[flag]).height == 0, flag
    # 高龄 and 低保: the registers know everyone
    for flag in ("is_very_old", "is_dibao"):
        assert active.filter(pl.col(flag) != tag[flag]).height == 0, flag
    # 残疾人: the mart counts a certificate only while valid; the truth tags whoever has one
    valid = tag["is_disabled"] & (pl.col("disability_valid_until") >= LAST_DAY)
    assert active.filter(pl.col("is_disabled") != valid).height == 0
    # 独居老人: the ledger lists part of them; everyone it lists as living alone in a record with a
    # usable ID is tagged (rows with a missing or Excel-rounded ID wait for probabilistic linkage)
    listed = built["mart_person_link"].filter(
        (pl.col("source") == "ledgers.elderly_alone") & pl.col("person_key").is_not_null()
    )
    ledger = active.filter(pl.col("person_key").is_in(listed["person_key"].implode()) & tag["is_living_alone"])
    assert ledger.height > 0
    assert ledger.filter(~pl.col("is_living_alone")).height == 0


@pytest.fixture(scope="module")
def events(built) -> pl.DataFrame:
    """Mart events beside the truth's, in Beijing time, with the truth's working minutes from its
    (last) dispatch to feedback, and to close, each running to the end while not reached."""
    names = code_lists()["event_status"]
    mart = built["mart_event"].with_columns(
        pl.col(pl.Datetime).dt.convert_time_zone(TIME_ZONE), status=pl.col("status").replace_strict(names)
    )
    truth = built["events"].select(
        "event_id",
        "returned",
        "parked",
        "last_status",
        "dispatched_at",
        "feedback_at",
        "closed_at",
        true_on_time="on_time",
        true_extended="extended",
        end=pl.lit(END).dt.convert_time_zone(TIME_ZONE),
    )
    days = working_days(LAST_DAY - dt.timedelta(days=DAYS + 7), LAST_DAY)
    timed = with_working_clocks(
        truth.with_columns(fed_or_end=pl.coalesce("feedback_at", "end"), closed_or_end=pl.coalesce("closed_at", "end")),
        ["dispatched_at", "fed_or_end", "closed_or_end"],
        days,
    )
    timed = timed.with_columns(
        true_handling=(pl.col("fed_or_end_clock") - pl.col("dispatched_at_clock")) // 60,
        true_to_close=(pl.col("closed_or_end_clock") - pl.col("dispatched_at_clock")) // 60,
    )
    joined = mart.join(timed, on="event_id", how="full", suffix="_truth")
    assert joined["event_id"].null_count() == 0 and joined["event_id_truth"].null_count() == 0
    return joined


def test_event_status_and_on_time_agree_with_truth(events):
    # the truth's last step, except a 延期/督办 recorded after 结案, which the mart takes as late
    late = pl.col("last_status").is_in(["延期", "督办"]) & pl.col("closed_at_truth").is_not_null()
    assert events.filter(late & (pl.col("status") != "结案")).height == 0
    assert events.filter(~late & (pl.col("status") != pl.col("last_status"))).height == 0
    assert events.filter(~pl.col("on_time").eq_missing(pl.col("true_on_time"))).height == 0
    decided = events.filter(pl.col("on_time").is_not_null())
    assert decided.height > 0.5 * events.height and 0 < decided["on_time"].mean() < 1
    # an extension the mart counts is one the truth made
    assert events.filter(pl.col("extended") & ~pl.col("true_extended")).height == 0


def test_event_working_times_agree_with_truth(events):
    # the truth gives the dispatch the limit runs from once reached (a re-dispatch after the end: null)
    dispatched = events.filter(pl.col("dispatched_at_truth").is_not_null())
    assert dispatched.height > 0.8 * events.height
    assert dispatched.filter(pl.col("limit_starts_at") != pl.col("dispatched_at_truth")).height == 0
    assert dispatched.filter(pl.col("handling_minutes") != pl.col("true_handling")).height == 0
    # working time to close runs from the first dispatch, which the truth gives for unreturned cases
    once = dispatched.filter(~pl.col("returned"))
    assert once.filter(pl.col("dispatched_at") != pl.col("dispatched_at_truth")).height == 0
    assert once.filter(pl.col("working_minutes") != pl.col("true_to_close")).height == 0


def test_open_events_past_their_limit(built, events):
    late_and_open = (pl.col("true_on_time") == False) & pl.col("closed_at_truth").is_null()  # noqa: E712
    expected = set(events.filter(late_and_open)["event_id"])
    assert expected and set(events.filter(pl.col("overdue"))["event_id"]) == expected
    assert built["mart_grid"]["events_overdue"].sum() == len(expected)
    placed = events.filter(pl.col("grid_code").is_not_null())
    assert built["mart_grid"]["events_on_time"].sum() == placed.filter(pl.col("true_on_time")).height
    assert built["mart_grid"]["events_judged"].sum() == placed.filter(pl.col("true_on_time").is_not_null()).height
