"""Every generated file is fresh (what ``redwall check`` checks), and the check can fail: on a copy of
the generated files, each kind of damage is reported and ``redwall regenerate``'s work repairs it.
docs/warehouse.md needs a published warehouse: tests/test_pipeline.py checks it on its demo home."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from redwall.generated import ALL, DOCS, GRAPH, MODEL, PROJECT_ROOT, SUITES, TEMPLATES
from redwall.marts.resolution.evaluate import SWEEP
from redwall.marts.resolution.model import MODEL as MODEL_FILE
from redwall.quality.suites import SUITES as SUITE_FOLDER
from redwall.templates import VERSIONS_FILE

WITHOUT_A_WAREHOUSE = [g for g in ALL.values() if g is not DOCS]
QUICK = [SUITES, TEMPLATES, GRAPH]  # regenerated in a test; the model trains for minutes
SNAPSHOT = "tests/snapshots/asset_graph.json"


@pytest.mark.parametrize("generated", WITHOUT_A_WAREHOUSE, ids=lambda g: g.name)
def test_the_committed_files_are_fresh(generated):
    problems = generated.problems(PROJECT_ROOT)
    assert not problems, "\n".join(problems) + f"\nrefresh: redwall regenerate {generated.name}"


def _copy(root: Path) -> dict[str, Path]:
    """The generated files, copied to their places under ``root``."""
    copies = {}
    for name, path in (
        ("suites", SUITE_FOLDER),
        ("templates", VERSIONS_FILE),
        ("graph", PROJECT_ROOT / SNAPSHOT),
        ("model", MODEL_FILE),
        ("sweep", SWEEP),
    ):
        copies[name] = root / path.relative_to(PROJECT_ROOT)
        copies[name].parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, copies[name])
    return copies


def test_stale_and_missing_files_fail_the_check_until_regenerated(tmp_path):
    copies = _copy(tmp_path)
    assert all(not g.problems(tmp_path) for g in WITHOUT_A_WAREHOUSE)

    suites = sorted(copies["suites"].glob("*.json"))
    suites[0].unlink()
    edited = json.loads(suites[1].read_text(encoding="utf-8"))
    edited["expectations"] = edited["expectations"][1:]
    suites[1].write_text(json.dumps(edited, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (copies["suites"] / "retired_table.json").write_text("{}\n", encoding="utf-8")
    folder = SUITE_FOLDER.relative_to(PROJECT_ROOT)
    assert SUITES.problems(tmp_path) == [
        f"{folder}/{suites[0].name}: missing",
        f"{folder}/{suites[1].name}: stale",
        f"{folder}/retired_table.json: made from nothing that exists any more",
    ]

    recorded = json.loads(copies["templates"].read_text(encoding="utf-8"))
    ledger = min(recorded)
    del recorded[ledger]
    copies["templates"].write_text(json.dumps(recorded, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (problem,) = TEMPLATES.problems(tmp_path)
    assert problem.startswith(f"{ledger}: template version") and "is not recorded" in problem

    graph = json.loads(copies["graph"].read_text(encoding="utf-8"))
    graph["jobs"].append("a_job_nobody_defined")
    copies["graph"].write_text(json.dumps(graph, indent=1) + "\n", encoding="utf-8")
    assert GRAPH.problems(tmp_path) == [f"{SNAPSHOT}: stale"]
    copies["graph"].unlink()
    assert GRAPH.problems(tmp_path) == [f"{SNAPSHOT}: missing"]  # a missing snapshot fails, never written quietly

    sweep = json.loads(copies["sweep"].read_text(encoding="utf-8"))
    sweep["thresholds"] = sweep["thresholds"][1:]  # a threshold fewer swept than the model's sweep must have
    copies["sweep"].write_text(json.dumps(sweep, indent=2) + "\n", encoding="utf-8")
    assert any("thresholds swept differ" in problem for problem in MODEL.problems(tmp_path))
    copies["model"].unlink()
    assert MODEL.problems(tmp_path) == [f"{MODEL_FILE.relative_to(PROJECT_ROOT)}: missing"]

    for generated in QUICK:
        generated.regenerate(tmp_path)
        assert not generated.problems(tmp_path), generated.name
    assert ledger in json.loads(copies["templates"].read_text(encoding="utf-8"))
    assert not (copies["suites"] / "retired_table.json").exists()
