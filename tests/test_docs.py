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
