"""Background provider `wikimedia-commons`: photos from Wikimedia Commons' search.

``docsynth backgrounds scrape --provider wikimedia-commons`` runs the Action API's
``generator=search`` over the File: namespace with ``filetype:bitmap``, follows ``continue``
(every key sent back), reads sizes and licences from ``imageinfo``/``extmetadata`` and
downloads a ``download_width`` px rendition instead of multi-megapixel originals. Replies
with ``maxlag`` errors are retried after their ``Retry-After``; the core's client handles 429
and 5xx. Commons blocks generic User-Agents: set ``backgrounds.contact``.

Options (``backgrounds.options.wikimedia-commons``): api_url, page_size, max_pages,
download_width (default 2048).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from docsynth.backgrounds.folder import ScrapedBackgrounds
from docsynth.backgrounds.licences import licence_code
from docsynth.backgrounds.scrape import Candidate
from docsynth.config import F
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.http import parse_retry_after
from docsynth.options import Options

if TYPE_CHECKING:
    from docsynth.http import PoliteClient, Response

API_URL = "https://commons.wikimedia.org/w/api.php"
IMAGE_MIME = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff"}
METADATA = "Artist|LicenseShortName|License|LicenseUrl|AttributionRequired|ObjectName|UsageTerms"


def strip_html(text: str | None) -> str | None:
    if not text:
        return None
    plain = html.unescape(re.sub(r"<[^>]+>", "", text))
    return " ".join(plain.split()) or None


def first_link(text: str | None) -> str | None:
    match = re.search(r'href="([^"]+)"', text or "")
    if not match:
        return None
    link = html.unescape(match.group(1))
    return "https:" + link if link.startswith("//") else link


def _maxlag(data: Any, response: Response) -> float | None:
    if isinstance(data, dict) and (data.get("error") or {}).get("code") == "maxlag":
        return parse_retry_after(response.headers.get("retry-after")) or 5.0
    return None


class CommonsBackgrounds(ScrapedBackgrounds):
    name = "wikimedia-commons"
    description = "photos from Wikimedia Commons search (scrape into a folder; options: root, api_url)"
    options = {"root": F((str, None), None, "folder scraped into"),
               "licences": F((list, None), None, "accepted licence codes (the core passes backgrounds.licences)"),
               "api_url": F((str, None), None, "API URL (null: commons.wikimedia.org)"),
               "page_size": F(int, 20, "results per request", low=1),
               "max_pages": F(int, 50, "pages per query", low=1),
               "download_width": F(int, 2048, "width of the scaled rendition downloaded", low=1)}
    licence = "per image, recorded in backgrounds.jsonl (default filter: CC0, PD, CC BY, CC BY-SA)"

    def search(self, query: str, options: Options, client: PoliteClient) -> Iterator[Candidate]:
        api = str(options.api_url or API_URL)
        width = int(options.download_width)
        params: dict[str, Any] = {
            "action": "query", "format": "json", "formatversion": 2, "generator": "search",
            "gsrsearch": f"{query} filetype:bitmap", "gsrnamespace": 6,
            "gsrlimit": int(options.page_size), "prop": "imageinfo",
            "iiprop": "url|size|mime|extmetadata", "iiurlwidth": width, "iiextmetadatafilter": METADATA,
            "maxlag": 5,
        }
        cont: dict[str, Any] = {}
        for _ in range(int(options.max_pages)):
            reply = client.get_json(api, {**params, **cont}, retry_if=_maxlag)
            if not isinstance(reply, dict):
                raise DocsynthError(f"wikimedia-commons: unexpected reply from {api}; check api_url")
            if "error" in reply:
                err = reply["error"]
                raise DocsynthError(f"wikimedia-commons: API error {err.get('code')}: {err.get('info')}")
            pages = (reply.get("query") or {}).get("pages") or []
            for page in sorted(pages, key=lambda p: p.get("index", 0)):  # the list has no set order
                cand = self._candidate(page)
                if cand:
                    yield cand
            if "continue" not in reply:
                return
            cont = dict(reply["continue"])  # send every key back, as the API asks

    @staticmethod
    def _candidate(page: dict[str, Any]) -> Candidate | None:
        info = (page.get("imageinfo") or [None])[0]
        if not info or info.get("mime") not in IMAGE_MIME:
            return None
        meta = {k: (v or {}).get("value") for k, v in (info.get("extmetadata") or {}).items()}
        # `License` is a code ("cc-by-sa-4.0", "pd"); the short name ("CC BY-SA 4.0") when absent.
        code, version = licence_code(meta.get("License"))
        if code == "unknown" or (code not in ("cc0", "pdm") and not version):
            short = licence_code(meta.get("LicenseShortName"))
            if short[0] != "unknown":
                code, version = short
        # A scaled rendition when the original is bigger than asked for; its size is what we get.
        use_thumb = info.get("thumburl") and info.get("thumbwidth") and info["thumbwidth"] < info.get("width", 0)
        title = strip_html(meta.get("ObjectName")) or str(page.get("title", "")).removeprefix("File:")
        return Candidate(
            id=str(page["pageid"]), image_url=info["thumburl"] if use_thumb else info["url"],
            url=info.get("descriptionurl"), title=title or None, author=strip_html(meta.get("Artist")),
            author_url=first_link(meta.get("Artist")), licence=code, licence_version=version,
            licence_url=meta.get("LicenseUrl"),
            width=info["thumbwidth"] if use_thumb else info.get("width"),
            height=info["thumbheight"] if use_thumb else info.get("height"),
            extra={"original_url": info.get("url"), "original_size": [info.get("width"), info.get("height")]},
        )


@hookimpl
def register_backgrounds(register):
    register(CommonsBackgrounds())
