"""The curated marts: person (人), place (地) and the addresses that resolve to none, event (事),
object (物), organisation, grid and care visits, declared in ``schemas/marts/``.

:func:`compute_marts` is pure polars, silver frames in, mart frames out; :func:`build_marts` reads
silver from the lake, checks every mart against its contract, and only then writes each one as a
Delta table (one overwrite commit each).

Person resolution is incremental across builds: :func:`build_marts` hands the previous
``mart.person_link`` with the feature digests it was resolved on (``state.person_resolution``,
never published) to :func:`compute_marts`, so only new or changed records without an ID go through
the model (:func:`redwall.marts.resolution.linkage.resolve`). Without it (a first build, or ``full=True``),
everything is resolved afresh.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.marts.care import build_care_visit
from redwall.marts.event import build_event
from redwall.marts.grid import build_grid
from redwall.marts.objects import build_object
from redwall.marts.organization import build_organization
from redwall.marts.person import (
    CARE_FLAGS,
    build_person,
    build_person_history,
    build_person_link,
    person_status,
)
from redwall.marts.place import build_address_issue, build_place
from redwall.marts.resolution.linkage import documented, resolution_memory, resolve
from redwall.marts.resolution.records import SOURCES, person_records, place_records
from redwall.marts.street import build_street
from redwall.marts.tables import conform, current, only_street, read_silver, with_street
from redwall.schemas import load_contracts
from redwall.worktime import SCHEDULE, TIME_ZONE

# The silver tables the marts read: those their contracts name as related (a table naming persons,
# or one whose address is resolved, through the ``persons`` and ``addressed`` groups).
INPUTS = tuple(
    dict.fromkeys(key for mart in load_contracts().marts for key in mart.related if not key.startswith("mart."))
)


STATE = ("state", "person_resolution")  # records as last resolved: record_id, feature_hash, person_key, scored
MART_INPUTS = ("state", "mart_inputs")  # per mart: the fingerprint it was last built with, its version and rows

# How ``as_of`` enters a mart: the moment (open events' working time, overdue), the day (ages,
# care tags by date, days since a visit, class names valid today), or not at all.
MOMENT, DATE, TIMELESS = "moment", "date", None
DISTRICT = ("district.grid", "district.building", "district.house")
EVENT_INPUTS = ("grid_app.event", "grid_app.event_status", "district.grid", SCHEDULE)
# the person marts are computed together, from every record naming a person and, for the
# addresses that resolve to no place, every table whose addresses are resolved
PERSON_INPUTS = (*SOURCES, *DISTRICT, *load_contracts().addressed, ".".join(STATE))
PERSON_MARTS = ("person_link", "person", "person_history", "place", "address_issue", "care_visit")
# What each mart is computed from (silver tables, through the marts it is computed from too) and
# how as_of enters it, in dependency order: the one place that says when a mart must be computed
# again (:func:`fingerprint`).
DEPENDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "person_link": (PERSON_INPUTS, DATE),
    "person": (PERSON_INPUTS, DATE),
    "person_history": (PERSON_INPUTS, DATE),
    "place": (PERSON_INPUTS, DATE),
    "address_issue": (PERSON_INPUTS, DATE),
    "event": (EVENT_INPUTS, MOMENT),
    "object": (("district.component", "grid_app.inspection", *EVENT_INPUTS), DATE),
    "organization": (("district.organization", *DISTRICT), TIMELESS),
    "grid": ((*PERSON_INPUTS, *EVENT_INPUTS), MOMENT),
    "care_visit": (PERSON_INPUTS, DATE),
    "street": (("street_package.grid", "street_package.event", "street_package.quality"), TIMELESS),
}


def compute_marts(
    silver: dict[str, pl.DataFrame], as_of: dt.datetime, previous: pl.DataFrame | None = None
) -> dict[str, pl.DataFrame]:
    """Every mart from the silver frames of :data:`INPUTS`; ``as_of`` (time-zone aware) is the
    moment ages, open-event deadlines and overdue visits are judged at; ``previous``
    (:func:`redwall.marts.resolution.linkage.resolution_memory`, default none: a full resolution) the links
    of an earlier run that records without an ID keep while unchanged."""
    return _compute(silver, as_of, previous)[0]


def _compute(
    silver: dict[str, pl.DataFrame],
    as_of: dt.datetime,
    previous: pl.DataFrame | None,
    needed: set[str] | None = None,
    held: Callable[[str, list[str]], pl.DataFrame] | None = None,
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame | None]:
    """:func:`compute_marts`, and the resolution state of every record naming a person
    (``record_id``, ``feature_hash``, ``person_key``, ``scored``: whether the model resolved it;
    None when the person marts were not computed).

    ``needed`` (default: every mart) are the marts to compute; ``silver`` need only hold their
    :data:`DEPENDS`. A mart that one of them is computed from but that is not computed itself is
    taken as the lake holds it: ``held(mart, columns)``."""
    needed = set(DEPENDS) if needed is None else needed
    today = as_of.astimezone(ZoneInfo(TIME_ZONE)).date()
    grids = current(silver["district.grid"]) if "district.grid" in silver else pl.DataFrame()
    marts: dict[str, pl.DataFrame] = {}
    state = None
    persons: pl.DataFrame | None = None
    events = pl.DataFrame()  # computed below whenever a mart needing it is
    if needed & set(PERSON_MARTS):
        buildings, houses = (current(silver[f"district.{name}"]) for name in ("building", "house"))
        placed = place_records(person_records(silver, today), buildings, houses)
        linked = resolve(placed, previous)
        resolved = documented(linked)
        statuses = person_status(resolved)
        persons = build_person(resolved, statuses, grids, today)
        state = linked.unique("record_id").select(
            "record_id", "feature_hash", "person_key", scored=pl.col("scored").fill_null(False)
        )
        marts |= {
            "person_link": build_person_link(linked),
            "person": persons,
            "person_history": build_person_history(resolved, statuses),
            "place": build_place(buildings, houses, grids, persons),
            "address_issue": build_address_issue(placed, silver, buildings, houses, grids),
            "care_visit": build_care_visit(persons, resolved, today),
        }
    if needed & {"event", "object", "grid"}:
        if "event" in needed or held is None:
            events = build_event(
                silver["grid_app.event"], silver["grid_app.event_status"], grids, as_of, silver.get(SCHEDULE)
            )
            marts["event"] = events
        else:  # as the lake holds it: nothing it is computed from changed, nor the moment it is judged at
            events = held("event", ["grid_code", "object_id", "is_open", "overdue", "status", "on_time"])
    if "object" in needed:
        marts["object"] = build_object(
            current(silver["district.component"]), silver["grid_app.inspection"], events, grids, today
        )
    if "organization" in needed:
        buildings, houses = (current(silver[f"district.{name}"]) for name in ("building", "house"))
        marts["organization"] = build_organization(current(silver["district.organization"]), buildings, houses, grids)
    if "grid" in needed:
        if persons is None:  # the person marts stand: the residents are those the lake holds
            assert held is not None
            persons = held("person", ["grid_code", "status", "person_type", *CARE_FLAGS.values()])
        marts["grid"] = build_grid(grids, persons, events)
    if "street" in needed:
        marts["street"] = build_street(*(silver[f"street_package.{name}"] for name in ("grid", "event", "quality")))
    marts = {name: frame for name, frame in marts.items() if name in needed}
    # Streets are a dimension: every mart whose contract has the street takes it from the register.
    declared = {t.name: t.schema() for t in load_contracts().marts}
    marts = {
        name: with_street(frame, grids)
        if "street_code" in declared[name] and "street_code" not in frame.columns and name != "person_link"
        else frame
        for name, frame in marts.items()
    }
    # A record's link is its person's street (resolution itself is district-wide: people move).
    if "person_link" in marts:
        marts["person_link"] = _person_street(marts["person_link"], marts["person"], grids)
    return marts, state


def _person_street(links: pl.DataFrame, persons: pl.DataFrame, grids: pl.DataFrame) -> pl.DataFrame:
    """``links`` with the street of the person each record resolved to (``mart.person``); a
    record of no current person is its home's street in a street centre's home, else none."""
    if "street_code" in links.columns:
        return links
    streets = persons.select("person_key", "street_code").unique("person_key")
    return links.join(streets, on="person_key", how="left", maintain_order="left").with_columns(
        pl.col("street_code").fill_null(pl.lit(only_street(grids), pl.String))
    )


def _code_digest() -> str:
    """What the marts' results depend on besides the lake: the library's code (and its model) and
    the contracts with their reference data. A new release computes every mart again."""
    import redwall
    import redwall.schemas

    folders = {Path(module.__file__).resolve().parent for module in (redwall, redwall.schemas) if module.__file__}
    files = {
        p.resolve() for folder in folders for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    digest = hashlib.sha256()
    for path in sorted(files):
        if path.suffix in (".py", ".json", ".yaml", ".csv"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


_CODE: list[str] = []  # computed once per process


def fingerprint(name: str, versions: dict[str, str | None], as_of: dt.datetime) -> str:
    """What mart ``name`` is computed from, as one digest: the versions of the silver tables of its
    :data:`DEPENDS` (and of the resolution state, for the person marts), the moment or the day it
    is judged at where that enters it, and the code. Two builds with the same fingerprint compute
    the same mart."""
    if not _CODE:
        _CODE.append(_code_digest())
    inputs, timing = DEPENDS[name]
    at = None
    if timing == MOMENT:
        at = as_of.astimezone(dt.UTC).isoformat()
    elif timing == DATE:
        at = as_of.astimezone(ZoneInfo(TIME_ZONE)).date().isoformat()
    text = json.dumps(
        {"code": _CODE[0], "inputs": {key: versions.get(key) for key in sorted(inputs)}, "at": at},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def build_marts(
    home: Home,
    as_of: dt.datetime | None = None,
    full: bool = False,
    written: dict | None = None,
    cost: dict | None = None,
) -> dict[str, int]:
    """Build every mart from the home's silver tables; returns rows per mart, in dependency order
    (each mart after the marts its contract names as related). Person resolution starts from the
    previous build's links unless ``full``.

    Incremental unless ``full``: a mart whose :func:`fingerprint` is the one it was last built
    with, and that the lake still holds as then, is not computed at all (nor its silver read);
    a computed mart the build left as it was is not written again, so its version says it did
    not change. ``written`` receives, per mart, whether it was written; ``cost``, per mart, rows
    computed and rows the lake holds (``(processed, in_lake)``)."""
    as_of = as_of or dt.datetime.now(ZoneInfo(TIME_ZONE))
    contracts = load_contracts()
    declared = {t.name: t for t in contracts.marts}
    if set(DEPENDS) != set(declared):
        raise ValueError(f"marts built {sorted(DEPENDS)} differ from the mart contracts {sorted(declared)}")
    versions = {key: lake.version(home, "silver", contracts.table(key).bronze_name) for key in INPUTS}
    versions[".".join(STATE)] = lake.version(home, *STATE)
    prints = {name: fingerprint(name, versions, as_of) for name in DEPENDS}
    memory = pl.DataFrame() if full else lake.read(home, *MART_INPUTS)
    last = {row["mart"]: row for row in memory.iter_rows(named=True)} if memory.height else {}
    held = {name: lake.version(home, "mart", name) for name in DEPENDS}
    kept = {
        name
        for name in DEPENDS
        if name in last and last[name]["fingerprint"] == prints[name] and held[name] == last[name]["version"]
    }
    if not set(PERSON_MARTS) <= kept:  # computed together: all or none
        kept -= set(PERSON_MARTS)
    needed = set(DEPENDS) - kept
    reading = sorted({key for name in needed for key in DEPENDS[name][0] if key in INPUTS})
    previous = None
    if not full and needed & set(PERSON_MARTS):
        previous = resolution_memory(lake.read(home, "mart", "person_link"), lake.read(home, *STATE))

    def held_mart(name: str, columns: list[str]) -> pl.DataFrame:
        return lake.read(home, "mart", name, columns=columns)

    marts, state = _compute(read_silver(home, tuple(reading)), as_of, previous, needed, held_mart)
    checked = {name: conform(frame, declared[name]) for name, frame in marts.items()}
    rows = {}
    for name in DEPENDS:  # in dependency order
        changed = False
        if name in checked:
            frame = checked[name]
            if full:
                lake.write(home, "mart", name, frame)
                changed = True
            else:
                changed = lake.write_changed(home, "mart", name, frame)
            rows[name] = frame.height
        else:
            rows[name] = last[name]["rows"]
        if written is not None:
            written[name] = changed
        if cost is not None:
            cost[name] = (rows[name] if name in checked else 0, rows[name])
    if state is not None:
        lake.write(home, *STATE, state)  # after person_link: resolution_memory keeps only where both agree
        versions[".".join(STATE)] = lake.version(home, *STATE)
        prints = {name: fingerprint(name, versions, as_of) for name in DEPENDS}
    # what each mart was built from, for the next build (written last: a build stopped before it
    # leaves the marts it wrote with a version this does not name, so they are computed again)
    lake.write(
        home,
        *MART_INPUTS,
        pl.DataFrame(
            {
                "mart": list(DEPENDS),
                "fingerprint": [prints[name] for name in DEPENDS],
                "version": [lake.version(home, "mart", name) for name in DEPENDS],
                "rows": [rows[name] for name in DEPENDS],
            },
            schema=contracts.table(".".join(MART_INPUTS)).schema(),
        ),
    )
    return rows
