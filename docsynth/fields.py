"""Typed fields and their one validator, shared by the run config and plugins' options.

A :class:`Field` says which types a value may have, its default, help, allowed values or range;
:func:`validate` checks a mapping against a nested mapping of fields and reports every problem at
once, one line each (file, line, key, what is allowed). The run config's fields come from its
pydantic models (:mod:`docsynth.schema`, read by :mod:`docsynth.config`); a plugin declares its
options with :func:`F`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsynth.errors import DocsynthError
from docsynth.limits import free_form_problems, non_finite, pixel_problem


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
            if list in self.types:  # a list whose items are chosen from ``choices``
                return "a list of some of " + ", ".join(map(str, self.choices))
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


def _check_value(field: Field, value: Any, with_range: bool = True) -> bool:
    if value is None:
        return None in field.types
    if field.choices and isinstance(value, list) and list in field.types:
        return all(isinstance(v, str) and v in field.choices for v in value)
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


def validate(data: Any, origin: str, lines: dict[tuple[str, ...], int] | None = None, *,
             schema: dict[str, Any]) -> list[str]:
    """One message per problem (unknown key, wrong type, value out of range) of ``data``
    against ``schema`` (a nested mapping of :class:`Field`), each naming ``origin``, the line
    (from ``lines``) and the dotted key; empty when fine."""
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
            elif non_finite(value):  # NaN passes every range check (and is not JSON)
                problems.append(f"{where(key_path)}: '{dotted}' is {value!r}, expected finite numbers")
            elif not _check_value(sub, value):
                # A value of the wrong type gets the type; one out of range gets the range too.
                in_type = _check_value(sub, value, with_range=False)
                problems.append(
                    f"{where(key_path)}: '{dotted}' is {value!r}, expected {sub.describe(with_range=in_type)}"
                )
            elif isinstance(value, list) and pixel_problem(str(key), value) is not None:  # sides have ranges
                problems.append(f"{where(key_path)}: '{dotted}' is {value!r}, expected {pixel_problem(str(key), value)}")
            elif str(key).endswith("_options") and isinstance(value, dict):
                # Plugins' options are free-form: probabilities ('p', '*_p'), pixel sizes, no NaN.
                problems.extend(free_form_problems(value, key_path, where))

    walk(data, schema, ())
    return problems


def lookup(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """The value at a dotted key (``"generate.out"``), or ``default`` where the path ends."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
