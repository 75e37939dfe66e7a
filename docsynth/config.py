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

import copy
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from docsynth.schema import RunConfig

from docsynth.errors import DocsynthError

DEFAULT_FILE = "docsynth.yaml"


@dataclass(frozen=True)
class Field:
    types: tuple  # accepted Python types; None in the tuple means null is allowed
    default: Any
    help: str = ""
    choices: tuple | None = None
    low: float | None = None  # numbers: smallest allowed value...
    high: float | None = None  # ...largest allowed value
    above: bool = False  # ``low`` itself is not allowed (a learning rate > 0)
    below: bool = False  # ``high`` itself is not allowed (a share that must leave something)

    def describe(self, with_range: bool = True) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        names = [_TYPE_NAMES.get(t, getattr(t, "__name__", str(t))) for t in self.types]
        text = " or ".join(names)
        if not with_range:
            return text
        if self.low is not None and self.high is not None:
            if self.above or self.below:
                return f"{text} {'>' if self.above else '>='} {self.low} and {'<' if self.below else '<='} {self.high}"
            return f"{text} from {self.low} to {self.high}"
        if self.low is not None:
            return f"{text} {'>' if self.above else '>='} {self.low}"
        return text if self.high is None else f"{text} {'<' if self.below else '<='} {self.high}"

    def in_range(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return True
        if self.low is not None and (value < self.low or (self.above and value == self.low)):
            return False
        return self.high is None or value < self.high or (not self.below and value == self.high)


_TYPE_NAMES = {None: "null", int: "an integer", float: "a number", str: "a string",
               bool: "true/false", list: "a list", dict: "a mapping"}


def F(types, default=None, help: str = "", choices=None, low=None, high=None, above=False, below=False) -> Field:
    """A plugin option: accepted types, default, help, allowed values or range."""
    if not isinstance(types, tuple):
        types = (types,)
    return Field(types, default, help, tuple(choices) if choices else None, low, high, above, below)


# Shorthands for the ranges below.
COUNT = {"low": 0}  # how many of something
AT_LEAST_1 = {"low": 1}
SHARE = {"low": 0, "high": 1}  # a probability or a fraction
POSITIVE = {"low": 0, "above": True}
QUALITY = {"low": 1, "high": 100}  # JPEG quality


def listing_options() -> dict[str, Field]:
    """What the core passes every source and background provider besides its own options (a user
    may set them too): ``root`` (where its data is), ``count`` and ``seed`` (for renderers)."""
    return {"root": F((str, None), None, "folder with the data"),
            "count": F(int, 24, "how many to list (generating plugins)", **COUNT),
            "seed": F(int, 0, "seed (generating plugins)")}


def root_folder(options: dict[str, Any], unset: str, not_found: str = "{root}: folder not found (option 'root')") -> Path:
    """The folder in listing option ``root``, checked where a plugin needs it: the ``unset`` line
    when it is not set, the ``not_found`` line (``{root}`` filled in) when it is not a folder."""
    root = options.get("root")
    if not root:
        raise DocsynthError(unset)
    if not Path(root).is_dir():
        raise DocsynthError(not_found.replace("{root}", str(root)))
    return Path(root)


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
        else:
            types.append(get_origin(arg) or arg)
    low = high = None
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


def _check_value(field: Field, value: Any, with_range: bool = True) -> bool:
    if value is None:
        return None in field.types
    if field.choices and value not in field.choices:
        return False
    if with_range and not field.in_range(value):
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
                # A value of the wrong type gets the type; one out of range gets the range too.
                in_type = _check_value(sub, value, with_range=False)
                problems.append(
                    f"{where(key_path)}: '{dotted}' is {value!r}, expected {sub.describe(with_range=in_type)}"
                )
            elif key.endswith("_options") and isinstance(value, dict):
                probabilities(value, key_path)

    def probabilities(options: dict[str, Any], path: tuple[str, ...]) -> None:
        # Plugins' options are free-form, but by convention 'p' and '*_p' are probabilities.
        for key, value in options.items():
            key_path = path + (str(key),)
            if isinstance(value, dict):
                probabilities(value, key_path)
            elif (key == "p" or str(key).endswith("_p")) and not (
                    isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1):
                problems.append(f"{where(key_path)}: '{'.'.join(key_path)}' is {value!r}, expected a "
                                "probability from 0 to 1")

    walk(data, schema, ())
    return problems


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
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise DocsynthError(f"{path}{line}: {problem}; fix the YAML syntax") from None
    return ({} if data is None else data), _line_index(text)


def lookup(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """The value at a dotted key (``"generate.out"``), or ``default`` where the path ends."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


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
        if problems and not keep_going:
            raise DocsynthError("\n".join(problems))
        loaded = Loaded(merge(cfg, _valid_part(data, str(path)) if problems else data), path, lines, problems)
    apply_overrides(loaded.cfg, {k: v for k, v in (overrides or {}).items() if v is not None})
    problems = validate(loaded.cfg, "command line")
    if problems and not keep_going:
        raise DocsynthError("\n".join(problems))
    loaded.problems += problems
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
    from docsynth import options  # noqa: PLC0415 - options reads this module's schema helpers

    options.check(loaded.cfg, loaded.origin, loaded.lines)
    return RunConfig.model_validate(loaded.cfg)


def dump(cfg: RunConfig | dict[str, Any]) -> str:
    data = cfg.model_dump() if isinstance(cfg, RunConfig) else cfg
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
