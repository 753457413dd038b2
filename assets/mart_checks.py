"""Checks on the marts, each on the mart it judges, for what its readers rely on.

Every mart: its contract's key identifies one row (blocking: a duplicated person or grid would be
counted twice on every dashboard). Beyond that, per mart, the promise its users build on: every
resident sits in a grid the district register knows, a closed event with a time limit has its
timeliness judged, a grid's resident counts add up (by person type, and those no register lists),
every care-visit person is a current resident, every residence stay and every link of a documented
record reaches a person (a sighting is a person of its own, outside the person marts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl

from redwall import lake
from redwall.assets import keys
from redwall.home import Home
from redwall.marts.event import CLOSED
from redwall.marts.person import ACTIVE, BY_PERSON_TYPE
from redwall.marts.resolution.linkage import DOCUMENTED
from redwall.schemas import Contracts

KEYS_UNIQUE = "mart_keys_unique"

Marts = dict[str, pl.DataFrame]
Judgement = tuple[bool, dict[str, Any]]  # passed, and the facts shown as metadata


@dataclass(frozen=True)
class MartCheck:
    name: str
    mart: str
    description: str
    judge: Callable[[Marts], Judgement]
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR


def _missing(frame: pl.DataFrame, other: pl.DataFrame, on: str) -> int:
    return frame.join(other.select(on).unique(), on=on, how="anti").height


def _residents_in_known_grids(marts: Marts) -> Judgement:
    residents = marts["person"].filter(pl.col("status") == ACTIVE)
    placed = residents.filter(pl.col("grid_code").is_not_null())
    known = marts["grid"].filter(pl.col("community_code").is_not_null())  # in the district's grid register
    unknown = _missing(placed, known, "grid_code")
    return unknown == 0, {
        "residents": residents.height,
        "unplaced": residents.height - placed.height,
        "in_unknown_grid": unknown,
    }


def _closed_events_judged(marts: Marts) -> Judgement:
    closed = marts["event"].filter(
        pl.col("status") == CLOSED, pl.col("limit_minutes").is_not_null(), pl.col("limit_starts_at").is_not_null()
    )
    unjudged = closed.filter(pl.col("on_time").is_null()).height
    return unjudged == 0, {"closed_with_limit": closed.height, "on_time_missing": unjudged}


def _grid_counts_add_up(marts: Marts) -> Judgement:
    grid = marts["grid"]
    by_type = grid.filter(pl.col("residents") != pl.sum_horizontal(list(BY_PERSON_TYPE))).height
    placed = marts["person"].filter(pl.col("status") == ACTIVE, pl.col("grid_code").is_not_null()).height
    total = int(grid["residents"].sum() or 0)
    return by_type == 0 and total == placed, {
        "grids_not_adding_up": by_type,
        "grid_residents": total,
        "placed_residents": placed,
        "unregistered_residents": int(grid["unregistered_residents"].sum() or 0),
    }


def _care_persons_are_residents(marts: Marts) -> Judgement:
    residents = marts["person"].filter(pl.col("status") == ACTIVE)
    stray = _missing(marts["care_visit"], residents, "person_key")
    return stray == 0, {"care_persons": marts["care_visit"].height, "not_current_residents": stray}


def _stays_reach_a_person(marts: Marts) -> Judgement:
    stray = _missing(marts["person_history"], marts["person"], "person_key")
    return stray == 0, {"rows": marts["person_history"].height, "without_person": stray}


def _links_reach_a_person(marts: Marts) -> Judgement:
    """A documented record's link must reach its person; a sighting (a record no document joined,
    alone or in a cluster of its own) names a person the person marts do not hold, by design."""
    links = marts["person_link"]
    documented = links.filter(pl.col("match_rule").is_in(DOCUMENTED))
    stray = _missing(documented, marts["person"], "person_key")
    return stray == 0, {
        "rows": links.height,
        "sightings": links.height - documented.height,
        "without_person": stray,
    }


def _stays_in_order(marts: Marts) -> Judgement:
    backwards = marts["person_history"].filter(pl.col("valid_to") <= pl.col("valid_from")).height
    return backwards == 0, {"stays": marts["person_history"].height, "ending_before_start": backwards}


CHECKS = (
    # a grid the register does not know yet is the district's lag, not a broken build: a warning
    MartCheck(
        "residents_in_known_grids",
        "person",
        "每位现住人员所在网格都在区级网格登记中（未定位的另计）",
        _residents_in_known_grids,
        dg.AssetCheckSeverity.WARN,
    ),
    MartCheck(
        "closed_events_judged_on_time",
        "event",
        "有处置时限且已派遣的已结案事件都有按时反馈结论（on_time 不为空）",
        _closed_events_judged,
    ),
    MartCheck(
        "grid_counts_add_up",
        "grid",
        "各网格现住人口 = 户籍 + 流动 + 境外 + 未登记，全街道合计 = 已定位的现住人员数",
        _grid_counts_add_up,
    ),
    MartCheck("care_persons_are_residents", "care_visit", "每位关爱走访对象都是现住人员", _care_persons_are_residents),
    MartCheck(
        "links_reach_a_person",
        "person_link",
        "每条按证件归并的记录（exact_id、splink）都指向实有人口中的一人；无证件未归并到人员的记录另计",
        _links_reach_a_person,
    ),
    MartCheck("stays_reach_a_person", "person_history", "每段居住期间都属于实有人口中的一人", _stays_reach_a_person),
    MartCheck("stays_end_after_they_start", "person_history", "每段居住期间止日晚于起日", _stays_in_order),
)


def mart_check_specs(contracts: Contracts) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            KEYS_UNIQUE,
            asset=keys.mart(t),
            blocking=True,
            description=f"按主键（{', '.join(t.keys)}）每行唯一，看板不会重复计数",
        )
        for t in contracts.marts
    ]
    return specs + [
        dg.AssetCheckSpec(c.name, asset=keys.mart(contracts.table(f"mart.{c.mart}")), description=c.description)
        for c in CHECKS
    ]


def mart_check_results(home: Home, contracts: Contracts) -> Iterator[dg.AssetCheckResult]:
    marts = {t.name: lake.read(home, "mart", t.name) for t in contracts.marts}
    for t in contracts.marts:
        frame = marts[t.name]
        distinct = frame.select(pl.struct(list(t.keys)).n_unique()).item() if frame.height else 0
        yield dg.AssetCheckResult(
            asset_key=keys.mart(t),
            check_name=KEYS_UNIQUE,
            passed=distinct == frame.height,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rows": frame.height, "duplicate_rows": frame.height - distinct, "keys": ", ".join(t.keys)},
        )
    for c in CHECKS:
        passed, facts = c.judge(marts)
        yield dg.AssetCheckResult(
            asset_key=keys.mart(contracts.table(f"mart.{c.mart}")),
            check_name=c.name,
            passed=passed,
            severity=c.severity,
            metadata=facts,
        )
