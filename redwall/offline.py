"""Pages that open offline, on an intranet without internet: one HTML file each, every style
inline, no script, font, image or stylesheet fetched from anywhere, and a Content-Security-Policy
of ``default-src 'none'`` so the browser refuses any request the page might still try."""

from __future__ import annotations

import html
import os
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


def write_atomically(path: Path, text: str) -> Path:
    """Write ``path`` beside itself and rename it into place: a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = path.with_name(f".{path.name}.{os.getpid()}.new")
    new.write_text(text, encoding="utf-8")
    os.replace(new, path)
    return path
