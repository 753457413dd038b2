"""ledgers: the workbooks department clerks fill from the centre's templates.

``ledgers/civil_affairs/``: 独居老人台账 per community (people who really live alone, plus a
few 空巢 and some who died or left since the last update), 困难群众帮扶台账 per street (aid to 低保
and other households in difficulty). ``ledgers/city_management/``: 门前三包 checks of shops.
``ledgers/safety/``: 消防隐患 found in the grids.

Every file has a title row, the template's header, data, and notes under the data. Each file
also gets some of the clerks' habits (every habit lands on at least one file of a run when there
are files to carry it): an added column, a renamed sheet, a header alias, saving as GBK CSV (the
title becomes the first line), an .xls name on an xlsx workbook, IDs typed as numbers, merged
community cells, formulas. Rows are half-filled now and then; dates come in the file's styles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from redwall.generator import sheets, text, vocab
from redwall.generator.activity import one_per_row
from redwall.generator.addresses import with_variants
from redwall.generator.feeds import (
    TYPE,
    Context,
    date_cells,
    excel_ids,
    flaw_column,
    merge_flaws,
    name_variants,
    numbered,
    set_types,
    sheet_of,
)
from redwall.generator.truth import FLAW
from redwall.generator.world import given_names, pick, surnames
from redwall.identifiers import USCC_ALPHABET

HABITS = (
    "csv_gbk",
    "extra_column",
    "renamed_sheet",
    "header_alias",
    "xls_extension",
    "ids_as_numbers",
    "merged_cells",
    "formula_cell",
)
WORKBOOK_ONLY = {"renamed_sheet", "xls_extension", "merged_cells", "formula_cell"}  # a CSV keeps none of these
HABIT_SHARE = 0.25
DATE_MIXES = [
    {"excel": 0.8, "chinese": 0.2},
    {"chinese": 0.6, "slash": 0.3, "excel": 0.1},
    {"serial": 0.5, "excel": 0.5},
    {"compact": 0.5, "iso": 0.5},
    {"slash": 0.7, "dotted": 0.3},
]
RENAMED_SHEETS = ["Sheet1", "11月", "台账", "汇总", "工作表1"]
AID_AMOUNTS = {
    "临时救助": (500, 3000),
    "物资帮扶": (200, 600),
    "医疗救助": (1000, 5000),
    "教育救助": (1000, 3000),
    "就业帮扶": (500, 1500),
}
STOREFRONT_PROBLEMS = ["门前堆放杂物", "垃圾未及时清理", "占道经营", "门前积雪未清", "私设广告牌"]


@dataclass
class Ledger:
    department: str
    table: str
    name: str  # file name without extension
    title: str
    frame: pl.DataFrame  # contract column names + _person/_role/_key/_place columns
    habits: set[str] = field(default_factory=set)

    @property
    def id_column(self) -> str | None:
        return {"elderly_alone": "id_number", "hardship_aid": "id_number", "storefront_duty": "uscc"}.get(self.table)


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.char.add(surnames(rng, n), given_names(rng, rng.choice([1, 2], n), rng.integers(1965, 2000, n)))


def _community_written(rng: np.random.Generator, n: int) -> pl.Expr:
    """Clerks write 府右街南社区 or just 府右街南."""
    return (
        pl.when(pl.Series(rng.random(n) < 0.3))
        .then(pl.col("community_name").str.replace("社区$", ""))
        .otherwise("community_name")
    )


# -- what each ledger lists --------------------------------------------------------------------
def elderly_alone(ctx: Context, rng: np.random.Generator) -> list[Ledger]:
    w = ctx.world
    p = w.persons.join(
        w.communities.select("community_code", "community_name"), on="community_code", how="left", maintain_order="left"
    )
    listed = p.filter(
        ((pl.col("living_situation") == "独居") & pl.Series(rng.random(p.height) < 0.9))
        | ((pl.col("living_situation") == "空巢") & pl.Series(rng.random(p.height) < 0.05))
    )
    visits = w.extras["visits"].group_by("person_id").agg(last_visit=pl.col("at").max().cast(pl.Date))
    adults = w.persons.filter((pl.col("age").is_between(30, 60)) & (pl.col("doc_type") == "居民身份证"))
    contact = adults[rng.integers(0, adults.height, listed.height)]
    houses = w.houses.select("house_code", "road", "door_no", "building_no", "unit", "room")
    listed = (
        listed.join(visits, on="person_id", how="left", maintain_order="left")
        .join(houses, on="house_code", how="left", maintain_order="left")
        .with_columns(
            contact_id=contact["person_id"],
            contact_name=contact["name"],
            contact_phone=contact["phone"],
            fallback_visit=pl.Series(
                np.datetime64(w.period.start, "D") - rng.integers(1, 60, listed.height).astype("timedelta64[D]")
            ),
        )
    )
    listed = with_variants(listed, rng)
    cadres = {c: list(_names(rng, 2)) for c in w.communities["community_code"]}
    frame = listed.select(
        "community_code",
        "street_code",
        "address_variant",
        "house_code",
        "building_code",
        "name",
        "id_number",
        community=_community_written(rng, listed.height),
        address="address",
        phone="phone",
        living_situation="living_situation",
        emergency_contact="contact_name",
        emergency_phone="contact_phone",
        last_visit_on=pl.coalesce("last_visit", "fallback_visit"),
        visiting_cadre=pl.Series(
            [
                cadres[c][i]
                for c, i in zip(
                    listed["community_code"].to_list(), rng.integers(0, 2, listed.height).tolist(), strict=True
                )
            ]
        ),
        _person="person_id",
        _contact="contact_id",
        _key="id_number",
    )
    out = []
    for code, name, street in w.communities.select("community_code", "community_name", "street_code").iter_rows():
        prefix = w.street_name(street) if ctx.multi_street else ""
        month = w.period.end
        out.append(
            Ledger(
                "civil_affairs",
                "elderly_alone",
                f"{prefix}{name}独居老人台账（{month.year}年{month.month}月）",
                f"{name}独居老人台账",
                frame.filter(pl.col("community_code") == code).sort("address", maintain_order=True),
            )
        )
    return out


def hardship_aid(ctx: Context, rng: np.random.Generator) -> list[Ledger]:
    w = ctx.world
    heads = w.persons.filter(
        (pl.col("relation") == "户主") & (pl.col("status") == "active") & (pl.col("person_type") == "户籍人口")
    )
    poor = heads["care_tags"].list.contains("低保").to_numpy() | (heads["care_tags"].list.len().to_numpy() > 0) & (
        rng.random(heads.height) < 0.05
    )
    heads = heads.filter(pl.Series(poor))
    times = rng.choice([1, 2], heads.height, p=[0.8, 0.2])
    aid = heads[np.repeat(np.arange(heads.height), times)].join(
        w.communities.select("community_code", "community_name"), on="community_code", how="left", maintain_order="left"
    )
    n = aid.height
    kind = pick(rng, {"临时救助": 0.35, "物资帮扶": 0.35, "医疗救助": 0.15, "教育救助": 0.05, "就业帮扶": 0.10}, n)
    low = np.array([AID_AMOUNTS[k][0] for k in kind])
    high = np.array([AID_AMOUNTS[k][1] for k in kind])
    amount = (rng.uniform(low, high) // 100 * 100).astype(int)
    days = np.array(w.period.days, dtype="datetime64[D]")
    handlers = {s: list(_names(rng, 2)) for s in w.streets["street_code"]}
    frame = aid.select(
        "street_code",
        "community_code",
        head_name="name",
        id_number="id_number",
        community=_community_written(rng, n),
        aid_type=pl.Series(kind),
        amount=pl.Series(amount).cast(pl.String),
        aid_on=pl.Series(days[rng.integers(0, len(days), n)]),
        handler=pl.Series(
            [handlers[s][i] for s, i in zip(aid["street_code"].to_list(), rng.integers(0, 2, n).tolist(), strict=True)]
        ),
        _person="person_id",
        _key="id_number",
    ).sort("community_code", "aid_on", maintain_order=True)
    month = w.period.end
    return [
        Ledger(
            "civil_affairs",
            "hardship_aid",
            f"{w.street_name(s)}困难群众帮扶台账_{month.year}年{month.month}月",
            f"{w.street_name(s)}困难群众帮扶台账（{month.year}年{month.month}月）",
            frame.filter(pl.col("street_code") == s),
        )
        for s in w.streets["street_code"]
    ]


def _uscc_lowercase(v: str, rng: np.random.Generator) -> str | None:
    out = v.lower()
    return out if out != v else None


def _uscc_wrong_check(v: str, rng: np.random.Generator) -> str:
    return v[:-1] + USCC_ALPHABET.replace(v[-1], "")[rng.integers(len(USCC_ALPHABET) - 1)]


def storefront_duty(ctx: Context, rng: np.random.Generator) -> list[Ledger]:
    w = ctx.world
    shops = w.organizations.filter("is_shop")
    checks = rng.choice([0, 1, 2], shops.height, p=[0.3, 0.6, 0.1])
    rows = shops[np.repeat(np.arange(shops.height), checks)].join(
        w.persons.select(
            pl.col("person_id").alias("responsible_person_id"),
            pl.col("name").alias("person"),
            pl.col("phone").alias("person_phone"),
        ),
        on="responsible_person_id",
        how="left",
        maintain_order="left",
    )
    rows = with_variants(rows, rng)
    n = rows.height
    bad = rng.random(n) < 0.15
    days = np.array(w.period.days, dtype="datetime64[D]")
    # Clerks shorten names: 北京华盛便民超市有限公司 -> 华盛便民超市.
    short = pl.col("name").str.replace(r"^(北京市西城区|北京)", "").str.replace("有限公司$", "")
    abbreviated = pl.Series(rng.random(n) < 0.4)
    frame = rows.select(
        "street_code",
        "address_variant",
        "house_code",
        "building_code",
        shop_name=pl.when(abbreviated).then(short).otherwise("name"),
        uscc="uscc",
        address="address",
        responsible_person="person",
        phone="person_phone",
        checked_on=pl.Series(days[rng.integers(0, len(days), n)]),
        result=pl.Series(np.where(bad, "不合格", "合格")),
        problem=pl.Series(np.where(bad, pick(rng, STOREFRONT_PROBLEMS, n), "")).replace("", None),
        _person="responsible_person_id",
        _key="uscc",
        **{"shop_name" + FLAW: pl.when(abbreviated & (short != pl.col("name"))).then(pl.lit("org_name_variant"))},
    ).sort("checked_on", "uscc", maintain_order=True)
    frame = flaw_column(
        frame,
        "uscc",
        {"lowercase_letters": 0.03, "invalid_checksum": 0.01},
        rng,
        {"lowercase_letters": _uscc_lowercase, "invalid_checksum": _uscc_wrong_check},
    )
    start, end = w.period.start, w.period.end
    return [
        Ledger(
            "city_management",
            "storefront_duty",
            f"门前三包检查台账_{w.street_name(s)}_{start:%m%d}-{end:%m%d}",
            f"{w.street_name(s)}门前三包检查记录",
            frame.filter(pl.col("street_code") == s),
        )
        for s in w.streets["street_code"]
    ]


def fire_hazard(ctx: Context, rng: np.random.Generator) -> list[Ledger]:
    w = ctx.world
    grids = w.grids["grid_code"].to_numpy()
    per = rng.poisson(max(len(w.period.days) / 14, 0.2), len(grids))
    g = np.repeat(grids, per)
    n = len(g)
    at_org = rng.random(n) < 0.6
    orgs = w.organizations.select(
        "grid_code", "name", "house_code", "building_code", "road", "door_no", "building_no", "unit", "room"
    )
    buildings = w.buildings.select("grid_code", "building_code", "road", "door_no", "building_no", "address")
    # typed explicitly: a short period can draw no hazard at all, and an empty object array has no type
    rows = pl.DataFrame(
        {"grid_code": g, "at_org": at_org, "facility": pick(rng, vocab.HAZARD_PLACES, n)},
        schema={"grid_code": pl.String, "at_org": pl.Boolean, "facility": pl.String},
    )
    by_org = one_per_row(rng, rows.filter("at_org"), orgs)
    by_org = with_variants(by_org, rng).with_columns(place_name=pl.col("name"), level=pl.lit("house"))
    by_building = one_per_row(rng, rows.filter(~pl.col("at_org")), buildings.drop("address"))
    by_building = with_variants(by_building, rng, level="building").with_columns(
        place_name=pl.concat_str([pl.col("address").str.replace("^(北京市)?西城区", ""), "facility"]),
        house_code=pl.lit(None, pl.String),
        level=pl.lit("building"),
    )
    keep = ["grid_code", "place_name", "address", "address_variant", "house_code", "building_code"]
    rows = pl.concat([by_org.select(keep), by_building.select(keep)]).with_columns(
        street_code=pl.col("grid_code").str.slice(0, 9)
    )
    n = rows.height
    days = np.array(w.period.days, dtype="datetime64[D]")
    found = days[rng.integers(0, len(days), n)]
    rectified = found + rng.integers(1, 11, n).astype("timedelta64[D]")
    done = (rng.random(n) < 0.7) & (rectified <= np.datetime64(w.period.end, "D"))
    inspectors = {s: list(_names(rng, 3)) for s in w.streets["street_code"]}
    frame = rows.with_columns(
        hazard_type=pl.Series(
            pick(
                rng,
                {
                    "电动车违规充电": 0.35,
                    "消防通道堵塞": 0.25,
                    "灭火器失效": 0.15,
                    "电气线路老化": 0.15,
                    "违规用火用电": 0.10,
                },
                n,
            )
        ),
        found_on=pl.Series(found),
        deadline_on=pl.Series(found + np.timedelta64(7, "D")),
        rectified_on=pl.when(pl.Series(done)).then(pl.Series(rectified)),
        inspector=pl.Series(
            [
                inspectors[s][i]
                for s, i in zip(rows["street_code"].to_list(), rng.integers(0, 3, n).tolist(), strict=True)
            ]
        ),
    ).sort("found_on", "grid_code", maintain_order=True)
    month = w.period.end.month
    return [
        Ledger(
            "safety",
            "fire_hazard",
            f"{w.street_name(s)}消防隐患排查台账（{month}月）",
            f"{w.street_name(s)}消防隐患排查台账",
            frame.filter(pl.col("street_code") == s),
        )
        for s in w.streets["street_code"]
    ]


# -- clerks' habits and writing -------------------------------------------------------------------
def assign_habits(ledgers: list[Ledger], rng: np.random.Generator) -> None:
    """Each habit on a quarter of the files that can carry it, and on at least one."""

    def can(ledger: Ledger, habit: str) -> bool:
        if habit in WORKBOOK_ONLY and "csv_gbk" in ledger.habits:
            return False
        return {
            "csv_gbk": ledger.table != "hardship_aid",  # the aid ledger keeps its formulas: a workbook
            "ids_as_numbers": ledger.table in ("elderly_alone", "hardship_aid"),
            "merged_cells": "community" in ledger.frame.columns and ledger.frame.height > 1,
            "formula_cell": ledger.table == "hardship_aid" and ledger.frame.height > 0,
            "header_alias": any(c.aliases for c in ledger_table(ledger).columns),
        }.get(habit, True)

    for habit in HABITS:
        able = [ledger for ledger in ledgers if can(ledger, habit)]
        if not able:
            continue
        chosen = {int(rng.integers(len(able)))} | {i for i in range(len(able)) if rng.random() < HABIT_SHARE}
        for i in chosen:
            able[i].habits.add(habit)


def ledger_table(ledger: Ledger):
    from redwall.schemas import load_contracts

    return load_contracts().table(f"ledgers.{ledger.table}")


def render(ctx: Context, ledger: Ledger, rng: np.random.Generator) -> None:
    table = ledger_table(ledger)
    columns = [c.name for c in table.columns]
    csv = "csv_gbk" in ledger.habits
    encodable = "gbk" if csv else None
    extension = ".csv" if csv else ".xls" if "xls_extension" in ledger.habits else ".xlsx"
    file = f"{ledger.department}/{ledger.name}{extension}"
    first = 3  # title and header rows above, in a workbook or its CSV export alike
    frame = numbered(ledger.frame, file, first)

    # Cells: names, IDs, phones and dates as clerks type them.
    for c in table.columns:
        if c.type == "date":
            mix = DATE_MIXES[int(rng.integers(len(DATE_MIXES)))]
            frame = date_cells(frame.rename({c.name: "_date"}), c.name, "_date", mix, rng).drop("_date")
        elif c.pii == "name":
            frame = name_variants(frame, c.name, 0.05, rng, encodable)
        elif c.pii == "phone":
            frame = flaw_column(frame, c.name, {"phone_format": 0.03}, rng, {"phone_format": text.phone_format})
    if table.name in ("elderly_alone", "hardship_aid"):
        frame = excel_ids(frame, "id_number", 0.7 if "ids_as_numbers" in ledger.habits else 0.03, rng)
        frame = flaw_column(
            frame,
            "id_number",
            {
                "missing_id": 0.04,
                "fullwidth_digits": 0.02,
                "padded_spaces": 0.03,
                "lowercase_x": 0.2,
                "invalid_checksum": 0.005,
            },
            rng,
            {**text.ID_FLAWS, "missing_id": lambda v, _: ""},
            encodable,
        )
    if table.name == "fire_hazard":  # a 15-digit grid code survives as a number, but it is one
        frame = _numeric_codes(frame, "grid_code", rng)
    if "formula_cell" in ledger.habits:
        frame = _formulas(frame, rng)
    frame, half = _half_filled(frame, columns, rng)

    headers = {c.name: c.label for c in table.columns}
    notes = [
        f"填表人：{_names(rng, 1)[0]}    审核人：{_names(rng, 1)[0]}",
        f"填报日期：{ctx.world.period.end.year}年{ctx.world.period.end.month}月{ctx.world.period.end.day}日",
        "注：本表每月更新，请勿修改表头。",
    ]
    header_row = 0 if csv else 2
    where = ("ledgers", table.name, file)
    if "header_alias" in ledger.habits:
        c = next(c for c in table.columns if c.aliases)
        headers[c.name] = c.aliases[0]
        ctx.truth.defect(*where, header_row, c.aliases[0], "header_alias", c.aliases[0], c.label)
    order = list(columns)
    if "extra_column" in ledger.habits:
        extra = vocab.LEDGER_EXTRA_COLUMNS[int(rng.integers(len(vocab.LEDGER_EXTRA_COLUMNS)))]
        at = int(rng.integers(1, len(order) + 1))
        order.insert(at, extra)
        headers[extra] = extra
        filled = np.where(rng.random(frame.height) < 0.5, "无", "")
        frame = frame.with_columns(pl.Series(extra, filled).replace("", None))
        ctx.truth.defect(*where, header_row, extra, "extra_column", extra, f"inserted at column {at + 1}")
    sheet_name = table.template["sheet"]
    if "renamed_sheet" in ledger.habits:
        sheet_name = RENAMED_SHEETS[int(rng.integers(len(RENAMED_SHEETS)))]
        ctx.truth.defect(*where, None, None, "renamed_sheet", sheet_name, table.template["sheet"])
    frame = frame.rename({k: v for k, v in headers.items() if k in frame.columns and k != v}).rename(
        {
            f"{k}{suffix}": f"{v}{suffix}"
            for k, v in headers.items()
            for suffix in (FLAW, "#detail", TYPE)
            if f"{k}{suffix}" in frame.columns and k != v
        }
    )
    labels = [headers[c] for c in order]
    # the habit is drawn only for a ledger with a community column
    merged = _merged(frame, labels, headers["community"]) if "merged_cells" in ledger.habits else []
    sheet = sheet_of(frame, labels, title=ledger.title, notes=notes, name=sheet_name, merged=merged)
    path = ctx.inbox("ledgers", ledger.department) / f"{ledger.name}{extension}"
    if csv:
        sheets.write_csv(path, sheet, "gbk")
        frame = _as_csv_text(frame, labels)
        ctx.truth.defect(*where, None, None, "csv_export", "gbk", "saved from Excel as CSV, title as first line")
    else:
        sheets.write_xlsx(path, sheet, author=notes[0])
        if extension == ".xls":
            ctx.truth.defect(*where, None, None, "wrong_extension", ".xls", "an xlsx workbook named .xls")
    for first_row, last_row, col in merged:
        ctx.truth.defect(
            *where,
            first + first_row,
            labels[col],
            "merged_cells",
            sheet.cells[first_row, col],
            f"rows {first + first_row}-{first + last_row}",
        )
    for row in half:
        ctx.truth.defect(*where, first + row, None, "half_filled_row")
    for k in range(len(notes)):
        ctx.truth.defect(*where, first + frame.height + k, None, "note_row", notes[k])
    ctx.truth.take(frame, "ledgers", table.name)
    if "_contact" in frame.columns:
        ctx.truth.take(
            frame.select(
                "_file", "_row", _person="_contact", _role=pl.lit("emergency_contact"), _key=pl.lit(None, pl.String)
            ),
            "ledgers",
            table.name,
        )
    if "address" in headers:
        ctx.truth.address(
            frame.rename({headers["address"]: "address"}),
            "ledgers",
            table.name,
            "house" if table.name != "fire_hazard" else "building",
        )
    ctx.truth.file("ledgers", table.name, file, extension.lstrip("."), frame.height)


def _numeric_codes(frame: pl.DataFrame, column: str, rng: np.random.Generator) -> pl.DataFrame:
    kinds = pl.Series(np.where(rng.random(frame.height) < 0.15, "numeric_code", "")).replace("", None)
    frame = merge_flaws(frame, column, kinds)
    return set_types(frame, column, kinds.is_not_null(), sheets.NUMBER)


def _formulas(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Amounts pasted with their formulas (=600+200): the cell shows the value, holds a formula."""
    pick = pl.Series(rng.random(frame.height) < 0.3) & frame["amount"].is_not_null()
    split = pl.Series(rng.integers(1, 10, frame.height) * 100)
    amount = pl.col("amount").cast(pl.Int64)
    written = pl.concat_str(
        [
            pl.lit("="),
            (amount - split).cast(pl.String),
            pl.lit("+"),
            split.cast(pl.String),
            pl.lit(sheets.FORMULA_SEPARATOR),
            pl.col("amount"),
        ]
    )
    frame = frame.with_columns(amount=pl.when(pick & (amount > split)).then(written).otherwise("amount"))
    formula = frame["amount"].str.starts_with("=")
    frame = merge_flaws(frame, "amount", pl.select(pl.when(formula).then(pl.lit("formula_cell"))).to_series())
    return set_types(frame, "amount", formula, sheets.FORMULA)


def _half_filled(frame: pl.DataFrame, columns: list[str], rng: np.random.Generator) -> tuple[pl.DataFrame, list[int]]:
    """A few rows where the clerk stopped after the first columns."""
    half = np.flatnonzero(rng.random(frame.height) < 0.03)
    if not len(half):
        return frame, []
    mask = pl.Series(np.isin(np.arange(frame.height), half))
    blank = [
        *columns[2:],
        *(f"{c}{s}" for c in columns[2:] for s in (FLAW, "#detail", TYPE) if f"{c}{s}" in frame.columns),
    ]
    return frame.with_columns(pl.when(mask).then(None).otherwise(pl.col(c)).alias(c) for c in blank), half.tolist()


def _merged(frame: pl.DataFrame, labels: list[str], column: str) -> list[tuple[int, int, int]]:
    """Runs of equal community cells, merged the way clerks tidy a printed ledger."""
    values = frame[column].to_list()
    runs, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            if i - start > 1 and values[start]:
                runs.append((start, i - 1, labels.index(column)))
            start = i
    return runs


def _as_csv_text(frame: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    """Cells as Excel wrote them into the CSV (what the truth must quote)."""
    typed = [h for h in labels if h + TYPE in frame.columns]
    return frame.with_columns(
        pl.Series(
            h,
            [sheets.csv_text(v, k) or None for v, k in zip(frame[h].to_list(), frame[h + TYPE].to_list(), strict=True)],
            dtype=pl.String,
        )
        for h in typed
    )


def write(ctx: Context) -> None:
    rng = ctx.dice("ledgers")
    ledgers = [*elderly_alone(ctx, rng), *hardship_aid(ctx, rng), *storefront_duty(ctx, rng), *fire_hazard(ctx, rng)]
    assign_habits(ledgers, rng)
    for ledger in ledgers:
        render(ctx, ledger, rng)
