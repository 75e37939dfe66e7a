"""Background provider `openverse`: openly licensed photos from the Openverse image search.

``docsynth backgrounds scrape --provider openverse`` pages through ``/v1/images/`` (at most 20
pages of ``page_size`` results: the API's own cap) and asks the API for photographs, wide
aspect and the accepted licences; the core then checks sizes and licences again, downloads,
normalises and records each image. Listing/loading reads what was scraped into ``root``.

Options (``backgrounds.options.openverse``): api_url, page_size (20 without a key), max_pages,
token (an OAuth access token: sent as ``Authorization: Bearer``), params (extra query
parameters, e.g. ``{size: large, source: flickr}``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from docsynth.backgrounds.folder import ScrapedBackgrounds
from docsynth.backgrounds.licences import licence_code
from docsynth.backgrounds.scrape import Candidate
from docsynth.config import F
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.options import Options

if TYPE_CHECKING:
    from docsynth.http import PoliteClient

API_URL = "https://api.openverse.org/v1/"
MAX_PAGES = 20  # Openverse answers 400 beyond page 20 whatever the key


class OpenverseBackgrounds(ScrapedBackgrounds):
    name = "openverse"
    description = "openly licensed photos from Openverse (scrape into a folder; options: root, api_url, token)"
    options = {"root": F((str, None), None, "folder scraped into"),
               "licences": F((list, None), None, "accepted licence codes (the core passes backgrounds.licences)"),
               "api_url": F((str, None), None, "API base URL (null: api.openverse.org)"),
               "page_size": F(int, 20, "results per request (up to 500 with a key)", low=1),
               "max_pages": F(int, 20, "pages per query (the API's cap)", low=1),
               "token": F((str, None), None, "OAuth access token, sent as Authorization: Bearer"),
               "params": F(dict, {}, "extra query parameters, e.g. {size: large}")}
    licence = "per image, recorded in backgrounds.jsonl (default filter: CC0, PDM, CC BY, CC BY-SA)"

    def search(self, query: str, options: Options, client: PoliteClient) -> Iterator[Candidate]:
        url = str(options.api_url or API_URL).rstrip("/") + "/images/"
        params: dict[str, Any] = {"q": query[:200], "page_size": int(options.page_size),
                                  "category": "photograph", "aspect_ratio": "wide", "mature": "false"}
        allowed = list(options.licences or ())
        if allowed and not set(allowed) & {"any", "all", "*"}:
            params["license"] = ",".join(allowed)  # the core checks again; this saves requests
        params.update(options.params or {})
        headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
        last_page = min(MAX_PAGES, int(options.max_pages))
        page = 1
        while page <= last_page:
            reply = client.get_json(url, {**params, "page": page}, headers)
            if not isinstance(reply, dict) or "results" not in reply:
                raise DocsynthError(f"openverse: unexpected reply from {url} (no 'results'); check api_url")
            for item in reply["results"]:
                if not item.get("url") or not item.get("id"):
                    continue
                code, version = licence_code(item.get("license"))
                yield Candidate(
                    id=str(item["id"]), image_url=item["url"], url=item.get("foreign_landing_url"),
                    title=item.get("title"), author=item.get("creator"), author_url=item.get("creator_url"),
                    licence=code, licence_version=str(item.get("license_version") or version),
                    licence_url=item.get("license_url"), attribution=item.get("attribution"),
                    width=item.get("width"), height=item.get("height"),
                    extra={"source": item.get("source")},
                )
            if not reply["results"] or page >= int(reply.get("page_count") or 0):
                return
            page += 1


@hookimpl
def register_backgrounds(register):
    register(OpenverseBackgrounds())
