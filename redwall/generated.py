"""Every file of the repository that is made, not written by hand, and the one way to refresh them:
``redwall regenerate [NAME …]`` rewrites those stale or missing (a name given: rewritten whatever
its state), ``redwall check [NAME …]`` lists them and exits non-zero. The test suite runs the same
checks (tests/test_generated.py).

- ``suites``: the expectation suites ``quality/suites/*.json``, derived from the contracts;
- ``templates``: ``redwall/template_versions.json``, each ledger template version's fingerprint and
  headers (a recorded version is never rewritten: a changed template needs a version bump);
- ``graph``: ``tests/snapshots/asset_graph.json``, the Dagster asset graph a reviewer reads;
- ``docs``: ``docs/warehouse.md``, described from a published warehouse: that of a small demo home
  (:data:`DOCS_DEMO`) built for the purpose in a temporary folder, a minute or two.
- ``model``: the person model ``redwall/marts/resolution/person_model.json`` and its threshold
  sweep beside it, trained on a generated street (:mod:`redwall.marts.resolution.evaluate`);
  checked without retraining: the sweep records the digest of the model it measured, and the
  threshold it chose must be the model's. Retrained only when that check fails, or when named.

Part of the command line: it reads the Dagster definitions (for the graph) and builds the demo
home with ``redwall demo`` (for the docs).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redwall.home import Home

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The demo the warehouse docs describe (``redwall demo`` options): the test suite's demo home (tests/test_pipeline.py).
DOCS_DEMO = {"scale": "small", "days": 7}


class Workshop:
    """What a check or a regeneration needs built, built once and only when asked: the shared
    warehouse of a small demo home (``warehouse``: one already built, e.g. by a test's fixture)."""

    def __init__(self, warehouse: Path | None = None) -> None:
        self._warehouse = warehouse
        self._folder: tempfile.TemporaryDirectory | None = None

    def warehouse(self) -> Path:
        if self._warehouse is None:
            self._folder = tempfile.TemporaryDirectory(prefix="redwall-docs-")
            root = Path(self._folder.name) / "home"
            demo = [f"--{name}={value}" for name, value in DOCS_DEMO.items()]
            made = subprocess.run(
                [sys.executable, "-m", "redwall.cli", "--home", str(root), "demo", *demo],
                capture_output=True,
                text=True,
            )
            if made.returncode != 0:
                raise RuntimeError(f"the demo home for docs/warehouse.md did not build:\n{made.stderr[-3000:]}")
            self._warehouse = Home.at(root).warehouse
        return self._warehouse

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()


@dataclass(frozen=True)
class Generated:
    """Generated files of one kind. ``render`` gives the text each should hold, by path from the
    project's root; a kind that is recorded rather than rendered gives ``problems`` and ``record``."""

    name: str
    what: str
    render: Callable[[Workshop], dict[str, str]] | None = None
    stray: Callable[[Path], list[str]] = field(default=lambda root: [])
    recorded: tuple[Callable[[Path], list[str]], Callable[[Path], list[Path]]] | None = None

    def problems(self, root: Path = PROJECT_ROOT, workshop: Workshop | None = None) -> list[str]:
        """What is stale or missing under ``root``, one line each (none: all fresh)."""
        if self.recorded:
            return self.recorded[0](root)
        found = []
        for path, text in self._rendered(workshop).items():
            on_disk = root / path
            if not on_disk.exists():
                found.append(f"{path}: missing")
            elif on_disk.read_text(encoding="utf-8") != text:
                found.append(f"{path}: stale")
        return found + [f"{path}: made from nothing that exists any more" for path in self.stray(root)]

    def _rendered(self, workshop: Workshop | None) -> dict[str, str]:
        if self.render is None:
            raise TypeError(f"{self.name} is recorded, not rendered")
        return self.render(workshop or Workshop())

    def regenerate(self, root: Path = PROJECT_ROOT, workshop: Workshop | None = None) -> list[Path]:
        """Rewrite the files under ``root``; returns those that changed."""
        if self.recorded:
            return self.recorded[1](root)
        changed = []
        for path, text in self._rendered(workshop).items():
            target = root / path
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                changed.append(target)
        for path in self.stray(root):
            (root / path).unlink()
            changed.append(root / path)
        return changed


def _relative(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def _suites(_: Workshop) -> dict[str, str]:
    from redwall.quality.suites import render, suite_path, suite_tables

    return {_relative(suite_path(table)): render(table) for table in suite_tables()}


def _stray_suites(root: Path) -> list[str]:
    from redwall.quality.suites import SUITES

    folder = root / _relative(SUITES)
    made = set(_suites(Workshop()))
    return sorted(p for p in (_relative(SUITES) + "/" + f.name for f in folder.glob("*.json")) if p not in made)


def _template_problems(root: Path) -> list[str]:
    from redwall.templates import VERSIONS_FILE, template_version_problems

    return template_version_problems(path=root / _relative(VERSIONS_FILE))


def _record_templates(root: Path) -> list[Path]:
    from redwall.templates import VERSIONS_FILE, record_template_versions

    path = root / _relative(VERSIONS_FILE)
    before = path.read_bytes() if path.exists() else None
    record_template_versions(path=path)  # refuses a template changed without a version bump
    return [path] if path.read_bytes() != before else []


def _graph(_: Workshop) -> dict[str, str]:
    from redwall.pipelines.definitions import defs
    from redwall.pipelines.snapshot import render

    return {"tests/snapshots/asset_graph.json": render(defs)}


def _docs(workshop: Workshop) -> dict[str, str]:
    from redwall.warehouse_docs import DOCS, describe

    return {_relative(DOCS): describe(workshop.warehouse())}


def _model_problems(root: Path) -> list[str]:
    from redwall.marts.resolution.evaluate import SWEEP, check_model
    from redwall.marts.resolution.model import MODEL

    model = root / _relative(MODEL)
    if not model.exists():
        return [f"{_relative(MODEL)}: missing"]
    return check_model(model, root / _relative(SWEEP))


def _retrain(root: Path) -> list[Path]:
    from redwall.marts.resolution.evaluate import SWEEP, regenerate_model
    from redwall.marts.resolution.model import MODEL

    return regenerate_model(root / _relative(MODEL), root / _relative(SWEEP))


SUITES = Generated("suites", "expectation suites, from the contracts", render=_suites, stray=_stray_suites)
TEMPLATES = Generated(
    "templates", "ledger template versions, fingerprints and headers", recorded=(_template_problems, _record_templates)
)
GRAPH = Generated("graph", "the Dagster asset graph snapshot", render=_graph)
DOCS = Generated("docs", "docs/warehouse.md, from a small demo home's warehouse", render=_docs)
MODEL = Generated(
    "model",
    "the person model and its threshold sweep, trained on a generated street (minutes)",
    recorded=(_model_problems, _retrain),
)
ALL = {g.name: g for g in (SUITES, TEMPLATES, GRAPH, DOCS, MODEL)}
