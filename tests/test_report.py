"""`docsynth report`: one self-contained HTML file, rendered for real in headless Chromium.

The Chromium test drives the system's Chromium with Playwright (the dev extra) so that it sees
every console message, page error, network request and failed load, then takes a screenshot.
It is skipped, with the reason, when no Chromium is installed (CI: ``apt-get install -y
chromium``)."""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from docsynth.errors import DocsynthError
from docsynth.report.page import build_report, write_report
from docsynth.run import runner as run_mod
from docsynth.run import stages as run_stages
from docsynth.run.engine import Stage, StageContext

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


# ---------------------------------------------------------------------------------------------
# A run folder with every stage: real generate/split, stand-ins writing train/evaluate files
# in the formats the real stages write
# ---------------------------------------------------------------------------------------------


def photo_folder(root: Path) -> Path:
    """Three 'photos' (a bright page on a dark table) with corners.csv."""
    folder = root / "photos"
    folder.mkdir(parents=True)
    lines = ["image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y"]
    for k in range(3):
        image = np.full((120, 160, 3), 40, np.uint8)
        quad = np.array([[30 + k, 20], [130, 25 + k], [125, 100], [35, 95 - k]], np.float64)
        cv2.fillConvexPoly(image, quad.astype(np.int32), (235, 235, 235))
        cv2.imwrite(str(folder / f"set_{k}.jpg"), image)
        lines.append(f"set_{k}.jpg," + ",".join(f"{v:.1f}" for v in quad.reshape(-1)))
    (folder / "corners.csv").write_text("\n".join(lines) + "\n")
    return folder


def fake_train(ctx: StageContext) -> dict:
    rows = [{"epoch": e, "step": 3 * e, "train_loss": 1.2 / e, "valid_loss": 1.3 / e, "valid_iou": 0.4 + 0.1 * e,
             "lr": 1e-3, "seconds": 0.5} for e in range(1, 4)]
    (ctx.out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (ctx.out / "best.pt").write_bytes(b"weights")
    return {"epochs_done": 3}


def fake_evaluate(ctx: StageContext) -> dict:
    """results.json as docsynth.evaluate.command writes it, from slightly-off copies of the truth."""
    from docsynth.evaluate.command import write_evaluation as write_eval
    from docsynth.evaluate.smartdoc import evaluate_predictions
    from docsynth.formats.corners import read_folder

    data = ctx.cfg.evaluate.data
    items = read_folder(data)
    methods = {}
    for name, offset in (("model", 6.0), ("classical", 2.0)):
        records = [{"image": p.name, "gt": gt, "pred": None if (name == "model" and k == 0) else gt + offset,
                    "size": (160, 120)} for k, (p, gt) in enumerate(items)]
        methods[name] = evaluate_predictions(records)
    write_eval(ctx.out, {"methods": methods, "data": data, "note": ""}, data)
    return {"data": data}


def build_run(stages_list: list[str]) -> Path:
    photos = photo_folder(Path.cwd())
    cfg = {"seed": 3, "run": {"dir": "runs/r", "stages": stages_list},
           "generate": {"documents_count": 3, "backgrounds_count": 3, "per_document": 2,
                        "compositor_options": {"size": [96, 72]}},
           "split": {"max_size": 64, "valid_fraction": 0.34},
           "evaluate": {"data": str(photos), "baseline": "classical"}}
    Path("docsynth.yaml").write_text(yaml.safe_dump(cfg))
    stages = dict(run_stages.builtin_stages())
    keep = lambda c, o, i: {}  # noqa: E731
    stages["train"] = Stage("train", ("train",), fake_train, keep, "best.pt", reads=(("split",),), required=(0,))
    stages["evaluate"] = Stage("evaluate", ("evaluate",), fake_evaluate, keep, "results.json",
                               reads=(("train",),), required=(0,))
    run_mod.run(Path("docsynth.yaml"), stages=stages, log=lambda m: None)
    return Path("runs/r")


class Resources(HTMLParser):
    """Every URL-bearing attribute and every script tag of a page."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.scripts = 0
        self.images = 0

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.images += 1
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action") and value is not None:
                self.urls.append(value)


@pytest.mark.slow
def test_report_is_one_self_contained_file_with_every_section():
    run_dir = build_run(["generate", "split", "train", "evaluate"])
    page = (run_dir / "report.html").read_text()
    parser = Resources()
    parser.feed(page)
    assert parser.scripts == 0
    assert parser.images >= 2  # contact sheet and worst cases
    assert parser.urls and all(u.startswith(("data:image/", "#")) for u in parser.urls), parser.urls
    assert "url(" not in page and "@import" not in page
    # the only http string is the SVG namespace name (an identifier, never fetched)
    assert {m for m in page.split('"') if m.startswith("http")} == {"http://www.w3.org/2000/svg"}
    for data in [u for u in parser.urls if u.startswith("data:image/")]:
        kind, payload = data[len("data:image/"):].split(";base64,")
        raw = np.frombuffer(base64.b64decode(payload), np.uint8)
        assert kind in ("png", "jpeg") and cv2.imdecode(raw, cv2.IMREAD_COLOR) is not None
    assert "against 3 real photos" in page and "page_area (% of frame)" in page and "KS" in page
    for text in ("Stages and timings", "Dataset samples", "Training curves", "<svg", "valid_iou",
                 "mean Jaccard", "classical", "set_0.jpg", "Worst photos", "true quad"):
        assert text in page, text
    # the stages that were not in run.stages say so
    assert page.count("is not part of this run (not in run.stages)") == 2  # sources, backgrounds


@pytest.mark.slow
def test_report_says_which_stages_did_not_run(cli):
    run_dir = build_run(["generate", "split", "train", "evaluate"])
    record = json.loads((run_dir / "train" / ".stage.json").read_text())
    record.update(status="interrupted", error="KeyboardInterrupt")
    (run_dir / "train" / ".stage.json").write_text(json.dumps(record))
    shutil.rmtree(run_dir / "evaluate")
    page = build_report(run_dir)
    assert "The train stage did not finish (status interrupted" in page
    assert "The curves show the epochs finished so far" in page  # partial curves still shown
    assert "The evaluate stage has not run yet" in page


@pytest.mark.slow
def test_report_command_refuses_to_overwrite_a_foreign_file(cli):
    run_dir = build_run(["generate"])
    Path("mine.html").write_text("<html>my notes</html>")
    result = cli("report", str(run_dir), "--out", "mine.html")
    assert result.exit_code == 2 and "not a docsynth report" in result.stderr
    assert Path("mine.html").read_text() == "<html>my notes</html>"
    assert cli("report", str(run_dir), "--out", "mine.html", "--force").exit_code == 0
    assert cli("report", str(run_dir), "--out", "mine.html").exit_code == 0  # now ours: replaced
    assert "Dataset samples" in Path("mine.html").read_text()
    assert cli("report", "nowhere").exit_code == 2


def test_report_of_a_folder_that_is_not_a_run():
    Path("empty").mkdir()
    with pytest.raises(DocsynthError, match="not a `docsynth run` folder"):
        write_report("empty")


# ---------------------------------------------------------------------------------------------
# Headless Chromium through Playwright
# ---------------------------------------------------------------------------------------------


def render(pages: list[tuple[Path, int, int]]) -> list[tuple[np.ndarray, list[str], list[str]]]:
    """Open each (page, width, height) in one headless Chromium, each in a fresh page:
    [(screenshot BGR, problems, requested URLs)].

    Problems are console messages, uncaught exceptions and requests that failed (e.g. a
    resource that could not load)."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as pw:
        # Playwright's own browsers cannot be downloaded here: the system Chromium runs instead.
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        try:
            for page_file, width, height in pages:
                page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
                problems: list[str] = []
                urls: list[str] = []
                page.on("console", lambda msg, problems=problems: problems.append(f"console.{msg.type}: {msg.text}"))
                page.on("pageerror", lambda exc, problems=problems: problems.append(f"exception: {exc}"))
                page.on("request", lambda request, urls=urls: urls.append(request.url))
                page.on("requestfailed", lambda request, problems=problems: problems.append(
                    f"failed to load: {request.url} {request.failure}"))
                page.goto(page_file.resolve().as_uri(), wait_until="load")
                shot = page.screenshot()
                page.close()
                image = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_COLOR)
                out.append((image, problems, urls))
        finally:
            browser.close()
    return out


def non_blank(image: np.ndarray) -> float:
    """Share of pixels that differ from the most common colour."""
    flat = image.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    return 1.0 - counts.max() / len(flat)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (CI: apt-get install -y chromium)")
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                    reason="playwright not installed (the dev extra has it)")
def test_report_renders_in_headless_chromium_without_console_errors(tmp_path):
    run_dir = build_run(["generate", "split", "train", "evaluate"])
    # Two control pages show the checks can fail: a script error plus an outside resource, and
    # an empty page.
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><p>x</p><img src="http://127.0.0.1:9/x.png">'
                   "<script>console.error('boom'); undefined_call();</script></body></html>")
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body></body></html>")
    (image, problems, urls), (_, bad_problems, bad_urls), (blank_image, _, _) = render(
        [(run_dir / "report.html", 1200, 1600), (bad, 400, 300), (blank, 400, 300)])
    assert problems == []
    assert [u for u in urls if not u.startswith(("data:", "file:"))] == []
    assert image.shape[:2] == (1600, 1200)
    assert non_blank(image) > 0.3  # pictures and text, not an empty page
    # the header bar is drawn (dark) above a light page: styles were applied
    assert image[10:40, :200].mean() < 90 and image[-40:, -100:].mean() > 150

    assert any("boom" in p for p in bad_problems) and any("exception" in p for p in bad_problems)
    assert "http://127.0.0.1:9/x.png" in bad_urls
    assert non_blank(blank_image) < 0.01



def _scored_run(root: Path, scores: dict[str, float], train_cfg: dict | None = None) -> Path:
    """A run folder as the report reads it: config, train and evaluate records, results.json."""
    (root / "train").mkdir(parents=True)
    (root / "evaluate").mkdir()
    (root / "run.yaml").write_text(yaml.safe_dump({"run": {"stages": ["generate", "split", "train", "evaluate"]},
                                                   "train": train_cfg or {"weights": "none"}}))
    (root / "train" / ".stage.json").write_text(json.dumps({"status": "complete", "summary": {
        "backbone": "compact", "epochs_done": 1, "steps": 3, "train_wall_seconds": 150.0}}))
    (root / "evaluate" / ".stage.json").write_text(json.dumps({"status": "complete", "summary": {}}))
    methods = {name: {"count": 2, "found": 2, "mean_jaccard": value, "mean_mask_iou": value, "images": []}
               for name, value in scores.items()}
    (root / "evaluate" / "results.json").write_text(json.dumps({"methods": methods, "packaged": {"epochs": 36}}))
    return root


def test_evaluation_remark_says_why_the_runs_model_scores_as_it_does(tmp_path):
    from docsynth.report.run_folder import RunFolder
    from docsynth.report.sections import evaluation_remark

    def remark(name, scores, train_cfg=None):
        return evaluation_remark(RunFolder(_scored_run(tmp_path / name, scores, train_cfg)))

    low = remark("low", {"model:refine": 0.3, "classical": 0.6, "packaged:refine": 0.9})
    assert low == ("The run's own model scores 0.300 because it is a quick example: 1 epoch (3 steps) of the "
                   "compact model from scratch, 2 minutes of training; the packaged model (36 epochs) scores 0.900 "
                   "on the same photos, which is what longer training on docsynth's composites gives (raise "
                   "train.epochs, see recipes/cpu/, or fine-tune from the packaged model with train.weights: packaged).")
    better = remark("better", {"model:refine": 0.95, "packaged:refine": 0.9}, {"weights": "packaged"})
    assert better == ("The run's own model (1 epoch (3 steps) of fine-tuning the packaged model, 2 minutes of "
                      "training) scores 0.950 and the packaged model (36 epochs) 0.900 on the same photos.")
    no_packaged = remark("baseline", {"model:refine": 0.3, "classical": 0.6})
    assert "below the classical baseline's 0.600" in no_packaged and "evaluate.packaged: true" in no_packaged
    assert remark("fine", {"model:refine": 0.7, "classical": 0.6}) == ""
    assert "evaluate.packaged: true" in build_report(tmp_path / "baseline")
