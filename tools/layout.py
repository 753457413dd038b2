"""Where each installed package of the project lives in the source tree.

The folders schemas/, assets/, pipelines/ and quality/ install as redwall.schemas, redwall.assets,
redwall.pipelines and redwall.quality (pyproject's [tool.setuptools.package-dir]). An editable
install reaches them through an import hook that static tools (mypy, import-linter's grimp) do not
follow; the checks in this folder read the mapping here instead of restating it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, Path]:
    """Every package the project installs, with the folder it comes from."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapped = {name: ROOT / folder for name, folder in setuptools.get("package-dir", {}).items()}
    return {name: mapped.get(name, ROOT / name.replace(".", "/")) for name in setuptools["packages"]}


def modules() -> dict[str, Path]:
    """Every module the project installs, by its installed name, with its file."""
    found = {}
    for package, folder in sorted(package_dirs().items()):
        # every file below, not only the package's own: a subpackage missing from pyproject's list
        # is still checked (the editable install imports it; the tests of a built wheel would not)
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            found[".".join([package, *(parts[:-1] if parts[-1] == "__init__" else parts)])] = path
    return found


def link_tree(target: Path) -> Path:
    """The installed package as a folder of links to the source files (one link per file, so that
    tools walking the tree see ordinary folders), for tools that import or walk `redwall`."""
    for module, path in modules().items():
        parts = module.split(".")
        link = (
            target.joinpath(*parts[:-1], path.name) if path.stem != "__init__" else target.joinpath(*parts, path.name)
        )
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return target
