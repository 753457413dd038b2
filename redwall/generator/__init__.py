"""The synthetic feed generator: one invented world, written out as every source delivers it.

``generate(home, scale, seed, days, end_date)`` builds a world (streets -> communities -> grids ->
buildings -> houses -> households -> persons, organisations, components, workers; cases, visits
and inspections over the ``days`` ending on ``end_date``), writes every feed of feeds.md into
``home.inbox(...)`` with the flaws real sources have, and writes the ground truth into
``home.truth``. Same seed, same bytes (xlsx included: workbooks carry a fixed creation date).

Scales (:data:`SCALES`): ``small`` ~2,000 persons in 3 communities/12 grids of 西长安街 (tests);
``street`` ~50,000 persons, 西长安街's 11 communities and 71 grids; ``district`` ~1.1 million
persons in the 15 streets of 西城区 (other streets get invented communities, ~6 grids each). A
one-street scale may be placed in another street (``street``): as many communities and grids, with
invented community names.

Feeds (file names; row numbers as an ingester counts them)
------------------------------------------------------------
police     ``实有人口_YYYYMMDD.csv`` weekly (the last day and every 7 days back, at least two), GB18030,
           header = contract labels; row = line (data from 2). Codes as names (男, 汉族, 户籍人口, 死亡);
           dates 出生日期 YYYYMMDD, others YYYY-MM-DD. Foreigners: passport/permit number in 公民身份号码.
floating   ``流动人口登记_YYYYMMDD.xlsx`` daily (``…_YYYYMMDD_<street code>.xlsx`` when several streets),
           title row 1, header row 2 (labels), data from row 3 (row = Excel row), note row sometimes.
           The first day carries the backlog. IDs as numbers (rounded), x, full-width, spaces; dates
           as text in five styles, date cells or bare serial numbers.
grid_app   ``grid_app_YYYYMMDDHH.jsonl`` by upload hour (only hours with uploads); row = line number.
           Envelope record_id/type/recorded_at(+08:00)/worker_id/grid_code, payload per type with the
           contract's column names; event ``source`` and status ``status`` as names.
municipal  ``<dataset>_YYYYMM.parquet|csv`` + ``<dataset>_YYYYMM.dict.json`` monthly (as of the month's
           last day in the period). mz_dibao, mz_death: Parquet (row = record); cl_disability,
           rs_elderly_allowance: UTF-8 CSV (row = line, data from 2). Columns are exchange field
           codes; the dict says, per field, ``name``, ``type`` and for code fields ``encoding``
           (``code`` with ``codes`` or ``name``).
district   ``<table>_YYYYMMDD.parquet`` for grid, building, house, organization, component, columns =
           contract names, code columns as names. Delivered on the first day and (except grid) on
           one later day; organisation addresses in many spellings.
ledgers    ``ledgers/<department>/<any name>.xlsx`` (sometimes ``.xls``-named xlsx or a GBK ``.csv``
           with the title as first line): title row, header (labels, sometimes an alias), data,
           notes. Per file habits: added column, renamed sheet, half-filled rows, merged cells,
           formulas, dates as text/serials/date cells, IDs as numbers or text.

Ground truth (``home.truth``, Parquet)
--------------------------------------
persons     one row per person: person_id, household_id, relation, name (true), doc_type, id_number
            (true), sex (1/2), birth_date, ethnicity (code), person_type, hukou_division,
            hukou_place, hukou_address, hukou_match, phone, house_code (at the end),
            previous_house_code/relocated_on, building_code, grid_code, community_code, street_code,
            residence_address, status (active/moved_out/deceased) and status_on, moved_in_on,
            registered_on/police_deregistered_on (police), floating_registered_on, arrived_on,
            inflow_reason, housing_type, permit_number/permit_expires, landlord_person_id, age,
            living_situation, care_tags (list: 独居老人/高龄/残疾人/低保), disability_*,
            dibao_household_id/dibao_start_on/dibao_end_on, elderly_allowance_since.
records     one row per person mention in a delivered record: source, table, file (relative to
            the source's inbox folder, ledgers with their department folder), row, item (index in
            a visit's persons list), role (subject/landlord/seen/household_head/emergency_contact/
            responsible_person), record_key (the key as delivered), person_id.
defects     every planted flaw: source, table, file, row (null for file-level), column (header as
            delivered, JSON path for grid_app), kind, value (as delivered), detail, person_id.
events      one row per case: class (class_kind event/component, major/minor, name), source,
            grid/building/object, address, times (reported, dispatched, deadline, feedback, closed;
            null if not reached by the end), flags (rejected/returned/extended/parked/supervised),
            on_time (feedback within the working-time limit from dispatch; null while running),
            last_status at the end of the period.
addresses   delivered address text -> variant, level (house/building), house_code, building_code,
            source, table (one row per distinct text and place).
files       every file written: source, table, file, format, rows.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time

import polars as pl

from redwall.generator import activity
from redwall.generator.feeds import Context, district, floating, grid_app, ledgers, municipal, police
from redwall.generator.truth import Truth
from redwall.generator.world import SCALES, Dice, Period, Scale, build_world
from redwall.home import Home
from redwall.schemas import load_contracts

__all__ = ["SCALES", "Scale", "generate"]

WRITERS = {
    "police": police.write,
    "floating": floating.write,
    "municipal": municipal.write,
    "district": district.write,
    "ledgers": ledgers.write,
}


def generate(
    home: Home,
    scale: str = "street",
    seed: int = 7,
    days: int = 14,
    end_date: dt.date = dt.date(2026, 11, 20),
    street: str | None = None,
) -> dict:
    """Write every feed into the inbox and the ground truth beside it; returns a summary. ``street``
    (a street code, for the one-street scales) places the world in another street than 西长安街."""
    started = time.perf_counter()
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    if days < 2:
        raise ValueError("days must be at least 2: a newer police snapshot has to follow an older one")
    dice = Dice(seed)
    period = Period(end_date - dt.timedelta(days=days - 1), end_date)
    world = build_world(SCALES[scale], period, dice, street)
    ctx = Context(home=home, world=world, dice=dice, truth=Truth(), contracts=load_contracts())
    clock = activity.period_clock(world)
    events, steps = activity.build_events(world, clock, dice)
    visits = activity.build_visits(world, dice)
    world.extras["visits"] = visits
    grid_app.write(ctx, events, steps, visits, activity.build_inspections(world, dice))
    for write in WRITERS.values():
        write(ctx)
    truth = ctx.truth.frames()
    _write_truth(home, world, events, truth, seed)
    files = truth["files"].group_by("source").agg(files=pl.len(), rows=pl.col("rows").sum()).sort("source")
    return {
        "scale": scale,
        "seed": seed,
        "period": f"{period.start}..{period.end}",
        "persons": world.persons.height,
        "files": dict(files.select("source", "files").iter_rows()),
        "rows": dict(files.select("source", "rows").iter_rows()),
        "defects": truth["defects"].height,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _write_truth(home: Home, world, events: pl.DataFrame, truth: dict[str, pl.DataFrame], seed: int) -> None:
    folder = home.truth
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    world.persons.drop("id_region", "origin").write_parquet(folder / "persons.parquet")
    events.write_parquet(folder / "events.parquet")
    for name, frame in truth.items():
        frame.write_parquet(folder / f"{name}.parquet")
    (folder / "world.json").write_text(
        json.dumps(
            {
                "scale": world.scale.name,
                "seed": seed,
                "start": str(world.period.start),
                "end": str(world.period.end),
                "streets": world.streets["street_code"].to_list(),
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
