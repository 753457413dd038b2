"""What the shared warehouse may show of a table, derived from its contract's ``pii`` and
``sensitivity`` (GB/T 35273 masks, GB/T 37964 keyed pseudonyms).

Per ``pii`` kind, in the shared view:

- ``id_number`` and ``phone``: ``<name>_key``, a keyed pseudonym (HMAC-SHA256 under the secret
  ``REDWALL_PSEUDONYM_KEY``, the first 16 hex digits) that keeps records linkable, plus ``<name>``
  as a display mask: ``110102********123X``, ``138****5678``.
- ``person_key``: replaced by its keyed pseudonym (the lake's key is an unkeyed digest of the ID).
- ``name``: the first character and one ``*`` (``张*``), so the length does not show either.
- ``address``: cut after the building (``府右街12号院3号楼``); null when no building can be told.
- ``house``: a keyed pseudonym, so persons still group by house but no longer join the house
  register's unit and room (which would undo the address cut).
- ``birth_date``: ``birth_year`` only.
- ``sources``: without the tables whose listing is itself sensitive (``sensitive_listing``:
  disability certificates, minimum income, hardship aid, living alone); ``source``: a row from such
  a table is left out.
- any other kind (e.g. a JSON list of persons): left out.

Columns of ``sensitivity: sensitive`` are left out unless the table's ``catalogue.share_sensitive``
names them (for a table shared on a condition that needs them). Everything else is kept as is.

The rectification issues (``quality.issue``, no contract of their own) follow the same rules
through :func:`shared_issues`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from redwall.marts.address import building_part
from schemas import Table, load_contracts

KEY_ENV = "REDWALL_PSEUDONYM_KEY"
DEMO_KEY = b"REDWALL-DEMO-KEY--SYNTHETIC-DATA-ONLY--NEVER-FOR-REAL-PERSONS"
PSEUDONYM_HEX = 16

log = logging.getLogger(__name__)


class MissingKeyError(RuntimeError):
    """No pseudonym key: personal data must not leave the restricted zone."""


def pseudonym_key(demo: bool = False) -> bytes:
    """The secret from ``REDWALL_PSEUDONYM_KEY``; the public demo key only when ``demo`` and no
    secret is set."""
    if secret := os.environ.get(KEY_ENV):
        return secret.encode()
    if demo:
        log.warning("no %s set: pseudonymising with the PUBLIC DEMO KEY (synthetic data only)", KEY_ENV)
        return DEMO_KEY
    raise MissingKeyError(f"set {KEY_ENV} to publish; without it only demo=True may publish (with a public key)")


def pseudonyms(values: pl.Series, key: bytes) -> pl.Series:
    """HMAC-SHA256 of each value under ``key``, as its first 16 hex digits (null stays null).

    The two padded key states are hashed once and copied per value, the standard HMAC
    construction done by hand: about 0.9 s for 1.1 million values here, where ``hmac.digest`` per
    value takes 3.3 s.
    """
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def one(value: str) -> str:
        i, o = inner.copy(), outer.copy()
        i.update(value.encode())
        o.update(i.digest())
        return o.hexdigest()[:PSEUDONYM_HEX]

    return pl.Series(values.name, [None if v is None else one(v) for v in values], dtype=pl.String)


def _keep_ends(col: pl.Expr, head: int, tail: int) -> pl.Expr:
    hidden = (col.str.len_chars() - head - tail).clip(lower_bound=1)
    return pl.concat_str(col.str.head(head), pl.lit("*" * 64).str.head(hidden), col.str.tail(tail))


def mask_id_number(col: pl.Expr) -> pl.Expr:
    """``110102********123X``: the region and the last four of an ID (or a longer certificate
    number); only the last two of a short document number such as a passport."""
    return pl.when(col.str.len_chars() >= 14).then(_keep_ends(col, 6, 4)).otherwise(_keep_ends(col, 0, 2))


def mask_phone(col: pl.Expr) -> pl.Expr:
    """``138****5678`` for a mobile number; only the last four of a shorter (fixed-line) number."""
    return pl.when(col.str.len_chars() >= 11).then(_keep_ends(col, 3, 4)).otherwise(_keep_ends(col, 0, 4))


def mask_name(col: pl.Expr) -> pl.Expr:
    return pl.concat_str(col.str.head(1), pl.lit("*"))


@dataclass(frozen=True)
class SharedColumn:
    name: str
    label: str
    source: str
    value: Callable[[pl.Expr, bytes], pl.Expr]


def sensitive_listings() -> list[str]:
    """Keys of the tables whose listing of a person is itself sensitive."""
    return [t.key for t in load_contracts().tables.values() if t.sensitive_listing]


def without_sensitive_listings(sources: pl.Expr) -> pl.Expr:
    """A comma-separated list of table keys without those whose listing is sensitive."""
    listed = sensitive_listings()
    return sources.str.split(",").list.eval(pl.element().filter(~pl.element().is_in(listed))).list.join(",")


def _pseudonym(col: pl.Expr, key: bytes) -> pl.Expr:
    return col.map_batches(lambda s: pseudonyms(s, key), return_dtype=pl.String, is_elementwise=True)


TREATMENTS: dict[str, tuple[tuple[str, str, Callable[[pl.Expr, bytes], pl.Expr]], ...]] = {
    "person_key": (("{}", "{}（假名）", _pseudonym),),
    "id_number": (("{}_key", "{}（假名）", _pseudonym), ("{}", "{}（脱敏）", lambda c, _: mask_id_number(c))),
    "phone": (("{}_key", "{}（假名）", _pseudonym), ("{}", "{}（脱敏）", lambda c, _: mask_phone(c))),
    "name": (("{}", "{}（脱敏）", lambda c, _: mask_name(c)),),
    "address": (("{}", "{}（至楼栋）", lambda c, _: building_part(c)),),
    "house": (("{}", "{}（假名）", _pseudonym),),
    "birth_date": (("birth_year", "出生年份", lambda c, _: c.dt.year()),),
    "sources": (("{}", "{}（不含敏感名册）", lambda c, _: without_sensitive_listings(c)),),
    "source": (("{}", "{}", lambda c, _: c),),  # kept; rows of sensitive listings are left out
}


def shared_columns(table: Table) -> list[SharedColumn]:
    """The columns the shared warehouse holds for ``table``, in contract order."""
    opted_in = set(table.catalogue.get("share_sensitive", ()))
    if stray := opted_in - {c.name for c in table.all_columns if c.sensitivity == "sensitive" and not c.pii}:
        raise ValueError(f"{table.key}: catalogue.share_sensitive names no sensitive column: {sorted(stray)}")
    shared = []
    for c in table.all_columns:
        if c.pii:
            shared += [SharedColumn(name.format(c.name), label.format(c.label), c.name, value)
                       for name, label, value in TREATMENTS.get(c.pii, ())]
        elif c.sensitivity != "sensitive" or c.name in opted_in:
            shared.append(SharedColumn(c.name, c.label, c.name, lambda col, _: col))
    return shared


def shared_view(frame: pl.DataFrame, table: Table, key: bytes) -> pl.DataFrame:
    """``frame`` (a table of ``table``'s contract) as the shared warehouse may hold it."""
    for c in table.all_columns:
        if c.pii == "source":
            frame = frame.filter(~pl.col(c.name).is_in(sensitive_listings()))
    return frame.select(c.value(pl.col(c.source), key).alias(c.name) for c in shared_columns(table))


def shared_issues(issues: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """Rectification issues as the shared warehouse may hold them: a record key that digests
    personal data becomes its keyed pseudonym (as ``person_key`` does, so an issue still joins its
    person), and an issue of a sensitive listing keeps no record key at all (joined to its person
    it would say the person is listed there). The record hint, a digest of a name and address kept
    to recognise a corrected record, stays in the lake. Counts, places and messages stay as they are."""
    personal = [k for k, t in load_contracts().tables.items() if t.personal_key]
    table = pl.col("table")
    return issues.with_columns(
        pl.when(table.is_in(sensitive_listings())).then(None)
        .when(table.is_in(personal)).then(_pseudonym(pl.col("record_key"), key))
        .otherwise("record_key").alias("record_key")).drop("record_hint", strict=False)
