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
from zoneinfo import ZoneInfo

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.marts.care import build_care_visit
from redwall.marts.event import build_event
from redwall.marts.grid import build_grid
from redwall.marts.objects import build_object
from redwall.marts.organization import build_organization
from redwall.marts.person import build_person, build_person_history, build_person_link, person_status
from redwall.marts.place import build_address_issue, build_place
from redwall.marts.resolution.linkage import documented, resolution_memory, resolve
from redwall.marts.resolution.records import person_records, place_records
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


def compute_marts(
    silver: dict[str, pl.DataFrame], as_of: dt.datetime, previous: pl.DataFrame | None = None
) -> dict[str, pl.DataFrame]:
    """Every mart from the silver frames of :data:`INPUTS`; ``as_of`` (time-zone aware) is the
    moment ages, open-event deadlines and overdue visits are judged at; ``previous``
    (:func:`redwall.marts.resolution.linkage.resolution_memory`, default none: a full resolution) the links
    of an earlier run that records without an ID keep while unchanged."""
    return _compute(silver, as_of, previous)[0]


def _compute(
    silver: dict[str, pl.DataFrame], as_of: dt.datetime, previous: pl.DataFrame | None
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """:func:`compute_marts`, and the resolution state of every record naming a person
    (``record_id``, ``feature_hash``, ``person_key``, ``scored``: whether the model resolved it)."""
    today = as_of.astimezone(ZoneInfo(TIME_ZONE)).date()
    grids, buildings, houses = (current(silver[f"district.{name}"]) for name in ("grid", "building", "house"))
    placed = place_records(person_records(silver, today), buildings, houses)
    linked = resolve(placed, previous)
    resolved = documented(linked)
    statuses = person_status(resolved)
    persons = build_person(resolved, statuses, grids, today)
    events = build_event(silver["grid_app.event"], silver["grid_app.event_status"], grids, as_of, silver.get(SCHEDULE))
    state = linked.unique("record_id").select(
        "record_id", "feature_hash", "person_key", scored=pl.col("scored").fill_null(False)
    )
    marts = {
        "person_link": build_person_link(linked),
        "person": persons,
        "person_history": build_person_history(resolved, statuses),
        "place": build_place(buildings, houses, grids, persons),
        "address_issue": build_address_issue(placed, silver, buildings, houses, grids),
        "event": events,
        "object": build_object(
            current(silver["district.component"]), silver["grid_app.inspection"], events, grids, today
        ),
        "organization": build_organization(current(silver["district.organization"]), buildings, houses, grids),
        "grid": build_grid(grids, persons, events),
        "care_visit": build_care_visit(persons, resolved, today),
        "street": build_street(*(silver[f"street_package.{name}"] for name in ("grid", "event", "quality"))),
    }
    # Streets are a dimension: every mart whose contract has the street takes it from the register.
    declared = {t.name: t.schema() for t in load_contracts().marts}
    marts = {
        name: with_street(frame, grids)
        if "street_code" in declared[name] and "street_code" not in frame.columns and name != "person_link"
        else frame
        for name, frame in marts.items()
    }
    # A record's link is its person's street (resolution itself is district-wide: people move).
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


def build_marts(
    home: Home, as_of: dt.datetime | None = None, full: bool = False, written: dict | None = None
) -> dict[str, int]:
    """Build every mart from the home's silver tables; returns rows per mart, in dependency order
    (each mart after the marts its contract names as related). Person resolution starts from the
    previous build's links unless ``full``. A mart the build left as it was is not written again
    (unless ``full``), so its version says it did not change; ``written`` receives, per mart,
    whether it was."""
    previous = None if full else resolution_memory(lake.read(home, "mart", "person_link"), lake.read(home, *STATE))
    marts, state = _compute(read_silver(home, INPUTS), as_of or dt.datetime.now(ZoneInfo(TIME_ZONE)), previous)
    contracts = {t.name: t for t in load_contracts().marts}
    if set(marts) != set(contracts):
        raise ValueError(f"marts built {sorted(marts)} differ from the mart contracts {sorted(contracts)}")
    checked = {name: conform(frame, contracts[name]) for name, frame in marts.items()}
    for name, frame in checked.items():
        changed = True
        if full:
            lake.write(home, "mart", name, frame)
        else:
            changed = lake.write_changed(home, "mart", name, frame)
        if written is not None:
            written[name] = changed
    lake.write(home, *STATE, state)  # after person_link: resolution_memory keeps only where both agree
    return {name: frame.height for name, frame in checked.items()}
