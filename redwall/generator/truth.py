"""The ground truth collected while the feeds are written, and written to ``home.truth`` at the end.

Feed writers hand over frames in one convention: data columns named by the header as delivered,
``<header>#flaw`` beside a column holding the flaw kind planted in that cell (null: none) and
optionally ``<header>#detail``; ``_file``, ``_row`` (row number as an ingester counts it),
``_person`` (true person id), ``_role`` and ``_key`` (the record key as delivered).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

RECORD_SCHEMA = {
    "source": pl.String,
    "table": pl.String,
    "file": pl.String,
    "row": pl.Int64,
    "item": pl.Int64,
    "role": pl.String,
    "record_key": pl.String,
    "person_id": pl.String,
}
DEFECT_SCHEMA = {
    "source": pl.String,
    "table": pl.String,
    "file": pl.String,
    "row": pl.Int64,
    "column": pl.String,
    "kind": pl.String,
    "value": pl.String,
    "detail": pl.String,
    "person_id": pl.String,
}
ADDRESS_SCHEMA = {
    "address": pl.String,
    "variant": pl.String,
    "level": pl.String,
    "house_code": pl.String,
    "building_code": pl.String,
    "source": pl.String,
    "table": pl.String,
}
FILE_SCHEMA = {"source": pl.String, "table": pl.String, "file": pl.String, "format": pl.String, "rows": pl.Int64}
FLAW = "#flaw"
DETAIL = "#detail"


@dataclass
class Truth:
    records: list[pl.DataFrame] = field(default_factory=list)
    defects: list[pl.DataFrame] = field(default_factory=list)
    addresses: list[pl.DataFrame] = field(default_factory=list)
    files: list[pl.DataFrame] = field(default_factory=list)

    def take(self, frame: pl.DataFrame, source: str, table: str) -> None:
        """Records (rows naming a person) and cell flaws of a delivered frame."""
        if "_person" in frame.columns:
            self.records.append(
                frame.filter(pl.col("_person").is_not_null())
                .select(
                    pl.lit(source).alias("source"),
                    pl.lit(table).alias("table"),
                    pl.col("_file").alias("file"),
                    pl.col("_row").alias("row"),
                    (pl.col("_item") if "_item" in frame.columns else pl.lit(None)).cast(pl.Int64).alias("item"),
                    (pl.col("_role") if "_role" in frame.columns else pl.lit("subject")).alias("role"),
                    pl.col("_key").cast(pl.String).alias("record_key"),
                    pl.col("_person").alias("person_id"),
                )
                .cast(pl.Schema(RECORD_SCHEMA))
            )
        for flaw in (c for c in frame.columns if c.endswith(FLAW)):
            column = flaw.removesuffix(FLAW)
            detail = pl.col(column + DETAIL) if column + DETAIL in frame.columns else pl.lit(None, pl.String)
            person = pl.col("_person") if "_person" in frame.columns else pl.lit(None, pl.String)
            self.defects.append(
                frame.filter(pl.col(flaw).is_not_null())
                .select(
                    pl.lit(source).alias("source"),
                    pl.lit(table).alias("table"),
                    pl.col("_file").alias("file"),
                    pl.col("_row").alias("row"),
                    pl.lit(column).alias("column"),
                    pl.col(flaw).alias("kind"),
                    pl.col(column).cast(pl.String).alias("value"),
                    detail.alias("detail"),
                    person.alias("person_id"),
                )
                .cast(pl.Schema(DEFECT_SCHEMA))
            )

    def defect(
        self,
        source: str,
        table: str,
        file: str,
        row: int | None,
        column: str | None,
        kind: str,
        value: str | None = None,
        detail: str | None = None,
        person_id: str | None = None,
    ) -> None:
        """One flaw not tied to a cell of a frame (a renamed sheet, an added column, a note row)."""
        self.defects.append(
            pl.DataFrame(
                [
                    {
                        "source": source,
                        "table": table,
                        "file": file,
                        "row": row,
                        "column": column,
                        "kind": kind,
                        "value": value,
                        "detail": detail,
                        "person_id": person_id,
                    }
                ],
                schema=DEFECT_SCHEMA,
            )
        )

    def add_defects(self, frame: pl.DataFrame) -> None:
        """Flaws already in the defects schema (for flaws found by position, not by cell)."""
        self.defects.append(frame.cast(pl.Schema(DEFECT_SCHEMA)).select(list(DEFECT_SCHEMA)))

    def address(self, frame: pl.DataFrame, source: str, table: str, level: str) -> None:
        """Delivered address texts with the place they mean (columns address, address_variant, codes)."""
        house = pl.col("house_code") if "house_code" in frame.columns else pl.lit(None, pl.String)
        self.addresses.append(
            frame.select(
                "address",
                pl.col("address_variant").alias("variant"),
                pl.lit(level).alias("level"),
                house.alias("house_code"),
                "building_code",
                pl.lit(source).alias("source"),
                pl.lit(table).alias("table"),
            )
            .cast(pl.Schema(ADDRESS_SCHEMA))
            .unique(maintain_order=True)
        )

    def file(self, source: str, table: str, file: str, fmt: str, rows: int) -> None:
        self.files.append(
            pl.DataFrame(
                [{"source": source, "table": table, "file": file, "format": fmt, "rows": rows}], schema=FILE_SCHEMA
            )
        )

    @staticmethod
    def _concat(frames: list[pl.DataFrame], schema: dict) -> pl.DataFrame:
        return pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)

    def frames(self) -> dict[str, pl.DataFrame]:
        return {
            "records": self._concat(self.records, RECORD_SCHEMA),
            "defects": self._concat(self.defects, DEFECT_SCHEMA),
            "addresses": self._concat(self.addresses, ADDRESS_SCHEMA).unique(
                ["address", "house_code", "building_code"], maintain_order=True
            ),
            "files": self._concat(self.files, FILE_SCHEMA),
        }
