"""Make the files of the delivery corpus, once, by hand: ``.venv/bin/python tests/deliveries/make_fixtures.py``.

The corpus is what real senders deliver, written *without* redwall's generator: rows typed here as a
clerk types them (openpyxl puts text, numbers, dates and formulas into cells, nothing computed), then
opened and re-saved by LibreOffice as a clerk's spreadsheet program saves them (xlsx, xls, CSV in GBK
and in UTF-8). Needs LibreOffice (``apt-get install -y libreoffice-calc fonts-noto-cjk``); CI does not:
the files it makes are committed, and ``test_deliveries.py`` replays each case.

The cases' expectations (``case.yaml``) are written by hand, not by this script. Run with case
names to remake only those; a case whose files are all typed here needs no redwall; the cases that
return redwall's own error workbook run redwall once to get it (see :func:`returned`).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
CASES = HERE / "cases"
STREET = HERE / "street"
# LibreOffice's CSV export filter: field separator 44 (,), text delimiter 34 ("), then the charset.
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,{charset}"
CHARSETS = {"utf8": "76", "gbk": "61"}  # rtl text encodings: 76 UTF-8, 61 GBK


# -- values a clerk types ------------------------------------------------------------------------
def cid(birth: str, sequence: str, area: str = "110102") -> str:
    """A citizen ID with its check character (GB 11643), computed here, independently of redwall."""
    body = area + birth + sequence
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


ELDERLY_HEADER = [
    "姓名",
    "公民身份号码",
    "所属社区",
    "居住地址",
    "联系电话",
    "居住情况",
    "紧急联系人",
    "紧急联系人电话",
    "最近走访日期",
    "走访干部",
]
ELDERLY = [
    [
        "张秀英",
        cid("19400312", "002"),
        "府右街南社区",
        "西城区府右街12号院3号楼2单元501",
        "13812345678",
        "独居",
        "王建国",
        "13912345678",
        dt.date(2026, 11, 3),
        "李红",
    ],
    [
        "刘桂兰",
        cid("19380101", "041"),
        "府右街南社区",
        "西城区府右街12号院3号楼1单元101",
        "13811112222",
        "独居",
        "刘明",
        "13911112222",
        dt.date(2026, 11, 4),
        "李红",
    ],
    [
        "陈淑珍",
        cid("19450909", "062"),
        "西交民巷社区",
        "西城区西交民巷5号",
        "66012345",
        "空巢",
        None,
        None,
        dt.date(2026, 11, 5),
        "赵敏",
    ],
    [
        "王德顺",
        cid("19360518", "013"),
        "西交民巷社区",
        "西城区西交民巷17号院2号楼302",
        "13700001111",
        "独居",
        "王小军",
        "13600001111",
        dt.date(2026, 11, 6),
        "赵敏",
    ],
    [
        "李玉珍",
        cid("19420227", "084"),
        "府右街南社区",
        "西城区府右街8号院1号楼203",
        "13522223333",
        "独居",
        None,
        None,
        dt.date(2026, 11, 9),
        "李红",
    ],
    [
        "周福海",
        cid("19391130", "035"),
        "西交民巷社区",
        "西城区西交民巷22号",
        "13433334444",
        "空巢",
        "周静",
        "13333334444",
        dt.date(2026, 11, 10),
        "赵敏",
    ],
]
AID_HEADER = ["户主姓名", "公民身份号码", "所属社区", "帮扶类型", "帮扶金额（元）", "帮扶日期", "经办人"]
AID = [
    ["刘志强", cid("19650715", "001"), "西交民巷社区", "临时救助", 800, dt.date(2026, 11, 2), "赵敏"],
    ["马桂芬", cid("19580203", "022"), "府右街南社区", "物资帮扶", 500, dt.date(2026, 11, 2), "李红"],
    ["孙建国", cid("19700811", "053"), "西交民巷社区", "医疗救助", 1200, dt.date(2026, 11, 5), "赵敏"],
    ["何丽", cid("19811224", "064"), "府右街南社区", "临时救助", 600, dt.date(2026, 11, 8), "李红"],
    ["杨宝山", cid("19490612", "075"), "西交民巷社区", "物资帮扶", 500, dt.date(2026, 11, 9), "赵敏"],
]


# -- writing and re-saving -----------------------------------------------------------------------
def workbook(sheet_name: str, rows: list[list], *, title: str | None = None, widths: int = 0) -> openpyxl.Workbook:
    """Rows into cells as typed: text as text, numbers, dates as date cells, ``=…`` as formulas
    (uncomputed: openpyxl stores no cached value, as a program that never recalculated)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = sheet_name
    if title:
        sheet.append([title])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=widths or len(rows[0]))
    for row in rows:
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, dt.date):
                cell.number_format = "yyyy-mm-dd"
    return book


def libreoffice(source: Path, target: Path, to: str) -> Path:
    """``source`` opened and saved by LibreOffice as ``to`` (xlsx, xls, or csv-utf8 / csv-gbk), at ``target``."""
    with tempfile.TemporaryDirectory() as out:
        fmt = CSV_FILTER.format(charset=CHARSETS[to[4:]]) if to.startswith("csv-") else to
        profile = Path(out) / "profile"
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--convert-to",
                fmt,
                "--outdir",
                out,
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        made = Path(out) / f"{source.stem}.{'csv' if to.startswith('csv-') else to}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(made, target)
    return target


def every_format(book: openpyxl.Workbook, folder: Path, stem: str) -> None:
    """The typed workbook as openpyxl wrote it, and as LibreOffice re-saves it in each format."""
    folder.mkdir(parents=True, exist_ok=True)
    typed = folder / f"{stem}.xlsx"
    book.save(typed)
    for to, suffix in (
        ("xlsx", "_LibreOffice.xlsx"),
        ("xls", ".xls"),
        ("csv-gbk", "_GBK.csv"),
        ("csv-utf8", "_UTF-8.csv"),
    ):
        libreoffice(typed, folder / f"{stem}{suffix}", to)


# -- the street the cases happen in --------------------------------------------------------------
def street() -> None:
    """The district's grid register, two communities of 西长安街: what every case delivers first."""
    STREET.mkdir(exist_ok=True)
    grids = pa.table(
        {
            "grid_code": ["110102001001001", "110102001001002", "110102001002001"],
            "community_code": ["110102001001", "110102001001", "110102001002"],
            "community_name": ["府右街南社区", "府右街南社区", "西交民巷社区"],
            "street_code": ["110102001"] * 3,
            "area_m2": [52000.0, 48000.0, 61000.0],
            "worker_ids": ["W001", "W002", "W003,W004"],
        }
    )
    pq.write_table(grids, STREET / "grid_20261101.parquet")
    # the police register knows the elderly residents (else every ledger row is a 'person unknown')
    header = [
        "公民身份号码",
        "姓名",
        "性别",
        "民族",
        "出生日期",
        "户籍地址",
        "居住地址",
        "人户一致标识",
        "人员类型",
        "联系电话",
        "登记日期",
        "注销日期",
        "注销原因",
    ]
    lines = [",".join(header)]
    for name, number, _, address, phone, *_ in ELDERLY:
        sex = "男" if int(number[16]) % 2 else "女"
        lines.append(
            ",".join(
                [
                    number,
                    name,
                    sex,
                    "汉族",
                    number[6:14],
                    address,
                    address,
                    "01",
                    "户籍人口",
                    phone,
                    "2010-05-01",
                    "",
                    "",
                ]
            )
        )
    (STREET / "实有人口_20261101.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))


# -- trailers and decoration ---------------------------------------------------------------------
def trailers() -> None:
    """A hardship-aid ledger: title, header, five records, a 合计 row summing the amounts with a
    formula, a blank row, and the signature line spread over several cells."""
    rows = [
        AID_HEADER,
        *AID,
        ["合计", None, None, None, "=SUM(E3:E7)", None, None],
        [],
        ["制表人：", "赵敏", "审核人：", "王主任", "填报日期：", dt.date(2026, 11, 30), None],
    ]
    every_format(
        workbook("困难群众帮扶台账", rows, title="西交民巷社区困难群众帮扶台账（2026年11月）"),
        CASES / "trailer_total_and_signature",
        "困难群众帮扶台账",
    )


def two_pages() -> None:
    """An elderly-alone ledger printed on two pages and kept that way: each page ends with a 小计
    row (a COUNTA formula) and a page note, the second page repeats the header, blank rows between."""
    page1, page2 = ELDERLY[:3], ELDERLY[3:]
    rows = [
        ELDERLY_HEADER,
        *page1,
        ["小计", "=COUNTA(B3:B5)", None, None, None, None, None, None, None, None],
        ["第1页 共2页"],
        [],
        ELDERLY_HEADER,
        *page2,
        ["小计", "=COUNTA(B10:B12)"],
        ["总计：6人"],
        ["第2页 共2页"],
        [],
        ["填表人：李红", None, None, None, None, "负责人：王主任", None, None, "2026年11月30日"],
        ["备注：空巢老人按独居关爱"],
    ]
    every_format(
        workbook("独居老人台账", rows, title="独居老人台账（2026年11月）"), CASES / "trailer_two_pages", "独居老人台账"
    )


def floating_signature() -> None:
    """A floating-population export with the 制表人/日期 note spread over several cells."""
    header = [
        "序号",
        "姓名",
        "证件类型",
        "证件号码",
        "性别",
        "出生日期",
        "户籍地",
        "现住地址",
        "来京日期",
        "流入原因",
        "居住证号",
        "居住证有效期至",
        "住所类型",
        "房主姓名",
        "房主电话",
        "登记人",
        "登记日期",
    ]
    people = [
        [
            1,
            "黄海涛",
            "居民身份证",
            cid("19900501", "017", "130102"),
            "男",
            "1990-05-01",
            "河北省石家庄市",
            "西城区西交民巷5号",
            "2025-03-01",
            "务工",
            None,
            None,
            "租赁",
            "陈淑珍",
            "13812340000",
            "孙管理",
            "2026-11-30",
        ],
        [
            2,
            "林小红",
            "居民身份证",
            cid("19951120", "028", "350102"),
            "女",
            "1995/11/20",
            "福建省福州市",
            "西城区府右街8号院1号楼101",
            "2026-06-15",
            "经商",
            None,
            None,
            "租赁",
            "李玉珍",
            "13522223333",
            "孙管理",
            "2026-11-30",
        ],
        [
            3,
            "赵强",
            "居民身份证",
            cid("19880310", "039", "410102"),
            "男",
            "1988年3月10日",
            "河南省郑州市",
            "西城区西交民巷22号",
            "2024-09-01",
            "务工",
            None,
            None,
            "单位宿舍",
            None,
            None,
            "孙管理",
            "2026-11-30",
        ],
    ]
    rows = [header, *people, [], [None, "制表人：", "孙管理", None, None, "日期：", "2026-11-30"]]
    book = workbook("流动人口", rows, title="西长安街街道流动人口登记表")
    folder = CASES / "trailer_floating_signature"
    folder.mkdir(parents=True, exist_ok=True)
    book.save(folder / "流动人口登记_20261130.xlsx")
    libreoffice(folder / "流动人口登记_20261130.xlsx", folder / "流动人口登记_20261130_LibreOffice.xlsx", "xlsx")


# -- the error workbook comes back ---------------------------------------------------------------
ORIGINAL = "ledgers/civil_affairs/独居老人台账（11月）.xlsx"


def flawed_ledger() -> openpyxl.Workbook:
    """The elderly-alone ledger with five bad cells: 居住情况 left empty (row 3), the name left empty
    and the ID typed into a number cell (row 4: nothing left to recognise the record by but its
    place), a phone too short (row 5), a community no register knows (row 6)."""
    rows = [list(r) for r in ELDERLY]
    rows[0][5] = None
    rows[1][0] = None
    rows[1][1] = int(rows[1][1][:15] + "000")
    rows[2][4] = "138123"
    rows[3][2] = "无名社区"
    return workbook("独居老人台账", [ELDERLY_HEADER, *rows], title="独居老人台账（2026年11月）")


def returned() -> None:
    """The clerk's answer to redwall's error workbook. redwall runs once here (ingest, loop, outbox)
    to make the workbook a clerk receives; the clerk then corrects the five marked cells, sorts the
    rows by name, deletes one good row, adds a new resident, and saves it under a name of their own
    from LibreOffice as xlsx, xls and CSV (GBK, UTF-8). Also a corrected copy of the original file
    itself, under another name."""
    sys.path.insert(0, str(HERE.parents[1]))
    from redwall.home import Home
    from redwall.ingest import process_source
    from redwall.quality.loop import run_loop
    from redwall.quality.outbox import write_outbox

    folder = CASES / "return_error_workbook"
    folder.mkdir(parents=True, exist_ok=True)
    flawed_ledger().save(folder / "独居老人台账（11月）.xlsx")
    with tempfile.TemporaryDirectory() as tmp:
        home = Home.at(Path(tmp) / "home").ensure()
        for register, source in (("grid_20261101.parquet", "district"), ("实有人口_20261101.csv", "police")):
            home.inbox(source).mkdir(parents=True, exist_ok=True)
            shutil.copy(STREET / register, home.inbox(source) / register)
            process_source(home, source)
        target = home.root / "inbox" / ORIGINAL
        target.parent.mkdir(parents=True)
        shutil.copy(folder / "独居老人台账（11月）.xlsx", target)
        process_source(home, "ledgers")
        write_outbox(home, run_loop(home))
        (sent,) = (home.outbox / "ledgers").rglob("*_错误标注.xlsx")
        shutil.copy(sent, folder / "错误标注（redwall发出）.xlsx")
    book = openpyxl.load_workbook(folder / "错误标注（redwall发出）.xlsx")
    sheet = book.worksheets[0]
    header = 2
    records = []
    for row in sheet.iter_rows(min_row=header + 1, max_row=sheet.max_row):
        values = [c.value for c in row]
        if not any(values):
            continue
        good = ELDERLY[row[0].row - header - 1]  # the workbook keeps each row where it was
        for cell, label in zip(row, ELDERLY_HEADER, strict=False):
            if cell.comment is not None:  # what the comment says is wrong: typed again, correctly
                values[ELDERLY_HEADER.index(label)] = good[ELDERLY_HEADER.index(label)]
        records.append(values)
    assert len(records) == 6
    records = [r for r in records if r[0] != "周福海"]  # gone: moved away
    records.sort(key=lambda r: r[0], reverse=True)
    records.append(
        [
            "吴淑兰",
            cid("19410706", "046"),
            "府右街南社区",
            "西城区府右街8号院2号楼101",
            "13244445555",
            "独居",
            None,
            None,
            dt.date(2026, 12, 1),
            "李红",
            None,
        ]
    )  # new, no row reference
    sheet.delete_rows(header + 1, sheet.max_row)
    for r, values in enumerate(records, start=header + 1):
        for c, value in enumerate(values, start=1):
            cell = sheet.cell(r, c, value)
            cell.comment = None
            if isinstance(value, dt.date):
                cell.number_format = "yyyy-mm-dd"
    typed = Path(tempfile.mkdtemp()) / "独居老人台账（11月）_错误标注（更正）.xlsx"
    book.save(typed)
    for to, name in (
        ("xlsx", "更正_LibreOffice.xlsx"),
        ("xls", "更正.xls"),
        ("csv-gbk", "更正_GBK.csv"),
        ("csv-utf8", "更正_UTF-8.csv"),
    ):
        libreoffice(typed, folder / name, to)
    # the clerk's other way: the original file, the five cells corrected, saved as a new name
    copy = flawed_ledger()
    sheet = copy.active
    for r, good in enumerate(ELDERLY, start=3):
        for c, value in enumerate(good, start=1):
            sheet.cell(r, c, value)
    copy_typed = Path(tempfile.mkdtemp()) / "独居老人台账（11月）更正版.xlsx"
    copy.save(copy_typed)
    libreoffice(copy_typed, CASES / "return_corrected_copy" / "独居老人台账（11月）更正版.xlsx", "xlsx")
    shutil.copy(folder / "独居老人台账（11月）.xlsx", CASES / "return_corrected_copy" / "独居老人台账（11月）.xlsx")


# -- the national data elements -----------------------------------------------------------------
def elements() -> None:
    """Deliveries naming their fields by the standard data elements rather than by the codes the
    centre's contracts were written from: the city exchange's death registrations with GA/T 543
    identifiers (GMSFHM, XM, SWRQ) and a dictionary giving their standard names; disability
    certificates in Parquet under codes nobody knows (ZD1…), explained only by a dictionary giving
    the standard Chinese names; a hardship-aid ledger whose clerk typed the standard identifiers as
    headers; and an elderly-allowance list under codes with no dictionary at all (refused, saying
    what was expected)."""
    import json

    folder = CASES / "elements_exchange_and_ledger"
    folder.mkdir(parents=True, exist_ok=True)
    zhou = ELDERLY[5]
    death = ["GMSFHM,XM,SWRQ", f"{zhou[1]},{zhou[0]},2026-11-20"]
    (folder / "mz_death_20261130.csv").write_text("\n".join(death) + "\n", encoding="utf-8")
    (folder / "mz_death_20261130.dict.json").write_text(
        json.dumps(
            {
                "GMSFHM": {"name": "公民身份号码", "type": "string"},
                "XM": {"name": "姓名", "type": "string"},
                "SWRQ": {"name": "死亡日期", "type": "date"},
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    wang, li = ELDERLY[3], ELDERLY[4]
    pq.write_table(
        pa.table(
            {
                "ZD1": [wang[1], li[1]],
                "ZD2": [wang[0], li[0]],
                "ZD3": [f"{wang[1]}44", f"{li[1]}14"],
                "ZD4": ["肢体", "视力"],
                "ZD5": ["二级", "四级"],
                "ZD6": ["2030-06-30", "2029-01-31"],
            }
        ),
        folder / "cl_disability_20261130.parquet",
    )
    (folder / "cl_disability_20261130.dict.json").write_text(
        json.dumps(
            {
                "ZD1": {"name": "公民身份号码", "type": "string"},
                "ZD2": {"name": "姓名", "type": "string"},
                "ZD3": {"name": "残疾人证号", "type": "string"},
                "ZD4": {"name": "残疾类别", "type": "string"},
                "ZD5": {"name": "残疾等级", "type": "string"},
                "ZD6": {"name": "有效期至", "type": "date"},
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    (folder / "rs_elderly_allowance_20261130.csv").write_text(
        "ZD01,ZD02,ZD03\n" + f"{li[1]},{li[0]},80-89岁\n", encoding="utf-8"
    )
    header = ["HZXM", "GMSFHM", "SQMC", "帮扶类型", "帮扶金额", "帮扶日期", "经办人"]
    book = workbook("困难群众帮扶台账", [header, *AID[:3]])
    book.save(folder / "困难群众帮扶台账（标准数据元表头）.xlsx")


# -- values and documents as typed ---------------------------------------------------------------
def values_as_typed() -> None:
    """A hardship-aid ledger saved as CSV (GBK) by a clerk's spreadsheet in a Chinese locale: dates
    in the forms it writes, amounts with 元, 万 and separators, one amount and one date that may
    mean two things. Written here as the text such a program writes, byte for byte."""
    lines = [
        ",".join(AID_HEADER),
        f"刘志强,{cid('19650715', '001')},西交民巷社区,临时救助,800元,2026/11/2,赵敏",
        f'马桂芬,{cid("19580203", "022")},府右街南社区,物资帮扶,"1,500.00",2026年11月2日,李红',
        f"孙建国,{cid('19700811', '053')},西交民巷社区,医疗救助,1.2万,2026.11.05,赵敏",
        f'何丽,{cid("19811224", "064")},府右街南社区,临时救助,"1,50",20261108,李红',
        f"杨宝山,{cid('19490612', '075')},西交民巷社区,物资帮扶,500,40年11月9日,赵敏",
    ]
    folder = CASES / "values_as_typed"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "困难群众帮扶台账.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))


def identity_documents() -> None:
    """A floating-population export whose clerk typed document numbers as people write them:
    a Hong Kong permit with a dash and spaces, a passport in lower case, a Taiwan resident's
    residence permit (830000), a citizen ID with an Arabic-Indic digit pasted from a phone."""
    header = [
        "序号",
        "姓名",
        "证件类型",
        "证件号码",
        "性别",
        "出生日期",
        "户籍地",
        "现住地址",
        "来京日期",
        "流入原因",
        "居住证号",
        "居住证有效期至",
        "住所类型",
        "房主姓名",
        "房主电话",
        "登记人",
        "登记日期",
    ]
    base = [
        "西城区西交民巷5号",
        "2025-03-01",
        "务工",
        None,
        None,
        "租赁",
        "陈淑珍",
        "13812340000",
        "孙管理",
        "2026-11-30",
    ]
    people = [
        [1, "陈家明", "港澳居民来往内地通行证", "h-1234 5678", "男", "1985-02-01", "香港", *base],
        [2, "JOHN SMITH", "护照", "g12345678", "男", "1979-07-07", "英国", *base],
        [3, "林志玲", "港澳台居民居住证", cid("19900101", "012", "830000"), "女", "1990-01-01", "台湾", *base],
        [
            4,
            "黄海涛",
            "居民身份证",
            cid("19900501", "017", "130102")[:7] + "٩" + cid("19900501", "017", "130102")[8:],
            "男",
            "1990-05-01",
            "河北省石家庄市",
            *base,
        ],
    ]
    book = workbook("流动人口", [header, *people], title="西长安街街道流动人口登记表")
    folder = CASES / "identity_documents"
    folder.mkdir(parents=True, exist_ok=True)
    book.save(folder / "流动人口登记_20261130.xlsx")


MAKERS = {
    "street": street,
    "trailer_total_and_signature": trailers,
    "trailer_two_pages": two_pages,
    "trailer_floating_signature": floating_signature,
    "returned": returned,
    "elements": elements,
    "values_as_typed": values_as_typed,
    "identity_documents": identity_documents,
}


if __name__ == "__main__":
    for name in sys.argv[1:] or MAKERS:
        MAKERS[name]()
        print("made", name)
