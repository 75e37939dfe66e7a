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
from docsynth.limits import MAX_ITEMS, MAX_SIDE, free_form_problems, non_finite, pixel_problem

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

    def describe(self, with_range: bool = True) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        names = [_TYPE_NAMES.get(t, getattr(t, "__name__", str(t))) for t in self.types]
        text = " or ".join(names)
        if not with_range:
            return text
        if self.low is not None and self.high is not None:
            return f"{text} from {self.low} to {self.high}"
        if self.low is not None:
            return f"{text} {'>' if self.above else '>='} {self.low}"
        return text if self.high is None else f"{text} <= {self.high}"

    def in_range(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return True
        if self.low is not None and (value < self.low or (self.above and value == self.low)):
            return False
        return self.high is None or value <= self.high


_TYPE_NAMES = {None: "null", int: "an integer", float: "a number", str: "a string",
               bool: "true/false", list: "a list", dict: "a mapping"}


def F(types, default=None, help: str = "", choices=None, low=None, high=None, above=False) -> Field:
    if not isinstance(types, tuple):
        types = (types,)
    return Field(types, default, help, tuple(choices) if choices else None, low, high, above)


# Shorthands for the ranges below.
COUNT = {"low": 0}  # how many of something
AT_LEAST_1 = {"low": 1}
SHARE = {"low": 0, "high": 1}  # a probability or a fraction
POSITIVE = {"low": 0, "above": True}
QUALITY = {"low": 1, "high": 100}  # JPEG quality
# Hard caps (docsynth/limits.py); worker counts are capped by the machine instead (workers.py).
SIDE = {"low": 0, "high": MAX_SIDE}  # a size in pixels; 0 keeps the size
ITEMS = {"low": 0, "high": MAX_ITEMS}
WORKERS = {"low": 1}  # no hard cap: beyond the machine's CPUs it is capped, with a note (workers.py)


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


OptStr = (str, None)
OptInt = (int, None)

SCHEMA: dict[str, Any] = {
    "seed": F(int, 42, "master seed; every sample's randomness derives from (seed, index)", **COUNT),
    "run": {  # `docsynth run`: which stages, into which folder (one subfolder per stage)
        "dir": F(str, "runs/example", "run folder: RUN/<stage>/ per stage, RUN/report.html"),
        "stages": F(list, ["sources", "backgrounds", "generate", "split", "train", "evaluate"],
                    "stages to run, in pipeline order: sources, backgrounds, generate, split, train, evaluate"),
        "report": F(bool, True, "write RUN/report.html at the end of `docsynth run`"),
    },
    "sources": {
        "mix": F(dict, {"procedural": 24}, "source name -> number of documents to sample"),
        "max_size": F(int, 640, "longest side of prepared pages", **SIDE),
        "out": F(str, "data/documents", "prepared document folder"),
        "root": F(str, "data/sources", "where fetched/imported datasets live"),
        "masks": F(dict, {}, "source name -> mask strategy (default: fullpage)"),
        "options": F(dict, {}, "source name -> options for that source"),
        "image_format": F(str, "jpg", "file format of prepared pages (masks are PNG)", choices=("jpg", "png")),
        "jpeg_quality": F(int, 95, "JPEG quality of prepared pages", **QUALITY),
        "workers": F(int, 1, "worker processes for prepare (does not change the output)", **WORKERS),
    },
    "backgrounds": {
        "provider": F(str, "procedural", "background provider"),
        "count": F(int, 24, "number of backgrounds to collect", **ITEMS),
        "out": F(str, "data/backgrounds", "background folder"),
        "queries": F(list, [
            "desk", "office desk", "wooden desk", "table", "wooden table", "kitchen table",
            "dining table", "coffee table", "floor", "wooden floor", "parquet floor", "tiled floor",
            "carpet", "rug", "bedsheet", "blanket", "wooden surface", "marble", "granite countertop",
            "concrete floor", "laminate countertop", "tablecloth", "fabric texture", "cardboard",
        ], "search queries for scraping providers (the reference's 24 surfaces)"),
        "options": F(dict, {}, "provider name -> options for that provider (e.g. api_url, token)"),
        "per_query": F(int, 100, "images to collect per query (`scrape --limit`)", low=1, high=MAX_ITEMS),
        "contact": F(str, "", "your e-mail or URL, sent in the User-Agent (Wikimedia blocks anonymous clients)"),
        "licences": F(list, ["cc0", "pdm", "by", "by-sa"], "licence codes to accept when scraping; 'any' accepts all"),
        "min_width": F(int, 1280, "smallest accepted width in pixels when scraping", **SIDE),
        "min_height": F(int, 0, "smallest accepted height in pixels when scraping", **SIDE),
        "min_aspect": F(float, 1.0, "smallest accepted width/height (1.0: landscape or square)", **POSITIVE),
        "max_aspect": F(float, 3.0, "largest accepted width/height (no panoramas)", **POSITIVE),
        "max_side": F(int, 2560, "scraped images are scaled down to this longest side (0: keep)", **SIDE),
        "jpeg_quality": F(int, 92, "quality of the JPEGs scrape/normalize/import-textures write", **QUALITY),
        "rate_limit": F(float, 1.0, "minimum seconds between two requests to one host", **COUNT),
        "retries": F(int, 5, "retries of a request after 429, 5xx or a network error", **COUNT),
        "backoff": F(float, 1.0, "first retry wait in seconds (doubles each retry) when no Retry-After", **COUNT),
        "max_wait": F(float, 120.0, "longest single retry wait in seconds, Retry-After included", **COUNT),
        "timeout": F(float, 30.0, "seconds before a request is given up", **POSITIVE),
        "dedupe_threshold": F(int, 6, "perceptual-hash bit distance at or below which images are duplicates", **COUNT),
        "dedupe_min_correlation": F(float, 0.9, "16x16 thumbnail correlation a hash match must also reach (0: off)", **SHARE),
        "texture_size": F(list, [1280, 960], "[width, height] of backgrounds made from textures"),
        "texture_mode": F(str, "tile", "how small textures become backgrounds", choices=("tile", "upscale")),
    },
    "generate": {
        "documents": F(OptStr, None, "prepared documents folder; null: use `source`"),
        "source": F(str, "procedural", "source used when `documents` is null"),
        "source_options": F(dict, {}, "options for `source`"),
        "documents_count": F(int, 12, "documents taken from `source` when `documents` is null", low=1, high=MAX_ITEMS),
        "mask": F(str, "fullpage", "mask strategy for pages without a mask"),
        "backgrounds": F(OptStr, None, "background folder; null: use `background_provider`"),
        "background_provider": F(str, "procedural", "provider used when `backgrounds` is null"),
        "background_options": F(dict, {}, "options for `background_provider`"),
        "backgrounds_count": F(int, 24, "backgrounds taken from the provider when `backgrounds` is null", low=1, high=MAX_ITEMS),
        "per_document": F(int, 4, "composites per document (K)", low=1, high=100_000),
        "count": F(OptInt, None, "total samples; null: documents x per_document", **ITEMS),
        "out": F(str, "data/synth", "output dataset folder"),
        "workers": F(int, 1, "worker processes (does not change the output)", **WORKERS),
        "executor": F(str, "local", "executor plugin"),
        "executor_options": F(dict, {}, "options for the executor"),
        "shard_size": F(int, 32, "samples per shard (unit of resume and of work)", low=1, high=100_000),
        "shard_format": F(str, "files", "files: images/ + masks/; tar: WebDataset-style shards/NNNNN.tar",
                          choices=("files", "tar")),
        "image_format": F(str, "jpg", "image file format", choices=("jpg", "png")),
        "jpeg_quality": F(int, 95, "JPEG quality of written images", **QUALITY),
        "compositor": F(str, "realistic", "compositor plugin (realistic, reference, homography)"),
        "compositor_options": F(dict, {}, "options for the compositor"),
    },
    "split": {
        "valid_fraction": F(float, 0.2, "share of groups (documents/backgrounds) that go to valid/", **SHARE),
        "valid_per_group": F(OptInt, None, "reference mode: N composites of EVERY document to valid "
                                            "(leaks pages into both splits); null: leak-free", **AT_LEAST_1),
        "group_by": F(str, "document", "what must not cross splits",
                      choices=("document", "background", "both")),
        "max_size": F(int, 480, "resize to this longest side (0: keep size)", **SIDE),
        "seed": F(OptInt, None, "split seed; null: the top-level seed", **COUNT),
        "out": F(str, "data/split", "split output folder"),
    },
    "train": {
        "backbone": F(str, "mobilenet_v3_large", "backbone plugin"),
        "backbone_options": F(dict, {}, "options for the backbone"),
        "weights": F(str, "none", "none, imagenet, coco, packaged (fine-tune the packaged model "
                                  "docsynth-cpu.pt; needs its backbone and backbone_options) or a weights file"),
        "out": F(str, "runs/train", "run folder"),
        "epochs": F(int, 10, "training epochs", low=1, high=100_000),
        "steps_per_epoch": F(OptInt, None, "cap optimizer steps per epoch (null: whole dataset)", low=1, high=MAX_ITEMS),
        "input_size": F(int, 384, "square input side (images are squashed, not letterboxed)", low=16, high=2048),
        "mean": F(list, [0.4611, 0.4359, 0.3905], "RGB normalisation mean"),
        "std": F(list, [0.2193, 0.2150, 0.2109], "RGB normalisation std"),
        "greyscale_p": F(float, 0.4, "probability of a random greyscale image", **SHARE),
        "batch_size": F(int, 64, "global batch (split across processes under torchrun)", low=1, high=4096),
        "accumulate": F(int, 1, "micro-batches per optimizer step (batch_size is per micro-batch)", low=1, high=4096),
        "optimizer": F(str, "adam", "optimizer", choices=("adam", "adamw")),
        "lr": F(float, 1e-4, "learning rate (0 freezes the weights)", **COUNT),
        "weight_decay": F(float, 0.0, "weight decay", **COUNT),
        "schedule": F(str, "constant", "learning-rate schedule", choices=("constant", "cosine")),
        "warmup_steps": F(int, 0, "linear warm-up optimizer steps", **COUNT),
        "aux_weight": F(float, 0.4, "weight of the auxiliary head's loss", **COUNT),
        "corner_weight": F(float, 1.0, "weight of the corner-heatmap loss (corner models)", **COUNT),
        "corner_sigma": F(float, 1.5, "Gaussian sigma of corner targets, in heatmap cells", **POSITIVE),
        "corner_order": F(str, "fixed", "corner channels: fixed (TL = smallest x + y) or cyclic (any "
                                        "clockwise start: no label flip near 45 degrees)",
                          choices=("fixed", "cyclic")),
        "amp": F(bool, True, "mixed precision (CUDA only)"),
        "channels_last": F(bool, False, "channels-last memory format"),
        "bn_momentum": F((float, None), None, "override every BatchNorm's momentum (torchvision's MobileNetV3 "
                                              "uses 0.01: too slow for short runs); null: the model's own", **SHARE),
        "balanced": F(bool, False, "class-balanced sampling: even draws over page-coverage bins"),
        "early_stopping": F(int, 0, "stop after N epochs without a better valid IoU (0: never)", **COUNT),
        "valid_fraction": F(float, 0.2, "leak-free valid share when DATA is a generated dataset", **SHARE),
        "online": F(bool, False, "draw fresh composites every step instead of a fixed dataset"),
        "online_options": F(dict, {"documents": None, "backgrounds": None, "compositor": None,
                                   "samples_per_epoch": 2048, "valid_samples": 256, "base": 0},
                            "online stream: documents/backgrounds folders and compositor (null: "
                            "the generate section's), samples_per_epoch, valid_samples, base"),
        "checkpoint_minutes": F(float, 5.0, "save last.pt every N minutes of training (0: epoch ends only)", **COUNT),
        "eval_real": F(OptStr, None, "folder of real photos with corners.csv, scored each epoch"),
        "device": F(str, "auto", "compute device", choices=("auto", "cpu", "cuda", "mps")),
        "threads": F(OptInt, None, "torch CPU threads (null: torch's default)", **WORKERS),
        "workers": F(int, 2, "DataLoader worker processes (does not change the result)", **COUNT),
        "seed": F(int, 41, "training seed (data order, augmentation, initialisation)", **COUNT),
    },
    "scan": {
        "checkpoint": F(OptStr, None, "model: .pt checkpoint, .onnx or TorchScript file; null: the packaged model"),
        "postprocessor": F(str, "refine", "post-processor plugin turning the prediction into corners"),
        "postprocessor_options": F(dict, {}, "options for the post-processor"),
        "jpeg_quality": F(int, 95, "JPEG quality of flattened pages", **QUALITY),
    },
    "evaluate": {
        "data": F(OptStr, None, "folder of real photos with corners.csv (e.g. ../shared/realdocs)"),
        "checkpoint": F(OptStr, None, "model to score; null: the packaged model"),
        "postprocessor": F(str, "refine", "post-processor plugin turning the prediction into corners"),
        "postprocessor_options": F(dict, {}, "options for the post-processor"),
        "baseline": F(OptStr, None, "also score this non-learned baseline", choices=("classical",)),
        "packaged": F(bool, False, "also score the packaged model (what `docsynth scan` uses) beside the "
                                   "checkpoint, on the same photos"),
        "out": F(str, "evaluation", "report folder: results.json, per_image.csv, worst.png"),
        "worst": F(int, 8, "worst cases on the contact sheet", low=0, high=1000),
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
            elif key.endswith("_options") and isinstance(value, dict):
                problems.extend(free_form_problems(value, key_path, where))

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
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise DocsynthError(f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
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


def load(config_path: str | Path | None = None, overrides: dict[str, Any] | None = None,
         cwd: Path | None = None) -> dict[str, Any]:
    """Effective config: defaults <- file (explicit, or ./docsynth.yaml if present) <- overrides.

    ``overrides`` uses dotted keys (``{"generate.out": "x"}``); None values are ignored so that
    unset CLI flags do not mask the file.
    """
    cfg = defaults()
    path = Path(config_path) if config_path is not None else (Path(DEFAULT_FILE) if cwd is None else cwd / DEFAULT_FILE)
    origin, lines = "command line", {}
    problems: list[str] = []
    if config_path is not None or path.is_file():
        data, lines = parse_file(path)
        problems = validate(data, str(path), lines)
        if isinstance(data, dict):  # merged even when some values are wrong, so that the plugins'
            cfg, origin = merge(cfg, data), str(path)  # options are checked in the same pass
    apply_overrides(cfg, {k: v for k, v in (overrides or {}).items() if v is not None})
    if not problems:  # the file's problems, found above, would be repeated here
        problems = validate(cfg, "command line")
    from docsynth import options  # plugin options, typed by their plugins: checked before any work

    problems += options.more_problems(cfg, origin, lines, problems)
    if problems:  # every problem of the file at once, each on its own line
        raise DocsynthError("\n".join(problems))
    from docsynth import workers

    workers.cap_config(cfg)
    return cfg


def dump(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)
