"""Fixtures shared by test modules."""

import os

import pytest

from quality.loop import run_loop
from redwall.generator import generate
from redwall.home import Home
from redwall.ingest import process_source
from redwall.marts import build_marts
from schemas import load_contracts

# Tests drop files and take them in at once: no waiting for a copy to settle. The settling rule
# itself is tested with its real interval (test_sensors, test_hardening).
os.environ.setdefault("REDWALL_LIMIT_SETTLE_SECONDS", "0")


@pytest.fixture(scope="module")
def looped(tmp_path_factory):
    """A small generated street taken in, its marts built and one round of the quality loop run:
    ``(home, issues)``. One per test module, which may change it."""
    home = Home.at(tmp_path_factory.mktemp("looped")).ensure()
    generate(home, scale="small", seed=11, days=3)
    for source in load_contracts().sources:
        process_source(home, source)
    build_marts(home)
    return home, run_loop(home)
