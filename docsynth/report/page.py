"""`docsynth report RUN`: one self-contained HTML page about a run folder.

Everything is inside the file: pictures are base64 JPEG/PNG ``data:`` URIs, charts are inline
SVG, styles are inline CSS; there is no script and no external URL, so the page opens the same
offline, from an e-mail attachment or from a CI artefact. Each section reads only what its
stage left in ``RUN/<stage>/``; a stage that did not run gets a line saying so instead.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from docsynth import __version__
from docsynth.errors import DocsynthError
from docsynth.io import atomic_write_text
from docsynth.report.html import esc
from docsynth.report.run_folder import RunFolder
from docsynth.report.sections import SECTIONS

GENERATOR = "docsynth report"


# ---------------------------------------------------------------------------------------------
# Reading a run folder
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# HTML building blocks
# ---------------------------------------------------------------------------------------------




# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#f6f6f4}
header{background:#263238;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cfd8dc;font-size:13px}
nav{padding:8px 24px;background:#fff;border-bottom:1px solid #ddd;font-size:13px}nav a{margin-right:14px;color:#1565c0}
main{padding:8px 24px 40px}section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:14px 0;
padding:6px 18px 14px}h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#fafafa;border:1px solid #eee;padding:8px;font-size:12px;max-height:420px;overflow:auto}
.missing{color:#8a6d00;background:#fff8e1;border-left:4px solid #ffb300;padding:6px 10px}
.sheet img{max-width:100%;height:auto;border:1px solid #ddd}.charts svg{margin:4px 12px 4px 0;border:1px solid #eee}
.error{color:#b71c1c}
"""


def build_report(run_dir: str | Path) -> str:
    run = RunFolder(run_dir)
    body = []
    for anchor, title, make in SECTIONS:
        try:
            content = make(run)
        except Exception as exc:  # one unreadable file must not cost the whole report
            content = f'<p class="error">Could not show this section: {esc(type(exc).__name__)}: {esc(exc)}</p>'
        body.append(f'<section id="{anchor}"><h2>{esc(title)}</h2>{content}</section>')
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in SECTIONS)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = esc(run.root.resolve().name)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="generator" content="{GENERATOR} {esc(__version__)}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>docsynth run {name}</title><style>{CSS}</style></head><body>"
            f"<header><h1>docsynth run: {name}</h1><p>{esc(run.root.resolve())} · report written {when} · "
            f"docsynth {esc(__version__)}</p></header><nav>{nav}</nav><main>{''.join(body)}</main></body></html>")


def write_report(run_dir: str | Path, out: str | Path | None = None, force: bool = False) -> Path:
    """Write the report (default ``RUN/report.html``); refuses to replace a file that is not an
    earlier docsynth report unless ``force``."""
    run_dir = Path(run_dir)
    path = Path(out) if out is not None else run_dir / "report.html"
    if path.exists() and not force:
        if path.is_dir():
            raise DocsynthError(f"{path}: is a folder; pass --out FILE.html")
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:600]
        except OSError:
            head = ""
        if f'content="{GENERATOR}' not in head:
            raise DocsynthError(f"{path}: exists and is not a docsynth report; use --force or another --out")
    atomic_write_text(path, build_report(run_dir))
    return path
