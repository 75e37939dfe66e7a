"""Licences of background images: codes from what APIs and pages write (``CC BY-SA 4.0`` -> ``by-sa``),
their names and URLs, and which ones a collection accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_LICENCES = ("cc0", "pdm", "by", "by-sa")


NO_ATTRIBUTION = {"cc0", "pdm"}


CC_CODES = ("by-nc-nd", "by-nc-sa", "by-nc", "by-nd", "by-sa", "by", "sampling+", "nc-sampling+")


def licence_code(text: str | None) -> tuple[str, str]:
    """(code, version) from the many ways licences are written: 'CC BY-SA 4.0',
    'cc-by-sa-4.0', 'by-sa', 'Public domain', 'CC0'. Unknown licences keep their own name."""
    if not text:
        return "unknown", ""
    raw = text.strip()
    t = raw.lower().replace("_", "-").replace(" ", "-")
    if t in ("cc0", "cc-zero", "cc0-1.0") or t.startswith("cc0"):
        return "cc0", "1.0"
    if t in ("pdm", "pd", "public-domain", "publicdomain") or t.startswith("public-domain") or t.startswith("pd-"):
        return "pdm", ""
    version_match = re.search(r"-?(\d+(?:\.\d+)*)$", t)
    version = version_match.group(1) if version_match else ""
    core = t[: version_match.start()] if version_match else t
    core = core.removeprefix("cc-").removeprefix("cc")
    core = core.strip("-")
    if core in CC_CODES:
        return core, version
    return raw, ""


def licence_name(code: str, version: str = "") -> str:
    if code == "cc0":
        return "CC0 1.0"
    if code == "pdm":
        return "Public Domain Mark 1.0"
    if code in CC_CODES:
        return f"CC {code.upper()}" + (f" {version}" if version else "")
    return code


def licence_url(code: str, version: str = "") -> str:
    if code == "cc0":
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    if code == "pdm":
        return "https://creativecommons.org/publicdomain/mark/1.0/"
    if code in CC_CODES:
        return f"https://creativecommons.org/licenses/{code}/{version or '4.0'}/"
    return ""


def licence_allowed(code: str, allowed: Iterable[str]) -> bool:
    allowed = {a.strip().lower() for a in allowed}
    return bool(allowed & {"any", "*", "all"}) or code.lower() in allowed
