"""grid_app: hourly JSON Lines uploads of the grid workers' app, ``grid_app_YYYYMMDDHH.jsonl``.

A record lands in the file of the hour it was uploaded. Phones go offline, so some uploads come
hours late (a status step before its event, steps out of order) and retries repeat a record_id,
sometimes in a later file; the centre sometimes records a step twice. The sequence flaws are
read off the final file positions, so ``defects.parquet`` says exactly what the files hold.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from redwall.generator import text
from redwall.generator.activity import CARE_NOTE, worker_of
from redwall.generator.feeds import Context, flaw_column, name_variants
from redwall.generator.ids import record_ids
from redwall.generator.truth import FLAW


def _seconds(rng: np.random.Generator, n: int, low: float, high: float) -> pl.Series:
    return pl.Series((rng.uniform(low, high, n) * 1000).astype(np.int64)).cast(pl.Duration("ms"))


def _records(kind: str, frame: pl.DataFrame, payload: list[str | pl.Expr], rng: np.random.Generator) -> pl.DataFrame:
    """Envelope + encoded payload; ``event_id``/``status``/``at``/``visit`` kept for the truth."""
    keep = [c for c in ("event_id", "status", "at", "visit", "dup_status") if c in frame.columns]
    return frame.select(
        pl.Series("record_id", record_ids(frame.height, rng)),
        pl.lit(kind).alias("type"),
        (pl.col("recorded_at") + _seconds(rng, frame.height, 0, 90)).alias("recorded_at"),
        "worker_id",
        "grid_code",
        pl.struct(payload).struct.json_encode().alias("payload"),
        *keep,
    )


def _iso(expr: pl.Expr) -> pl.Expr:
    return expr.dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def write(
    ctx: Context, events: pl.DataFrame, steps: pl.DataFrame, visits: pl.DataFrame, inspections: pl.DataFrame
) -> None:
    w = ctx.world
    rng = ctx.dice("grid_app")
    centre = pl.concat_str([pl.lit("ZX"), pl.col("grid_code").str.slice(0, 9), pl.lit("01")])
    reported = events.with_columns(recorded_at=pl.col("reported_at").dt.replace_time_zone(None).cast(pl.Datetime("ms")))
    reported = reported.with_columns(
        worker_id=pl.when(pl.col("source") == "网格员巡查").then(worker_of(reported, w, rng)).otherwise(centre)
    )
    event_records = _records(
        "event",
        reported,
        [
            "event_id",
            "source",
            "major_code",
            "minor_code",
            "object_id",
            "address",
            "lon",
            "lat",
            "description",
            "photo_count",
        ],
        rng,
    )

    # Workflow steps; the centre sometimes records a step twice a few minutes apart.
    departments = sorted(steps["department"].unique().to_list())
    steps = steps.join(
        reported.select("event_id", pl.col("worker_id").alias("reporter")),
        on="event_id",
        how="left",
        maintain_order="left",
    ).with_columns(
        worker_id=pl.when(pl.col("actor") == "reporter")
        .then("reporter")
        .when(pl.col("actor") == "centre")
        .then(centre)
        .otherwise(
            pl.concat_str(
                [
                    pl.lit("BM"),
                    pl.col("grid_code").str.slice(0, 9),
                    pl.col("department").replace_strict({d: f"{i:02d}" for i, d in enumerate(departments)}),
                ]
            )
        ),
        dup_status=pl.lit(False),
    )
    twice = steps.filter((pl.col("status") != "上报") & pl.Series(rng.random(steps.height) < 0.02))
    twice = twice.with_columns(at=pl.col("at") + _seconds(rng, twice.height, 60, 600), dup_status=pl.lit(True))
    steps = pl.concat([steps, twice]).filter(pl.col("at") <= pl.lit(w.period.end_moment.astype("datetime64[ms]")))
    status_records = _records(
        "event_status",
        steps.with_columns(recorded_at=pl.col("at")),
        ["event_id", "status", "department", _iso(pl.col("at")).alias("at")],
        rng,
    )

    visit_records, seen = _visits(ctx, visits, rng)
    inspection_records = _records(
        "inspection", inspections.rename({"at": "recorded_at"}), ["object_id", "status", "note"], rng
    )
    records = pl.concat([event_records, status_records, visit_records, inspection_records], how="diagonal")
    records = _upload(records, w.period.end_moment, rng)
    _defects_and_files(ctx, records, seen)
    ctx.truth.address(events, "grid_app", "event", "building")


def _visits(ctx: Context, visits: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Visit records, and the persons seen (one row each, flaws planted) for the truth."""
    w = ctx.world
    seen = visits.join(
        w.persons.select("person_id", "grid_code"), on="person_id", how="left", maintain_order="left"
    ).with_columns(
        item=pl.int_range(pl.len()).over("visit"),
        id_number=pl.when("show_id").then("id_number"),
        phone=pl.when("show_phone").then("phone"),
    )
    seen = name_variants(seen, "name", 0.08, rng)
    seen = flaw_column(seen, "id_number", {"lowercase_x": 0.2, "fullwidth_digits": 0.02, "padded_spaces": 0.02}, rng)
    seen = flaw_column(seen, "phone", {"phone_format": 0.05}, rng, {"phone_format": text.phone_format})
    seen = seen.with_columns(
        **{
            "id_number" + FLAW: pl.coalesce(
                "id_number" + FLAW, pl.when(pl.col("id_number").is_null()).then(pl.lit("missing_id"))
            )
        }
    )
    notes = seen.with_columns(
        note=pl.concat_list(
            [
                pl.col("care_tags").list.eval(pl.element().replace_strict(CARE_NOTE, default=None)).list.drop_nulls(),
                pl.when(pl.col("disability_category") == "4")
                .then(pl.lit(["行动不便"]))
                .otherwise(pl.lit([], pl.List(pl.String))),
                pl.when(pl.col("extra_note") != "")
                .then(pl.concat_list("extra_note"))
                .otherwise(pl.lit([], pl.List(pl.String))),
            ]
        )
    )
    per_visit = notes.group_by("visit", maintain_order=True).agg(
        pl.col("at").first().alias("recorded_at"),
        pl.col("worker_id").first(),
        pl.col("grid_code").first(),
        pl.col("house_code").first(),
        pl.struct("name", "id_number", "phone").alias("persons"),
        pl.col("note")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique(maintain_order=True)
        .alias("care_notes"),
        cared=pl.col("care_tags").list.len().sum() > 0,
        next_in=pl.col("next_in").first(),
    )
    per_visit = per_visit.with_columns(
        next_visit_on=pl.when("cared").then(
            (pl.col("recorded_at").cast(pl.Date) + pl.duration(days=pl.col("next_in"))).dt.strftime("%Y-%m-%d")
        )
    )
    return _records("visit", per_visit, ["house_code", "persons", "care_notes", "next_visit_on"], rng), seen


def _upload(records: pl.DataFrame, end: np.datetime64, rng: np.random.Generator) -> pl.DataFrame:
    """When each record reached the server: soon, hours late when offline, and again on retry."""
    n = records.height
    late = rng.random(n) < np.where(records["type"].to_numpy() == "event", 0.03, 0.02)
    delay = np.where(late, rng.uniform(3600, 6 * 3600, n), rng.uniform(0, 300, n))
    records = records.with_columns(
        uploaded_at=pl.col("recorded_at") + pl.Series((delay * 1000).astype(np.int64)).cast(pl.Duration("ms"))
    )
    retry = records.filter(pl.Series(rng.random(n) < 0.015))
    retry = retry.with_columns(uploaded_at=pl.col("uploaded_at") + _seconds(rng, retry.height, 30, 3 * 3600))
    last = pl.lit(end.astype("datetime64[ms]"))
    records = pl.concat([records, retry]).with_columns(uploaded_at=pl.min_horizontal("uploaded_at", last))
    records = records.sort("uploaded_at", "record_id", maintain_order=True).with_columns(
        file=pl.concat_str([pl.lit("grid_app_"), pl.col("uploaded_at").dt.strftime("%Y%m%d%H"), pl.lit(".jsonl")]),
        pos=pl.int_range(pl.len()),
    )
    return records.with_columns(line=pl.int_range(pl.len()).over("file") + 1)


def _defects_and_files(ctx: Context, records: pl.DataFrame, seen: pl.DataFrame) -> None:
    truth = ctx.truth
    where = pl.concat_str(["file", pl.lit(":"), pl.col("line").cast(pl.String)])
    records = records.with_columns(
        copy=pl.int_range(pl.len()).over("record_id"), first_at=where.first().over("record_id")
    )

    def flag(frame: pl.DataFrame, column: str, kind: str, value: pl.Expr, detail: pl.Expr) -> None:
        truth.add_defects(
            frame.select(
                pl.lit("grid_app").alias("source"),
                pl.col("type").alias("table"),
                "file",
                pl.col("line").alias("row"),
                pl.lit(column).alias("column"),
                pl.lit(kind).alias("kind"),
                value.alias("value"),
                detail.alias("detail"),
                pl.lit(None, pl.String).alias("person_id"),
            )
        )

    flag(
        records.filter(pl.col("copy") > 0),
        "record_id",
        "duplicate_upload",
        pl.col("record_id"),
        pl.concat_str([pl.lit("first at "), "first_at"]),
    )
    status = records.filter((pl.col("type") == "event_status") & (pl.col("copy") == 0))
    event_at = records.filter((pl.col("type") == "event") & (pl.col("copy") == 0)).select(
        "event_id", event_pos="pos", event_where=where
    )
    status = status.join(event_at, on="event_id", how="left", maintain_order="left")
    flag(
        status.filter(pl.col("event_pos").is_null() | (pl.col("pos") < pl.col("event_pos"))),
        "payload.event_id",
        "status_before_event",
        pl.col("event_id"),
        pl.concat_str([pl.lit("event at "), pl.col("event_where").fill_null("no file")]),
    )
    ordered = (
        status.filter(~pl.col("dup_status"))
        .sort("pos", maintain_order=True)
        .with_columns(latest=pl.col("at").cum_max().over("event_id"))
    )
    flag(
        ordered.filter(pl.col("at") < pl.col("latest")),
        "payload.at",
        "status_out_of_order",
        _iso(pl.col("at")),
        pl.concat_str([pl.lit("after a step of "), _iso(pl.col("latest"))]),
    )
    flag(status.filter("dup_status"), "payload.status", "duplicate_status", pl.col("status"), pl.col("event_id"))

    # Persons seen on visits: one record per line copy and list item.
    lines = records.filter(pl.col("type") == "visit").select("visit", "file", "line", "record_id")
    persons = seen.join(lines, on="visit", how="inner", maintain_order="left")
    truth.take(
        persons.select(
            _file="file",
            _row="line",
            _item="item",
            _person="person_id",
            _role=pl.lit("seen"),
            _key=pl.concat_str(["record_id", pl.lit("#"), pl.col("item").cast(pl.String)]),
        ),
        "grid_app",
        "visit",
    )
    for field in ("name", "id_number", "phone"):
        detail = pl.col(field + "#detail") if field + "#detail" in persons.columns else pl.lit(None, pl.String)
        truth.add_defects(
            persons.filter(pl.col(field + FLAW).is_not_null()).select(
                pl.lit("grid_app").alias("source"),
                pl.lit("visit").alias("table"),
                "file",
                pl.col("line").alias("row"),
                pl.concat_str([pl.lit("payload.persons["), pl.col("item").cast(pl.String), pl.lit("]." + field)]).alias(
                    "column"
                ),
                pl.col(field + FLAW).alias("kind"),
                pl.col(field).alias("value"),
                detail.alias("detail"),
                "person_id",
            )
        )

    envelope = pl.struct(
        pl.col("record_id"), pl.col("type"), _iso(pl.col("recorded_at")).alias("recorded_at"), "worker_id", "grid_code"
    ).struct.json_encode()
    records = records.with_columns(
        json=pl.concat_str([envelope.str.head(-1), pl.lit(',"payload":'), "payload", pl.lit("}")])
    )
    folder = ctx.inbox("grid_app")
    for (file,), part in records.partition_by("file", as_dict=True, maintain_order=True).items():
        (folder / file).write_text("\n".join(part["json"].to_list()) + "\n", encoding="utf-8")
        truth.file("grid_app", "mixed", file, "jsonl", part.height)
