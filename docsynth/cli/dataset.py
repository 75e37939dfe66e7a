"""Commands on generated datasets: `docsynth export`, `docsynth preview`, `docsynth stats`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from docsynth.cli.app import JsonOpt, emit
    from docsynth.progress import progress_bar

    @app.command("export")
    def export_cmd(
        dataset: Path = typer.Argument(..., help="Dataset folder made by 'docsynth generate'."),
        fmt: str = typer.Option(..., "--format", "-f", help="coco, yolo-seg, reference, parquet; with "
                                "generate --labels: icdar2015 (words), doc3d, uvdoc (dewarp maps)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (parquet: output file)."),
        force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder (parquet: the file)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Write a dataset as COCO (segmentation + 4 corner keypoints), YOLO segmentation labels,
        the reference layout (images + 3-channel masks named {doc:04}_bck_{k:02}) or one Parquet
        file (a row per sample: image and mask bytes, corners, flags, provenance, labels); and the
        labels beyond the page as ICDAR 2015 word boxes, Doc3D backward maps or UVDoc grids."""
        from docsynth import outputs
        from docsynth.dataset.export import export, require_pyarrow

        if fmt == "parquet":
            require_pyarrow()
            outputs.check_file(out)
            outputs.refuse_replacing([out], inputs=[dataset], force=force)  # never an input, even with --force
        else:
            outputs.check_folder(out)
            outputs.refuse_overlap(out, [dataset])  # --force clears --out: never where the dataset is
        with progress_bar("export") as bar:
            result = export(dataset, fmt, out, force=force, progress=bar.advance, on_start=bar.start)
        emit(result, as_json, f"exported {result['images']} images as {fmt} to {result['out']}")

    @app.command("preview")
    def preview_cmd(
        dataset: Path = typer.Argument(..., help="Generated dataset, or a folder of photos with corners.csv."),
        out: Path = typer.Option(..., "--out", "-o", help="Contact sheet file (.png or .jpg)."),
        count: int = typer.Option(48, "--count", "-n", help="Samples on the sheet (a seeded random subset)."),
        columns: int = typer.Option(8, help="Tiles per row."),
        tile: int = typer.Option(240, help="Tile size in pixels."),
        seed: int = typer.Option(0, help="Seed of the subset."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing sheet."),
        labels: str = typer.Option("", "--labels", help="Also draw labels beyond the page: words, bm "
                                   "(a checkerboard through the backward map), comma-separated."),
        as_json: bool = JsonOpt,
    ) -> None:
        """A contact sheet: each sample with its mask outline, corner quad and numbered corners
        (0 = top-left, clockwise), other instances and the sample's flags."""
        from docsynth import outputs
        from docsynth.dataset.preview import contact_sheet

        outputs.check_file(out)
        outputs.refuse_replacing([out], inputs=[dataset], force=force)
        views = [v.strip() for v in labels.split(",") if v.strip()]
        result = contact_sheet(dataset, out, count=count, columns=columns, tile=tile, seed=seed, force=force,
                               views=views)
        emit(result, as_json, f"wrote {result['out']} ({result['samples']} samples)")

    @app.command("stats")
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
        from docsynth import outputs
        from docsynth.dataset.stats import format_table, run_stats

        if plot is not None:
            outputs.check_file(plot, "--plot")
            outputs.refuse_replacing([plot], inputs=[folder, real] if real else [folder], force=force, flag="--plot")
        with progress_bar("stats") as bar:
            result = run_stats(folder, real=real, plot_to=plot, limit=limit, seed=seed, progress=bar.advance)
        emit(result, as_json, format_table(result))
