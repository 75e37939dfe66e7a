"""The run configuration: defaults, docsynth.yaml, CLI overrides, validation.

The schema is :class:`RunConfig`: one pydantic model per section (one per stage), each field
declaring its type, default, help and bounds once. :func:`load` (through :func:`read`, the one
loader) returns it typed, read by attribute (``cfg.generate.out``); each stage gets its own
section. Plugin-specific options live in ``*_options`` mappings, typed by their plugins
(:mod:`docsynth.options`). Every problem in a file is reported at once, each on one line naming
the file, line, key and what is allowed (:func:`validate`, over :data:`SCHEMA`, the validator's
view of the models, which plugin options share).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from docsynth import fields, options, workers
from docsynth.errors import DocsynthError

# Re-exported: plugins declare options with docsynth.config.F and its range shorthands (the
# documented plugin API), and much of the core reads dotted keys with config.lookup.
from docsynth.fields import AT_LEAST_1, COUNT, POSITIVE, QUALITY, SHARE, F, Field, listing_options, lookup, root_folder  # noqa: F401
from docsynth.schema import RunConfig

DEFAULT_FILE = "docsynth.yaml"


def _field_of(info: FieldInfo) -> Field:
    """The validator's view of a model field: accepted types, default, help, choices, bounds."""
    annotation = info.annotation
    args = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    types: list[Any] = []
    choices = None
    for arg in args:
        if arg is type(None):
            types.append(None)
        elif get_origin(arg) is Literal:
            choices = get_args(arg)
            types.append(type(choices[0]))
        elif get_origin(arg) is list and get_args(arg) and get_origin(get_args(arg)[0]) is Literal:
            choices = get_args(get_args(arg)[0])  # a list whose items are chosen from the Literal
            types.append(list)
        else:
            types.append(get_origin(arg) or arg)
    low: Any = None  # numbers as setting() was given them: an int bound reads "0", not "0.0"
    high: Any = None
    above = below = False
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = bound.ge
        elif isinstance(bound, annotated_types.Gt):
            low, above = bound.gt, True
        elif isinstance(bound, annotated_types.Le):
            high = bound.le
        elif isinstance(bound, annotated_types.Lt):
            high, below = bound.lt, True
    default = info.get_default(call_default_factory=True)
    return Field(tuple(types), default, info.description or "", choices, low, high, above, below)


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        sub = info.annotation
        out[key] = _schema_of(sub) if isinstance(sub, type) and issubclass(sub, BaseModel) else _field_of(info)
    return out


# The validator's (and `config show`'s) view of RunConfig: section -> key -> Field.
SCHEMA: dict[str, Any] = _schema_of(RunConfig)


def validate(data: Any, origin: str, lines: dict[tuple[str, ...], int] | None = None,
             schema: dict[str, Any] = SCHEMA) -> list[str]:
    """One message per problem of ``data`` against the run config (or another ``schema``)."""
    return fields.validate(data, origin, lines, schema=schema)


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

    with contextlib.suppress(yaml.YAMLError):
        walk(yaml.compose(text), ())
    return lines


# Mappings that are one value: a file's ``sources.mix`` replaces the default mix instead of
# adding its sources to it.
REPLACE_WHOLE = {("sources", "mix")}


def merge(base: dict[str, Any], update: dict[str, Any], _path: tuple[str, ...] = ()) -> dict[str, Any]:
    """Recursive merge: mappings merge key by key (so a user's ``compositor_options`` extends
    the defaults), everything else (and the mappings in ``REPLACE_WHOLE``) is replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and _path + (key,) not in REPLACE_WHOLE:
            out[key] = merge(out[key], value, _path + (key,))
        else:
            out[key] = copy.deepcopy(value)
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently, so the first setting would be ignored without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<:' would hide where each key comes from
                raise yaml.constructor.ConstructorError(
                    None, None, "YAML merge keys ('<<:') are not supported; write the keys out in each section",
                    key_node.start_mark)
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]}); keep one",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_file(path: Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Read a YAML config file: (data, key path -> line), unvalidated. DocsynthError when the
    file is missing or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocsynthError(f"{path}: config file not found; pass an existing --config PATH") from None
    except OSError as exc:
        raise DocsynthError(f"{path}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        line_no = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise DocsynthError(f"{path}:{line_no}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                            "save the config as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        hint = "" if "not supported" in problem else "; fix the YAML syntax"
        raise DocsynthError(f"{path}{line}: {problem}{hint}") from None
    return ({} if data is None else data), _line_index(text)


def apply_overrides(cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set each dotted key of ``overrides`` in ``cfg`` (in place, missing mappings made);
    returns ``cfg``. The one applier: CLI flags, ``docsynth run``'s stage wiring, resumes."""
    for dotted, value in overrides.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return cfg


@dataclass
class Loaded:
    """A config as read, before it is typed: the merged mapping, where it came from, the line of
    each key in the file and every problem found (empty when :func:`read` raises on them)."""

    cfg: dict[str, Any]
    path: Path | None  # the YAML file it came from (None: defaults only)
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return str(self.path) if self.path is not None else "command line"

    def where(self, dotted: str) -> str:
        """'file:line' of a key (or of its closest parent present in the file)."""
        if self.path is None:
            return "config"
        parts = tuple(dotted.split("."))
        while parts:
            if parts in self.lines:
                return f"{self.path}:{self.lines[parts]}"
            parts = parts[:-1]
        return str(self.path)


def read(config_path: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
         cwd: Path | None = None, keep_going: bool = False) -> Loaded:
    """The one loader: defaults <- file (explicit, or ./docsynth.yaml if present) <- overrides.

    ``overrides`` uses dotted keys (``{"generate.out": "x"}``); None values are ignored so that
    unset CLI flags do not mask the file. A DocsynthError lists every problem at once; with
    ``keep_going`` the problems are returned instead and only the valid keys are merged, so
    that later checks (`docsynth run`'s) can still run on the rest.
    """
    cfg = defaults()
    path = Path(config_path) if config_path is not None else (Path(DEFAULT_FILE) if cwd is None else cwd / DEFAULT_FILE)
    loaded = Loaded(cfg, None)
    if config_path is not None or path.is_file():
        data, lines = parse_file(path)
        problems = validate(data, str(path), lines)
        if not problems:
            part = data
        elif keep_going:  # only the valid keys: the later checks run on the rest
            part = _valid_part(data, str(path))
        else:  # all of it, wrong values too, so that the plugins' options are checked in the same pass
            part = data if isinstance(data, dict) else {}
        loaded = Loaded(merge(cfg, part), path, lines, problems)
    apply_overrides(loaded.cfg, {k: v for k, v in (overrides or {}).items() if v is not None})
    if keep_going or not loaded.problems:  # else the file's problems, found above, would be repeated
        loaded.problems += validate(loaded.cfg, "command line")
    if loaded.problems and not keep_going:  # every problem of the file at once, each on its own line
        problems = loaded.problems + options.more_problems(loaded.cfg, loaded.origin, loaded.lines,
                                                            loaded.problems)
        raise DocsynthError("\n".join(problems))
    return loaded


def _valid_part(data: Any, origin: str) -> dict[str, Any]:
    """The keys of ``data`` that pass validation (so later checks can still run on the rest)."""
    if not isinstance(data, dict):
        return {}
    keep: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(SCHEMA.get(key), dict):
            keep[key] = {k: v for k, v in value.items() if not validate({key: {k: v}}, origin)}
        elif not validate({key: value}, origin):
            keep[key] = value
    return keep


def typed(cfg: dict[str, Any]) -> RunConfig:
    """The typed config of a mapping (defaults filled in); a DocsynthError lists every problem.
    For code that builds a config itself (a test, the hard-case benchmark, a run's stage)."""
    problems = validate(cfg, "config")
    if problems:
        raise DocsynthError("\n".join(problems))
    return RunConfig.model_validate(merge(defaults(), cfg))


def load(config_path: str | Path | None = None, overrides: dict[str, Any] | None = None,
         cwd: Path | None = None) -> RunConfig:
    """The effective, typed config (see :func:`read`), plugin options checked too: every
    problem is found before any work."""
    loaded = read(config_path, overrides, cwd=cwd)
    options.check(loaded.cfg, loaded.origin, loaded.lines)
    workers.cap_config(loaded.cfg)  # worker counts beyond the machine's CPUs: capped, with a note
    return RunConfig.model_validate(loaded.cfg)


def dump(cfg: RunConfig | dict[str, Any]) -> str:
    data = cfg.model_dump() if isinstance(cfg, RunConfig) else cfg
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
