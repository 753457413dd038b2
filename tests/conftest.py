"""Fixtures shared by test modules."""

import os

import pytest

from redwall.generator import generate
from redwall.home import Home
from redwall.ingest import holds, process_source, release
from redwall.marts import build_marts
from redwall.quality.loop import run_loop
from redwall.schemas import load_contracts

# Tests drop files and take them in at once: no waiting for a copy to settle. The settling rule
# itself is tested with its real interval (test_sensors, test_hardening).
os.environ.setdefault("REDWALL_LIMIT_SETTLE_SECONDS", "0")


@pytest.fixture(scope="module")
def looped(tmp_path_factory):
    """A small generated street taken in, its marts built and one round of the quality loop run:
    ``(home, issues)``. One per test module, which may change it. The generator's ledgers whose IDs
    a spreadsheet wrecked are held on arrival; an analyst lets them in, so that the loop sees them."""
    home = Home.at(tmp_path_factory.mktemp("looped")).ensure()
    generate(home, scale="small", seed=11, days=3)
    for source in load_contracts().sources:
        process_source(home, source)
    for receipt_id in holds.pending(home)["receipt_id"]:
        release(home, receipt_id, "analyst01", "已核对，有效行先行应用")
    build_marts(home)
    return home, run_loop(home)
