"""The command line as a user meets it: the real ``redwall`` program in a subprocess, on temporary
homes. A user's mistake is answered in a line or two and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from redwall.cli import parser
from redwall.generator import SCALES
from redwall.privacy import KEY_ENV
from redwall.schemas import load_contracts

REDWALL = str(Path(sys.executable).parent / "redwall")
COMMANDS = ["generate", "process", "build", "demo", "held", "release", "discard", "ui", "serve", "evaluate"]


def redwall(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    settings = {k: v for k, v in os.environ.items() if k not in ("REDWALL_HOME", KEY_ENV, "REDWALL_ENV")}
    return subprocess.run(
        [REDWALL, *args],
        env={**settings, "REDWALL_LIMIT_SETTLE_SECONDS": "0", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def refused(out: subprocess.CompletedProcess, *said: str) -> str:
    """The refusal's text, once it is known to be one: exit 2, said plainly, no traceback."""
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 3, out.stderr
    for words in said:
        assert words in out.stderr, out.stderr
    return out.stderr


def test_home_is_taken_before_and_after_the_command(tmp_path):
    for args in (["--home", str(tmp_path / "before"), "held"], ["held", "--home", str(tmp_path / "after")]):
        out = redwall(*args)
        assert out.returncode == 0 and out.stdout == "no delivery is held\n", out.stderr
    assert (tmp_path / "before" / "inbox").is_dir() and (tmp_path / "after" / "inbox").is_dir()
    # given twice, the later one counts; not given after the command, the one before it stays
    out = redwall("--home", str(tmp_path / "first"), "held", "--home", str(tmp_path / "second"))
    assert out.returncode == 0 and (tmp_path / "second").is_dir() and not (tmp_path / "first").exists()


def test_every_help_shows_choices_and_defaults():
    out = redwall("--help")
    assert out.returncode == 0 and all(c in out.stdout for c in COMMANDS)
    pages = {command: redwall(command, "--help").stdout for command in COMMANDS}
    for command, page in pages.items():
        assert "--home HOME" in page and "$REDWALL_HOME" in page, command
    for command in ("generate", "demo"):
        assert "{" + ",".join(SCALES) + "}" in pages[command] and "(default: street)" in pages[command]
        assert "(default: 7)" in pages[command] and "(default: 14)" in pages[command]
    assert "{" + ",".join(load_contracts().sources) + "}" in pages["process"]
    assert "ingest_police_job" in pages["build"] and "build_all" in pages["build"]
    for command in ("ui", "serve"):
        assert "(default: 3000)" in pages[command] and "(default: 127.0.0.1)" in pages[command]
    assert "(default: the login name)" in pages["release"]


def test_unknown_names_are_refused_plainly(tmp_path):
    home = str(tmp_path / "home")
    refused(redwall("generate", "--home", home, "--scale", "huge"), "invalid choice: 'huge'", "street")
    refused(redwall("demo", "--home", home, "--scale", "huge"), "invalid choice: 'huge'")
    refused(redwall("process", "--home", home, "--source", "polize"), "invalid choice: 'polize'", "police")
    refused(redwall("build", "--home", home, "--job", "ingest_polize_job"), "invalid choice", "build_all")
    refused(redwall("generate", "--home", home, "--days", "1"), "days must be at least 2")


def test_check_and_regenerate_take_names_or_none():
    named = redwall("check", "suites", "templates", "graph")
    assert named.returncode == 0 and named.stdout.startswith("fresh: suites, templates, graph"), named.stderr
    refused(redwall("check", "suitez"), "invalid choice: 'suitez'", "suites")
    # no names means every kind (the docs build a demo home for minutes: parsing is what is asked here)
    for command in ("check", "regenerate"):
        assert parser().parse_args([command]).names == []


def test_a_home_that_cannot_be_one_is_refused_plainly(tmp_path):
    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")
    refused(redwall("held", "--home", str(tmp_path / "a_file")), "cannot use", "as a data home")


def test_an_empty_inbox_says_where_deliveries_go(tmp_path):
    home = tmp_path / "home"
    out = redwall("process", "--home", str(home))
    assert out.returncode == 0, out.stderr
    assert f"nothing waiting in {home / 'inbox'}" in out.stdout and "generate" in out.stdout
    out = redwall("process", "--home", str(home), "--source", "police")
    assert out.returncode == 0 and f"{home / 'inbox' / 'police'}/" in out.stdout


def test_building_an_empty_home_says_what_to_do(tmp_path):
    home = tmp_path / "home"
    said = refused(redwall("build", "--home", str(home)), "nothing to build", "generate", str(home / "inbox"))
    assert KEY_ENV not in said  # not a word about a pseudonym key: the home has nothing to publish


def test_evaluate_measures_a_generated_home_against_its_truth(tmp_path):
    """The one command for the resolution and address figures (no ``python -m`` of a module)."""
    refused(redwall("evaluate", "--home", str(tmp_path / "no_truth")), "has no ground truth", "generate")
    home = str(tmp_path / "home")
    for args in (["generate", "--scale", "small", "--days", "2"], ["process"]):
        assert (out := redwall(*args, "--home", home)).returncode == 0, out.stderr
    out = redwall("evaluate", "--home", home)
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert figures["resolution"]["records"] > 0 and figures["addresses"]["all_texts"] > 0
    assert figures["resolution"]["all_precision"] > 0.99 and figures["addresses"]["all_right"] > 0.9


@pytest.fixture(scope="module")
def police_only(tmp_path_factory) -> Path:
    """A home whose inbox holds the police feed alone, of a small generated street, and nothing taken in."""
    root = tmp_path_factory.mktemp("police_only")
    out = redwall("generate", "--home", str(root), "--scale", "small", "--days", "2")
    assert out.returncode == 0, out.stderr
    for folder in (root / "inbox").iterdir():
        if folder.name != "police":
            shutil.rmtree(folder)
    return root


def test_a_first_load_of_one_source_leaves_the_others_empty_and_fine(police_only):
    """Before the home's first receipt, a source with nothing waiting is no failure."""
    out = redwall("build", "--home", str(police_only), "--job", "ingest_district_job")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ingest_district_job succeeded" in out.stdout


def test_a_missing_key_stops_only_the_run_that_publishes(police_only):
    """In production the pseudonym key is required: without it the code location still loads and
    takes deliveries in, and only the run that publishes is refused, in a line."""
    production = {"REDWALL_ENV": "production"}
    loads = subprocess.run(
        [sys.executable, "-c", "from redwall.pipelines.definitions import defs; print(len(defs.jobs))"],
        env={k: v for k, v in os.environ.items() if k != KEY_ENV} | production,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loads.returncode == 0, loads.stderr
    out = redwall("build", "--home", str(police_only), "--job", "ingest_police_job", env=production)
    assert out.returncode == 0, out.stdout + out.stderr
    refused(
        redwall("build", "--home", str(police_only), "--job", "build_all", env=production),
        "build_all not started",
        KEY_ENV,
    )
