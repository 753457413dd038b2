"""The data contracts: every table redwall holds, declared once in YAML — the feed tables
(``feeds/``), ledger types (``ledgers/``) and marts (``marts/``), and the system tables
(``system/``): the operational records of ingestion (``ops``), the quality loop (``quality``), the
resource catalogue (``catalog``) and the committed reference data (``ref``).

Everything else is derived from here: Delta schemas, header mapping, expectation suites, ledger
templates, the catalogue, the warehouse's comments and the masking rules. Use
:func:`load_contracts`; never read the YAML elsewhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

HERE = Path(__file__).parent
REFERENCE = HERE / "reference"

TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "code": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "Asia/Shanghai"),
    "bool": pl.Boolean(),
    "json": pl.String(),
    # system tables only: an instant as recorded (UTC), and a list of names
    "datetime_utc": pl.Datetime("us", "UTC"),
    "string_list": pl.List(pl.String()),
}
SYSTEM_TYPES = ("datetime_utc", "string_list")
# Kinds of table: delivered by a source (feed, ledger), built by redwall (mart), a view the warehouse
# makes over the marts (view: a marts/ contract with a ``query``), or kept by redwall itself
# (system: one contract file per lake layer or warehouse schema, under system/).
DELIVERED = ("feed", "ledger")
SENSITIVITY = {
    "direct_identifier": "直接标识符",
    "quasi_identifier": "准标识符",
    "sensitive": "敏感信息",
    "public": "一般信息",
}
SHARING_TYPES = ("无条件共享", "有条件共享", "不予共享")
# Kinds of personal data a column holds (``pii``), with the sensitivity each implies; the shared
# warehouse treats each kind its own way (redwall.privacy). Direct identifiers name a person; the
# quasi-identifiers here would, joined with other shared tables: the house (its room), the full
# birth date, the age, the day something happened to a person (``date``: moving in or out), and the registers that know a person (``sources``, a list; ``source``, a record's
# own register): some listings are sensitive.
PII_KINDS = {
    "person_key": "direct_identifier",
    "id_number": "direct_identifier",
    "phone": "direct_identifier",
    "name": "direct_identifier",
    "address": "direct_identifier",
    "persons": "direct_identifier",
    "house": "quasi_identifier",
    "birth_date": "quasi_identifier",
    "age": "quasi_identifier",
    "date": "quasi_identifier",
    "sources": "quasi_identifier",
    "source": "quasi_identifier",
}
UPDATE_CYCLES = ("实时", "每日", "每周", "每月", "每季度", "每半年", "每年", "不定期")
# How late a delivery may be, by update cycle, before it counts as overdue (不定期: never).
DELIVERY_GRACE = {
    "实时": dt.timedelta(hours=6),
    "每日": dt.timedelta(days=2),
    "每周": dt.timedelta(days=9),
    "每月": dt.timedelta(days=35),
    "每季度": dt.timedelta(days=100),
    "每半年": dt.timedelta(days=190),
    "每年": dt.timedelta(days=370),
}
LOADS = ("snapshot", "increment", "append")
# When a snapshot delivery is held for an analyst's decision instead of applied (redwall.ingest.holds):
# it would close more than the share ``closing`` of the current records of its scope (the table, or
# each community of a ledger kept per community), or its rows refused are more than the share
# ``refused`` of its rows; either only from ``at_least`` records on, since a share of a handful is
# no sign of a broken file. A snapshot contract's ``hold`` overrides any of them.
HOLD_DEFAULTS = {"closing": 0.5, "refused": 0.5, "at_least": 10}
# Code lists whose values arrive with the district feed, not from committed reference data.
DYNAMIC_CODES = ("community", "grid")
# The only sharing type that lets a mart leave its street (street_package ``shares``): a condition
# (有条件共享) binds the data to the street's own use.
SHARED_UPWARD = "无条件共享"


# What a table whose rows name persons gives person resolution (``person``; the extraction is
# redwall.marts.resolution.records). Its kind says how a record names its person and what it tells:
# ``listed``, a list naming people by citizen ID (its rows as the latest snapshot stands, or all of an
# append-only list); ``residents``, the register of who lives here (every version: the backbone of
# the residence history; its latest snapshot says who still does; a number of someone from outside
# the mainland given without its type); ``registrations``, residence registrations of people from
# elsewhere, with their document type (every version); ``visits``, households seen on a visit, the
# persons each lists as JSON.
PERSON_KINDS = ("listed", "residents", "registrations", "visits")
# The attributes a person record may take from a column (``takes``; the column of that name unless
# ``from`` names another). The residence address is the table's ``address``.
PERSON_ATTRIBUTES = (
    *("id_number", "name", "sex", "birth_date", "ethnicity", "phone", "hukou_address", "person_type"),
    *("hukou_match", "registered_on", "deregistered_on", "died_on", "visited_on"),
)
PERSON_KEYS = frozenset(("kind", "takes", "from", "care", "person_type", "catch_up_days"))
CARE_KEYS = frozenset(("type", "from", "until", "when"))


class ContractError(ValueError):
    """A contract file is inconsistent; raised at load time, never later in a run."""


@dataclass(frozen=True)
class Layout:
    """How a column shows as a column of a workbook redwall writes (the catalogue's sheets)."""

    width: int = 12
    wrap: bool = False
    number_format: str | None = None


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    type: str
    sensitivity: str
    required: bool = False
    field: str | None = None
    aliases: tuple[str, ...] = ()
    codes: str | None = None
    format: str | None = None
    pii: str | None = None
    # Typed by hand (descriptions, notes, addresses): may hold an ID or phone number anywhere in
    # the text, so it is scrubbed before it leaves the lake (redwall.privacy.scrub_free_text).
    free_text: bool = False
    description: str | None = None
    example: Any = None
    element: str | None = None  # the national data element it is (schemas/reference/data_element.csv)
    layout: Layout = Layout()

    @property
    def dtype(self) -> pl.DataType:
        return TYPES[self.type]

    @property
    def headers(self) -> tuple[str, ...]:
        """Every spelling a delivered header may take for this column, preferred first: the field
        code, the label, the aliases, then its data element's standard name, identifier, internal
        identifier and synonyms — the same for every feed and ledger."""
        names = [self.field or self.name, self.label, *self.aliases, *element_spellings(self.element)]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Care:
    """The care a listed person's record tells (``person.care``): ``type`` (a care_type code) where
    ``start`` (``from``) is on or before the build date, ``until`` is empty or not before it, and
    each column of ``when`` holds its code; no condition: every record."""

    type: str
    start: str | None = None
    until: str | None = None
    when: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PersonRecords:
    """What a table's rows give person resolution (see PERSON_KINDS)."""

    kind: str
    takes: tuple[str, ...]  # attributes taken as they are (PERSON_ATTRIBUTES)
    columns: tuple[tuple[str, str], ...] = ()  # attribute → the column it is in, where not its own name
    care: Care | None = None
    person_type: str | None = None  # registrations: the person_type of someone registered by citizen ID
    catch_up_days: int | None = None  # residents: how long the register takes to list a newcomer

    def column(self, attribute: str) -> str:
        """The table's column the record's ``attribute`` comes from."""
        return dict(self.columns).get(attribute, attribute)


@dataclass(frozen=True)
class Hold:
    """How destructive a snapshot delivery may be before it waits for an analyst (see HOLD_DEFAULTS)."""

    closing: float
    refused: float
    at_least: int


@dataclass(frozen=True)
class Table:
    source: str
    name: str
    title: str
    abstract: str
    kind: str  # feed | ledger | mart | view | system
    columns: tuple[Column, ...]
    keys: tuple[str, ...]
    load: str
    catalogue: dict[str, Any]
    provider: dict[str, str]
    files: str | None = None
    format: str | None = None
    encoding: str | None = None
    record_type: str | None = None
    title_row: str | None = None
    department: dict[str, str] | None = None
    template: dict[str, Any] | None = None
    envelope: tuple[Column, ...] = field(default=())
    # keys of the tables this one is derived from (marts); in a contract, ``persons`` stands for every
    # table naming persons (``person``), ``addressed`` for every one whose address is resolved
    related: tuple[str, ...] = ()
    # Being listed here is itself sensitive (a disability, social assistance, living alone): the
    # shared warehouse never says a person is in this table.
    sensitive_listing: bool = False
    # A table whose rows are persons: its quasi-identifiers as the shared warehouse names them,
    # ``suppress`` (blanked in this order for rows too rare to share) and ``kept`` (never blanked;
    # a row still too rare is left out). See redwall.privacy.k_anonymous.
    anonymity: dict[str, Any] | None = None
    hold: Hold | None = None  # a delivered snapshot table's limits; None: never held
    query: str | None = None  # a view's SQL over the published marts
    # A snapshot several senders deliver, each the truth for its own part: the columns naming the
    # part (a street's package closes nothing of another street).
    scope: tuple[str, ...] = ()
    shares: str | None = None  # the mart whose shareable columns this feed table carries upward
    # How far person resolution trusts the source's records, 0 most (survivorship: which record's
    # value a person keeps, redwall.marts.resolution.survivorship); a property of the source, the
    # same on all its tables (a feed file declares it once, each ledger file again).
    trust: int | None = None
    # The column holding the address text resolved to a place of the district's registers
    # (redwall.marts.address): where it resolves to no place or several, an address issue
    # (mart.address_issue, the quality loop's address rules). None: the table's addresses are not resolved.
    address: str | None = None
    person: PersonRecords | None = None  # what its rows give person resolution; None: they name nobody

    @property
    def key(self) -> str:
        """``source.table``: the table's identity everywhere (assets, receipts, catalogue)."""
        return f"{self.source}.{self.name}"

    @property
    def hold_limits(self) -> Hold:
        """The hold limits of a table that has them (see ``hold``); asked of any other, an error."""
        if self.hold is None:
            raise ValueError(f"{self.key} is never held: it has no hold limits")
        return self.hold

    @property
    def department_code(self) -> str:
        """The code of the department sending a ledger (its inbox and template folder); asked of a
        table no department sends, an error."""
        return self._department["code"]

    @property
    def department_name(self) -> str:
        """The name of the department sending a ledger; asked of any other table, an error."""
        return self._department["name"]

    @property
    def _department(self) -> dict[str, str]:
        if self.department is None:
            raise ValueError(f"{self.key} is no ledger: no department sends it")
        return self.department

    @property
    def template_version(self) -> int:
        """The version of the centre's template a ledger is sent on; asked of a table sent on no
        template, an error."""
        return self._template["version"]

    @property
    def template_sheet(self) -> str:
        """The name of the data sheet of a ledger's template; asked of any other table, an error."""
        return self._template["sheet"]

    @property
    def _template(self) -> dict[str, Any]:
        if self.template is None:
            raise ValueError(f"{self.key} is sent on no template of the centre's")
        return self.template

    @property
    def bronze_name(self) -> str:
        return f"{self.source}_{self.name}"

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.envelope + self.columns

    def column(self, name: str) -> Column:
        for col in self.all_columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.key} has no column {name!r}")

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.all_columns if c.required)

    def schema(self) -> dict[str, pl.DataType]:
        """The typed (silver/mart) schema of the table."""
        return {c.name: c.dtype for c in self.all_columns}

    def pii_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.all_columns if c.pii)

    @property
    def personal_key(self) -> bool:
        """Whether the business key holds personal data: then it is only ever shown as a digest."""
        return any(self.column(k).pii for k in self.keys)


@dataclass(frozen=True)
class Contracts:
    tables: dict[str, Table]

    def table(self, key: str) -> Table:
        try:
            return self.tables[key]
        except KeyError:
            raise KeyError(f"no contract for {key!r}; known: {sorted(self.tables)}") from None

    def of_kind(self, kind: str) -> list[Table]:
        return [t for t in self.tables.values() if t.kind == kind]

    @property
    def feeds(self) -> list[Table]:
        return self.of_kind("feed")

    @property
    def ledgers(self) -> list[Table]:
        return self.of_kind("ledger")

    @property
    def marts(self) -> list[Table]:
        return self.of_kind("mart")

    def source_tables(self, source: str) -> list[Table]:
        return [t for t in self.tables.values() if t.source == source and t.kind in DELIVERED]

    @property
    def views(self) -> list[Table]:
        return self.of_kind("view")

    @property
    def system(self) -> list[Table]:
        return self.of_kind("system")

    def layer(self, layer: str) -> list[Table]:
        """The system tables of one lake layer or warehouse schema (``ops``, ``quality``, …)."""
        return [t for t in self.system if t.source == layer]

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(t.source for t in self.tables.values() if t.kind in DELIVERED))

    @property
    def trust(self) -> dict[str, int]:
        """Each trusted source's rank for survivorship (``trust``, 0 most trusted), most trusted first."""
        ranks = {t.source: t.trust for t in self.tables.values() if t.trust is not None}
        return dict(sorted(ranks.items(), key=lambda item: item[1]))

    @property
    def addressed(self) -> dict[str, str]:
        """``source.table`` → the column whose addresses are resolved (``address``), for every
        table that declares one: the person tables first, in :attr:`persons` order, then the others
        in the order the contracts load."""
        tables = [*self.persons, *(t for t in self.tables.values() if t.person is None)]
        return {t.key: t.address for t in tables if t.address is not None}

    @property
    def persons(self) -> list[Table]:
        """The tables whose rows name persons (``person``), most trusted source first (a source's
        tables in the order its contract lists them): the order person resolution reads them in."""
        tables = [t for t in self.tables.values() if t.person is not None]
        return sorted(tables, key=lambda t: self.trust[t.source])

    def person_kind(self, kind: str) -> list[str]:
        """The keys of the person tables of one kind (PERSON_KINDS), most trusted first."""
        return [t.key for t in self.persons if t.person is not None and t.person.kind == kind]

    @property
    def departmental(self) -> tuple[str, ...]:
        """The sources whose files department clerks send from the centre's templates (the ledgers'):
        each department drops into its own inbox folder, reads a Chinese receipt and gets its rows
        back as an error workbook. The other sources are systems, answered in JSON."""
        return tuple(dict.fromkeys(t.source for t in self.ledgers))

    @property
    def departments(self) -> dict[str, str]:
        return {t.department_code: t.department_name for t in self.ledgers}


def _column(raw: dict[str, Any], where: str) -> Column:
    raw = dict(raw)
    if raw.get("type") not in TYPES:
        raise ContractError(f"{where}: column {raw.get('name')!r} has unknown type {raw.get('type')!r}")
    if raw.get("sensitivity") not in SENSITIVITY:
        raise ContractError(f"{where}: column {raw['name']!r} needs a sensitivity in {list(SENSITIVITY)}")
    if raw.get("pii") and PII_KINDS.get(raw["pii"]) != raw["sensitivity"]:
        raise ContractError(
            f"{where}: column {raw['name']!r}: pii {raw['pii']!r} must be one of {list(PII_KINDS)}, "
            f"with sensitivity {PII_KINDS.get(raw['pii'])}"
        )
    if raw.get("free_text") and raw["type"] != "string":
        raise ContractError(f"{where}: column {raw['name']!r}: only a string column can be free text")
    raw["aliases"] = tuple(raw.get("aliases", ()))
    try:
        raw["layout"] = Layout(**raw.get("layout", {}))
    except TypeError as exc:
        raise ContractError(f"{where}: column {raw['name']!r}: layout: {exc}") from None
    if raw.get("element") and raw["element"] not in data_elements():
        raise ContractError(f"{where}: column {raw['name']!r} names unknown data element {raw['element']!r}")
    if raw.get("codes") and raw["codes"] not in DYNAMIC_CODES and raw["codes"] not in code_lists():
        raise ContractError(f"{where}: column {raw['name']!r} names unknown code list {raw['codes']!r}")
    try:
        return Column(**raw)
    except TypeError as exc:
        raise ContractError(f"{where}: {exc}") from None


# Every key a table's contract may have (a ledger file's and a system file's own keys included):
# any other is a typo, refused rather than silently ignored.
TABLE_KEYS = frozenset(
    (
        *("source", "table", "title", "abstract", "columns", "keys", "load", "catalogue", "provider"),
        *("files", "format", "encoding", "record_type", "title_row", "department", "template", "related"),
        *("sensitive_listing", "anonymity", "hold", "query", "scope", "shares", "trust", "address", "person"),
    )
)


def _table(
    raw: dict[str, Any],
    *,
    source: str,
    name: str,
    kind: str,
    where: str,
    provider: dict[str, str],
    envelope: tuple[Column, ...] = (),
    department: dict[str, str] | None = None,
) -> Table:
    if unknown := sorted(set(raw) - TABLE_KEYS):
        raise ContractError(f"{where}:{name}: unknown keys {unknown}; a table's contract knows {sorted(TABLE_KEYS)}")
    columns = tuple(_column(c, f"{where}:{name}") for c in raw["columns"])
    if kind != "system" and (kept := [c.name for c in columns if c.type in SYSTEM_TYPES]):
        raise ContractError(f"{where}:{name}: columns {kept} have a type only system tables have")
    names = [c.name for c in envelope + columns]
    if len(set(names)) != len(names):
        raise ContractError(f"{where}:{name}: duplicate column names")
    # a header must name one column: no spelling (its data element's included) shared by two
    spelled: dict[str, str] = {}
    for column in envelope + columns:
        for header in {_spelling_key(h) for h in column.headers}:
            if spelled.setdefault(header, column.name) != column.name:
                raise ContractError(
                    f"{where}:{name}: header {header!r} would name both {spelled[header]!r} and {column.name!r}"
                )
    keys = tuple(raw.get("keys", ()))
    if missing := set(keys) - set(names):
        raise ContractError(f"{where}:{name}: keys {sorted(missing)} are not columns")
    scope = tuple(raw.get("scope", ()))
    if set(scope) - set(names) or (scope and raw.get("load", "snapshot") != "snapshot"):
        raise ContractError(f"{where}:{name}: scope must name columns of a snapshot table")
    load = raw.get("load", "snapshot")
    if load not in LOADS:
        raise ContractError(f"{where}:{name}: load must be one of {LOADS}")
    hold = _hold(raw, load, kind, f"{where}:{name}")
    address = raw.get("address")
    if address is not None and address not in {c.name for c in envelope + columns if c.type == "string"}:
        raise ContractError(f"{where}:{name}: address must name a text column, not {address!r}")
    trust = raw.get("trust")
    if trust is not None and (kind not in DELIVERED or type(trust) is not int or trust < 0):
        raise ContractError(f"{where}:{name}: trust must be a rank (0, 1, …) of a delivered source, not {trust!r}")
    catalogue = dict(raw.get("catalogue", {}))
    if catalogue.get("sharing") not in SHARING_TYPES:
        raise ContractError(f"{where}:{name}: catalogue.sharing must be one of {SHARING_TYPES}")
    if catalogue.get("update_cycle") not in UPDATE_CYCLES:
        raise ContractError(f"{where}:{name}: catalogue.update_cycle must be one of {UPDATE_CYCLES}")
    return Table(
        source=source,
        name=name,
        kind=kind,
        title=raw["title"],
        abstract=raw["abstract"],
        columns=columns,
        keys=keys,
        load=load,
        catalogue=catalogue,
        provider=raw.get("provider", provider),
        files=raw.get("files"),
        format=raw.get("format"),
        encoding=raw.get("encoding"),
        record_type=raw.get("record_type"),
        title_row=raw.get("title_row"),
        department=department,
        template=raw.get("template"),
        envelope=envelope,
        related=tuple(raw.get("related", ())),
        sensitive_listing=bool(raw.get("sensitive_listing", False)),
        anonymity=raw.get("anonymity"),
        hold=hold,
        query=raw.get("query"),
        scope=scope,
        shares=raw.get("shares"),
        trust=trust,
        address=address,
        person=_person(raw["person"], {c.name: c for c in envelope + columns}, kind, f"{where}:{name}")
        if "person" in raw
        else None,
    )


def _person(raw: dict[str, Any], columns: dict[str, Column], kind: str, where: str) -> PersonRecords:
    """A table's ``person``, checked: known keys, kind, attributes and the columns they come from,
    care and person type codes."""
    if kind not in DELIVERED or not isinstance(raw, dict):
        raise ContractError(f"{where}: person must be a mapping, of a delivered table")
    if unknown := sorted(set(raw) - PERSON_KEYS):
        raise ContractError(f"{where}: person has unknown keys {unknown}; known: {sorted(PERSON_KEYS)}")
    person_kind = raw.get("kind", "listed")
    if person_kind not in PERSON_KINDS:
        raise ContractError(f"{where}: person kind {person_kind!r} is none of {PERSON_KINDS}")
    takes = tuple(raw.get("takes", ("id_number", "name") if person_kind == "listed" else ()))
    if unknown := sorted(set(takes) - set(PERSON_ATTRIBUTES)):
        raise ContractError(f"{where}: person takes unknown attributes {unknown}; known: {PERSON_ATTRIBUTES}")
    renamed = dict(raw.get("from", {}))
    if stray := sorted(set(renamed) - set(takes)):
        raise ContractError(f"{where}: person from names attributes {stray} it does not take")
    if missing := sorted({renamed.get(a, a) for a in takes} - set(columns)):
        raise ContractError(f"{where}: person takes attributes from columns {missing} the table does not have")
    care = None
    if "care" in raw:
        given = dict(raw["care"])
        if unknown := sorted(set(given) - CARE_KEYS):
            raise ContractError(f"{where}: person care has unknown keys {unknown}; known: {sorted(CARE_KEYS)}")
        if str(given.get("type")) not in code_lists()["care_type"]:
            raise ContractError(f"{where}: person care type {given.get('type')!r} is no care_type code")
        for bound in ("from", "until"):
            if bound in given and getattr(columns.get(given[bound]), "type", None) != "date":
                raise ContractError(f"{where}: person care {bound} must name a date column, not {given[bound]!r}")
        when = tuple((column, str(code)) for column, code in dict(given.get("when", {})).items())
        for column, code in when:
            listed = columns[column].codes if column in columns else None
            if listed is None or (listed in code_lists() and code not in code_lists()[listed]):
                raise ContractError(f"{where}: person care when {column}: {code!r} is no code of a coded column")
        care = Care(str(given["type"]), given.get("from"), given.get("until"), when)
    person_type = raw.get("person_type")
    if (person_type is not None) != (person_kind == "registrations") or (
        person_type is not None and str(person_type) not in code_lists()["person_type"]
    ):
        raise ContractError(f"{where}: person person_type, a person_type code, is a registrations table's (only)")
    catch_up = raw.get("catch_up_days")
    if (catch_up is not None) != (person_kind == "residents") or (
        catch_up is not None and (type(catch_up) is not int or catch_up < 0)
    ):
        raise ContractError(f"{where}: person catch_up_days, a count of days, is the residents register's (only)")
    return PersonRecords(
        kind=person_kind,
        takes=takes,
        columns=tuple(renamed.items()),
        care=care,
        person_type=None if person_type is None else str(person_type),
        catch_up_days=catch_up,
    )


def _hold(raw: dict[str, Any], load: str, kind: str, where: str) -> Hold | None:
    """A delivered snapshot's limits: the defaults, overridden by the contract's ``hold``."""
    given = raw.get("hold", {})
    if load != "snapshot" or kind not in DELIVERED:
        if given:
            raise ContractError(f"{where}: only a delivered snapshot table can be held")
        return None
    if unknown := set(given) - set(HOLD_DEFAULTS):
        raise ContractError(f"{where}: hold has unknown limits {sorted(unknown)}; known: {list(HOLD_DEFAULTS)}")
    hold = Hold(**(HOLD_DEFAULTS | given))
    if not (0 < hold.closing <= 1 and 0 < hold.refused <= 1 and hold.at_least >= 1):
        raise ContractError(f"{where}: hold shares must lie in (0, 1] and at_least be a positive count")
    return hold


@cache
def load_contracts(root: Path = HERE) -> Contracts:
    tables: dict[str, Table] = {}
    sharing: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []  # feed tables made of a mart's columns
    for path in sorted((root / "feeds").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        source = doc["source"]
        envelope = tuple(_column(c, path.name) for c in doc.get("envelope", ()))
        for name, raw in doc["tables"].items():
            if "trust" in doc:
                if "trust" in raw:
                    raise ContractError(
                        f"{path.name}:{name}: trust is the source's, declared once at the top of its file"
                    )
                raw = {**raw, "trust": doc["trust"]}
            if "shares" in raw:
                sharing.append((path.name, name, raw, doc))
                continue
            t = _table(
                raw, source=source, name=name, kind="feed", where=path.name, provider=doc["provider"], envelope=envelope
            )
            tables[t.key] = t
    for path in sorted((root / "ledgers").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        dept = doc["department"]
        t = _table(
            doc,
            source=doc["source"],
            name=doc["table"],
            kind="ledger",
            where=path.name,
            provider={"name": dept["name"], "code": dept["code"]},
            department=dept,
        )
        tables[t.key] = t
    for path in sorted((root / "marts").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        kind = "view" if "query" in doc else "mart"
        t = _table(doc, source="mart", name=doc["table"], kind=kind, where=path.name, provider=doc["provider"])
        tables[t.key] = t
    for path in sorted((root / "system").glob("*.yaml")):
        tables |= {t.key: t for t in _system_tables(path).values()}
    for where, name, raw, doc in sharing:
        raw = {**raw, "columns": _shared_upward(tables, raw["shares"], f"{where}:{name}")}
        t = _table(raw, source=doc["source"], name=name, kind="feed", where=where, provider=doc["provider"])
        tables[t.key] = t
    _check_trust(tables)
    persons = [t for t in tables.values() if t.person is not None]
    if untrusted := sorted(t.key for t in persons if t.trust is None):
        raise ContractError(f"{untrusted}: a table naming persons needs its source's trust (survivorship)")
    if len(residents := [t.key for t in persons if t.person is not None and t.person.kind == "residents"]) > 1:
        raise ContractError(f"{residents}: there is one register of who lives here (person kind residents)")
    groups = {"persons": [t.key for t in Contracts(tables).persons], "addressed": list(Contracts(tables).addressed)}
    for key, t in tables.items():
        if any("." not in r for r in t.related):
            if stray := sorted(r for r in t.related if "." not in r and r not in groups):
                raise ContractError(f"{key}: related names unknown groups {stray}; known: {sorted(groups)}")
            expanded = (k for r in t.related for k in groups.get(r, [r]))
            tables[key] = dataclasses.replace(t, related=tuple(dict.fromkeys(expanded)))
    for t in tables.values():
        if unknown := set(t.related) - set(tables):
            raise ContractError(f"{t.key}: related tables {sorted(unknown)} have no contract")
    return Contracts(tables)


def _check_trust(tables: dict[str, Table]) -> None:
    """Trust is a source's: all its tables declare the same rank, or none does; no two sources
    share a rank (survivorship would have no order between them)."""
    ranks: dict[str, set[int | None]] = {}
    for t in tables.values():
        if t.kind in DELIVERED:
            ranks.setdefault(t.source, set()).add(t.trust)
    if uneven := sorted(source for source, given in ranks.items() if len(given) > 1):
        raise ContractError(f"sources {uneven}: every table of a source declares the same trust, or none does")
    trusted = [rank for given in ranks.values() for rank in given if rank is not None]
    if len(set(trusted)) != len(trusted):
        raise ContractError(f"two sources declare the same trust: ranks {sorted(trusted)}")


def _system_tables(path: Path) -> dict[str, Table]:
    """The tables of one system contract file, by name: its ``layer`` is their lake layer and
    warehouse schema (their ``source``), every other key beside ``tables`` each table's default."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    defaults = {k: v for k, v in doc.items() if k not in ("layer", "provider", "tables")}
    return {
        name: _table(
            defaults | raw, source=doc["layer"], name=name, kind="system", where=path.name, provider=doc["provider"]
        )
        for name, raw in doc["tables"].items()
    }


def _shared_upward(tables: dict[str, Table], mart: str, where: str) -> list[dict[str, Any]]:
    """The columns of ``mart`` a street shares upward: all public columns that are no free text,
    as its contract declares them; only a mart shared without condition goes up."""
    if mart not in tables or tables[mart].kind != "mart":
        raise ContractError(f"{where}: shares {mart!r}, which is no mart")
    if (sharing := tables[mart].catalogue["sharing"]) != SHARED_UPWARD:
        raise ContractError(f"{where}: {mart} is {sharing}; only a mart of {SHARED_UPWARD} leaves its street")
    # a count the shared warehouse withholds when small (anonymity.small_counts) may arrive empty
    withheld = {
        c
        for group in (tables[mart].anonymity or {}).get("small_counts", ())
        for c in ([group] if isinstance(group, str) else group)
    }
    return [
        dataclasses.asdict(c) | ({"required": False} if c.name in withheld else {})
        for c in tables[mart].all_columns
        if c.sensitivity == "public" and not c.free_text
    ]


def _spelling_key(text: str) -> str:
    return "".join(text.split()).lower()


# -- reference data ------------------------------------------------------------------------------
# How a reference CSV's text becomes a column of each type its contract may give.
READ_AS: dict[str, Callable[[str], pl.Expr]] = {
    "string": pl.col,
    "date": lambda c: pl.col(c).str.to_date(),
    "bool": lambda c: pl.col(c) == "1",
}


@cache
def reference_tables() -> dict[str, Table]:
    """The contracts of the committed reference tables (``system/ref.yaml``), by name. Read apart
    from :func:`load_contracts`, which checks every contract's code lists against them."""
    tables = _system_tables(HERE / "system" / "ref.yaml")
    for t in tables.values():
        if untyped := [c.name for c in t.columns if c.type not in READ_AS]:
            raise ContractError(
                f"ref.yaml:{t.name}: columns {untyped} must be one of {list(READ_AS)}: a CSV holds text"
            )
    return tables


@cache
def reference(name: str) -> pl.DataFrame:
    """A committed national reference table (``schemas/reference/<name>.csv``) with its contract's
    types: text, its dates parsed, its flags (1 or 0) as booleans."""
    table = reference_tables()[name]
    frame = pl.read_csv(REFERENCE / f"{name}.csv", infer_schema=False)
    if frame.columns != [c.name for c in table.columns]:
        raise ContractError(f"reference/{name}.csv has columns {frame.columns}, its contract {list(table.schema())}")
    return frame.with_columns(READ_AS[c.type](c.name) for c in table.columns)


@cache
def code_lists() -> dict[str, dict[str, str]]:
    """Every static code list: ``{list: {code: name}}`` from codes.csv plus sex, ethnicity, street."""
    lists: dict[str, dict[str, str]] = {}
    for row in reference("codes").iter_rows(named=True):
        lists.setdefault(row["list"], {})[row["code"]] = row["name"]
    for name in ("sex", "ethnicity", "street"):
        frame = reference(name)
        lists[name] = dict(zip(frame["code"], frame["name"], strict=True))
    return lists


@cache
def data_elements() -> dict[str, dict[str, str | None]]:
    """The national data elements the contracts' columns name (``element``): ``{element: row}``."""
    return {row["element"]: row for row in reference("data_element").iter_rows(named=True)}


def element_spellings(element: str | None) -> tuple[str, ...]:
    """How a header may name a data element: its standard name, identifier, internal identifier
    and synonyms (an exchange file or a clerk may use any)."""
    if element is None:
        return ()
    row = data_elements()[element]
    return tuple(
        filter(None, (row["name"], row["identifier"], row["internal_id"], *(row["synonyms"] or "").split(";")))
    )
