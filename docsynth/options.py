"""Typed plugin options, validated once, when the config is loaded, and handed to the plugin.

A plugin declares its options as ``options = {"key": F(type, default, help, low=..., high=...,
choices=...)}`` with :func:`docsynth.config.F`, the same typed fields the config schema uses, and
one validator (:func:`docsynth.fields.validate`) checks both. Before any stage runs, every
``*_options`` section of the config is checked against the plugin it configures: an unknown
key, a wrong type or a value out of range is one line with file, line, key, what is allowed
and the plugin's name. A plugin without ``options`` takes a free-form mapping and checks it
itself (augmentation steps reject unknown keys when they are built).

What a plugin receives is an :class:`Options` object built once by :func:`build` (where a run
picks the plugin, never per sample): its declared options, checked, with every default filled
in, read by attribute (``options.threshold``) or by key. A plugin never repeats a default.

``docsynth plugins list --json`` shows each plugin's schema (:func:`schema`) and
``docsynth config show`` the effective values (:func:`effective`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.fields import Field, lookup, validate

# The one table of config keys that name a plugin: dotted key -> (plugin kind, dotted key of
# that plugin's options, or None). Sources' options live per mix entry (sources.options.<entry>)
# and the background provider's under backgrounds.options.<provider>: see sections().
PLUGINS: dict[str, tuple[str, str | None]] = {
    "generate.source": ("source", "generate.source_options"),
    "generate.background_provider": ("background", "generate.background_options"),
    "generate.executor": ("executor", "generate.executor_options"),
    "generate.compositor": ("compositor", "generate.compositor_options"),
    "generate.mask": ("mask", None),
    "backgrounds.provider": ("background", None),
    "train.backbone": ("backbone", "train.backbone_options"),
    "scan.postprocessor": ("postprocessor", "scan.postprocessor_options"),
    "evaluate.postprocessor": ("postprocessor", "evaluate.postprocessor_options"),
}


class Options(Mapping[str, Any]):
    """A plugin's options as the plugin receives them: validated against its declaration, every
    default filled in; read-only, read by attribute or key. Free-form options (a plugin without
    a declaration) come as given."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None):
        object.__setattr__(self, "_values", dict(values or {}))

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):  # pickling and copying look up dunders before __init__ ran
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no option {key!r} (options here: {', '.join(self._values) or 'none'})") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("plugin options are read-only")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __reduce__(self) -> tuple[Any, ...]:  # workers receive the options pickled
        return (Options, (self._values,))

    def __repr__(self) -> str:
        return f"Options({self._values!r})"


def build(plugin: Any, values: Mapping[str, Any] | None, where: str = "options",
          core: Mapping[str, Any] | None = None) -> Options:
    """The options object ``plugin`` receives: ``values`` checked against its declaration (a
    DocsynthError with one line per problem, ``where`` naming the config key) and every default
    filled in (a copy, so a plugin cannot change the next run's defaults). ``core``: what the
    core passes besides the user's options (``seed``, ``count``, ``root``, ``licences``), under
    them; a declared plugin gets only the core keys it declares. Free-form plugins get both as
    given. Call it once where a run picks the plugin, then pass the result on."""
    fields = declared(plugin)
    core = {k: v for k, v in (core or {}).items() if fields is None or k in fields}
    values = {**core, **(values or {})}
    if fields is None:
        return Options(values)
    spec: dict[str, Any] = fields
    data: dict[str, Any] = values
    for part in reversed(where.split(".")):
        data, spec = {part: data}, {part: spec}
    found = validate(data, "", schema=spec)  # no file here: each line names its key
    if found:
        name = getattr(plugin, "name", type(plugin).__name__)
        raise DocsynthError("\n".join(f"{line.removeprefix(': ')} (plugin {name!r})" for line in found))
    filled = {key: values[key] if key in values else copy.deepcopy(f.default) for key, f in fields.items()}
    resolve = getattr(plugin, "resolve_options", None)
    if callable(resolve):  # what a declaration cannot check (nested keys), checked once too
        filled = dict(resolve(filled))
    return Options(filled)


def declared(plugin: Any) -> dict[str, Field] | None:
    """The plugin's option schema, or None when it takes a free-form mapping."""
    schema = getattr(plugin, "options", None)
    if isinstance(schema, dict) and all(isinstance(f, Field) for f in schema.values()):
        return schema
    return None


def sections(cfg: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """(config path of an options mapping, plugin kind, plugin name) for every plugin the config
    names, including ``sources.options.<entry>`` and ``backgrounds.options.<provider>``."""
    for name_key, (kind, options_key) in PLUGINS.items():
        name = lookup(cfg, name_key)
        if options_key is not None and isinstance(name, str):
            yield tuple(options_key.split(".")), kind, name
    for entry, opts in (lookup(cfg, "sources.options") or {}).items():
        if isinstance(opts, dict):
            yield ("sources", "options", entry), "source", str(opts.get("source", entry))
    provider = lookup(cfg, "backgrounds.provider")
    if isinstance(provider, str):
        yield ("backgrounds", "options", provider), "background", provider


def _plugin(kind: str, name: str) -> Any | None:
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
        out += [f"{line} ({kind} {name!r})" for line in validate(data, origin, lines, schema=spec)]
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
