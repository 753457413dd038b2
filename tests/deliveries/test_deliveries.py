"""The delivery corpus: files made independently of redwall's generator (by hand and by LibreOffice,
see ``make_fixtures.py``), each case replayed in a fresh data home against the expectations written
beside it (``cases/<case>/case.yaml``; the format is in this folder's README)."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from redwall.home import Home
from redwall.ingest import process_source
from redwall.quality.loop import run_loop
from redwall.quality.outbox import write_outbox

HERE = Path(__file__).parent
CASES = sorted(p.parent for p in (HERE / "cases").glob("*/case.yaml"))
RECEIPT_FIELDS = (
    "status",
    "refusal",
    "tables",
    "rows_read",
    "rows_accepted",
    "rows_rejected",
    "rows_warned",
    "rows_deduplicated",
    "rows_skipped",
)


@pytest.fixture
def street(tmp_path) -> Home:
    """A data home that has taken in the street's registers: the district's grids (communities)
    and the police register of the residents the ledgers name."""
    home = Home.at(tmp_path / "home").ensure()
    for register, source in (("grid_20261101.parquet", "district"), ("实有人口_20261101.csv", "police")):
        home.inbox(source).mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "street" / register, home.inbox(source) / register)
        assert all(r.status == "accepted" for r in process_source(home, source)), register
    return home


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_delivery(case: Path, street: Home):
    spec = yaml.safe_load((case / "case.yaml").read_text(encoding="utf-8"))
    assert spec.get("about"), "say what the case is"
    delivered: set[str] = set()
    issues = None
    for number, step in enumerate(spec["steps"], start=1):
        where = f"{case.name}, step {number}"
        if "deliver" in step:
            delivered.add(_deliver(street, case, step, where))
        elif "loop" in step:
            issues = run_loop(street)
            _check_issues(issues.filter(pl.col("file_path").is_in(sorted(delivered))), step.get("issues", {}), where)
        elif "outbox" in step:
            assert issues is not None, f"{where}: an outbox step follows a loop step"
            write_outbox(street, issues)
            books = sorted(p.name for p in (street.outbox / "ledgers").rglob("*.xlsx"))
            assert books == sorted(step["outbox"].get("workbooks", [])), where
        else:
            raise AssertionError(f"{where}: unknown step {sorted(step)}")


def _deliver(home: Home, case: Path, step: dict, where: str) -> str:
    """Drop the file into the inbox (``to``: its path under ``inbox/``), take the source in, and
    compare the receipt."""
    target = home.root / "inbox" / step.get("to", step["deliver"])
    source = Path(target.relative_to(home.root / "inbox")).parts[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(case / step["deliver"], target)
    for extra in step.get("beside", []):  # e.g. an exchange file's data dictionary
        shutil.copy(case / extra, target.parent / extra)
    (receipt,) = process_source(home, source)
    got = {f: getattr(receipt, f) for f in RECEIPT_FIELDS}
    got["tables"] = list(got["tables"])
    expected = step.get("receipt", {})
    assert {f: got[f] for f in expected} == expected, f"{where}: {step['deliver']}\n{receipt.reasons_zh}"
    for text in step.get("says", []):
        assert text in receipt.reasons_zh, f"{where}: {step['deliver']}: {text!r} not in\n{receipt.reasons_zh}"
    assert receipt.rows_read == receipt.rows_accepted + receipt.rows_rejected
    return receipt.file_path


def _check_issues(issues: pl.DataFrame, expected: dict, where: str) -> None:
    """The issues of the files this case delivered: counts by status; ``open_rules``, the rules
    of the open ones; ``open_on``, the ``[row, column]`` of every open issue; ``none_on_rows``,
    rows no issue may name (rows that are no records)."""
    shown = f"{where}\n{issues.select('file_path', 'row_number', 'column', 'rule', 'status')}"
    counts = dict(issues.group_by("status").len().iter_rows())
    for status in ("open", "closed", "waived"):
        if status in expected:
            assert counts.get(status, 0) == expected[status], shown
    opened = issues.filter(pl.col("status") == "open")
    if "open_rules" in expected:
        assert set(opened["rule"]) == set(expected["open_rules"]), shown
    if "open_on" in expected:
        got = sorted(map(list, opened.select("row_number", "column").iter_rows()))
        assert got == sorted(expected["open_on"]), shown
    if "none_on_rows" in expected:
        assert not issues.filter(pl.col("row_number").is_in(expected["none_on_rows"])).height, shown
