"""Privacy on a real run: generated feeds with ID, phone and passport numbers and persons' names (one
a person cue introduces, one of a person the registers know) planted in every free-text column of
every feed, taken in and built by the real ``build_all`` from a permissive
umask. Nothing planted reaches the shared warehouse, the outbox, the catalogue or the Dagster logs, every file the
run created under the home's private folders is owner-only, and the warehouse's check reports k
for every shared person table. Then k-anonymity itself, on hand-made rows."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import polars as pl
import pytest
from test_marts import AS_OF, street_silver, write_silver

from redwall import lake, privacy
from redwall.assets.keys import WAREHOUSE
from redwall.assets.marts import K_ANONYMITY_CHECK
from redwall.cli import main
from redwall.home import PRIVATE_FOLDERS, Home
from redwall.ingest.inbox import inbox_files
from redwall.marts import build_marts
from redwall.privacy import KEY_ENV, anonymity, k_anonymous, masked_names, scrub_free_text, shared_columns
from redwall.schemas import Column, Table, load_contracts
from redwall.warehouse import ReidentificationError, publish, restricted_path

SECRET = "test-secret-not-the-demo-key"


def planted_numbers(n: int) -> tuple[str, str, str, str]:
    """A citizen ID, a mobile, a landline with its area code and a passport number, unique per n."""
    return (f"11010219{52 + n % 40:02d}1223{n:03d}{n % 10}", f"139{n:08d}", f"010-6{n:07d}", f"E{n:08d}")


# A name no register holds, introduced as a person (居民…); and, planted per column, the name of a
# person the police register lists (REGISTERED, filled in from the generated snapshot), with no cue.
CUED_NAME = "司马小明"
REGISTERED: list[str] = []


def registered_name(n: int) -> str:
    return REGISTERED[n % len(REGISTERED)]


def planted_text(n: int) -> str:
    citizen, mobile, landline, passport = planted_numbers(n)
    return (
        f"居民{CUED_NAME}（身份证{citizen}，电话{mobile}，座机{landline}，护照{passport}），"
        f"邻居{registered_name(n)}说明情况"
    )


def secrets_of(n: int) -> set[str]:
    """The strings that must not reach a shared output: the numbers, the landline's digits too, and
    the names."""
    citizen, mobile, landline, passport = planted_numbers(n)
    return {citizen, mobile, landline, landline.split("-")[1], passport, CUED_NAME, registered_name(n)}


def registered_names(home: Home, how_many: int) -> list[str]:
    """Three-character names, each of one person only, of persons the first police snapshot lists
    with none of the generator's planted flaws (a refused row never reaches silver)."""
    first = sorted(home.inbox("police").glob("*.csv"))[0]
    listed = pl.read_csv(io.StringIO(first.read_bytes().decode("gb18030")), infer_schema=False)["公民身份号码"]
    persons = pl.read_parquet(home.truth / "persons.parquet")
    flawed = pl.read_parquet(home.truth / "defects.parquet")["person_id"].drop_nulls()
    clean = persons.filter(
        pl.col("id_number").is_in(listed.implode())
        & ~pl.col("person_id").is_in(flawed.implode())
        & pl.col("name").str.contains(r"^\p{Han}{3}$")
        & pl.col("name").is_unique()
    )
    return clean.sort("person_id")["name"].head(how_many).to_list()


def free_text_columns() -> list[tuple[Table, Column]]:
    return [(t, c) for t in [*load_contracts().feeds, *load_contracts().ledgers] for c in t.all_columns if c.free_text]


def _decode(data: bytes) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("the generator wrote a CSV in neither UTF-8 nor GB18030")


PER_FILE = 3  # planted values per column and file: an address that resolves nowhere is a quality issue


def plant(path: Path, table: Table, columns: dict[str, int]) -> int:
    """Append each column's planted text to its first :data:`PER_FILE` values in the file; returns
    the cells planted."""
    left = dict.fromkeys(columns, PER_FILE)

    def planting(name: str, value) -> bool:
        if isinstance(value, str) and value.strip() and left[name]:
            left[name] -= 1
            return True
        return False

    if path.suffix == ".jsonl":
        lines = []
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            for name, n in columns.items():
                if record.get("type") == table.record_type and planting(name, record["payload"].get(name)):
                    record["payload"][name] += planted_text(n)
            lines.append(json.dumps(record, ensure_ascii=False))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        for name, n in columns.items():
            column = next(h for h in table.column(name).headers if h in frame.columns)
            frame = frame.with_columns(
                pl.Series(column, [v + planted_text(n) if planting(name, v) else v for v in frame[column]])
            )
        frame.write_parquet(path)
    elif path.suffix == ".csv":
        text, encoding = _decode(path.read_bytes())
        rows = list(csv.reader(io.StringIO(text)))
        headers = {h for name in columns for h in table.column(name).headers}
        header = next((i for i, row in enumerate(rows[:5]) if set(row) & headers), None)
        if header is None:  # a file of another ledger of the department
            return 0
        where = {
            name: next(rows[header].index(h) for h in table.column(name).headers if h in rows[header])
            for name in columns
        }
        for row in rows[header + 1 :]:
            for name, j in where.items():
                if len(row) == len(rows[header]) and planting(name, row[j]):
                    row[j] += planted_text(columns[name])
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        path.write_bytes(out.getvalue().encode(encoding))
    elif path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            found = {
                (cell.row, cell.column, name)
                for row in sheet.iter_rows(max_row=5)
                for cell in row
                for name in columns
                if cell.value in table.column(name).headers
            }
            for header, j, name in found:
                for (cell,) in sheet.iter_rows(min_row=header + 1, min_col=j, max_col=j):
                    if planting(name, cell.value):
                        cell.value += planted_text(columns[name])
        book.save(path)
    return PER_FILE * len(columns) - sum(left.values())


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """``(home, {(table, column): n})`` after a real run of the planted feeds."""
    saved = {k: os.environ.get(k) for k in ("REDWALL_HOME", "DAGSTER_HOME", KEY_ENV)}
    before = os.umask(0o022)  # a usual umask: everything created readable by every local user
    os.environ[KEY_ENV] = SECRET
    root = tmp_path_factory.mktemp("privacy") / "home"
    try:
        assert main(["--home", str(root), "generate", "--scale", "small", "--days", "2"]) == 0
        home = Home.at(root)
        os.umask(0o022)  # generating ran under redwall's umask; planting and the build start loose again
        numbers = {(t.key, c.name): n for n, (t, c) in enumerate(free_text_columns(), start=1)}
        REGISTERED[:] = registered_names(home, len(numbers))
        cells = {}
        for t in {t.key: t for t, _ in free_text_columns()}.values():
            mine = {c: n for (key, c), n in numbers.items() if key == t.key}
            for file in inbox_files(home, t.source):
                if t.source != "district" or file.name.startswith(t.name + "_"):  # one table per file there
                    cells[t.key] = cells.get(t.key, 0) + plant(file.path, t, mine)
        for path in (root / "inbox").rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)  # as a delivering system may leave them
        assert cells.keys() == {t.key for t, _ in free_text_columns()} and all(cells.values()), cells
        assert main(["--home", str(root), "build"]) == 0
        yield home, numbers
    finally:
        os.umask(before)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def texts_in_warehouse(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE data_type = 'VARCHAR' AND NOT internal"
        ).fetchall()
        return [
            v for s, t, c in columns for (v,) in con.execute(f'SELECT DISTINCT "{c}" FROM "{s}"."{t}"').fetchall() if v
        ]


def texts_in_file(path: Path) -> str:
    """A file's text: an xlsx's sheets and shared strings unzipped, anything else decoded."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            return "".join(z.read(n).decode("utf-8", errors="replace") for n in z.namelist() if n.endswith(".xml"))
    return path.read_bytes().decode("utf-8", errors="replace")


def test_every_feed_free_text_column_is_planted_and_reaches_the_lake(planted):
    home, numbers = planted
    contracts = load_contracts()
    for (key, column), n in numbers.items():
        t = contracts.table(key)
        values = lake.read(home, "bronze", t.bronze_name).get_column(column)
        assert values.str.contains(planted_numbers(n)[0], literal=True).any(), (key, column)


def test_planted_numbers_reach_no_shared_output(planted):
    home, numbers = planted
    secrets = set().union(*map(secrets_of, numbers.values()))
    shared = texts_in_warehouse(home.warehouse)
    assert not {s for v in shared for s in secrets if s in v}
    assert any("[证件号已隐去]" in v for v in shared)  # mart.event's descriptions went out scrubbed
    restricted = "\n".join(texts_in_warehouse(restricted_path(home)))
    assert planted_numbers(numbers["grid_app.event", "description"])[0] in restricted  # the scan can fail

    files = [p for d in ("outbox", "published") for p in (home.root / d).rglob("*") if p.is_file()]
    workbooks = [p for p in files if p.suffix == ".xlsx" and "outbox" in p.parts]
    assert workbooks and any("[证件号已隐去]" in texts_in_file(p) for p in workbooks)  # planted rows are there
    leaks = {(str(p.relative_to(home.root)), s) for p in files for s in secrets if s in texts_in_file(p)}
    assert leaks == set()


def test_planted_names_are_masked_and_reach_no_log(planted):
    home, numbers = planted
    assert set(REGISTERED) <= set(privacy.known_names(home))  # the premise: the registers know them
    shared = texts_in_warehouse(home.warehouse)
    assert any("居民[姓名已隐去]" in v and "邻居[姓名已隐去]说明情况" in v for v in shared)  # silver folds （ to (
    # what the runs logged and recorded as metadata: the Dagster instance's storage and logs
    logged = [p for p in home.dagster_home.rglob("*") if p.is_file()]
    assert logged
    secrets = set().union(*map(secrets_of, numbers.values()))
    leaks = {(p.name, s) for p in logged for s in secrets if s.encode() in p.read_bytes()}
    assert leaks == set()


def test_free_text_scrub_masks_known_names_and_names_a_person_cue_introduces():
    texts = pl.Series(
        [
            "居民王小明（身份证110102195212236565）反映楼道堆物",
            "住户张三在家，独居老人欧阳秀英行动不便",
            "居民反映楼道灯不亮，老人高龄独居",  # a cue, but no name after it
            "刘建国家门口积水，钟声胡同5号",  # a known name without a cue; 钟声 is a place here
            "业主李明称漏水",
        ]
    )
    scrubbed = pl.select(scrub_free_text(pl.lit(texts), ["刘建国", "王秀", "阳秀英"])).to_series().to_list()
    assert scrubbed == [
        "居民[姓名已隐去]（身份证[证件号已隐去]）反映楼道堆物",
        "住户[姓名已隐去]在家，独居老人[姓名已隐去]行动不便",
        "居民反映楼道灯不亮，老人高龄独居",
        "[姓名已隐去]家门口积水，钟声胡同5号",
        "业主[姓名已隐去]称漏水",
    ]


def test_a_text_is_scrubbed_alike_by_every_set_of_known_names_that_masks_the_same_names_in_it():
    """What an unchanged text becomes depends on the known names only through those masked in it
    (masked_names): the publish and the error workbooks make a text again only when these change."""
    texts = pl.Series(["王秀英李家门口积水", "居民王秀反映，刘建国在场", "钟声胡同5号漏水", "张伟之家", None])
    known = ["王秀英", "王秀", "秀英李", "刘建国", "英李家", "钟声"]
    masked = pl.select(masked_names(pl.lit(texts), known)).to_series().to_list()
    assert masked == [["王秀英"], ["刘建国"], ["钟声"], [], None]
    taken = sorted({name for names in masked if names for name in names})
    scrubbed = pl.select(scrub_free_text(pl.lit(texts), known)).to_series()
    assert scrubbed.equals(pl.select(scrub_free_text(pl.lit(texts), taken)).to_series())
    # names no text masks, learned or forgotten, change nothing
    for others in (["欧阳从未见", "张三"], ["王秀", "英李家"]):
        assert scrubbed.equals(pl.select(scrub_free_text(pl.lit(texts), [*taken, *others])).to_series())
    # a name masked in a text, forgotten, does: the text is made again
    assert not scrubbed.equals(pl.select(scrub_free_text(pl.lit(texts), taken[1:])).to_series())


def test_free_text_scrub_masks_ids_passports_and_phones_whole():
    texts = pl.Series(
        [
            "居民王小明（身份证110102195212236565，电话13912345678）",
            "老证110102521223656，港澳通行证C12345678；手机139-1234-5678、+86 13912345679；座机（010）66012345",
            "１１０１０２１９５２１２２３６５６Ｘ 138１２３４５６７８",
            "13912345678,13912345679,13912345670",
            "部件1101020101000001破损，井盖丢失，12号院3号楼2单元501",
            None,
        ]
    )
    assert pl.select(scrub_free_text(pl.lit(texts))).to_series().to_list() == [
        "居民[姓名已隐去]（身份证[证件号已隐去]，电话[电话已隐去]）",
        "老证[证件号已隐去]，港澳通行证[证件号已隐去]；手机[电话已隐去]、[电话已隐去]；座机[电话已隐去]",
        "[证件号已隐去] [电话已隐去]",
        "[电话已隐去],[电话已隐去],[电话已隐去]",
        "部件1101020101000001破损，井盖丢失，12号院3号楼2单元501",  # a 16-digit component code stays whole
        None,
    ]


def test_every_mart_column_fed_by_free_text_is_free_text():
    """A mart column named like a free-text column of a table it is built from is scrubbed too."""
    contracts = load_contracts()
    for mart in contracts.marts:
        fed = {c.name for key in mart.related for c in contracts.table(key).all_columns if c.free_text}
        for c in mart.all_columns:
            if c.name in fed and c.type == "string":
                assert c.free_text, (mart.key, c.name)


def test_files_under_the_home_are_owner_only_after_a_real_run(planted):
    home, _ = planted
    private = [home.root / d for d in PRIVATE_FOLDERS] + [
        Path(home.lake_uri),
        restricted_path(home).parent,
        *home.warehouse.parent.glob("versions/*/restricted"),
    ]
    checked, loose = 0, []
    for folder in private:
        for path in [folder, *folder.rglob("*")]:
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            # a delivered file is the owner's alone too, whatever mode its sender gave it
            ok = mode == (0o700 if path.is_dir() else 0o600)
            checked += 1
            if not ok:
                loose.append((str(path.relative_to(home.root)), oct(mode)))
    assert not loose
    assert checked > 200
    kinds = {p.suffix for d in private for p in d.rglob("*") if p.is_file()}
    assert {".parquet", ".json", ".xlsx", ".duckdb"} <= kinds  # lake data and logs, receipts, workbooks, restricted
    assert any((home.dagster_home / "storage").rglob("*")) or any(home.dagster_home.rglob("*.db"))
    assert stat.S_IMODE(home.warehouse.resolve().stat().st_mode) == 0o644  # the shared warehouse is for others
    # and so are the templates and the catalogue clerks and leaders open (no personal data in them)
    published = [p for p in home.published.rglob("*") if p.is_file()]
    assert {".xlsx", ".json"} <= {p.suffix for p in published}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in published} == {oct(0o644)}


def test_the_warehouse_check_reports_k_per_person_table(planted):
    home, _ = planted
    check = dg.AssetCheckKey(WAREHOUSE, K_ANONYMITY_CHECK)
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        (record,) = instance.event_log_storage.get_asset_check_execution_history(check, limit=1)
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.passed
    person_tables = {f"mart.{t.name}" for t in load_contracts().marts if anonymity(t)}
    assert {"mart.person", "mart.person_history", "mart.care_visit"} <= person_tables
    for table in person_tables:
        k, least = evaluation.metadata[f"{table}/k"].value, evaluation.metadata[f"{table}/min_k"].value
        assert isinstance(k, int) and least == 5 and (k >= least or evaluation.metadata[f"{table}/rows"].value == 0)


# -- re-identification ---------------------------------------------------------------------------
PERSON_QI = {
    "hukou_address": "府右街1号院1号楼",
    "residence_address": "府右街12号院3号楼",
    "building_code": "B1",
    "sources": "police.population",
    "doc_type": "身份证",
    "person_type": "户籍人口",
    "hukou_match": "01",
    "age_band": "35-39岁",
    "is_very_old": False,
    "status": "在册",
    "sex": "1",
    "grid_code": "G1",
    "community_code": "C1",
    "community_name": "府右街南",
    "street_code": "110102001",
}


def persons(n: int, **different) -> list[dict]:
    return [PERSON_QI | different for _ in range(n)]


def test_rare_persons_lose_their_most_telling_values_first_and_the_rarest_are_left_out():
    person = load_contracts().table("mart.person")
    shared = pl.DataFrame(
        [
            *persons(6),  # a common combination: shared whole
            *persons(3, hukou_address="外省某地", building_code="B2", residence_address="B2地址"),
            *persons(2, hukou_address=None, building_code=None, residence_address=None),
            *persons(
                1,
                sex="2",
                age_band="80岁及以上",
                is_very_old=True,
                community_code="C9",
                grid_code="G9",
                community_name="钟声",
            ),
        ],
        schema_overrides={"is_very_old": pl.Boolean},
    )
    published = k_anonymous(shared.with_row_index("row"), person)
    rows = {r["row"]: r for r in published.iter_rows(named=True)}
    assert sorted(rows) == list(range(11))  # the one of its kind even with everything blanked is left out
    assert all(rows[i]["building_code"] == "B1" and rows[i]["hukou_address"] for i in range(6))
    # the small building's three join the two without a building: five alike, their age and sex kept
    assert all(rows[i]["building_code"] is None and rows[i]["hukou_address"] is None for i in range(6, 11))
    assert all(rows[i]["age_band"] == "35-39岁" and rows[i]["sex"] == "1" and rows[i]["sources"] for i in range(6, 11))
    qis = anonymity(person).quasi_identifiers
    assert published.group_by(qis).len()["len"].min() >= 5


def test_every_person_table_names_all_its_quasi_identifiers():
    contracts = load_contracts()
    specs = {t.key: anonymity(t) for t in contracts.marts}  # raises on a contract that misses one
    assert {key for key, spec in specs.items() if spec} == {
        "mart.person",
        "mart.person_history",
        "mart.care_visit",
        "mart.person_link",
        "mart.address_issue",
    }
    person = contracts.table("mart.person")
    lacking = dataclasses.replace(
        person, anonymity={"suppress": [c for c in person.anonymity["suppress"] if c != "sex"]}
    )
    with pytest.raises(ValueError, match="sex"):
        anonymity(lacking)


def test_no_display_mask_beside_a_pseudonym_in_any_shared_table():
    """A mask beside its pseudonym can be brute-forced: 110102********123X plus an age band leaves
    few enough IDs that whoever holds the key tries them all."""
    for t in load_contracts().marts:
        names = {c.name for c in shared_columns(t)}
        assert not {n.removesuffix("_key") for n in names if n.endswith("_key")} & names, t.key


def test_a_warehouse_too_rare_to_share_is_not_published(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    home = Home.at(tmp_path / "home")
    write_silver(home, street_silver())
    build_marts(home, as_of=AS_OF)
    publish(home)
    before = home.warehouse.resolve()
    monkeypatch.setattr(privacy, "k_anonymous", lambda shared, table: shared)  # as if nothing were blanked
    with pytest.raises(ReidentificationError, match=r"mart\.person"):
        publish(home, full=True)  # the marts did not change: only a full publish masks them again
    assert home.warehouse.resolve() == before
