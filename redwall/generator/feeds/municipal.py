"""municipal: monthly full snapshots from the city exchange, under exchange field codes.

One snapshot per dataset and month touched by the period, as of the month's last day in the
period: ``<dataset>_YYYYMM.parquet`` (mz_dibao, mz_death) or ``.csv`` in UTF-8 (cl_disability,
rs_elderly_allowance), each with ``<dataset>_YYYYMM.dict.json``: field code -> name, type, and
for code fields how they are delivered (``encoding`` ``code`` plus ``codes``, or ``name``).
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from redwall.generator.feeds import Context, code_names, flaw_column, name_variants, numbered

FORMATS = {"mz_dibao": "parquet", "cl_disability": "csv", "mz_death": "parquet", "rs_elderly_allowance": "csv"}
# Code fields delivered as codes (explained by the dict) or as names.
DELIVERED_AS = {
    ("cl_disability", "category"): "code",
    ("cl_disability", "level"): "code",
    ("rs_elderly_allowance", "age_band"): "name",
}
AGE_BANDS = {"1": (80, 90), "2": (90, 100), "3": (100, 200)}


def snapshot_dates(start: dt.date, end: dt.date) -> list[dt.date]:
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    last_of_month: dict[tuple[int, int], dt.date] = {}
    for d in days:
        last_of_month[(d.year, d.month)] = d
    return list(last_of_month.values())


def _alive(on: pl.Expr) -> pl.Expr:
    return ~pl.col("status").is_in(["deceased", "moved_out"]) | (pl.col("status_on") > on)


def datasets(ctx: Context, on: dt.date) -> dict[str, pl.DataFrame]:
    """Each dataset as of ``on``, with the contract's column names and ``person_id`` for the truth."""
    p = ctx.world.persons
    day = pl.lit(on)
    heads = p.filter(pl.col("relation") == "户主").select(
        "household_id", head_id_number="id_number", head_person_id="person_id"
    )
    dibao = (
        p.filter(pl.col("dibao_household_id").is_not_null() & (pl.col("dibao_start_on") <= day) & _alive(day))
        .join(heads, on="household_id", how="left", maintain_order="left")
        .with_columns(household_size=pl.len().over("household_id"))
    )
    death_registered = pl.col("status_on") + pl.duration(days=pl.col("person_id").str.slice(-1).cast(pl.Int64) % 5 + 1)
    age_on = ((day - pl.col("birth_date")).dt.total_days() / 365.25).floor()
    band = pl.when(age_on >= 100).then(pl.lit("3")).when(age_on >= 90).then(pl.lit("2")).otherwise(pl.lit("1"))
    return {
        "mz_dibao": dibao.select(
            "person_id",
            "head_person_id",
            household_id="dibao_household_id",
            id_number="id_number",
            name="name",
            head_id_number="head_id_number",
            household_size="household_size",
            start_on="dibao_start_on",
            end_on="dibao_end_on",
        ),
        "cl_disability": p.filter(
            pl.col("disability_category").is_not_null()
            & (_alive(day) | (pl.col("status_on") > pl.lit(on - dt.timedelta(days=60))))
        ).select(
            "person_id",
            "id_number",
            "name",
            certificate_number="disability_certificate",
            category="disability_category",
            level="disability_level",
            valid_until="disability_valid_until",
        ),
        "mz_death": p.filter((pl.col("status") == "deceased") & (death_registered <= day)).select(
            "person_id", "id_number", "name", died_on="status_on"
        ),
        "rs_elderly_allowance": p.filter(
            (pl.col("elderly_allowance_since") <= day) & _alive(pl.lit(on.replace(day=1)))
        ).select(
            "person_id",
            "id_number",
            "name",
            age_band=band.replace_strict(code_names("age_band")),
            since="elderly_allowance_since",
        ),
    }


def write(ctx: Context) -> None:
    rng = ctx.dice("municipal")
    folder = ctx.inbox("municipal")
    for on in snapshot_dates(ctx.world.period.start, ctx.world.period.end):
        for name, frame in datasets(ctx, on).items():
            table = ctx.contracts.table(f"municipal.{name}")
            fmt = FORMATS[name]
            stem = f"{name}_{on:%Y%m}"
            file = f"{stem}.{fmt}"
            # a CSV's rows as Excel shows them, under the header line; Parquet counts records
            frame = numbered(frame.sort("id_number", maintain_order=True), file, 2 if fmt == "csv" else 1)
            fields = {c.name: c.field or c.name for c in table.columns}  # a column without a code: its name
            frame = frame.rename(fields)
            frame = flaw_column(frame, fields["id_number"], {"lowercase_x": 0.03}, rng)
            frame = name_variants(frame, fields["name"], 0.005, rng)
            out = frame.select(fields.values())
            if fmt == "parquet":
                out.write_parquet(folder / file)
            else:
                out.write_csv(folder / file, date_format="%Y-%m-%d")
            dictionary: dict[str, dict[str, object]] = {}
            for c in table.columns:
                entry: dict[str, object] = {
                    "name": c.label,
                    "type": {"code": "string", "json": "string"}.get(c.type, c.type),
                }
                if c.codes:
                    encoding = DELIVERED_AS.get((name, c.name), "code")
                    entry["encoding"] = encoding
                    if encoding == "code":
                        entry["codes"] = code_names(c.codes)
                dictionary[fields[c.name]] = entry
            (folder / f"{stem}.dict.json").write_text(
                json.dumps(dictionary, ensure_ascii=False, indent=1), encoding="utf-8"
            )
            truth_frame = frame.with_columns(_person=pl.col("person_id"), _key=pl.col(fields["id_number"]))
            ctx.truth.take(truth_frame, "municipal", name)
            if "head_person_id" in frame.columns:
                ctx.truth.take(
                    truth_frame.select(
                        "_file",
                        "_row",
                        _person="head_person_id",
                        _role=pl.lit("household_head"),
                        _key=fields["head_id_number"],
                    ),
                    "municipal",
                    name,
                )
            ctx.truth.file("municipal", name, file, fmt, frame.height)
