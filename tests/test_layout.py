"""The package layout stays navigable: README's Layout names every module, modules import each
other without cycles, and no module grows past about 450 lines unless it is one concept."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "docsynth"
# One concept each, larger than 450 lines: the trainer, and export-model with its verification.


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def test_readme_layout_names_every_module():
    text = (REPO / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    words = set(re.findall(r"[a-z_]+", layout))
    missing = [name for name in modules() if name.rsplit(".", 1)[-1] not in words
               and not name.endswith(("__main__", "assets"))]
    assert not missing, f"README's Layout does not mention: {missing}"


def import_graph() -> dict[str, set[str]]:
    """module -> the docsynth modules it imports, counting imports inside functions too (a
    cycle through a deferred import is still a cycle in the design)."""
    mods = modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("docsynth"):
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
                graph[name] |= {t for t in targets if t in mods and t != name}
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in mods and a.name != name}
    return graph


def assert_acyclic(graph: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(v):] + [v]))
            if not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    for name in sorted(graph):
        if not state.get(name):
            visit(name)


def test_no_import_cycles_between_modules():
    assert_acyclic(import_graph())


def test_no_import_cycles_between_packages():
    """docsynth.config, docsynth.run, docsynth.report...: a package never imports one that imports it."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for name, targets in import_graph().items():
        graph.setdefault(package(name), set()).update(package(t) for t in targets if package(t) != package(name))
    assert_acyclic(graph)


def test_no_module_over_450_lines():
    """The core and the first-party plugins alike: a longer module holds more than one concept."""
    files = [*PACKAGE.rglob("*.py"), *(REPO / "plugins").rglob("*.py")]
    big = {path.relative_to(REPO).as_posix(): n for path in files if (n := len(path.read_text().splitlines())) > 450}
    assert not big, big


def test_each_command_module_is_named_after_what_it_drives():
    """`docsynth/cli/<name>.py` holds the commands of `docsynth/<name>/` (or of the core module
    `docsynth/<name>.py`), so a command is one hop from the package it runs; `app` assembles
    them and `common` holds what they share."""
    names = {p.stem for p in (PACKAGE / "cli").glob("*.py")} - {"__init__", "app", "common"}
    strays = sorted(n for n in names if not ((PACKAGE / n).is_dir() or (PACKAGE / f"{n}.py").is_file()))
    assert not strays, f"docsynth/cli modules named after no package or module: {strays}"
