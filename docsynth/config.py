"""The run configuration: defaults, docsynth.yaml, CLI overrides, validation.

The schema is a nested dict of :class:`Field` objects, one section per stage. Each stage reads
its own section; plugin-specific options live in free-form ``*_options`` dicts. Every problem in
a file is reported at once, each on one line naming the file, line, key and expected value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from docsynth.errors import DocsynthError

DEFAULT_FILE = "docsynth.yaml"


@dataclass(frozen=True)
class Field:
    types: tuple  # accepted Python types; None in the tuple means null is allowed
    default: Any
    help: str = ""
    choices: tuple | None = None

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        names = [_TYPE_NAMES.get(t, getattr(t, "__name__", str(t))) for t in self.types]
        return " or ".join(names)


_TYPE_NAMES = {None: "null", int: "an integer", float: "a number", str: "a string",
               bool: "true/false", list: "a list", dict: "a mapping"}


def F(types, default=None, help: str = "", choices=None) -> Field:
    if not isinstance(types, tuple):
        types = (types,)
    return Field(types, default, help, tuple(choices) if choices else None)


OptStr = (str, None)
OptInt = (int, None)

SCHEMA: dict[str, Any] = {
    "seed": F(int, 42, "master seed; every sample's randomness derives from (seed, index)"),
    "sources": {
        "mix": F(dict, {"procedural": 24}, "source name -> number of documents to sample"),
        "max_size": F(int, 640, "longest side of prepared pages"),
        "out": F(str, "data/documents", "prepared document folder"),
        "root": F(str, "data/sources", "where fetched/imported datasets live"),
        "masks": F(dict, {}, "source name -> mask strategy (default: fullpage)"),
        "options": F(dict, {}, "source name -> options for that source"),
    },
    "backgrounds": {
        "provider": F(str, "procedural", "background provider"),
        "count": F(int, 24, "number of backgrounds to collect"),
        "out": F(str, "data/backgrounds", "background folder"),
        "queries": F(list, [], "search queries for scraping providers"),
        "options": F(dict, {}, "provider options"),
    },
    "generate": {
        "documents": F(OptStr, None, "prepared documents folder; null: use `source`"),
        "source": F(str, "procedural", "source used when `documents` is null"),
        "source_options": F(dict, {}, "options for `source`"),
        "documents_count": F(int, 12, "documents taken from `source` when `documents` is null"),
        "mask": F(str, "fullpage", "mask strategy for pages without a mask"),
        "backgrounds": F(OptStr, None, "background folder; null: use `background_provider`"),
        "background_provider": F(str, "procedural", "provider used when `backgrounds` is null"),
        "background_options": F(dict, {}, "options for `background_provider`"),
        "backgrounds_count": F(int, 24, "backgrounds taken from the provider when `backgrounds` is null"),
        "per_document": F(int, 4, "composites per document (K)"),
        "count": F(OptInt, None, "total samples; null: documents x per_document"),
        "out": F(str, "data/synth", "output dataset folder"),
        "workers": F(int, 1, "worker processes (does not change the output)"),
        "executor": F(str, "local", "executor plugin"),
        "executor_options": F(dict, {}, "options for the executor"),
        "shard_size": F(int, 32, "samples per shard (unit of resume and of work)"),
        "image_format": F(str, "jpg", "image file format", choices=("jpg", "png")),
        "jpeg_quality": F(int, 95, "JPEG quality of written images"),
        "compositor": F(str, "homography", "compositor plugin"),
        "compositor_options": F(dict, {}, "options for the compositor"),
    },
}


def defaults(schema: dict[str, Any] = SCHEMA) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        out[key] = defaults(spec) if isinstance(spec, dict) else copy.deepcopy(spec.default)
    return out


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map key paths to 1-based line numbers using the YAML node tree."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key_path = path + (str(k.value),)
                lines[key_path] = k.start_mark.line + 1
                walk(v, key_path)

    try:
        walk(yaml.compose(text), ())
    except yaml.YAMLError:
        pass
    return lines


def _check_value(field: Field, value: Any) -> bool:
    if value is None:
        return None in field.types
    if field.choices and value not in field.choices:
        return False
    for t in field.types:
        if t is None:
            continue
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t is int and isinstance(value, bool):
            continue
        if isinstance(value, t):
            return True
    return False


def validate(data: Any, origin: str, lines: dict[tuple[str, ...], int] | None = None,
             schema: dict[str, Any] = SCHEMA) -> list[str]:
    """Return one message per problem (unknown key, wrong type), empty when fine."""
    lines = lines or {}
    problems: list[str] = []

    def where(path: tuple[str, ...]) -> str:
        line = lines.get(path)
        return f"{origin}:{line}" if line else origin

    def walk(node: Any, spec: dict[str, Any], path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            dotted = ".".join(path) or "top level"
            problems.append(f"{where(path)}: {dotted} must be a mapping")
            return
        for key, value in node.items():
            key_path = path + (str(key),)
            dotted = ".".join(key_path)
            if key not in spec:
                known = ", ".join(sorted(spec))
                problems.append(f"{where(key_path)}: unknown key '{dotted}' (known here: {known})")
                continue
            sub = spec[key]
            if isinstance(sub, dict):
                walk(value, sub, key_path)
            elif not _check_value(sub, value):
                problems.append(
                    f"{where(key_path)}: '{dotted}' is {value!r}, expected {sub.describe()}"
                )

    walk(data, schema, ())
    return problems


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings merge key by key (so a user's ``compositor_options`` extends
    the defaults), everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocsynthError(f"{path}: config file not found; pass an existing --config PATH") from None
    except OSError as exc:
        raise DocsynthError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise DocsynthError(f"{path}{line}: {problem}; fix the YAML syntax") from None
    if data is None:
        data = {}
    problems = validate(data, str(path), _line_index(text))
    if problems:
        raise DocsynthError("\n".join(problems))
    return data


def load(config_path: str | Path | None = None, overrides: dict[str, Any] | None = None,
         cwd: Path | None = None) -> dict[str, Any]:
    """Effective config: defaults <- file (explicit, or ./docsynth.yaml if present) <- overrides.

    ``overrides`` uses dotted keys (``{"generate.out": "x"}``); None values are ignored so that
    unset CLI flags do not mask the file.
    """
    cfg = defaults()
    if config_path is not None:
        cfg = merge(cfg, read_file(Path(config_path)))
    else:
        candidate = Path(DEFAULT_FILE) if cwd is None else cwd / DEFAULT_FILE
        if candidate.is_file():
            cfg = merge(cfg, read_file(candidate))
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = cfg
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    problems = validate(cfg, "command line")
    if problems:
        raise DocsynthError("\n".join(problems))
    return cfg


def dump(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)
