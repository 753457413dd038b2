"""police: weekly full snapshots of the actual-population register, ``实有人口_YYYYMMDD.csv`` in GB18030.

The register's own flaws live in its database rows, so they are planted once per person and
show in every snapshot that carries that person. A snapshot lists everyone registered by its date:
deregistered persons with 注销日期/注销原因, floating persons who left are simply absent.
"""

from __future__ import annotations

import datetime as dt
import io

import polars as pl

from redwall.generator import text
from redwall.generator.feeds import Context, flaw_column, name_variants, names_of, numbered

KEY = "police.population"
CHUNK = 200_000


def snapshot_dates(start: dt.date, end: dt.date) -> list[dt.date]:
    """Weekly, ending on the last day; in a period shorter than a week, the first and last day."""
    dates = [end - dt.timedelta(days=7 * k) for k in range(0, 1 + (end - start).days // 7)]
    return sorted(set(dates) | ({start} if len(dates) < 2 else set()))


def register(ctx: Context) -> pl.DataFrame:
    """Every person the police ever registered, as the register holds them (flaws included)."""
    w = ctx.world
    rng = ctx.dice("police")
    label = {c.name: c.label for c in ctx.contracts.table(KEY).columns}
    previous = w.houses.select(
        pl.col("house_code").alias("previous_house_code"), pl.col("address").alias("previous_address")
    )
    p = w.persons.join(previous, on="previous_house_code", how="left", maintain_order="left")
    frame = p.select(
        "person_id",
        "registered_on",
        "police_deregistered_on",
        "status",
        "person_type",
        "relocated_on",
        pl.col("id_number").alias(label["id_number"]),
        pl.col("name").alias(label["name"]),
        names_of(p, "sex", "sex").alias(label["sex"]),
        names_of(p, "ethnicity", "ethnicity").alias(label["ethnicity"]),
        pl.col("birth_date").dt.strftime("%Y%m%d").alias(label["birth_date"]),
        pl.col("hukou_address").alias(label["hukou_address"]),
        pl.concat_str([pl.lit("北京市"), "residence_address"]).alias("new_address"),
        pl.concat_str([pl.lit("北京市"), "previous_address"]).alias("old_address"),
        pl.col("hukou_match").alias(label["hukou_match"]),
        pl.col("person_type").alias(label["person_type"]),
        pl.col("phone").alias(label["phone"]),
        pl.col("registered_on").dt.strftime("%Y-%m-%d").alias(label["registered_on"]),
    )
    frame = flaw_column(frame, label["id_number"], {"legacy_id": 0.001, "invalid_checksum": 0.0005}, rng)
    frame = name_variants(frame, label["name"], 0.003, rng)
    frame = flaw_column(frame, label["phone"], {"phone_format": 0.02}, rng, {"phone_format": text.phone_format})
    return frame


def write(ctx: Context) -> None:
    w = ctx.world
    labels = ctx.labels(KEY)
    label = {c.name: c.label for c in ctx.contracts.table(KEY).columns}
    base = register(ctx)
    folder = ctx.inbox("police")
    for day in snapshot_dates(w.period.start, w.period.end):
        gone = (pl.col("status") == "moved_out") & (pl.col("person_type") != "户籍人口")
        on = pl.lit(day)
        deregistered = pl.col("police_deregistered_on") <= on
        # Floating persons and foreigners who left are dropped from the register, not deregistered.
        snap = (
            base.filter(pl.col("registered_on") <= on)
            .join(
                w.persons.select("person_id", pl.col("status_on").alias("_left_on")),
                on="person_id",
                how="left",
                maintain_order="left",
            )
            .filter(~(gone & (pl.col("_left_on") <= on)))
        )
        snap = snap.with_columns(
            pl.when(pl.col("relocated_on") <= on)
            .then("new_address")
            .otherwise(pl.coalesce("old_address", "new_address"))
            .alias(label["residence_address"]),
            pl.when(deregistered)
            .then(pl.col("police_deregistered_on").dt.strftime("%Y-%m-%d"))
            .alias(label["deregistered_on"]),
            pl.when(deregistered)
            .then(pl.when(pl.col("status") == "deceased").then(pl.lit("死亡")).otherwise(pl.lit("迁出")))
            .alias(label["deregistration_reason"]),
        ).sort("person_id", maintain_order=True)
        name = f"实有人口_{day:%Y%m%d}.csv"
        # row 1 is the header line
        snap = numbered(snap, name, 2).with_columns(_person=pl.col("person_id"), _key=pl.col(label["id_number"]))
        with open(folder / name, "wb") as out:
            for i in range(0, max(snap.height, 1), CHUNK):
                buffer = io.StringIO()
                snap.slice(i, CHUNK).select(labels).write_csv(buffer, include_header=i == 0)
                out.write(buffer.getvalue().encode("gb18030"))
        ctx.truth.take(snap, "police", "population")
        ctx.truth.file("police", "population", name, "csv", snap.height)
