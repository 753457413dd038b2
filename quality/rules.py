"""Cross-source rules: facts one source states that another contradicts, and addresses that the
district's building and house registers do not confirm. Each rule is vectorised polars over
current silver and returns the subject table's rows it judged, with ``_fails``."""

from __future__ import annotations

import polars as pl

from redwall.marts.address import AMBIGUOUS, NO_BUILDING, NO_HOUSE
from redwall.marts.resolution.records import person_digest
from redwall.schemas import code_lists, load_contracts

# rule → (subject table, column the finding points at, severity, message after "第N行")
CROSS_RULES = {
    "registered_after_death": (
        "floating.registration",
        "registered_on",
        "error",
        "流动人口登记日期晚于民政死亡登记日期，请核实该人员是否已死亡、登记是否有误",
    ),
    "person_unknown": (
        "ledgers.elderly_alone",
        "id_number",
        "warning",
        "台账中的人员在公安实有人口和流动人口登记中均无记录，请核实身份证号码或人员是否在本街道居住",
    ),
    "closed_before_dispatch": ("grid_app.event_status", "at", "error", "案件结案时间早于派遣时间，请核实处置流程记录"),
}


def _status_code(name: str) -> str:
    return {v: k for k, v in code_lists()["event_status"].items()}[name]


def cross_checks(silver: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """rule → current rows of its subject table with ``_fails``; ``silver`` holds current rows of
    floating, police, death register, elderly-alone ledger and event status."""
    floating = silver["floating.registration"]
    died = silver["municipal.mz_death"].group_by("id_number").agg(pl.col("died_on").min())
    after_death = (
        floating.join(died, on="id_number", how="left")
        .with_columns(_fails=pl.col("died_on").is_not_null() & (pl.col("registered_on") > pl.col("died_on")))
        .drop("died_on")
    )

    known = pl.concat([silver["police.population"].select("id_number"), floating.select("id_number")]).unique()
    ledger = silver["ledgers.elderly_alone"]
    unknown = ledger.with_columns(_fails=~pl.col("id_number").is_in(known["id_number"].implode()))

    steps = silver["grid_app.event_status"]
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
