"""Pages that open offline, on an intranet without internet: one HTML file each, every style
inline, no script, font, image or stylesheet fetched from anywhere, and a Content-Security-Policy
of ``default-src 'none'`` so the browser refuses any request the page might still try."""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# the fonts a centre's machines have for Chinese, first the Debian one (fonts-noto-cjk)
FONTS = '"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",sans-serif'


def escape(text: object) -> str:
    return html.escape("" if text is None else str(text))


def page(title: str, body: str, style: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{style}</style></head>
<body>{body}</body></html>
"""


PAGE_MODE, FOLDER_MODE = 0o644, 0o755  # published for other local users (redwall's umask is owner-only)


def write_shared(path: Path, write: Callable[[Path], object], shared_from: Path) -> Path:
    """Write ``path`` beside itself and rename it into place: a reader never sees half a file. The
    file and every folder from ``shared_from`` down to it are readable by other local users (the
    leaders' and clerks' accounts), whatever redwall's owner-only umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for folder in (path.parent, *path.parent.parents):
        folder.chmod(FOLDER_MODE)
        if folder == shared_from:
            break
    new = path.with_name(f".{path.name}.{os.getpid()}.new")
    write(new)
    new.chmod(PAGE_MODE)
    os.replace(new, path)
    return path


def write_atomically(path: Path, text: str, shared_from: Path) -> Path:
    """A page, written as :func:`write_shared` writes any published file."""
    return write_shared(path, lambda new: new.write_text(text, encoding="utf-8"), shared_from)
