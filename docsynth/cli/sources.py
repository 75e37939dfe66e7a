"""Commands `docsynth sources list|fetch|import|prepare` and `docsynth resize`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from docsynth import plugins
from docsynth.cli.common import ConfigOpt, Group, JsonOpt, emit, load_config, print_table, warn
from docsynth.errors import DocsynthError, Incomplete
from docsynth.progress import progress_bar
from docsynth.sources.prepare import parse_mix, prepare, resize_folder
from docsynth.sources.store import describe, fetch, import_data

sources_app = typer.Typer(cls=Group, no_args_is_help=True,
                          help="Document sources: list, fetch or import datasets, prepare a document set.")


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")
    app.command("resize")(resize_cmd)



@sources_app.command("list")
def sources_list(config: Path | None = ConfigOpt, as_json: bool = JsonOpt,
                 no_count: bool = typer.Option(False, "--no-count", help="Do not list documents (faster).")) -> None:
    """Every source: licence, how to get it, whether its data is here and how many documents."""
    cfg = load_config(config)
    entries = list(dict.fromkeys(plugins.names("source") + [
        e for e, o in cfg.sources.options.items() if isinstance(o, dict) and "source" in o]))
    infos = [describe(cfg, e, count=not no_count) for e in entries]
    if as_json:
        emit(infos, True)
        return

    table = Table("source", "licence", "get it", "here", "documents", "note")
    for i in infos:
        name = i["name"] if i["name"] == i["source"] else f"{i['name']} ({i['source']})"
        table.add_row(name, i["licence"], i["fetch"], "yes" if i["present"] else "no",
                                               "" if i["documents"] is None else str(i["documents"]), i["note"])
    print_table(table)


@sources_app.command("fetch")
def sources_fetch(name: str = typer.Argument(..., help="Source name (see 'docsynth sources list')."),
                  retries: int = typer.Option(4, help="Retries per file after a network error."),
                  config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Download a source's data (resumable, checksum-verified) and unpack it safely. For
    registration-gated datasets, print what to download and how to import it."""
    cfg = load_config(config)
    with progress_bar(f"fetch {name}") as bar:
        result = fetch(cfg, name, progress=bar, retries=retries)
    if not result["fetched"]:
        text = result["manual_download"]
        if not text:
            raise DocsynthError(f"source {name!r} has nothing to download (it reads a folder or renders "
                                              "pages); set its 'root' option or use 'docsynth sources import'")
        result["instructions"] = text
        emit(result, as_json, f"{text}\n(data folder: {result['root']})")
        raise typer.Exit(3)
    emit(result, as_json, f"{name}: {result['documents']} documents in {result['root']}")


@sources_app.command("import")
def sources_import(name: str = typer.Argument(..., help="Source name."),
                   path: Path = typer.Argument(..., help="Downloaded archive (zip/tar) or folder."),
                   force: bool = typer.Option(False, "--force", help="Replace an earlier import of this file."),
                   config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Unpack (safely) or copy manually downloaded data into the source's data folder."""
    cfg = load_config(config)
    with progress_bar(f"import {name}") as bar:
        result = import_data(cfg, name, path, force=force, progress=bar)
    for w in result["warnings"]:
        warn(w)
    emit(result, as_json, f"{name}: imported {path} into {result['into']}; "
                                              f"{result['documents']} documents available")


def _mix(text: str) -> dict[str, int | str]:
    try:
        return parse_mix(text)
    except DocsynthError as exc:  # its message names the option too
        raise typer.BadParameter(str(exc).removeprefix("--mix: ")) from None


@sources_app.command("prepare")
def sources_prepare(
    mix: dict[str, int | str] | None = typer.Option(None, parser=_mix, metavar="NAME=COUNT,...",
                                                    help="NAME=COUNT pairs, e.g. docvqa=700,funsd=all "
                                                         "(default: sources.mix)."),
    seed: int | None = typer.Option(None, help="Master seed."),
    max_size: int | None = typer.Option(None, "--max-size", help="Longest side of prepared pages."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: sources.out)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Worker processes."),
    image_format: str | None = typer.Option(None, "--image-format", help="jpg or png."),
    force: bool = typer.Option(False, "--force", help="Replace a folder prepared with another mix."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Sample the mix (seeded), clean, mask and resize each page: images/, masks/, documents.jsonl."""
    cfg = load_config(config, {"seed": seed, "sources.max_size": max_size,
                               "sources.out": None if out is None else str(out),
                               "sources.workers": workers, "sources.image_format": image_format})
    if mix is not None:
        cfg.sources.mix = mix

    with progress_bar("prepare") as bar:
        summary = prepare(cfg, force=force, progress=bar, warn=warn)
    per = ", ".join(f"{e} {s['taken']}" for e, s in summary["sources"].items())
    emit(summary, as_json, f"prepared {summary['documents']} documents ({per}; {summary['resumed']} already "
                               f"done) in {summary['out']} in {summary['seconds']} s")
    # A source of the mix that gave no page at all failed (fewer pages than asked, when the
    # source has too few readable ones, are the warnings above).
    short = {e: s for e, s in summary["sources"].items() if not s["taken"] and s["requested"] != 0}
    if short:
        entry, s = next(iter(short.items()))
        why = f" (e.g. {s['skipped_examples'][0]})" if s["skipped_examples"] else ""
        raise Incomplete(f"{summary['out']}: incomplete, source {entry!r} gave {s['taken']} of "
                               f"{s['requested']} documents{why}; fix or replace the failing documents, or "
                               "lower the mix, then rerun")


def resize_cmd(src: Path = typer.Argument(..., help="Folder of images (and masks).", file_okay=False),
               dst: Path = typer.Argument(..., help="Output folder (same relative paths).", file_okay=False),
               max_size: int = typer.Option(..., "--max-size", "-x", help="Longest side in pixels."),
               force: bool = typer.Option(False, "--force", help="Overwrite files already in DST."),
               as_json: bool = JsonOpt) -> None:
    """Shrink every image under SRC to a longest side of --max-size, keeping the aspect ratio;
    masks (under masks/ or named *_mask.*) use nearest-neighbour; documents.jsonl is updated."""
    with progress_bar("resize") as bar:
        summary = resize_folder(src, dst, max_size, force=force, progress=bar)
    emit(summary, as_json, f"resized {summary['written']} images into {dst} ({summary['kept']} already there, "
                                          f"{summary['failed']} unreadable) in {summary['seconds']} s")
