"""Run import-linter (contracts in pyproject's [tool.importlinter]) on the installed `redwall` package.

grimp, which import-linter builds its graph with, walks the package's folder and so would not see the
subpackages that live in other folders (see tools/layout.py); this runs it on a tree of links laid
out as the package installs. Extra arguments go to lint-imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from layout import ROOT, link_tree


def main(args: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="redwall-imports-") as tree:
        link_tree(Path(tree))
        # The links come first on the path, before the editable install's import hook; lint-imports
        # also puts its working folder on the path, so it runs in the tree, not in the checkout.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")]))}
        lint = Path(sys.executable).with_name("lint-imports")
        return subprocess.call([str(lint), "--no-cache", str(ROOT / "pyproject.toml"), *args], cwd=tree, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
