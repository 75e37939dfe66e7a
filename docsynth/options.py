"""Typed plugin options, validated once, when the config is loaded.

A plugin declares its options as ``options = {"key": F(type, default, help, low=..., high=...,
choices=...)}`` with :func:`docsynth.config.F`, the same typed fields the config schema uses, and
one validator (:func:`docsynth.config.validate`) checks both. Before any stage runs, every
``*_options`` section of the config is checked against the plugin it configures: an unknown
key, a wrong type or a value out of range is one line with file, line, key, what is allowed
and the plugin's name. A plugin without ``options`` takes a free-form mapping and checks it
itself (compositors and augmentation steps reject unknown keys when they are built).

``docsynth plugins list --json`` shows each plugin's schema (:func:`schema`) and
``docsynth config show`` the effective values (:func:`effective`).
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from docsynth import config as config_mod
from docsynth.config import Field, lookup
from docsynth.errors import DocsynthError

# config path of a plugin's options -> (plugin kind, dotted key that names the plugin)
SECTIONS: dict[tuple[str, ...], tuple[str, str]] = {
    ("generate", "source_options"): ("source", "generate.source"),
    ("generate", "background_options"): ("background", "generate.background_provider"),
    ("generate", "executor_options"): ("executor", "generate.executor"),
    ("generate", "compositor_options"): ("compositor", "generate.compositor"),
    ("train", "backbone_options"): ("backbone", "train.backbone"),
    ("scan", "postprocessor_options"): ("postprocessor", "scan.postprocessor"),
    ("evaluate", "postprocessor_options"): ("postprocessor", "evaluate.postprocessor"),
}


def declared(plugin: Any) -> dict[str, Field] | None:
    """The plugin's option schema, or None when it takes a free-form mapping."""
    schema = getattr(plugin, "options", None)
    if isinstance(schema, dict) and all(isinstance(f, Field) for f in schema.values()):
        return schema
    return None


def sections(cfg: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """(config path of an options mapping, plugin kind, plugin name) for every plugin the config
    names, including ``sources.options.<entry>`` and ``backgrounds.options.<provider>``."""
    for path, (kind, name_key) in SECTIONS.items():
        name = lookup(cfg, name_key)
        if isinstance(name, str):
            yield path, kind, name
    for entry, opts in (lookup(cfg, "sources.options") or {}).items():
        if isinstance(opts, dict):
            yield ("sources", "options", entry), "source", str(opts.get("source", entry))
    provider = lookup(cfg, "backgrounds.provider")
    if isinstance(provider, str):
        yield ("backgrounds", "options", provider), "background", provider


def _plugin(kind: str, name: str) -> Any | None:
    from docsynth import plugins

    try:
        return plugins.get(kind, name)
    except DocsynthError:  # an unknown plugin name is reported by the checks that know the kind
        return None


def problems(cfg: dict[str, Any], origin: str, lines: dict[tuple[str, ...], int] | None = None) -> list[str]:
    """One line per option that its plugin does not accept."""
    out: list[str] = []
    for path, kind, name in sections(cfg):
        values = lookup(cfg, ".".join(path))
        plugin = _plugin(kind, name) if isinstance(values, dict) else None
        schema = declared(plugin)
        if schema is None:
            continue
        if path[:2] == ("sources", "options"):
            values = {k: v for k, v in values.items() if k != "source"}  # the alias key is the core's
        data: dict[str, Any] = values
        spec: dict[str, Any] = schema
        for part in reversed(path):
            data, spec = {part: data}, {part: spec}
        out += [f"{line} ({kind} {name!r})" for line in config_mod.validate(data, origin, lines, schema=spec)]
    return out


_KEY_IN_PROBLEM = re.compile(r"'([^']+)' is ")


def more_problems(cfg: dict[str, Any], origin: str, lines: dict[tuple[str, ...], int] | None,
                  found: list[str]) -> list[str]:
    """The plugins' option problems besides those the core check ``found`` (a key it already
    named, such as a probability out of range, is not named twice), so that a config's
    problems are all reported in one run."""
    named = {m.group(1) for m in map(_KEY_IN_PROBLEM.search, found) if m}
    try:
        return [p for p in problems(cfg, origin, lines)
                if not (m := _KEY_IN_PROBLEM.search(p)) or m.group(1) not in named]
    except Exception:  # a value of the wrong type can trip a plugin's lookup: reported already
        if not found:
            raise
        return []


def check(cfg: dict[str, Any], origin: str, lines: dict[tuple[str, ...], int] | None = None) -> None:
    found = problems(cfg, origin, lines)
    if found:
        raise DocsynthError("\n".join(found))


def schema(plugin: Any) -> dict[str, Any] | None:
    """The plugin's options as JSON: type, default, allowed values or range, help."""
    fields = declared(plugin)
    if fields is None:
        return None
    return {key: {"type": f.describe(with_range=False), "default": f.default, "allowed": f.describe(),
                  **({"choices": list(f.choices)} if f.choices else {}),
                  **({"low": f.low} if f.low is not None else {}), **({"high": f.high} if f.high is not None else {}),
                  "help": f.help} for key, f in fields.items()}


def effective(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``dotted options key -> the options the plugin will see``: declared defaults filled in."""
    out: dict[str, dict[str, Any]] = {}
    for path, kind, name in sections(cfg):
        values = lookup(cfg, ".".join(path))
        schema_ = declared(_plugin(kind, name))
        if schema_ is None or not isinstance(values, dict):
            continue
        out[".".join(path)] = {"plugin": f"{kind} {name}",
                               **{k: values.get(k, f.default) for k, f in schema_.items()}}
    return out
