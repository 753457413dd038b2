"""Survivorship: which record's value a person's row keeps for each attribute, once resolution has
put the person's records together.

- Identity attributes (:data:`IDENTITY`: ID, name, sex, birth date, ethnicity, phone, hukou
  address): the first non-null value by source priority (:data:`PRIORITY`: the ``trust`` each
  source's contract declares, 0 first: police, floating, municipal, ledgers, grid app) and the most
  recent record first within a source. Birth date and
  sex fall back to what a citizen ID encodes (:func:`with_values_from_id`).
- Residence (:data:`RESIDENCE`: address, house, building, grid, community, person type, 人户一致):
  all from one record, so they never contradict each other: the person's current registration of
  residence (police: in the latest snapshot and not deregistered, before floating: the latest
  registration); without one, the first record carrying an address or a house in the order above.
"""

from __future__ import annotations

import polars as pl

from redwall.identifiers import CITIZEN_NUMBERED, id_birth_date_expr
from redwall.schemas import load_contracts

PRIORITY = load_contracts().trust  # source system → its rank, from its contract's ``trust``
IDENTITY = ["id_number", "doc_type", "name", "sex", "birth_date", "ethnicity", "phone", "hukou_address"]
RESIDENCE = [
    "residence_address",
    "house_code",
    "building_code",
    "grid_code",
    "community_code",
    "person_type",
    "hukou_match",
]


def _first(value: pl.Expr, rank: pl.Expr, where: pl.Expr) -> pl.Expr:
    """In a group, ``value`` of the best-ranked (lowest) row where ``where`` holds; no sort."""
    return value.get(pl.when(where).then(rank).arg_min())


def surviving_values() -> list[pl.Expr]:
    """Aggregations over one person's records (a ``group_by`` of ``person_key``): each
    :data:`IDENTITY` attribute's surviving value, and ``residence``, a struct of the
    :data:`RESIDENCE` attributes of one record (to unnest). The records carry ``priority``
    (:data:`PRIORITY` of their source), ``observed_on`` and ``registered_now``."""
    # Survivorship order as one number, lowest first: source priority, then the most recent.
    days = 100_000  # more than any date's days since 1970
    rank = pl.col("priority").cast(pl.Int64) * days - pl.col("observed_on").cast(pl.Int64).fill_null(-days)
    # a current registration of residence before any other record, in the same order
    residence_rank = rank + (~pl.col("registered_now")).cast(pl.Int64) * (max(PRIORITY.values()) + 1) * 2 * days
    has_place = pl.col("residence_address").is_not_null() | pl.col("house_code").is_not_null()
    return [
        *(_first(pl.col(c), rank, pl.col(c).is_not_null()).alias(c) for c in IDENTITY),
        _first(pl.struct(RESIDENCE), residence_rank, has_place).alias("residence"),
    ]


def with_values_from_id(persons: pl.DataFrame) -> pl.DataFrame:
    """``persons`` with the birth date and sex a citizen ID encodes where no record gave them."""
    id_sex = pl.col("id_number").str.slice(16, 1).cast(pl.Int32, strict=False) % 2
    is_citizen = pl.col("doc_type").is_in(CITIZEN_NUMBERED)
    return persons.with_columns(
        birth_date=pl.coalesce("birth_date", pl.when(is_citizen).then(id_birth_date_expr(pl.col("id_number")))),
        sex=pl.coalesce("sex", pl.when(is_citizen).then((2 - id_sex).cast(pl.String))),  # odd: male "1"
    )
