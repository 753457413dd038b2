"""What happens in the grids during the period: cases through the 7-step loop, household visits,
component inspections. Pure truth, in timestamps; the grid_app feed decides how it is uploaded.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from redwall.generator import vocab
from redwall.generator.addresses import with_variants
from redwall.generator.worktime import HOURS_PER_DAY, WorkClock
from redwall.generator.world import Dice, World, pick
from redwall.schemas import reference
from redwall.worktime import TIME_ZONE, with_working_clocks, working_days

EVENT_SOURCES = {"网格员巡查": 0.55, "居民上报": 0.10, "热线": 0.15, "视频": 0.15, "传感器": 0.05}
EVENT_WEIGHTS = {
    ("01", "02"): 14,
    ("01", "04"): 10,
    ("02", "01"): 14,
    ("05", "05"): 12,
    ("05", "06"): 10,
    ("05", "07"): 10,
    ("01", "03"): 5,
    ("01", "01"): 3,
    ("01", "07"): 3,
    ("03", "01"): 3,
    ("03", "02"): 2,
    ("04", "02"): 2,
    ("04", "04"): 4,
    ("05", "01"): 8,
}
COMPONENT_EVENT_SHARE = 0.3
EVENTS_PER_GRID_DAY = 1.6
PLACE_SUFFIXES = ["", "", "门口", "东侧", "西侧", "北侧约20米", "院内", "对面"]
CARE_NOTE = {"独居老人": "独居", "高龄": "高龄", "残疾人": "残疾", "低保": "低保"}


def _grid_draws(rng: np.random.Generator, world: World, per_day: float) -> pl.DataFrame:
    """(grid_code, day) for every occurrence, Poisson per grid and day."""
    days = world.period.days
    grids = world.grids["grid_code"].to_numpy()
    counts = rng.poisson(per_day, (len(grids), len(days)))
    g, d = np.nonzero(counts)
    reps = counts[g, d]
    return pl.DataFrame(
        {"grid_code": np.repeat(grids[g], reps), "day": np.repeat(np.array(days, dtype="datetime64[D]")[d], reps)}
    )


def one_per_row(
    rng: np.random.Generator, rows: pl.DataFrame, pool: pl.DataFrame, key: str = "grid_code"
) -> pl.DataFrame:
    """For each row, one random member of ``pool`` sharing its ``key`` (rows without one are dropped)."""
    pool = pool.sort(key, maintain_order=True).with_row_index("_i")
    spans = pool.group_by(key).agg(_first=pl.col("_i").min(), _n=pl.len())
    rows = rows.join(spans, on=key, how="inner", maintain_order="left")
    pick = rows["_first"].to_numpy() + (rng.random(rows.height) * rows["_n"].to_numpy()).astype(np.int64)
    return pl.concat([rows.drop("_first", "_n"), pool.drop(key, "_i")[pick]], how="horizontal")


def _at(day: pl.Series | np.ndarray, rng: np.random.Generator, first_hour: float, last_hour: float) -> np.ndarray:
    seconds = (rng.uniform(first_hour, last_hour, len(day)) * 3600).astype(np.int64)
    return (np.asarray(day, "datetime64[D]").astype("datetime64[s]") + seconds.astype("timedelta64[s]")).astype(
        "datetime64[ms]"
    )


def build_events(world: World, clock: WorkClock, dice: Dice) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Events (the truth of each case) and their workflow steps up to the end of the period."""
    rng = dice("events")
    occurrences = _grid_draws(rng, world, EVENTS_PER_GRID_DAY)
    n = occurrences.height
    source = pick(rng, EVENT_SOURCES, n)
    patrol = source == "网格员巡查"
    occurrences = occurrences.with_columns(
        source=pl.Series(source),
        reported_at=pl.Series(
            np.where(patrol, _at(occurrences["day"], rng, 8, 18), _at(occurrences["day"], rng, 6, 23))
        ),
        on_component=pl.Series(rng.random(n) < COMPONENT_EVENT_SHARE),
    )
    classes = reference("event_class").filter(pl.col("scheme") == "cjt214")
    keys = list(EVENT_WEIGHTS)
    w = np.array(list(EVENT_WEIGHTS.values()), float)
    k = rng.choice(len(keys), n, p=w / w.sum())
    occurrences = occurrences.with_columns(
        major_code=pl.Series([keys[i][0] for i in k]), minor_code=pl.Series([keys[i][1] for i in k])
    )
    occurrences = occurrences.join(
        classes.select("major", "minor", "name", "time_limit", "time_unit"),
        left_on=["major_code", "minor_code"],
        right_on=["major", "minor"],
        how="left",
        maintain_order="left",
    )
    # a component case's time limit is its component class's
    component_limits = reference("component_class").select(
        c_major="major", c_minor="minor", c_limit=pl.col("time_limit").cast(pl.Int64), c_unit="time_unit"
    )
    components = (
        world.components.filter(pl.col("status") == "正常")
        .select(
            "grid_code",
            "object_id",
            pl.col("major_code").alias("c_major"),
            pl.col("minor_code").alias("c_minor"),
            pl.col("name").alias("c_name"),
            pl.col("lon").alias("c_lon"),
            pl.col("lat").alias("c_lat"),
        )
        .join(component_limits, on=["c_major", "c_minor"], how="left", maintain_order="left")
    )
    occurrences = one_per_row(rng, occurrences, components)
    buildings = world.buildings.select(
        "grid_code",
        "building_code",
        "road",
        "door_no",
        "building_no",
        pl.col("lon").alias("b_lon"),
        pl.col("lat").alias("b_lat"),
    )
    events = one_per_row(rng, occurrences, buildings).sort("reported_at", "grid_code", maintain_order=True)
    n = events.height
    comp = events["on_component"].to_numpy()
    events = with_variants(events, rng, level="building").with_columns(
        address=pl.concat_str([pl.col("address"), pl.Series(pick(rng, PLACE_SUFFIXES, n))])
    )
    street_seq = pl.int_range(pl.len()).over(pl.col("grid_code").str.slice(0, 9)) + 1
    problem = pl.Series(pick(rng, vocab.COMPONENT_PROBLEMS, n))
    describe = [
        rng.choice(vocab.EVENT_DESCRIPTIONS[(a, b)])
        for a, b in zip(events["major_code"].to_list(), events["minor_code"].to_list(), strict=True)
    ]
    events = events.with_columns(
        event_id=pl.concat_str(
            [
                pl.lit("SJ"),
                pl.col("grid_code").str.slice(0, 9),
                pl.col("reported_at").dt.strftime("%Y%m%d"),
                street_seq.cast(pl.String).str.zfill(5),
            ]
        ),
        class_kind=pl.when(pl.Series(comp)).then(pl.lit("component")).otherwise(pl.lit("event")),
        major_code=pl.when(pl.Series(comp)).then("c_major").otherwise("major_code"),
        minor_code=pl.when(pl.Series(comp)).then("c_minor").otherwise("minor_code"),
        class_name=pl.when(pl.Series(comp)).then("c_name").otherwise("name"),
        object_id=pl.when(pl.Series(comp)).then("object_id"),
        time_limit=pl.when(pl.Series(comp)).then("c_limit").otherwise(pl.col("time_limit").cast(pl.Int64)),
        time_unit=pl.when(pl.Series(comp)).then("c_unit").otherwise("time_unit"),
        description=pl.when(pl.Series(comp)).then(pl.concat_str(["c_name", problem])).otherwise(pl.Series(describe)),
        lon=(pl.when(pl.Series(comp)).then("c_lon").otherwise("b_lon") + pl.Series(rng.normal(0, 0.0002, n))).round(6),
        lat=(pl.when(pl.Series(comp)).then("c_lat").otherwise("b_lat") + pl.Series(rng.normal(0, 0.0002, n))).round(6),
        photo_count=pl.Series(rng.integers(0, 5, n)),
    ).with_columns(
        department=pl.Series(
            [rng.choice(vocab.EVENT_DEPARTMENTS.get(m, [vocab.CENTRE])) for m in events["major_code"].to_list()]
        )
    )
    events, steps = _workflow(events, clock, world.period.end_moment, rng)
    keep = [
        "event_id",
        "class_kind",
        "major_code",
        "minor_code",
        "class_name",
        "source",
        "grid_code",
        "building_code",
        "object_id",
        "address",
        "address_variant",
        "road",
        "door_no",
        "building_no",
        "lon",
        "lat",
        "description",
        "photo_count",
        "department",
        "time_limit",
        "time_unit",
        "reported_at",
        "rejected",
        "dispatched_at",
        "deadline_at",
        "feedback_at",
        "closed_at",
        "returned",
        "extended",
        "parked",
        "supervised",
        "on_time",
        "last_status",
    ]
    return events.select(keep), steps


def _workflow(
    events: pl.DataFrame, clock: WorkClock, end: np.datetime64, rng: np.random.Generator
) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = events.height
    minute = np.timedelta64(60, "s")

    def later(t, low, high):  # wall-clock delay in minutes
        return t + (rng.uniform(low, high, n) * 60).astype(np.int64).astype("timedelta64[s]")

    def working(t, minutes):  # working-time delay, plus seconds so steps do not sit on whole minutes
        return clock.add(t, np.maximum(np.round(minutes), 1)).astype("datetime64[s]") + rng.integers(0, 60, n).astype(
            "timedelta64[s]"
        )

    t0 = events["reported_at"].to_numpy().astype("datetime64[s]")
    limit = events["time_limit"].to_numpy() * np.where(
        events["time_unit"].to_numpy() == "working_hours", 60, HOURS_PER_DAY * 60
    )
    rejected = rng.random(n) < 0.06
    returned = ~rejected & (rng.random(n) < 0.05)
    parked = ~rejected & (rng.random(n) < 0.02)
    extended = ~rejected & ~parked & (rng.random(n) < 0.04)
    filed = later(t0, 5, 90)
    first_dispatch = later(filed, 5, 40)
    returned_at = later(first_dispatch, 30, 240)
    dispatched = np.where(returned, later(returned_at, 10, 60), first_dispatch)
    allowed = limit * (1 + extended)
    # Most cases finish within the limit (ratio < 1), some run over.
    ratio = rng.lognormal(np.log(0.55), 0.5, n)
    deadline = clock.add(dispatched, allowed).astype("datetime64[s]")
    handled = working(dispatched, ratio * allowed * rng.uniform(0.3, 0.8, n))
    feedback = np.maximum(working(dispatched, ratio * allowed), handled + minute)
    supervised = ~rejected & ~parked & (feedback > deadline) & (rng.random(n) < 0.6)
    verified = working(feedback, rng.uniform(15, 240, n))
    closed = working(verified, rng.uniform(5, 60, n))
    live = ~rejected & ~parked
    extension_at = working(dispatched, 0.8 * limit)
    # the event mart's rule: an extension counts when asked for before the feedback
    granted = extended & (extension_at < feedback)
    steps = [
        ("上报", t0, np.ones(n, bool), "reporter"),
        ("不予立案", filed, rejected, "centre"),
        ("立案", filed, ~rejected, "centre"),
        ("派遣", first_dispatch, ~rejected, "centre"),
        ("回退", returned_at, returned, "department"),
        ("派遣", dispatched, returned, "centre"),
        ("延期", extension_at, extended, "department"),
        ("挂账", working(dispatched, 0.5 * limit), parked, "centre"),
        ("处置", handled, live, "department"),
        ("督办", later(deadline, 30, 120), supervised, "centre"),
        ("反馈", feedback, live, "department"),
        ("核查", verified, live, "reporter"),
        ("结案", closed, live, "centre"),
    ]
    frames = []
    for order, (status, at, applies, actor) in enumerate(steps):
        idx = np.flatnonzero(applies & (at <= end))
        frames.append(
            pl.DataFrame(
                {"event": idx, "status": status, "at": at[idx].astype("datetime64[ms]"), "actor": actor, "order": order}
            )
        )
    steps_frame = pl.concat(frames).sort("event", "at", "order", maintain_order=True)
    last = steps_frame.group_by("event").agg(pl.col("status").last()).sort("event", maintain_order=True)

    def ended(t, ok):  # a step's time if it happened by the end of the period
        return pl.Series(np.where(ok & (t <= end), t, np.datetime64("NaT")).astype("datetime64[ms]"))

    events = events.with_columns(
        rejected=pl.Series(rejected),
        returned=pl.Series(returned),
        parked=pl.Series(parked),
        extended=pl.Series(extended),
        supervised=pl.Series(supervised & (later(deadline, 30, 120) <= end)),
        dispatched_at=ended(dispatched, ~rejected),
        deadline_at=pl.Series(
            np.where(rejected, np.datetime64("NaT"), clock.add(dispatched, limit * (1 + granted))).astype(
                "datetime64[ms]"
            )
        ),
        feedback_at=ended(feedback, live),
        closed_at=ended(closed, live),
        on_time=pl.when(pl.Series(live)).then(
            _on_time(dispatched, np.where(feedback <= end, feedback, np.datetime64("NaT")), limit * (1 + granted), end)
        ),
        last_status=last["status"],  # every event has at least its 上报 step
    )
    events = events.with_columns(
        pl.col(c).cast(pl.Datetime("us")).dt.replace_time_zone("Asia/Shanghai")
        for c in ("reported_at", "dispatched_at", "deadline_at", "feedback_at", "closed_at")
    )
    steps_frame = steps_frame.with_columns(
        event_id=events["event_id"].gather(steps_frame["event"]),
        grid_code=events["grid_code"].gather(steps_frame["event"]),
        department=pl.when(pl.col("actor") == "department")
        .then(events["department"].gather(steps_frame["event"]))
        .otherwise(pl.lit(vocab.CENTRE)),
    )
    return events, steps_frame


def _on_time(
    dispatched: np.ndarray, feedback: np.ndarray, allowed_minutes: np.ndarray, end: np.datetime64
) -> pl.Series:
    """The event mart's rule (redwall/marts/event.py), to the second: fed back within the allowed
    working time from the (last) dispatch; false once more than that has passed by ``end`` without
    a feedback (NaT); null while still running."""

    def moment(t):
        return pl.Series(np.asarray(t).astype("datetime64[ms]")).cast(pl.Datetime("us")).dt.replace_time_zone(TIME_ZONE)

    moments = pl.DataFrame(
        {
            "dispatched": moment(dispatched),
            "feedback": moment(feedback),
            "end": moment(np.full(len(dispatched), end)),
            "allowed": allowed_minutes * 60,
        }
    )
    last = end.astype("datetime64[D]").astype(dt.date)  # later dispatches get no clock: nothing to judge yet
    first = min(moments["dispatched"].dt.date().min(), last)
    clocked = with_working_clocks(
        moments.with_row_index(), ["dispatched", "feedback", "end"], working_days(first, last)
    )
    return (
        clocked.sort("index")
        .select(
            pl.when(pl.col("feedback").is_not_null())
            .then(pl.col("feedback_clock") - pl.col("dispatched_clock") <= pl.col("allowed"))
            .when(pl.col("end_clock") - pl.col("dispatched_clock") > pl.col("allowed"))
            .then(False)
        )
        .to_series()
    )


def build_visits(world: World, dice: Dice) -> pl.DataFrame:
    """Household visits: care households about weekly, others when collecting population data
    (1+2+1), newcomers soon after they arrive. One row per person seen."""
    rng = dice("visits")
    p = world.persons
    days = len(world.period.days)
    households = p.group_by("household_id", maintain_order=True).agg(
        care=pl.col("care_tags").list.len().sum() > 0,
        grid_code=pl.col("grid_code").first(),
        moved_in_on=pl.col("moved_in_on").first(),
    )
    h = households.height
    visits = np.where(households["care"].to_numpy(), rng.poisson(0.8 * days / 7, h), rng.poisson(0.004 * days, h))
    newcomer = households["moved_in_on"].is_not_null().to_numpy() & (rng.random(h) < 0.7)
    visits = visits + newcomer
    frame = households[np.repeat(np.arange(h), visits)]
    m = frame.height
    start = np.datetime64(world.period.start, "D")
    span = len(world.period.days)
    day = start + rng.integers(0, span, m).astype("timedelta64[D]")
    arrival = frame["moved_in_on"].to_numpy()
    first_new = np.r_[True, frame["household_id"].to_numpy()[1:] != frame["household_id"].to_numpy()[:-1]]
    soon = arrival + rng.integers(1, 6, m).astype("timedelta64[D]")
    day = np.where(~np.isnat(arrival) & first_new, soon, day)
    day = np.where(~np.isnat(arrival) & (day < arrival), arrival, day)
    frame = frame.with_columns(at=pl.Series(_at(day, rng, 9, 17.5)), visit=pl.int_range(pl.len())).filter(
        pl.col("at").cast(pl.Date) <= world.period.end
    )
    frame = frame.with_columns(worker_id=worker_of(frame, world, rng))
    seen = frame.select("visit", "household_id", "at", "worker_id").join(
        p.select(
            "household_id",
            "person_id",
            "status",
            "status_on",
            "moved_in_on",
            "house_code",
            "previous_house_code",
            "relocated_on",
            "care_tags",
            "disability_category",
            "phone",
            "id_number",
            "name",
        ),
        on="household_id",
        maintain_order="left",
    )
    date = pl.col("at").cast(pl.Date)
    seen = seen.filter(
        ((pl.col("status") == "active") | (pl.col("status_on") > date))
        & (pl.col("moved_in_on").is_null() | (pl.col("moved_in_on") <= date))
    )
    seen = (
        seen.with_columns(u=pl.Series(rng.random(seen.height)))
        .with_columns(first=pl.col("u").rank("ordinal").over("visit") == 1)
        .filter((pl.col("u") < 0.75) | pl.col("first"))
    )
    return (
        seen.with_columns(
            house_code=pl.when(pl.col("relocated_on") > date).then("previous_house_code").otherwise("house_code"),
            show_id=pl.Series(rng.random(seen.height) < 0.5),
            show_phone=pl.Series(rng.random(seen.height) < 0.6),
            extra_note=pl.Series(
                np.where(rng.random(seen.height) < 0.3, pick(rng, vocab.CARE_NOTES_EXTRA, seen.height), "")
            ),
            next_in=pl.Series(rng.choice([7, 14, 30], seen.height)),
        )
        .drop("u", "first", "status", "status_on", "moved_in_on", "previous_house_code", "relocated_on")
        .sort("visit", "person_id")
    )


def worker_of(frame: pl.DataFrame, world: World, rng: np.random.Generator) -> pl.Series:
    """One of the grid's workers for each row."""
    return one_per_row(
        rng, frame.select("grid_code").with_row_index("_row"), world.workers.select("grid_code", "worker_id")
    ).sort("_row", maintain_order=True)["worker_id"]


def build_inspections(world: World, dice: Dice) -> pl.DataFrame:
    rng = dice("inspections")
    rounds = _grid_draws(rng, world, 4.0)
    rounds = one_per_row(
        rng, rounds, world.components.filter(pl.col("status") != "拆除").select("grid_code", "object_id")
    )
    n = rounds.height
    status = pick(rng, {"完好": 0.85, "破损": 0.08, "丢失": 0.02, "占用": 0.05}, n)
    note = [vocab.INSPECTION_NOTES[s][rng.integers(len(vocab.INSPECTION_NOTES[s]))] for s in status]
    rounds = rounds.with_columns(
        at=pl.Series(_at(rounds["day"], rng, 8, 17.5)), status=pl.Series(status), note=pl.Series(note, dtype=pl.String)
    )
    return (
        rounds.with_columns(worker_id=worker_of(rounds, world, rng))
        .drop("day")
        .sort("at", "object_id", maintain_order=True)
    )


def period_clock(world: World) -> WorkClock:
    """Working time from a week before the period to two months after (time limits run past its end)."""
    return WorkClock(world.period.start - dt.timedelta(days=7), world.period.end + dt.timedelta(days=60))
