"""Cross-source rules: facts one source states that another contradicts, and addresses that the
district's building and house registers do not confirm. Each rule is vectorised polars over
current silver and returns the subject table's rows it judged, with ``_fails``.

Which tables and columns a rule reads comes from the contracts where a contract role says it: the
registrations of people from elsewhere and the register of residents (``person`` kinds), the
death register (a person table taking ``died_on``), the column each takes an attribute from, the
tables whose ``address`` is resolved. What stays here is what is particular to one rule: that a
registration after death is an error, that the living-alone list (ledgers.elderly_alone, a care
list of residents) must name people a residence register knows (other person lists, such as the
hardship aid paid to a household head, need not), and how an event's status steps are ordered
(grid_app.event_status: no contract role says "workflow steps").
"""

from __future__ import annotations

import polars as pl

from redwall.marts.address import AMBIGUOUS, NO_BUILDING, NO_HOUSE
from redwall.marts.resolution.records import person_digest
from redwall.schemas import PersonRecords, code_lists, load_contracts

LIVING_ALONE = "ledgers.elderly_alone"  # the care list whose persons must be known residents
EVENT_STATUS = "grid_app.event_status"  # an event's workflow steps


def _person(key: str) -> PersonRecords:
    person = load_contracts().table(key).person
    if person is None:
        raise ValueError(f"{key} names no persons (its contract has no person)")
    return person


def _registrations() -> str:
    (key,) = load_contracts().person_kind("registrations")  # the registrations of people from elsewhere
    return key


def _deaths() -> list[str]:
    """The death registers: person tables that take a date of death."""
    return [t.key for t in load_contracts().persons if t.person is not None and "died_on" in t.person.takes]


# rule → (subject table, column the finding points at, severity, message after "第N行")
CROSS_RULES = {
    "registered_after_death": (
        _registrations(),
        _person(_registrations()).column("registered_on"),
        "error",
        "流动人口登记日期晚于民政死亡登记日期，请核实该人员是否已死亡、登记是否有误",
    ),
    "person_unknown": (
        LIVING_ALONE,
        _person(LIVING_ALONE).column("id_number"),
        "warning",
        "台账中的人员在公安实有人口和流动人口登记中均无记录，请核实身份证号码或人员是否在本街道居住",
    ),
    "closed_before_dispatch": (EVENT_STATUS, "at", "error", "案件结案时间早于派遣时间，请核实处置流程记录"),
}


def _status_code(name: str) -> str:
    return {v: k for k, v in code_lists()["event_status"].items()}[name]


def _ids(key: str, frame: pl.DataFrame) -> pl.DataFrame:
    """A person table's rows with its citizen ID column as ``id_number`` (its contract's ``from``)."""
    column = _person(key).column("id_number")
    return frame if column == "id_number" else frame.rename({column: "id_number"})


def cross_checks(silver: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """rule → current rows of its subject table with ``_fails``; ``silver`` holds current rows of
    the person tables (registrations, residents, the death register), the living-alone list and the
    event status steps."""
    registrations = _registrations()
    registered_on = _person(registrations).column("registered_on")
    floating = silver[registrations]
    died = pl.concat([_ids(k, silver[k]).select("id_number", pl.col(_person(k).column("died_on"))) for k in _deaths()])
    died = died.group_by("id_number").agg(pl.col("died_on").min())
    id_column = _person(registrations).column("id_number")
    after_death = (
        floating.join(died, left_on=id_column, right_on="id_number", how="left")
        .with_columns(_fails=pl.col("died_on").is_not_null() & (pl.col(registered_on) > pl.col("died_on")))
        .drop("died_on")
    )

    residence = [*load_contracts().person_kind("residents"), registrations]
    known = pl.concat([_ids(k, silver[k]).select("id_number") for k in residence]).unique()
    ledger = silver[LIVING_ALONE]
    unknown = ledger.with_columns(
        _fails=~pl.col(_person(LIVING_ALONE).column("id_number")).is_in(known["id_number"].implode())
    )

    steps = silver[EVENT_STATUS]
    first = lambda status: pl.col("at").filter(pl.col("status") == _status_code(status)).min()  # noqa: E731
    times = steps.group_by("event_id").agg(dispatched=first("派遣"), closed=first("结案"))
    closing = steps.filter(pl.col("status") == _status_code("结案")).join(times, on="event_id", how="left")
    early = closing.with_columns(_fails=(pl.col("closed") < pl.col("dispatched")).fill_null(False)).drop(
        "dispatched", "closed"
    )
    return {"registered_after_death": after_death, "person_unknown": unknown, "closed_before_dispatch": early}


# mart.address_issue's reason → (rule, message after "第N行"; {label} is the address column's label)
ADDRESS_RULES = {
    NO_BUILDING: ("address_no_building", "{label}在区楼栋登记中找不到，请核实街巷名称和门牌号后更正"),
    NO_HOUSE: ("address_no_house", "{label}已对应到楼栋，但在房屋登记中找不到，请核实单元号和房间号后更正"),
    AMBIGUOUS: ("address_ambiguous", "{label}可对应多处楼栋或房屋，请补全院内楼号、单元号和房间号"),
}


def address_checks(
    silver: dict[str, pl.DataFrame], address_issues: pl.DataFrame, keyed: str
) -> dict[str, pl.DataFrame]:
    """Source table → its current rows with ``_fails`` where ``mart.address_issue`` found the
    address resolving to no place or to several, its ``_rule`` and ``_grid`` (the grid of the
    building it did match, else the record's own). ``silver`` holds current rows of the tables
    whose contract declares an ``address`` (``Contracts.addressed``), with their record key in
    column ``keyed``: the mart's digest where the key is personal, else digested here (small tables)."""
    rules = {reason: rule for reason, (rule, _) in ADDRESS_RULES.items()}
    contracts = load_contracts()
    checked = {}
    for source in contracts.addressed:
        rows = silver[source]
        found = address_issues.filter(pl.col("source") == source).select(
            _digest="record_key", _rule=pl.col("reason").replace_strict(rules), _grid="grid_code"
        )
        digests = rows[keyed] if contracts.table(source).personal_key else person_digest(rows[keyed])
        digests = digests.alias("_digest")
        checked[source] = (
            rows.with_columns(digests)
            .join(found, on="_digest", how="left", maintain_order="left")
            .with_columns(_fails=pl.col("_rule").is_not_null())
            .drop("_digest")
        )
    return checked
