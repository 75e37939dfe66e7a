"""Every hook is documented, and the documented example plugin really works."""

from __future__ import annotations

import re
import types

import numpy as np

from docsynth import hookspecs, plugins

from helpers import REPO

DOC = REPO / "docs" / "plugins.md"


def test_every_hook_is_documented():
    text = DOC.read_text()
    documented = set(re.findall(r"^### `(register_\w+)`", text, flags=re.M))
    hooks = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert hooks and hooks == documented, f"undocumented: {hooks - documented}, stale: {documented - hooks}"


def test_every_hookspec_has_a_docstring():
    for name in dir(hookspecs):
        if name.startswith("register_"):
            assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_readme_example_plugin_code_runs():
    """The first Python block of docs/plugins.md is a working plugin."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), flags=re.S).group(1)
    module = types.ModuleType("doc_example")
    exec(compile(code, "doc_example", "exec"), module.__dict__)
    plugins.host().add(module, "doc-example")
    source = plugins.get("source", "blank")
    refs = source.list_documents({"count": 2})
    page = source.load_document(refs[0])
    assert len(refs) == 2 and page.image.shape == (560, 400, 3) and np.all(page.image == 250)


def _table_rows(text: str, header_start: str) -> dict[str, list[float]]:
    """First cell -> the numbers of each row of the markdown table whose header line starts
    with ``header_start`` (bold and backticks dropped)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("*", "").replace("`", "") for c in line.strip("|").split("|")]
        rows[cells[0]] = [float(c) for c in cells[1:] if re.fullmatch(r"\d+\.\d+", c)]
    return rows


def test_scan_docs_and_readme_give_the_model_cards_numbers():
    """docs/scan.md's realdocs table (4 decimals) rounds to the model card's (3 decimals), and
    the README's headline numbers are the card's."""
    card = _table_rows((REPO / "docsynth" / "assets" / "MODEL_CARD.md").read_text(), "| | mean | smartdoc")
    docs = _table_rows((REPO / "docs" / "scan.md").read_text(), "| method | mean Jaccard | alexliyang")
    pairs = {"packaged model + refine (default)": "v2 + refine (shipped default)",
             "packaged model + robust": "v2 + robust (mask fit only)", "classical baseline": "classical OpenCV baseline"}
    for doc_row, card_row in pairs.items():
        mean, alexliyang, smartdoc, tonyxlh = docs[doc_row][:4]  # scan.md: mean, alexliyang, smartdoc, tonyxlh
        assert [round(v, 3) for v in (mean, smartdoc, alexliyang, tonyxlh)] == card[card_row], doc_row
    readme = (REPO / "README.md").read_text()
    shipped, classical = card["v2 + refine (shipped default)"], card["classical OpenCV baseline"]
    for value in (shipped[0], shipped[1], shipped[2], shipped[3], classical[0], classical[3]):
        assert f"{value:.3f}" in readme, value
