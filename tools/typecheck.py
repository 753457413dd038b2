"""Type-check the installed `redwall` package with mypy, by its installed module names.

Checked as plain folders, assets/ or quality/ would be the modules `assets.*`, `quality.*`, and
every `import redwall.assets...` would go unresolved (mypy does not follow an editable install's
import hook; see tools/layout.py). This hands mypy each file under the name it installs as; errors
still point at the files in the source tree. Extra arguments go to mypy, whose configuration is
[tool.mypy] in pyproject.toml.
"""

from __future__ import annotations

import os
import sys

from layout import ROOT, modules
from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource


def main(args: list[str]) -> int:
    os.chdir(ROOT)  # where mypy finds its configuration, pyproject.toml
    # mypy reads its configuration and options as usual; the target "redwall" is only there because
    # it insists on one, the files checked are the sources below
    _, options = process_options([*args, "-p", "redwall"])
    sources = [BuildSource(str(path.relative_to(ROOT)), module, None, str(ROOT)) for module, path in modules().items()]
    try:
        messages = build.build(sources, options).errors
    except CompileError as error:
        messages = error.messages
    for line in messages:
        print(line)
    errors = sum(": error:" in line for line in messages)
    print(f"mypy: {errors} errors in {len(sources)} files" if errors else f"mypy: no issues in {len(sources)} files")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
