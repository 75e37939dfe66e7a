"""Every hook is documented with the hookspec's own signature, every plugin kind's methods with
the protocol's, and the documented example plugin really works."""

from __future__ import annotations

import inspect
import re
import types

import numpy as np
from helpers import REPO

from docsynth import hookspecs, plugins
from docsynth import options as options_mod

DOC = REPO / "docs" / "plugins.md"


def _names(args: str) -> list[str]:
    """``"fn, tasks, *, workers=1"`` -> ``["fn", "tasks", "workers"]``."""
    return [a.split("=")[0].split(":")[0].strip().lstrip("*") for a in args.split(",")
            if a.strip() and a.strip() != "*"]


def test_every_hook_is_documented_with_its_signature():
    """As datasette's docs test: each ``### `hook(args)` `` heading names the hookspec's arguments."""
    text = DOC.read_text()
    documented = dict(re.findall(r"^### `(register_\w+)\(([^)]*)\)`", text, flags=re.M))
    hooks = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert hooks and hooks == set(documented), \
        f"undocumented: {hooks - set(documented)}, stale: {set(documented) - hooks}"
    for name in hooks:
        spec = list(inspect.signature(getattr(hookspecs, name)).parameters)
        assert _names(documented[name]) == spec, f"{name}: documented ({documented[name]}), hookspec {spec}"


def test_every_plugin_kind_method_is_documented_with_the_protocols_arguments():
    from docsynth import kinds

    text = DOC.read_text()
    documented: dict[str, set[tuple[str, ...]]] = {}
    for method, args in re.findall(r"`(\w+)\(([^)`]*)\)", text):
        documented.setdefault(method, set()).add(tuple(_names(args)))
    protocols = [*kinds.KINDS.values(), kinds.ScrapingProvider]
    for proto in protocols:
        for method, fn in vars(proto).items():
            if method.startswith("_") or not callable(fn):
                continue
            params = tuple(p for p in inspect.signature(fn).parameters if p != "self")
            assert method in documented, f"{proto.__name__}.{method} is not documented in {DOC.name}"
            assert params in documented[method], \
                f"{proto.__name__}.{method}{params}: documented as {sorted(documented[method])}"


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
    refs = source.list_documents(options_mod.build(source, {"count": 2}))
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
    pairs = {"packaged model + refine (default)": "v3.1 + refine (shipped default)",
             "packaged model + robust": "v3.1 + robust (mask fit only)", "classical baseline": "classical OpenCV baseline"}
    for doc_row, card_row in pairs.items():
        # scan.md: mean, alexliyang, smartdoc, tonyxlh, lmmx, erykpiast (then mask IoU)
        mean, alexliyang, smartdoc, tonyxlh, lmmx, erykpiast = docs[doc_row][:6]
        assert [round(v, 3) for v in (mean, smartdoc, alexliyang, tonyxlh, lmmx, erykpiast)] == card[card_row], doc_row
    readme = (REPO / "README.md").read_text()
    shipped, classical = card["v3.1 + refine (shipped default)"], card["classical OpenCV baseline"]
    for value in (shipped[0], shipped[1], shipped[2], shipped[3], classical[0], classical[3]):
        assert f"{value:.3f}" in readme, value
