"""Commands on generated datasets (docsynth/dataset/): `docsynth split`, `docsynth export`,
`docsynth preview`, `docsynth stats`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import typer

from docsynth import outputs
from docsynth.cli.common import ConfigOpt, JsonOpt, Names, comma_list, emit, load_config, path_or_none
from docsynth.dataset import split as split_mod
from docsynth.dataset.export import export, require_pyarrow
from docsynth.dataset.preview import MAX_COLUMNS, MAX_COUNT, MAX_TILE, contact_sheet
from docsynth.dataset.stats import format_table, run_stats
from docsynth.errors import DocsynthError
from docsynth.progress import progress_bar

# docsynth.dataset.export.FORMATS, written out so that `docsynth --help` need not import the
# exporters (tests/test_cli.py checks that both lists agree)
ExportFormat = Literal["coco", "yolo-seg", "reference", "parquet", "icdar2015", "doc3d", "uvdoc"]


def register(app: typer.Typer) -> None:
    for name, command in (("export", export_cmd), ("preview", preview_cmd), ("stats", stats_cmd),
                          ("split", split_cmd)):
        app.command(name)(command)


def split_cmd(
    dataset: Path = typer.Argument(..., help="Generated dataset (manifest.jsonl, images/, masks/); "
                                             "with --check: a split folder."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (train/, valid/, split.jsonl)."),
    valid_fraction: float | None = typer.Option(None, "--valid-fraction",
                                                help="Share of groups that go to valid/ (leak-free)."),
    valid_per_group: int | None = typer.Option(None, "--valid-per-group",
                                               help="Reference mode: N composites of every document to "
                                                    "valid/ (leaks pages into both splits)."),
    group_by: str | None = typer.Option(None, "--group-by", help="document, background or both."),
    max_size: int | None = typer.Option(None, "--max-size", help="Longest side of written images (0: keep)."),
    seed: int | None = typer.Option(None, help="Split seed (default: the config's seed)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing split in --out."),
    check: bool = typer.Option(False, "--check", help="Report documents/backgrounds present in both splits "
                                                      "of DATASET; exit 1 when any leaks."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Split a generated dataset into train/ and valid/ without leaking pages between them."""
    if check:
        _check_split(dataset, as_json)
        return
    if valid_fraction is not None and valid_per_group is not None:
        raise DocsynthError("--valid-fraction and --valid-per-group exclude each other; pass one")
    cfg = load_config(config, {"split.valid_fraction": valid_fraction, "split.valid_per_group": valid_per_group,
                               "split.group_by": group_by, "split.max_size": max_size,
                               "split.out": path_or_none(out), "split.seed": seed})
    sp = cfg.split
    if valid_fraction is not None:
        sp.valid_per_group = None  # an explicit fraction means leak-free mode
    outputs.check_folder(sp.out)
    outputs.refuse_overlap(sp.out, [dataset])  # --force clears train/ and valid/ there
    with progress_bar("split") as bar:
        summary = split_mod.split(
            dataset, sp.out, seed=sp.seed if sp.seed is not None else cfg.seed,
            valid_fraction=sp.valid_fraction, valid_per_group=sp.valid_per_group,
            group_by=sp.group_by, max_size=sp.max_size, force=force,
            progress=bar)
    leaks = len(summary["leaked_documents"]) + len(summary["leaked_backgrounds"])
    human = (f"split {dataset} into {summary['out']}: train {summary['train']}, valid {summary['valid']}, "
             f"dropped {summary['dropped']}" + (f"; {leaks} groups in both splits (reference mode)"
                                                if leaks else "; leak-free"))
    emit(summary, as_json, human)


def _check_split(folder: Path, as_json: bool) -> None:
    """``split --check``: which groups sit in both splits; exit 1 when any does."""
    report: dict[str, Any] = split_mod.summarise_split(folder)
    leaks = len(report["leaked_documents"]) + len(report["leaked_backgrounds"])
    examples = (report["leaked_documents"] + report["leaked_backgrounds"])[:5]
    human = (f"{folder}: train {report['train']}, valid {report['valid']}. "
             + (f"LEAKS: {len(report['leaked_documents'])} documents and {len(report['leaked_backgrounds'])} "
                f"backgrounds (e.g. {', '.join(examples)}). " if leaks else "")
             + split_mod.describe_sharing(report))
    emit({**report, "leaks": leaks}, as_json, human)
    if leaks:
        raise typer.Exit(1)


def export_cmd(
    dataset: Path = typer.Argument(..., help="Dataset folder made by 'docsynth generate'."),
    fmt: ExportFormat = typer.Option(..., "--format", "-f", help="coco, yolo-seg, reference, parquet; with "
                                     "generate --labels: icdar2015 (words), doc3d, uvdoc (dewarp maps)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (parquet: output file)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder (parquet: the file)."),
    as_json: bool = JsonOpt,
) -> None:
    """Write a dataset as COCO (segmentation + 4 corner keypoints), YOLO segmentation labels,
    the reference layout (images + 3-channel masks named {doc:04}_bck_{k:02}) or one Parquet
    file (a row per sample: image and mask bytes, corners, flags, provenance, labels); and the
    labels beyond the page as ICDAR 2015 word boxes, Doc3D backward maps or UVDoc grids."""
    if fmt == "parquet":
        require_pyarrow()
        outputs.check_file(out)
        outputs.refuse_replacing([out], inputs=[dataset], force=force)  # never an input, even with --force
    else:
        outputs.check_folder(out)
        outputs.refuse_overlap(out, [dataset])  # --force clears --out: never where the dataset is
    with progress_bar("export") as bar:
        result = export(dataset, fmt, out, force=force, progress=bar)
    emit(result, as_json, f"exported {result['images']} images as {fmt} to {result['out']}")


def preview_cmd(
    dataset: Path = typer.Argument(..., help="Generated dataset, or a folder of photos with corners.csv."),
    out: Path = typer.Option(..., "--out", "-o", help="Contact sheet file (.png or .jpg)."),
    count: int = typer.Option(48, "--count", "-n", min=1, max=MAX_COUNT,
                              help="Samples on the sheet (a seeded random subset)."),
    columns: int = typer.Option(8, min=1, max=MAX_COLUMNS, help="Tiles per row."),
    # a bigger tile (or sheet) would not fit in memory
    tile: int = typer.Option(240, min=32, max=MAX_TILE, help="Tile size in pixels."),
    seed: int = typer.Option(0, help="Seed of the subset."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing sheet."),
    labels: Names = typer.Option("", "--labels", parser=comma_list, metavar="LABEL,...",
                                 help="Also draw labels beyond the page: words, bm (a checkerboard through the "
                                      "backward map), comma-separated."),
    as_json: bool = JsonOpt,
) -> None:
    """A contact sheet: each sample with its mask outline, corner quad and numbered corners
    (0 = top-left, clockwise), other instances and the sample's flags."""
    outputs.check_file(out)
    outputs.refuse_replacing([out], inputs=[dataset], force=force)
    result = contact_sheet(dataset, out, count=count, columns=columns, tile=tile, seed=seed, force=force,
                           views=list(labels))
    emit(result, as_json, f"wrote {result['out']} ({result['samples']} samples)")


def stats_cmd(
    folder: Path = typer.Argument(..., help="Generated dataset, or a folder of photos with corners.csv."),
    real: Path | None = typer.Option(None, "--real", help="Real photos with corners.csv to compare with."),
    plot: Path | None = typer.Option(None, "--plot", help="Write histograms to this .png."),
    limit: int = typer.Option(500, "--limit", help="Measure at most this many samples of FOLDER."),
    seed: int = typer.Option(0, help="Seed of the subset."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --plot file."),
    as_json: bool = JsonOpt,
) -> None:
    """Page area, corner angles, rotation, brightness, contrast, saturation and sharpness of a
    dataset, side by side with real photos (medians, 10-90% ranges, KS distance)."""
    if plot is not None:
        outputs.check_file(plot, "--plot")
        outputs.refuse_replacing([plot], inputs=[folder, real] if real else [folder], force=force, flag="--plot")
    with progress_bar("stats") as bar:
        result = run_stats(folder, real=real, plot_to=plot, limit=limit, seed=seed, progress=bar)
    emit(result, as_json, format_table(result))
