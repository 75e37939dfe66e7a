"""Commands `docsynth backgrounds ...`: scrape, normalize, dedupe, credits, import-textures, list."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from docsynth import plugins
from docsynth.backgrounds.credits import write_credits
from docsynth.backgrounds.dedupe import dedupe_folder
from docsynth.backgrounds.folder import normalize_folder
from docsynth.backgrounds.scrape import client_from_config, scrape, settings_from_config
from docsynth.backgrounds.textures import TextureSettings, import_textures
from docsynth.cli.common import (
    ConfigOpt,
    Group,
    JsonOpt,
    Names,
    Setting,
    Size,
    comma_list,
    emit,
    key_value,
    load_config,
    print_table,
    warn,
    wxh,
)
from docsynth.errors import DocsynthError, Incomplete
from docsynth.kinds import can_scrape
from docsynth.progress import progress_bar


def _rejections(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


bg = typer.Typer(cls=Group, no_args_is_help=True,
                 help="Collect background images with licences, clean them and credit their authors.")


def register(app: typer.Typer) -> None:
    app.add_typer(bg, name="backgrounds")



@bg.command("scrape")
def scrape_cmd(
    provider: str | None = typer.Option(None, "--provider", "-p",
                                        help="Scraping provider: openverse, wikimedia-commons, url-list..."),
    query: list[str] | None = typer.Option(None, "--query", "-q",
                                           help="Search query (repeatable; default: backgrounds.queries). "
                                                "url-list: the list file."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Images per query (backgrounds.per_query)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Background folder (backgrounds.out)."),
    licences: Names | None = typer.Option(None, "--licences", parser=comma_list, metavar="CODE,...",
                                          help="Comma list of accepted licence codes, or 'any'."),
    min_width: int | None = typer.Option(None, "--min-width", help="Smallest accepted width."),
    option: list[Setting] | None = typer.Option(None, "--option", parser=key_value, metavar="KEY=VALUE",
                                                help="Provider option KEY=VALUE (repeatable)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Search, download, normalise and record backgrounds; rerun to resume."""
    cfg = load_config(config, {"backgrounds.out": None if out is None else str(out),
                                            "backgrounds.per_query": limit, "backgrounds.min_width": min_width,
                                            "backgrounds.licences": licences or None})
    section = cfg.backgrounds
    name = provider or section.provider
    plugin = plugins.get("background", name)
    if not can_scrape(plugin):
        scrapers = [n for n, p in plugins.host().all("background").items() if can_scrape(p)]
        raise DocsynthError(f"background provider {name!r} cannot scrape; use --provider with one of: "
                                            f"{', '.join(scrapers) or 'none installed'}")
    queries = list(query or section.queries)
    if not queries:
        raise DocsynthError("no queries: pass --query or set backgrounds.queries")
    options = {"licences": section.licences, **(section.options.get(name) or {}),
               **dict(option or [])}
    client = client_from_config(section)
    if not section.contact:
        warn("backgrounds.contact is empty; APIs such as Wikimedia Commons may block anonymous clients (set it "
             "to your e-mail or URL)")
    with progress_bar(f"scrape {name}") as bar:
        summary = scrape(plugin, queries, section.out, limit=section.per_query,
                         settings=settings_from_config(section), client=client, options=options,
                         progress=bar)
    human = (f"added {summary['added']} images ({summary['total']} in {summary['out']}); "
             f"skipped or rejected: {_rejections(summary['rejected'])}")
    if summary["exhausted"]:
        human += f"\nno more results before the limit for: {', '.join(summary['exhausted'])}"
    emit(summary, as_json, human)


@bg.command("normalize")
def normalize_cmd(
    folder: Path = typer.Argument(..., help="Background folder to normalise in place."),
    min_size: Size = typer.Option("64x64", "--min-size", parser=wxh, metavar="WxH",
                                  help="Smaller images are rejected (WxH)."),
    max_side: int = typer.Option(0, "--max-side", help="Scale larger images down to this longest side (0: keep)."),
    licence: str | None = typer.Option(None, "--licence", help="Licence recorded for images without a record."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Make every image an upright RGB JPEG with a record; set aside what cannot be one."""
    cfg = load_config(config)
    width, height = min_size
    with progress_bar("normalize") as bar:
        summary = normalize_folder(folder, min_width=width, min_height=height, max_side=max_side,
                                   quality=cfg.backgrounds.jpeg_quality, licence=licence,
                                   progress=bar)
    rejected = {k.split(":", 1)[1]: v for k, v in summary.items() if k.startswith("rejected:")}
    human = (f"{summary['folder']}: {summary.get('kept', 0)} kept, {summary.get('converted', 0)} converted "
             f"(originals in originals/), {sum(rejected.values())} rejected to rejected/ "
             f"({_rejections(rejected)}); {summary['images']} records")
    emit(summary, as_json, human)


@bg.command("dedupe")
def dedupe_cmd(
    folder: Path = typer.Argument(..., help="Background folder."),
    threshold: int | None = typer.Option(None, "--threshold", "-t",
                                         help="Max perceptual-hash bit distance (backgrounds.dedupe_threshold)."),
    apply: bool = typer.Option(False, "--apply", help="Move duplicates to duplicates/ (default: only list)."),
    min_correlation: float | None = typer.Option(
        None, "--min-correlation", help="Thumbnail correlation a hash match must also reach "
                                        "(backgrounds.dedupe_min_correlation; 0: hashes only)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List near-duplicate groups (the largest image of each is kept); --apply moves the rest."""
    cfg = load_config(config, {"backgrounds.dedupe_threshold": threshold,
                                                 "backgrounds.dedupe_min_correlation": min_correlation})
    section = cfg.backgrounds
    summary = dedupe_folder(folder, section.dedupe_threshold, apply=apply,
                            min_correlation=section.dedupe_min_correlation)
    lines = []
    for group in summary["groups"]:
        lines.append(f"keep {group['keep_file']}")
        lines += [f"  {'moved' if apply else 'dup  '} {d['file']} (distance {d['distance']})"
                  for d in group["duplicates"]]
    verb = "moved to duplicates/" if apply else "would be moved (pass --apply)"
    lines.append(f"{summary['images']} images, {len(summary['groups'])} groups, "
                 f"{summary['duplicates']} duplicates {verb}; {summary['unconfirmed']} hash matches "
                 f"not confirmed by their thumbnails")
    emit(summary, as_json, "\n".join(lines))


@bg.command("credits")
def credits_cmd(
    folder: Path = typer.Argument(..., help="Background folder."),
    force: bool = typer.Option(False, "--force", help="Replace CREDITS.md/credits.csv not written by docsynth."),
    as_json: bool = JsonOpt,
) -> None:
    """Write CREDITS.md and credits.csv for images whose licence asks for attribution."""
    summary = write_credits(folder, force=force)
    human = (f"{summary['credited']} of {summary['images']} images need attribution; wrote "
             + " and ".join(summary["files"]))
    emit(summary, as_json, human)


@bg.command("import-textures")
def import_textures_cmd(
    src: Path = typer.Argument(..., help="Folder of textures (searched recursively)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Background folder to add to."),
    size: Size | None = typer.Option(None, "--size", parser=wxh, metavar="WxH",
                                     help="Background size WxH (backgrounds.texture_size)."),
    mode: str | None = typer.Option(None, "--mode", help="tile or upscale (backgrounds.texture_mode)."),
    licence: str | None = typer.Option(None, "--licence", help="Licence of the textures (e.g. GPL-2+)."),
    copyright_file: Path | None = typer.Option(None, "--copyright",
                                               help="Debian DEP-5 copyright file giving licences per file."),
    copyright_prefix: str = typer.Option("", "--copyright-prefix",
                                         help="Prefix of the paths in --copyright, e.g. base/."),
    author: str | None = typer.Option(None, "--author", help="Author/copyright holder to record."),
    source_url: str | None = typer.Option(None, "--source-url", help="Where the textures come from."),
    provider: str = typer.Option("textures", "--name", help="Provider name recorded (and id prefix)."),
    exclude: list[str] | None = typer.Option(None, "--exclude",
                                             help="Skip paths matching this pattern, e.g. '*_nm.*' (repeatable)."),
    seed: int | None = typer.Option(None, help="Seed of the tiling scale and offset (default: config seed)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Turn small tileable textures into backgrounds (tiled or upscaled), with records."""
    cfg = load_config(config, {"backgrounds.texture_mode": mode})
    section = cfg.backgrounds
    width, height = size or tuple(int(v) for v in section.texture_size)
    settings = TextureSettings(width=width, height=height, mode=section.texture_mode,
                               seed=cfg.seed if seed is None else seed, exclude=tuple(exclude or ()),
                               quality=section.jpeg_quality)
    with progress_bar("import-textures") as bar:
        summary = import_textures(src, out or Path(section.out), settings, licence=licence,
                                  copyright_file=copyright_file, copyright_prefix=copyright_prefix,
                                  provider=provider, source_url=source_url, author=author,
                                  progress=bar)
    made = {k.split(":", 1)[1]: v for k, v in summary["counts"].items() if k.startswith("made:")}
    skipped = {k.split(":", 1)[1]: v for k, v in summary["counts"].items() if k.startswith("skipped:")}
    human = (f"{sum(made.values())} backgrounds made ({_rejections(made)}), skipped {_rejections(skipped)}; "
             f"{summary['backgrounds']} in {summary['out']}; licences: {_rejections(summary['licences'])}")
    emit(summary, as_json, human)
    if skipped.get("undecodable"):  # files that should have been textures failed to decode
        raise Incomplete(f"{src}: {skipped['undecodable']} files could not be decoded as images; "
                                    "replace them or move them out, then rerun (finished backgrounds are kept)")


@bg.command("list")
def list_cmd(as_json: bool = JsonOpt) -> None:
    """Background providers: what they give, their licence policy, whether they can scrape."""
    rows = [{"name": name, "description": p.description, "licence": p.licence,
             "scrape": can_scrape(p)}
            for name, p in plugins.host().all("background").items()]
    if as_json:
        emit(rows, True)
        return

    table = Table("provider", "scrape", "description", "licence")
    for r in rows:
        table.add_row(r["name"], "yes" if r["scrape"] else "", r["description"], r["licence"])
    print_table(table)
