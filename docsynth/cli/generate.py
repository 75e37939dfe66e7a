"""Command `docsynth generate` (docsynth/generate/ writes the dataset)."""

from __future__ import annotations

from pathlib import Path

import typer

from docsynth import outputs
from docsynth.cli.common import ConfigOpt, JsonOpt, Names, comma_list, emit, load_config, note, path_or_none
from docsynth.errors import DocsynthError, Incomplete
from docsynth.generate.shards import failure_line
from docsynth.generate.shards import generate as run_generate
from docsynth.progress import progress_bar


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


def _label_list(text: str) -> Names:
    """``--labels dewarp,text`` as a list (checked with the rest of the config); 'none' -> []."""
    return Names() if text.strip() == "none" else comma_list(text)


def generate(
    documents: Path | None = typer.Option(None, help="Prepared documents folder or any folder of page images."),
    backgrounds: Path | None = typer.Option(None, help="Folder of background images."),
    per_document: int | None = typer.Option(None, "--per-document", "-k", help="Composites per document."),
    count: int | None = typer.Option(None, help="Total samples (default: documents x per-document)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output dataset folder."),
    seed: int | None = typer.Option(None, help="Master seed."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Worker processes."),
    image_format: str | None = typer.Option(None, "--image-format", help="jpg or png."),
    compositor: str | None = typer.Option(None, help="Compositor plugin."),
    executor: str | None = typer.Option(None, help="Executor plugin (local, ray, ...)."),
    address: str | None = typer.Option(None, help="Ray cluster for --executor ray: auto or HOST:PORT."),
    shard_format: str | None = typer.Option(None, "--shard-format", help="files or tar (WebDataset shards)."),
    labels: Names | None = typer.Option(None, "--labels", parser=_label_list, metavar="LABEL,...",
                                        help="Labels beyond the page, comma-separated: dewarp, text "
                                             "(dewarp/<id>.npz, text/<id>.jsonl); 'none' for none."),
    force: bool = typer.Option(False, "--force", help="Replace a dataset made with another config."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Composite documents onto backgrounds: images/, masks/, manifest.jsonl, run.yaml."""
    written = load_config(config, {"generate.executor": executor}).generate
    if address is not None and written.executor == "local":
        raise DocsynthError("--address: names a Ray cluster; add --executor ray")
    # Options belong to the compositor they were written for (the shipped docsynth.yaml's are
    # realistic's): --compositor X runs X with its own defaults.
    other_compositor = compositor is not None and compositor != written.compositor and written.compositor_options
    if other_compositor:
        note(f"generate.compositor_options are for {written.compositor!r}; --compositor {compositor} runs with "
             "its defaults")
    cfg = load_config(config, {
        "seed": seed, "generate.documents": path_or_none(documents),
        "generate.backgrounds": path_or_none(backgrounds), "generate.per_document": per_document,
        "generate.count": count, "generate.out": path_or_none(out), "generate.workers": workers,
        "generate.image_format": image_format, "generate.compositor": compositor,
        "generate.executor": executor, "generate.executor_options.address": address,
        "generate.shard_format": shard_format, "generate.compositor_options": {} if other_compositor else None,
        "generate.labels": None if labels is None else list(labels),
    })
    gen = cfg.generate
    outputs.check_folder(gen.out)
    outputs.refuse_overlap(gen.out, [gen.documents, gen.backgrounds])  # --force clears images/
    outputs.refuse_inside(gen.out, [gen.documents, gen.backgrounds])  # listed recursively
    with progress_bar("generate") as bar:
        summary = run_generate(cfg, force=force, progress=bar, note=note)
    human = (f"wrote {summary['written']} samples ({summary['resumed']} already done, "
             f"{summary['failed']} failed) to {summary['out']} in {summary['seconds']} s"
             + (f"; {len(summary['skipped'])} unreadable files skipped (listed above)" if summary["skipped"] else ""))
    emit(summary, as_json, human)
    if not summary["complete"]:
        raise Incomplete(failure_line(summary))
