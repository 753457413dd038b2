"""floating: the managers' daily Excel export, ``流动人口登记_YYYYMMDD.xlsx``.

Row 1 a merged title, row 2 the header, data from row 3, sometimes a 制表人/日期 note under the
data. The first day carries the backlog (everyone registered before the period); later days the
new registrations, including people registered again with a new address after moving. With
several streets each street's station exports its own file, ``流动人口登记_YYYYMMDD_<street code>.xlsx``,
titled with its street's name.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from redwall.generator import sheets, text
from redwall.generator.addresses import with_variants
from redwall.generator.feeds import (
    Context,
    date_cells,
    excel_ids,
    flaw_column,
    name_variants,
    names_of,
    numbered,
    sheet_of,
)
from redwall.generator.truth import FLAW
from redwall.generator.world import FLOATING_REGISTER, given_names, surnames

KEY = "floating.registration"
ADDRESS_MIX = {
    "canonical": 0.45,
    "no_district": 0.2,
    "with_city": 0.1,
    "room_suffix": 0.1,
    "short_building": 0.05,
    "chinese_numerals": 0.05,
    "dashed": 0.05,
}


def registrations(ctx: Context) -> pl.DataFrame:
    """One row per registration: (person, day registered, house lived in then)."""
    w = ctx.world
    p = w.persons.filter(FLOATING_REGISTER & pl.col("floating_registered_on").is_not_null())
    start, end = w.period.start, w.period.end
    present = (pl.col("status") == "active") | (pl.col("status_on") >= pl.lit(start))
    backlog = p.filter((pl.col("floating_registered_on") < pl.lit(start)) & present).with_columns(
        file_day=pl.lit(start),
        registered=pl.col("floating_registered_on"),
        house=pl.coalesce("previous_house_code", "house_code"),
        again=pl.lit(False),
    )
    new = p.filter(pl.col("floating_registered_on").is_between(pl.lit(start), pl.lit(end))).with_columns(
        file_day=pl.col("floating_registered_on"),
        registered=pl.col("floating_registered_on"),
        house=pl.col("house_code"),
        again=pl.lit(False),
    )
    # Registered again after moving: new address, a day or two after the move.
    lag = pl.Series(ctx.dice("floating-again").integers(0, 3, p.height))
    again = (
        p.with_columns(day=pl.col("relocated_on").dt.offset_by(pl.format("{}d", lag)))
        .filter(pl.col("day") <= pl.lit(end))
        .with_columns(file_day=pl.col("day"), registered=pl.col("day"), house=pl.col("house_code"), again=pl.lit(True))
        .drop("day")
    )
    return pl.concat([backlog, new, again], how="vertical").sort("file_day", "registered", "person_id")


def write(ctx: Context) -> None:
    w = ctx.world
    rng = ctx.dice("floating")
    label = {c.name: c.label for c in ctx.contracts.table(KEY).columns}
    headers = ctx.labels(KEY)
    rows = registrations(ctx)
    houses = w.houses.select("house_code", "building_code", "road", "door_no", "building_no", "unit", "room")
    landlords = w.persons.select(
        pl.col("person_id").alias("landlord_person_id"),
        pl.col("name").alias("landlord"),
        pl.col("phone").alias("landlord_phone"),
    )
    rows = rows.join(houses, left_on="house", right_on="house_code", how="left", maintain_order="left").join(
        landlords, on="landlord_person_id", how="left", maintain_order="left"
    )
    rows = with_variants(rows, rng, variants=ADDRESS_MIX)
    # Each street's station has a few managers (流管员) who register people.
    streets = w.streets["street_code"].to_list()
    staff = pl.DataFrame(
        {
            "street_code": [s for s in streets for _ in range(3)],
            "k": list(range(3)) * len(streets),
            "registrar": np.char.add(
                surnames(rng, 3 * len(streets)),
                given_names(rng, rng.choice([1, 2], 3 * len(streets)), rng.integers(1970, 2000, 3 * len(streets))),
            ),
        }
    )
    managers = {s: staff.filter(pl.col("street_code") == s)["registrar"].to_list() for s in streets}
    rows = rows.with_columns(k=pl.Series(rng.integers(0, 3, rows.height))).join(
        staff, on=["street_code", "k"], how="left", maintain_order="left"
    )
    frame = rows.select(
        "person_id",
        "file_day",
        "street_code",
        "again",
        "landlord_person_id",
        "address",
        "address_variant",
        "house",
        "building_code",
        pl.col("name").alias(label["name"]),
        pl.col("doc_type").alias(label["doc_type"]),
        pl.col("id_number").alias(label["id_number"]),
        names_of(rows, "sex", "sex").alias(label["sex"]),
        "birth_date",
        pl.col("hukou_place").alias(label["hukou_place"]),
        pl.col("address").alias(label["residence_address"]),
        "arrived_on",
        pl.col("inflow_reason").alias(label["inflow_reason"]),
        pl.col("permit_number").alias(label["permit_number"]),
        "permit_expires",
        pl.col("housing_type").alias(label["housing_type"]),
        pl.col("landlord").alias(label["landlord_name"]),
        pl.col("landlord_phone").alias(label["landlord_phone"]),
        pl.col("registrar").alias(label["registrar"]),
        "registered",
    )
    # Flaws of the managers' typing.
    frame = excel_ids(frame, label["id_number"], 0.03, rng)
    frame = flaw_column(
        frame,
        label["id_number"],
        {"lowercase_x": 0.15, "fullwidth_digits": 0.015, "padded_spaces": 0.02, "invalid_checksum": 0.003},
        rng,
    )
    frame = name_variants(frame, label["name"], 0.03, rng)
    frame = flaw_column(frame, label["name"], {"padded_spaces": 0.01}, rng, {"padded_spaces": text.padded_spaces})
    frame = flaw_column(
        frame, label["landlord_phone"], {"phone_format": 0.03}, rng, {"phone_format": text.phone_format}
    )
    frame = date_cells(
        frame,
        label["birth_date"],
        "birth_date",
        {"iso": 0.4, "slash": 0.12, "chinese": 0.1, "compact": 0.08, "excel": 0.25, "serial": 0.05},
        rng,
    )
    for column, source in (
        ("arrived_on", "arrived_on"),
        ("permit_expires", "permit_expires"),
        ("registered_on", "registered"),
    ):
        frame = date_cells(frame, label[column], source, {"excel": 0.6, "iso": 0.3, "slash": 0.1}, rng)
    frame = frame.with_columns(
        _person=pl.col("person_id"),
        _key=pl.col(label["id_number"]),
        **{f"{label['residence_address']}{FLAW}": pl.when(pl.col("again")).then(pl.lit("reregistered_new_address"))},
    )
    folder = ctx.inbox("floating")
    notes = rng.random(len(w.period.days) * w.streets.height) < 0.5
    for i, (street, street_name) in enumerate(w.streets.select("street_code", "street_name").iter_rows()):
        for j, day in enumerate(w.period.days):
            name = f"流动人口登记_{day:%Y%m%d}_{street}.xlsx" if ctx.multi_street else f"流动人口登记_{day:%Y%m%d}.xlsx"
            part = frame.filter((pl.col("street_code") == street) & (pl.col("file_day") == day))
            part = numbered(part, name, 3).with_columns(pl.col("_row").sub(2).cast(pl.String).alias(label["seq"]))
            note = notes[i * len(w.period.days) + j] or (i == 0 and j == 0)
            lines = [f"制表人：{managers[street][0]}    日期：{day.year}年{day.month}月{day.day}日"] if note else []
            sheet = sheet_of(part, headers, title=f"{street_name}流动人口登记表", notes=lines, name="Sheet1")
            sheets.write_xlsx(folder / name, sheet, author=managers[street][0])
            if note:
                ctx.truth.defect("floating", "registration", name, 3 + part.height, None, "note_row", lines[0])
            ctx.truth.take(part, "floating", "registration")
            ctx.truth.take(
                part.filter(pl.col("landlord_person_id").is_not_null()).select(
                    "_file",
                    "_row",
                    _person=pl.col("landlord_person_id"),
                    _role=pl.lit("landlord"),
                    _key=pl.col(label["id_number"]),
                ),
                "floating",
                "registration",
            )
            ctx.truth.address(part.rename({"house": "house_code"}), "floating", "registration", "house")
            ctx.truth.file("floating", "registration", name, "xlsx", part.height)
