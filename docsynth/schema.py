"""The run config's schema: one typed model per section (one per stage), and the whole tree.

Each field declares its type, default, help and bounds once (:func:`setting`); the validator's
messages, `docsynth config show`, and the docs all come from these declarations
(:mod:`docsynth.config` reads them). Strict: a string is not a number and an integer is not
true/false; an unknown key is an error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from docsynth.limits import MAX_ITEMS, MAX_SIDE


class Section(BaseModel):
    """A config section: typed fields, each with its default, help and allowed range, declared
    once. Strict: a string is not a number and an integer is not true/false; an unknown key is
    an error. Problems are reported by :func:`validate` (file, line, key, what is allowed)."""

    model_config = ConfigDict(strict=True, extra="forbid")


def setting(default: Any, help: str = "", *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None) -> Any:
    """One config field: its default, its help and its bounds (``ge``/``gt`` low, ``le``/``lt`` high).
    Sizes in pixels are capped at MAX_SIDE and counts of samples, documents and backgrounds at
    MAX_ITEMS (docsynth/limits.py); worker counts have no hard cap: beyond the machine's CPUs
    they are capped, with a note (workers.cap_config)."""
    return PydanticField(default=default, description=help, ge=ge, gt=gt, le=le, lt=lt)


class RunSection(Section):
    dir: str = setting('runs/example', 'run folder: RUN/<stage>/ per stage, RUN/report.html')
    stages: list = setting(['sources', 'backgrounds', 'generate', 'split', 'train', 'evaluate'], 'stages to run, in pipeline order: sources, backgrounds, generate, split, train, evaluate')
    report: bool = setting(True, 'write RUN/report.html at the end of `docsynth run`')


class SourcesSection(Section):
    mix: dict = setting({'procedural': 24}, 'source name -> number of documents to sample')
    max_size: int = setting(640, 'longest side of prepared pages', ge=16, le=MAX_SIDE)
    out: str = setting('data/documents', 'prepared document folder')
    root: str = setting('data/sources', 'where fetched/imported datasets live')
    masks: dict = setting({}, 'source name -> mask strategy (default: fullpage)')
    options: dict = setting({}, 'source name -> options for that source')
    image_format: Literal['jpg', 'png'] = setting('jpg', 'file format of prepared pages (masks are PNG)')
    jpeg_quality: int = setting(95, 'JPEG quality of prepared pages', ge=1, le=100)
    workers: int = setting(1, 'worker processes for prepare (does not change the output)', ge=1)


class BackgroundsSection(Section):
    provider: str = setting('procedural', 'background provider')
    count: int = setting(24, 'number of backgrounds to collect', ge=0, le=MAX_ITEMS)
    out: str = setting('data/backgrounds', 'background folder')
    queries: list = setting(['desk', 'office desk', 'wooden desk', 'table', 'wooden table', 'kitchen table', 'dining table', 'coffee table', 'floor', 'wooden floor', 'parquet floor', 'tiled floor', 'carpet', 'rug', 'bedsheet', 'blanket', 'wooden surface', 'marble', 'granite countertop', 'concrete floor', 'laminate countertop', 'tablecloth', 'fabric texture', 'cardboard'], "search queries for scraping providers (the reference's 24 surfaces)")
    options: dict = setting({}, 'provider name -> options for that provider (e.g. api_url, token)')
    per_query: int = setting(100, 'images to collect per query (`scrape --limit`)', ge=1, le=MAX_ITEMS)
    contact: str = setting('', 'your e-mail or URL, sent in the User-Agent (Wikimedia blocks anonymous clients)')
    licences: list = setting(['cc0', 'pdm', 'by', 'by-sa'], "licence codes to accept when scraping; 'any' accepts all")
    min_width: int = setting(1280, 'smallest accepted width in pixels when scraping', ge=0, le=MAX_SIDE)
    min_height: int = setting(0, 'smallest accepted height in pixels when scraping', ge=0, le=MAX_SIDE)
    min_aspect: float = setting(1.0, 'smallest accepted width/height (1.0: landscape or square)', gt=0)
    max_aspect: float = setting(3.0, 'largest accepted width/height (no panoramas)', gt=0)
    max_side: int = setting(2560, 'scraped images are scaled down to this longest side (0: keep)', ge=0, le=MAX_SIDE)
    jpeg_quality: int = setting(92, 'quality of the JPEGs scrape/normalize/import-textures write', ge=1, le=100)
    rate_limit: float = setting(1.0, 'minimum seconds between two requests to one host', ge=0)
    retries: int = setting(5, 'retries of a request after 429, 5xx or a network error', ge=0)
    backoff: float = setting(1.0, 'first retry wait in seconds (doubles each retry) when no Retry-After', ge=0)
    max_wait: float = setting(120.0, 'longest single retry wait in seconds, Retry-After included', ge=0)
    timeout: float = setting(30.0, 'seconds before a request is given up', gt=0)
    dedupe_threshold: int = setting(6, 'perceptual-hash bit distance at or below which images are duplicates', ge=0)
    dedupe_min_correlation: float = setting(0.9, '16x16 thumbnail correlation a hash match must also reach (0: off)', ge=0, le=1)
    texture_size: list = setting([1280, 960], '[width, height] of backgrounds made from textures')
    texture_mode: Literal['tile', 'upscale'] = setting('tile', 'how small textures become backgrounds')


class GenerateSection(Section):
    documents: str | None = setting(None, 'prepared documents folder; null: use `source`')
    source: str = setting('procedural', 'source used when `documents` is null')
    source_options: dict = setting({}, 'options for `source`')
    documents_count: int = setting(12, 'documents taken from `source` when `documents` is null', ge=1, le=MAX_ITEMS)
    mask: str = setting('fullpage', 'mask strategy for pages without a mask')
    backgrounds: str | None = setting(None, 'background folder; null: use `background_provider`')
    background_provider: str = setting('procedural', 'provider used when `backgrounds` is null')
    background_options: dict = setting({}, 'options for `background_provider`')
    backgrounds_count: int = setting(24, 'backgrounds taken from the provider when `backgrounds` is null', ge=1, le=MAX_ITEMS)
    per_document: int = setting(4, 'composites per document (K)', ge=1, le=100_000)
    count: int | None = setting(None, 'total samples; null: documents x per_document', ge=0, le=MAX_ITEMS)
    out: str = setting('data/synth', 'output dataset folder')
    workers: int = setting(1, 'worker processes (does not change the output)', ge=1)
    cache_mb: int = setting(256, 'per worker: decoded pages and backgrounds kept for reuse, in MB (does not change '
                                 'the output; 0 decodes every time)', ge=0, le=65536)
    executor: str = setting('local', 'executor plugin')
    executor_options: dict = setting({}, 'options for the executor')
    shard_size: int = setting(32, 'samples per shard (unit of resume and of work)', ge=1, le=100_000)
    shard_format: Literal['files', 'tar'] = setting('files', 'files: images/ + masks/; tar: WebDataset-style shards/NNNNN.tar')
    image_format: Literal['jpg', 'png'] = setting('jpg', 'image file format')
    jpeg_quality: int = setting(95, 'JPEG quality of written images', ge=1, le=100)
    compositor: str = setting('realistic', 'compositor plugin (realistic, reference, homography)')
    compositor_options: dict = setting({}, 'options for the compositor')
    labels: list[Literal['dewarp', 'text']] = setting([], 'labels beyond the page: dewarp (dewarp/<id>.npz: uv, visible, '
                                                          'bm), text (text/<id>.jsonl: words); [] writes neither')


class SplitSection(Section):
    valid_fraction: float = setting(0.2, 'share of groups (documents/backgrounds) that go to valid/', ge=0, lt=1)
    valid_per_group: int | None = setting(None, 'reference mode: N composites of EVERY document to valid (leaks pages into both splits); null: leak-free', ge=1)
    group_by: Literal['document', 'background', 'both'] = setting('document', 'what must not cross splits')
    max_size: int = setting(480, 'resize to this longest side (0: keep size)', ge=0, le=MAX_SIDE)
    seed: int | None = setting(None, 'split seed; null: the top-level seed', ge=0)
    out: str = setting('data/split', 'split output folder')


class TrainSection(Section):
    backbone: str = setting('mobilenet_v3_large', 'backbone plugin')
    backbone_options: dict = setting({}, 'options for the backbone')
    weights: str = setting('none', 'none, imagenet, coco, packaged (fine-tune the packaged model docsynth-cpu.pt; needs its backbone and backbone_options) or a weights file')
    out: str = setting('runs/train', 'run folder')
    epochs: int = setting(10, 'training epochs', ge=1, le=100_000)
    steps_per_epoch: int | None = setting(None, 'cap optimizer steps per epoch (null: whole dataset)', ge=1, le=MAX_ITEMS)
    input_size: int = setting(384, 'square input side (images are squashed, not letterboxed)', ge=16, le=2048)
    mean: list = setting([0.4611, 0.4359, 0.3905], 'RGB normalisation mean')
    std: list = setting([0.2193, 0.215, 0.2109], 'RGB normalisation std')
    greyscale_p: float = setting(0.4, 'probability of a random greyscale image', ge=0, le=1)
    batch_size: int = setting(64, 'global batch (split across processes under torchrun)', ge=1, le=4096)
    accumulate: int = setting(1, 'micro-batches per optimizer step (batch_size is per micro-batch)', ge=1, le=4096)
    optimizer: Literal['adam', 'adamw'] = setting('adam', 'optimizer')
    lr: float = setting(0.0001, 'learning rate (0 freezes the weights)', ge=0)
    weight_decay: float = setting(0.0, 'weight decay', ge=0)
    schedule: Literal['constant', 'cosine'] = setting('constant', 'learning-rate schedule')
    warmup_steps: int = setting(0, 'linear warm-up optimizer steps', ge=0)
    aux_weight: float = setting(0.4, "weight of the auxiliary head's loss", ge=0)
    corner_weight: float = setting(1.0, 'weight of the corner-heatmap loss (corner models)', ge=0)
    corner_sigma: float = setting(1.5, 'Gaussian sigma of corner targets, in heatmap cells', gt=0)
    corner_order: Literal['fixed', 'cyclic'] = setting('fixed', 'corner channels: fixed (TL = smallest x + y) or cyclic (any clockwise start: no label flip near 45 degrees)')
    amp: bool = setting(True, 'mixed precision (CUDA only)')
    channels_last: bool = setting(False, 'channels-last memory format')
    bn_momentum: float | None = setting(None, "override every BatchNorm's momentum (torchvision's MobileNetV3 uses 0.01: too slow for short runs); null: the model's own", ge=0, le=1)
    balanced: bool = setting(False, 'class-balanced sampling: even draws over page-coverage bins')
    early_stopping: int = setting(0, 'stop after N epochs without a better valid IoU (0: never)', ge=0)
    valid_fraction: float = setting(0.2, 'leak-free valid share when DATA is a generated dataset', ge=0, lt=1)
    online: bool = setting(False, 'draw fresh composites every step instead of a fixed dataset')
    online_options: dict = setting({'documents': None, 'backgrounds': None, 'compositor': None, 'samples_per_epoch': 2048, 'valid_samples': 256, 'base': 0}, "online stream: documents/backgrounds folders and compositor (null: the generate section's), samples_per_epoch, valid_samples, base")
    checkpoint_minutes: float = setting(5.0, 'save last.pt every N minutes of training (0: epoch ends only)', ge=0)
    eval_real: str | None = setting(None, 'folder of real photos with corners.csv, scored each epoch')
    device: Literal['auto', 'cpu', 'cuda', 'mps'] = setting('auto', 'compute device')
    threads: int | None = setting(None, "torch CPU threads (null: torch's default)", ge=1)
    workers: int = setting(2, 'DataLoader worker processes (does not change the result)', ge=0)
    seed: int = setting(41, 'training seed (data order, augmentation, initialisation)', ge=0)


class ScanSection(Section):
    checkpoint: str | None = setting(None, 'model: .pt checkpoint, .onnx or TorchScript file; null: the packaged model')
    postprocessor: str = setting('refine', 'post-processor plugin turning the prediction into corners')
    postprocessor_options: dict = setting({}, 'options for the post-processor')
    jpeg_quality: int = setting(95, 'JPEG quality of flattened pages', ge=1, le=100)


class EvaluateSection(Section):
    data: str | None = setting(None, 'folder of real photos with corners.csv (e.g. ../shared/realdocs)')
    checkpoint: str | None = setting(None, 'model to score; null: the packaged model')
    postprocessor: str = setting('refine', 'post-processor plugin turning the prediction into corners')
    postprocessor_options: dict = setting({}, 'options for the post-processor')
    baseline: Literal['classical'] | None = setting(None, 'also score this non-learned baseline')
    packaged: bool = setting(False, 'also score the packaged model (what `docsynth scan` uses) beside the checkpoint, on the same photos')
    out: str = setting('evaluation', 'report folder: results.json, per_image.csv, worst.png')
    worst: int = setting(8, 'worst cases on the contact sheet', ge=0, le=1000)


class RunConfig(Section):
    """The effective run configuration: one typed section per stage, read by attribute
    (``cfg.generate.out``); each stage receives its own section."""

    seed: int = setting(42, "master seed; every sample's randomness derives from (seed, index)", ge=0)
    run: RunSection = PydanticField(default_factory=RunSection)
    sources: SourcesSection = PydanticField(default_factory=SourcesSection)
    backgrounds: BackgroundsSection = PydanticField(default_factory=BackgroundsSection)
    generate: GenerateSection = PydanticField(default_factory=GenerateSection)
    split: SplitSection = PydanticField(default_factory=SplitSection)
    train: TrainSection = PydanticField(default_factory=TrainSection)
    scan: ScanSection = PydanticField(default_factory=ScanSection)
    evaluate: EvaluateSection = PydanticField(default_factory=EvaluateSection)
