"""Crediting a background folder's authors: ``CREDITS.md`` (one attribution line per image, as
each licence asks) and ``credits.csv``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

from docsynth.backgrounds.folder import SET_ASIDE, BackgroundIndex
from docsynth.backgrounds.licences import NO_ATTRIBUTION, licence_name, licence_url
from docsynth.errors import DocsynthError
from docsynth.io import atomic_write_text

CREDITS_MARK = "<!-- written by `docsynth backgrounds credits`; rerun it to update -->"


CSV_FIELDS = ["id", "file", "title", "author", "author_url", "url", "licence", "licence_version",
              "licence_url", "attribution"]


def attribution_line(rec: dict[str, Any]) -> str:
    """TASL: Title, Author (+ link), Source, Licence (name, version, link), as Markdown."""
    title = rec.get("title") or rec.get("file") or rec["id"]
    title = f"[{title}]({rec['url']})" if rec.get("url") else title
    author = rec.get("author") or "unknown author"
    if rec.get("author_url"):
        author = f"[{author}]({rec['author_url']})"
    code, version = rec.get("licence") or "unknown", rec.get("licence_version") or ""
    lic = licence_name(code, version)
    link = rec.get("licence_url") or licence_url(code, version)
    lic = f"[{lic}]({link})" if link else lic
    via = f" via {rec['provider']}" if rec.get("provider") else ""
    return f"\"{title}\" by {author}{via}, licensed under {lic}"


def write_credits(root: str | Path, force: bool = False) -> dict[str, Any]:
    """CREDITS.md and credits.csv for every kept image whose licence asks for attribution
    (everything except CC0 and public domain)."""
    root = Path(root)
    if not root.is_dir():
        raise DocsynthError(f"{root}: background folder not found")
    md_path, csv_path = root / "CREDITS.md", root / "credits.csv"
    if not force:
        if md_path.is_file() and CREDITS_MARK not in md_path.read_text(encoding="utf-8", errors="replace")[:500]:
            raise DocsynthError(f"{md_path}: exists and was not written by docsynth; pass --force to replace it")
        if csv_path.is_file() and not csv_path.read_text(encoding="utf-8", errors="replace").startswith(",".join(CSV_FIELDS)):
            raise DocsynthError(f"{csv_path}: exists and was not written by docsynth; pass --force to replace it")
    index = BackgroundIndex(root)
    kept = [r for r in index.records.values()
            if r.get("file") and Path(r["file"]).parts[0] not in SET_ASIDE and (root / r["file"]).is_file()]
    credit = [r for r in kept if (r.get("licence") or "unknown") not in NO_ATTRIBUTION]
    by_licence = Counter(licence_name(r.get("licence") or "unknown", r.get("licence_version") or "") for r in credit)
    lines = [CREDITS_MARK, "", "# Background image credits", "",
             f"{len(credit)} of the {len(kept)} background images are used under licences that ask for "
             "attribution. They may have been cropped, scaled, tiled or re-encoded as JPEG.", ""]
    lines += [f"- {attribution_line(r)}" for r in credit]
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in credit:
        writer.writerow({k: r.get(k) if r.get(k) is not None else "" for k in CSV_FIELDS})
    atomic_write_text(csv_path, buf.getvalue())
    return {"folder": str(root), "images": len(kept), "credited": len(credit),
            "by_licence": dict(sorted(by_licence.items())), "files": [str(md_path), str(csv_path)]}
