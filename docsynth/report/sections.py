"""The sections of the run report: one function per section, each reading only what its stage
left in ``RUN/<stage>/`` (a stage that did not run gets a line saying so); :data:`SECTIONS` is
their order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from docsynth.dataset.preview import render_tile
from docsynth.dataset.split import describe_sharing
from docsynth.dataset.stats import STATS, compare, measure
from docsynth.errors import DocsynthError
from docsynth.formats.manifest import read_items
from docsynth.formats.runfolder import STAGE_ORDER
from docsynth.io import read_image, read_jsonl
from docsynth.report.html import esc, fmt_value, img, missing, prose, table
from docsynth.report.run_folder import RunFolder
from docsynth.report.worst import _evaluation, section_worst
from docsynth.viz import TILE, caption, finite, fit_height, grid, svg_chart


def section_overview(run: RunFolder) -> str:
    rows = []
    last = {e.get("stage"): e for e in (run.last_run or {}).get("stages", [])}
    for name in STAGE_ORDER:
        record = run.records.get(name) or {}
        attempts = record.get("attempts") or []
        rows.append([name, "yes" if name in run.selected() else "no", record.get("status", "not run"),
                     (last.get(name) or {}).get("action", "–"), _secs(record.get("seconds")),
                     _secs(record.get("total_seconds")), len(attempts) or None, record.get("finished", "–")])
    total = sum((r.get("total_seconds") or 0) for r in run.records.values() if r)
    out = table(["stage", "in run.stages", "status", "last `docsynth run`", "seconds (last attempt)",
                 "seconds (all attempts)", "attempts", "finished (UTC)"], rows)
    out += f"<p>Total stage time: {total:.1f} s.</p>"
    if run.last_run:
        out += f"<p>The last <code>docsynth run</code> took {_secs(run.last_run.get('seconds'))} s.</p>"
    return out


def _secs(value: Any) -> str | None:
    return f"{value:.1f}" if finite(value) else None


def section_config(run: RunFolder) -> str:
    if not run.config:
        return missing("No run.yaml in this folder.")
    text = yaml.safe_dump(run.config, sort_keys=False, default_flow_style=False)
    return f"<pre>{esc(text)}</pre>"


def section_sources(run: RunFolder) -> str:
    folder = run.stage_dir("sources")
    if not run.complete("sources") or not (folder / "documents.jsonl").is_file():
        return missing(run.why_missing("sources"))
    rows = read_jsonl(folder / "documents.jsonl")
    by_source: dict[str, int] = {}
    for r in rows:
        by_source[str(r.get("source"))] = by_source.get(str(r.get("source")), 0) + 1
    tiles = []
    for r in _spread(rows, 8):
        try:
            image = read_image(folder / r["image"])
        except (DocsynthError, KeyError):
            continue
        tile, _ = fit_height(image, 160)
        tiles.append(caption(tile, f"{r.get('source')}/{r.get('id')}"))
    out = f"<p>{len(rows)} prepared pages.</p>" + table(["source", "pages"], sorted(by_source.items()))
    if tiles:
        out += f'<div class="sheet">{img(grid(tiles, 8), "prepared pages")}</div>'
    return out


def section_backgrounds(run: RunFolder) -> str:
    folder = run.stage_dir("backgrounds")
    if not run.complete("backgrounds") or not (folder / "backgrounds.jsonl").is_file():
        return missing(run.why_missing("backgrounds"))
    rows = read_jsonl(folder / "backgrounds.jsonl")
    licences: dict[tuple[str, str], int] = {}
    for r in rows:
        k = (str(r.get("provider")), str(r.get("licence")))
        licences[k] = licences.get(k, 0) + 1
    tiles = []
    for r in _spread(rows, 8):
        path = r.get("file") or r.get("image")
        if not path:
            continue
        try:
            tile, _ = fit_height(read_image(folder / path), 120)
        except DocsynthError:
            continue
        tiles.append(caption(tile, str(r.get("id"))))
    out = f"<p>{len(rows)} backgrounds.</p>" + table(["provider", "licence", "images"],
                                                   [[p, lic, n] for (p, lic), n in sorted(licences.items())])
    if tiles:
        out += f'<div class="sheet">{img(grid(tiles, 8), "backgrounds")}</div>'
    return out


def _inputs_note(run: RunFolder, summary: dict[str, Any]) -> str:
    """Why the counts differ from generate.documents_count / backgrounds_count in the config:
    in a run, generate reads what the sources and backgrounds stages made; those counts apply
    only when generate renders its own."""
    used = ((run.records.get("generate") or {}).get("config") or {}).get("generate") or {}
    configured = run.config.get("generate") or {}
    notes = []
    for key, stage in (("documents", "sources"), ("backgrounds", "backgrounds")):
        if used.get(key) and f"{key}_count" in configured and summary.get(key) is not None:
            notes.append(f"the {fmt_value(summary[key])} {key} are what the {stage} stage made "
                         f"(<code>generate.{key}_count</code>, {esc(configured[f'{key}_count'])}, applies only "
                         f"when generate makes its own {key})")
    return ("Here " + "; ".join(notes) + ". ") if notes else ""


def section_dataset(run: RunFolder, count: int = 12) -> str:
    folder = run.stage_dir("generate")
    manifest = folder / "manifest.jsonl"
    if not run.complete("generate") or not manifest.is_file():
        return missing(run.why_missing("generate"))
    rows = read_jsonl(manifest)
    summary = (run.records["generate"] or {}).get("summary") or {}
    flags: dict[str, int] = {}
    for r in rows:
        for f in r.get("flags") or []:
            flags[f] = flags.get(f, 0) + 1

    tiles = [render_tile(item, TILE) for item in _spread(read_items(folder), count)]
    out = (f"<p>{len(rows)} samples from {fmt_value(summary.get('documents'))} documents and "
           f"{fmt_value(summary.get('backgrounds'))} backgrounds"
           + (f", {fmt_value(summary.get('samples_per_second'))} samples/s" if summary.get("samples_per_second") else "")
           + ". " + _inputs_note(run, summary)
           + "Green: page mask outline; red: the corner quad, corners numbered 0 = top-left, clockwise; "
           "cyan: other documents in the frame.</p>")
    if flags:
        out += table(["flag", "samples"], sorted(flags.items()))
    if tiles:
        out += f'<div class="sheet">{img(grid(tiles, 4), "dataset contact sheet")}</div>'
    return out


CHARTED = ("page_area", "corner_angle", "rotation", "page_brightness", "contrast", "sharpness")


def _real_photos_folder(run: RunFolder) -> str:
    """A folder of real photos with corners.csv this run knows of: evaluate.data, else
    train.eval_real (as the stages saw them)."""
    for section, key in (("evaluate", "data"), ("train", "eval_real")):
        record = run.records.get(section) or {}
        folder = ((record.get("config") or {}).get(section) or {}).get(key) or \
            (run.config.get(section) or {}).get(key)
        if folder and (Path(folder) / "corners.csv").is_file():
            return str(folder)
    return ""


def section_statistics(run: RunFolder, limit: int = 200) -> str:
    """`docsynth stats` of the generated dataset against the run's real photos."""
    folder = run.stage_dir("generate")
    if not run.complete("generate") or not (folder / "manifest.jsonl").is_file():
        return missing(run.why_missing("generate"))
    synthetic, counts = measure(folder, limit=limit)
    where = _real_photos_folder(run)
    real, real_counts = measure(where) if where else (None, None)
    result = compare(synthetic, real)
    out = (f"<p>{counts['measured']} synthetic samples with a page ({counts['negatives']} negatives not measured)"
           + (f" against {real_counts['measured']} real photos from <code>{esc(where)}</code>"
              if real and real_counts else "")
           + ". Statistics of <code>docsynth stats</code>; KS: two-sample Kolmogorov-Smirnov distance "
           "(0 = same distribution, 1 = disjoint).</p>")
    if real is None:
        out += missing("No real photos with corners.csv are configured (evaluate.data or train.eval_real), "
                       "so only the synthetic side is shown.")

    def spread(s: dict[str, Any]) -> str | None:
        return None if s["median"] is None else f"{s['p10']:.1f} – {s['p90']:.1f}"

    rows = []
    for key, entry in result.items():
        row: list[Any] = [f"{key} ({entry['unit']})", _num(entry["dataset"]["median"]), spread(entry["dataset"])]
        if real is not None:
            row += [_num(entry["real"]["median"]), spread(entry["real"]), entry["ks"]]
        rows.append(row)
    heads = ["statistic", "synthetic median", "synthetic 10–90 %"]
    out += table(heads + (["real median", "real 10–90 %", "KS"] if real is not None else []), rows)
    charts = []
    for key in CHARTED:
        groups = {"synthetic": synthetic[key], **({"real": real[key]} if real is not None else {})}
        series = {g: _histogram(v, groups) for g, v in groups.items() if len(v) >= 3}
        if series:
            charts.append(svg_chart(f"{key}: share of images", series, xlabel=STATS[key], width=400, height=210))
    return out + '<div class="charts">' + "".join(charts) + "</div>"


def _num(value: Any) -> str | None:
    return None if value is None else f"{value:.1f}"


def _histogram(values: list[float], groups: dict[str, list[float]], bins: int = 12) -> list[tuple[float, float]]:
    """Share of images per bin, on bins shared by all groups, as chart points."""
    every = [v for g in groups.values() for v in g]
    lo, hi = float(min(every)), float(max(every))
    hi = hi if hi > lo else lo + 1
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    return list(zip(centres.tolist(), (counts / max(1, len(values))).tolist(), strict=True))


def section_split(run: RunFolder) -> str:
    folder = run.stage_dir("split")
    if not run.complete("split"):
        return missing(run.why_missing("split"))
    s = (run.records["split"] or {}).get("summary") or {}
    rows = [["samples", s.get("train"), s.get("valid")]]
    for key in ("documents", "backgrounds"):
        if isinstance(s.get(key), dict):
            rows.append([key, s[key].get("train"), s[key].get("valid")])
    out = table(["", "train", "valid"], rows)

    out += (f"<p>{prose(describe_sharing(s))}" + (f" {s['dropped']} samples dropped." if s.get("dropped") else "")
            + "</p>")
    if not (folder / "split.yaml").is_file():
        out += missing("split.yaml is missing from the split folder.")
    return out


def section_training(run: RunFolder) -> str:
    folder = run.stage_dir("train")
    metrics = folder / "metrics.jsonl"
    if not metrics.is_file():
        return missing(run.why_missing("train"))
    rows = read_jsonl(metrics)
    if not rows:
        return missing("train/metrics.jsonl is empty: no epoch finished yet.")
    out = ""
    if not run.complete("train"):
        out += missing(run.why_missing("train") + " The curves show the epochs finished so far.")
    xkey = "epoch" if all("epoch" in r for r in rows) else None
    numeric = sorted({k for r in rows for k, v in r.items() if finite(v) and k != xkey})
    groups: dict[str, dict[str, list[tuple[float, float]]]] = {"loss": {}, "IoU / Jaccard": {}, "other": {}}
    for key in numeric:
        points = [(r[xkey] if xkey else i + 1, r[key]) for i, r in enumerate(rows) if finite(r.get(key))]
        low = key.lower()
        if "loss" in low:
            groups["loss"][key] = points
        elif any(w in low for w in ("iou", "jaccard", "acc", "dice")):
            groups["IoU / Jaccard"][key] = points
        elif not any(w in low for w in ("step", "seconds", "time", "lr", "epoch", "samples")):
            groups["other"][key] = points
    charts = [svg_chart(title, series) for title, series in groups.items() if series]
    # The number that matters against the budget it cost: real-photo scores by CPU minutes.
    by_cpu = {key: [(r["train_cpu_seconds"] / 60, r[key]) for r in rows
                    if finite(r.get("train_cpu_seconds")) and finite(r.get(key))]
              for key in ("real_jaccard", "real_iou")}
    by_cpu = {k: v for k, v in by_cpu.items() if v}
    if by_cpu:
        charts.append(svg_chart("real photos vs training CPU minutes", by_cpu, xlabel="CPU minutes"))
    summary = (run.records.get("train") or {}).get("summary") or {}
    facts = [(k, summary.get(k)) for k in ("backbone", "epochs_done", "epochs", "steps", "best_valid_iou",
                                           "best_epoch", "real_iou", "real_jaccard", "train_wall_seconds", "device")
             if summary.get(k) is not None]
    if facts:
        out += table(["training", ""], facts)
    out += '<div class="charts">' + "".join(charts) + "</div>"
    last = rows[-1]
    out += table(["metric (last epoch)", "value"], [[k, last[k]] for k in numeric])
    return out


def _method(methods: dict[str, Any], prefix: str) -> str | None:
    return next((name for name in methods if name.startswith(prefix)), None)


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def evaluation_remark(run: RunFolder) -> str:
    """One sentence on what the run's own model scores and why, beside the packaged model (or
    the classical baseline when the packaged model was not scored); "" when there is nothing
    to compare. `docsynth run` prints it too."""
    data = _evaluation(run)
    if data is None or not run.complete("evaluate"):
        return ""
    methods = data["methods"]
    own, packaged = _method(methods, "model:"), _method(methods, "packaged:")
    if own is None or not finite(methods[own].get("mean_jaccard")):
        return ""
    score = methods[own]["mean_jaccard"]
    summary = lambda stage: (run.records.get(stage) or {}).get("summary") or {}  # noqa: E731
    tr, sp, gen, src = summary("train"), summary("split"), summary("generate"), summary("sources")
    cfg_train = run.config.get("train") or {}
    fine_tuned = cfg_train.get("weights") == "packaged"
    parts = []
    epochs, steps = tr.get("epochs_done"), tr.get("steps")
    if epochs is not None:
        parts.append(_plural(epochs, "epoch") + (f" ({_plural(steps, 'step')})" if steps is not None else "")
                     + (" of fine-tuning the packaged model" if fine_tuned else
                        f" of the {tr['backbone']} model from scratch" if tr.get("backbone") else ""))
    samples = sp.get("train") if sp.get("train") is not None else (gen.get("samples") if not cfg_train.get("online")
                                                                    else None)
    pages = src.get("documents") if src.get("documents") is not None else gen.get("documents")
    if samples is not None:
        parts.append(f"on {samples} composites" + (f" of {_plural(pages, 'page')}" if pages is not None else ""))
    elif pages is not None:
        parts.append(f"on composites of {_plural(pages, 'page')}")
    seconds: Any = tr.get("train_wall_seconds")  # a number when finite() says so
    if finite(seconds):
        parts.append(f"{seconds:.0f} s of training" if seconds < 120 else f"{seconds / 60:.0f} minutes of training")
    how = " ".join(parts[:-1]) + ", " + parts[-1] if len(parts) > 1 and finite(seconds) else " ".join(parts)
    if packaged is not None and finite(methods[packaged].get("mean_jaccard")):
        other = methods[packaged]["mean_jaccard"]
        p = data.get("packaged") or {}
        made = []
        if p.get("epochs"):
            made.append(_plural(p["epochs"], "epoch")
                        + (f" of {p['samples_per_epoch']} fresh composites" if p.get("samples_per_epoch") else ""))
        if finite(p.get("train_wall_seconds")):
            made.append(f"about {p['train_wall_seconds'] / 60:.0f} minutes on a 2-core CPU")
        about = f" ({', '.join(made)})" if made else ""
        if other > score:
            return (f"The run's own model scores {score:.3f} because it is a quick example: {how or 'a short run'}; "
                    f"the packaged model{about} scores {other:.3f} on the same photos, which is what longer "
                    "training on docsynth's composites gives (raise train.epochs, see recipes/cpu/, or fine-tune "
                    "from the packaged model with train.weights: packaged).")
        return (f"The run's own model ({how or 'this run'}) scores {score:.3f} and the packaged "
                f"model{about} {other:.3f} on the same photos.")
    classical = methods.get("classical") or {}
    if finite(classical.get("mean_jaccard")) and classical["mean_jaccard"] > score:
        return (f"The run's own model scores {score:.3f}, below the classical baseline's "
                f"{classical['mean_jaccard']:.3f}, because it is a quick example: {how or 'a short run'}; set "
                "evaluate.packaged: true to score the packaged model, trained the same way for longer, beside it.")
    return ""


def section_evaluation(run: RunFolder) -> str:
    data = _evaluation(run)
    if data is None or not run.complete("evaluate"):
        return missing(run.why_missing("evaluate") if not run.complete("evaluate")
                       else "The evaluate stage left no results.json this report can read.")
    methods = data["methods"]
    subsets = sorted({s for m in methods.values() for s in (m.get("subsets") or {})})
    if len(subsets) < 2:
        subsets = []  # one subset: its column would repeat the mean
    rows = []
    for name, m in methods.items():
        per = [((m.get("subsets") or {}).get(s) or {}).get("mean_jaccard") for s in subsets]
        rows.append([name, m.get("count"), m.get("found"), m.get("mean_jaccard"), m.get("mean_mask_iou"), *per])
    where = data.get("data") or ((run.records.get("evaluate") or {}).get("summary") or {}).get("data")
    out = ("<p>SmartDoc 2015 protocol: Jaccard index of the predicted and true quads in the document's "
           "frame, mean over photos (no page found = 0); mask IoU in image pixels."
           + (f" Photos: <code>{esc(where)}</code>." if where else "") + "</p>")
    if data.get("note"):
        out += f'<p class="missing">{prose(data["note"])}</p>'
    out += table(["method", "photos", "page found", "mean Jaccard", "mean mask IoU",
                  *[f"Jaccard: {s}" for s in subsets]], rows)
    remark = evaluation_remark(run)
    if remark:
        out += f'<p class="remark"><strong>{prose(remark)}</strong></p>'
    if data.get("skipped"):
        out += missing(f"{len(data['skipped'])} photos could not be read and were not scored: "
                       + ", ".join(f"{s.get('image')} ({s.get('reason')})" for s in data["skipped"]))
    names = list(methods)
    per_image = {n: {r["image"]: r for r in methods[n].get("images") or []} for n in names}
    first = sorted(methods[names[0]].get("images") or [], key=lambda r: r.get("jaccard", 0))
    detail = []
    for r in first:
        detail.append([r["image"], *[(per_image[n].get(r["image"]) or {}).get("jaccard") for n in names],
                       r.get("mask_iou"), r.get("reason") or ""])
    out += "<details open><summary>Per photo, worst first</summary>" + table(
        ["photo", *[f"Jaccard: {n}" for n in names], f"mask IoU: {names[0]}", "note"], detail) + "</details>"
    return out


def _spread(rows: list[Any], count: int) -> list[Any]:
    """``count`` rows evenly spread over the list (deterministic)."""
    if len(rows) <= count:
        return list(rows)
    idx = np.linspace(0, len(rows) - 1, count).round().astype(int)
    return [rows[i] for i in idx]


SECTIONS: list[tuple[str, str, Callable[[RunFolder], str]]] = [
    ("overview", "Stages and timings", section_overview),
    ("config", "Config", section_config),
    ("sources", "Documents (sources)", section_sources),
    ("backgrounds", "Backgrounds", section_backgrounds),
    ("dataset", "Dataset samples (generate)", section_dataset),
    ("statistics", "Real vs synthetic statistics", section_statistics),
    ("split", "Split", section_split),
    ("training", "Training curves", section_training),
    ("evaluation", "Evaluation", section_evaluation),
    ("worst", "Worst photos", section_worst),
]
