"""Background provider `url-list`: images listed in a text or CSV file of URLs.

``docsynth backgrounds scrape --provider url-list --query urls.csv`` (or option ``file``):
a ``.txt`` has one URL per line (``#`` starts a comment); a ``.csv`` has a header with
``url`` and optionally ``licence`` (or ``license``), ``licence_version``, ``author``,
``author_url``, ``page`` (the source page), ``title`` and ``id``. Rows without a licence get
option ``licence`` (default ``unknown``, which the default licence filter rejects: pass
``--licences any`` for your own images). Ids are the ``id`` column or a hash of the URL.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from docsynth.backgrounds.folder import ScrapedBackgrounds
from docsynth.backgrounds.licences import licence_code
from docsynth.backgrounds.scrape import Candidate
from docsynth.config import F
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.options import Options

if TYPE_CHECKING:
    from docsynth.http import PoliteClient


def read_url_list(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DocsynthError(f"{path}: cannot read URL list ({exc.strerror})") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "url" not in {k.strip().lower() for k in rows[0] if k}:
            raise DocsynthError(f"{path}: the CSV header needs a 'url' column")
        return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in rows]
    return [{"url": line.split("#")[0].strip()} for line in text.splitlines() if line.split("#")[0].strip()]


class UrlListBackgrounds(ScrapedBackgrounds):
    name = "url-list"
    description = "images from a .txt/.csv list of URLs, with optional licence/author columns"
    options = {"root": F((str, None), None, "folder scraped into"),
               "file": F((str, None), None, "the list (instead of --query)"),
               "licence": F((str, None), None, "licence of rows without one"),
               "licences": F((list, None), None, "accepted licence codes (the core passes backgrounds.licences)")}
    licence = "as the list says per image (recorded in backgrounds.jsonl)"

    def search(self, query: str, options: Options, client: PoliteClient) -> Iterator[Candidate]:
        path = Path(options.file or query)
        if not path.is_file():
            raise DocsynthError(f"{path}: URL list not found (url-list reads the file named by --query or option 'file')")
        for n, row in enumerate(read_url_list(path), 2 if path.suffix.lower() == ".csv" else 1):
            url = row.get("url", "")
            if not url.startswith(("http://", "https://")):
                raise DocsynthError(f"{path}:{n}: {url!r} is not an http(s) URL")
            code, version = licence_code(row.get("licence") or row.get("license") or options.licence)
            yield Candidate(
                id=row.get("id") or hashlib.sha1(url.encode()).hexdigest()[:16], image_url=url,
                url=row.get("page") or url, title=row.get("title") or None, author=row.get("author") or None,
                author_url=row.get("author_url") or None, licence=code,
                licence_version=row.get("licence_version") or version,
            )


@hookimpl
def register_backgrounds(register):
    register(UrlListBackgrounds())
