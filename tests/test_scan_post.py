"""Corner extraction by each post-processor on synthetic masks with known corners, the
coarse-to-fine refinement on a synthetic photo, and the classical baseline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scan_fixtures import coverage, synthetic_photo

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.geometry import order_corners

W, H = 400, 300
UPRIGHT = np.array([[100.3, 60.7], [300.2, 70.1], [290.5, 250.4], [90.8, 240.9]])


def rotated(deg: float, centre=(200, 150), half=(90, 70)) -> np.ndarray:
    t = np.deg2rad(deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    box = np.array([[-half[0], -half[1]], [half[0], -half[1]], [half[0], half[1]], [-half[0], half[1]]])
    return order_corners(box @ rot.T + centre)


TRUNCATED = np.array([[-40.2, 50.3], [250.6, 30.1], [270.4, 260.8], [20.7, 330.5]])  # TL and BL leave the frame


def find(name: str, prob: np.ndarray, image: np.ndarray | None = None, extra: dict | None = None,
         options: dict | None = None):
    image = np.zeros((*prob.shape, 3), np.uint8) if image is None else image
    post = plugins.get("postprocessor", name)
    return post.find_quad(prob.astype(np.float32), image, options_mod.build(post, options), extra or {})


def corner_error(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(order_corners(found) - order_corners(truth)).max())


@pytest.mark.parametrize("name,tol", [("robust", 0.5), ("refine", 0.5), ("reference", 6.0)])
@pytest.mark.parametrize("quad", [UPRIGHT, rotated(30), rotated(-63)], ids=["upright", "rot30", "rot-63"])
def test_clean_masks(name, tol, quad):
    q = find(name, coverage(quad, (H, W)), synthetic_photo(quad, (W, H)))
    assert q.corners is not None and q.corners.shape == (4, 2)
    assert corner_error(q.corners, quad) < tol
    assert 0.5 < q.confidence <= 1.0
    # TL first, clockwise on screen
    assert np.argmin(q.corners.sum(1)) == 0


def test_robust_recovers_corners_outside_the_frame():
    q = find("robust", coverage(TRUNCATED, (H, W)))
    assert q.corners is not None
    assert corner_error(q.corners, TRUNCATED) < 1.0
    assert q.corners[:, 0].min() < -30 and q.corners[:, 1].max() > 320


def test_reference_handles_corners_outside_with_a_min_area_rectangle():
    q = find("reference", coverage(TRUNCATED, (H, W)))
    assert q.corners is not None
    from docsynth.scoring import jaccard_smartdoc

    assert jaccard_smartdoc(TRUNCATED, q.corners) > 0.6  # a box, not the page, but near it


def noisy(quad: np.ndarray, seed: int = 3) -> np.ndarray:
    """A model-like mask: soft edges, a bite, a bump, holes, speckle and a blob elsewhere."""
    rng = np.random.default_rng(seed)
    prob = cv2.GaussianBlur(coverage(quad, (H, W)), (0, 0), 2.0)
    cv2.circle(prob, (200, 62), 9, 0.0, -1)  # a bite out of the top edge
    cv2.circle(prob, (296, 160), 7, 1.0, -1)  # a bump on the right edge
    cv2.circle(prob, (190, 150), 15, 0.0, -1)  # a hole (e.g. a dark photo on the page)
    cv2.line(prob, (0, 120), (W, 140), 0.0, 3)  # a cable across the page
    prob[20:40, 330:380] = 1.0  # a bright blob away from the page
    prob = prob + rng.normal(0, 0.15, prob.shape)
    return np.clip(prob, 0, 1).astype(np.float32)


@pytest.mark.parametrize("name,tol", [("robust", 2.0), ("refine", 2.0)])
def test_noisy_mask(name, tol):
    q = find(name, noisy(UPRIGHT))
    assert q.corners is not None and corner_error(q.corners, UPRIGHT) < tol


@pytest.mark.parametrize("name", ["robust", "refine"])
def test_no_document_instead_of_a_garbage_quad(name):
    empty = find(name, np.zeros((H, W)))
    assert empty.corners is None and empty.reason
    tiny = np.zeros((H, W), np.float32)
    tiny[10:14, 10:14] = 1.0
    assert find(name, tiny).corners is None
    disc = np.zeros((H, W), np.float32)
    cv2.circle(disc, (200, 150), 100, 1.0, -1)
    q = find(name, disc)
    if name == "robust":  # robust refuses what is not a quadrilateral
        assert q.corners is None and ("quadrilateral" in q.reason or "sides" in q.reason)
    else:  # refine refuses only where the model sees no page: a rough quad, flagged by its confidence
        assert q.corners is not None and q.confidence < 0.3 and q.reason.startswith("low confidence")


# -- abstention: refuse only when the model sees no page ------------------------------------------


def test_refine_answers_a_page_filling_the_frame_with_a_low_confidence_quad(monkeypatch):
    """A page whose edges lie at the photo's border, where the mask fits fail (in the real photo
    the mask's outline was ragged) and the heatmap corners are weak and not backed by the mask:
    before, "no document found" (a Jaccard of 0); now the page region's quad, with its low
    confidence and the reason."""
    import docsynth_scan.refine as refine

    from docsynth.kinds import Quad
    from docsynth.scoring import jaccard_smartdoc

    monkeypatch.setattr(refine, "robust_quad", lambda page_prob, options: Quad(None, 0.0, "not a quadrilateral"))
    monkeypatch.setattr(refine, "fit_quad_to_mask", lambda *a, **k: Quad(None, 0.0, "not a quadrilateral"))
    prob = np.ones((H, W), np.float32)
    prob[:, :2] = 0.3  # the page runs to the border, its left edge a pixel or two inside
    image = np.full((H, W, 3), 200, np.uint8)
    frame = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float64)
    weak = frame * 0.6 + [60, 40]  # corners the mask does not back, peaks under min_corner_score
    q = find("refine", prob, image, extra={"corners": weak, "corner_scores": np.full(4, 0.1)})
    assert q.corners is not None, q.reason
    assert q.confidence < 0.5 and "low confidence" in q.reason
    assert jaccard_smartdoc(frame, q.corners) > 0.95


def test_refine_answers_when_every_candidate_fails_a_plausibility_rule(monkeypatch):
    """Markers lying across a page make its heatmap quad a sliver ("opposite sides differ more
    than 5x") and the mask fit fail: the answer is still the best candidate, not a refusal."""
    import docsynth_scan.refine as refine

    prob = coverage(UPRIGHT, (H, W))
    sliver = np.array([[100, 100], [300, 100], [300, 130], [100, 260.0]])
    monkeypatch.setattr(refine, "candidates", lambda page_prob, extra, options: iter(
        [("heatmaps", sliver, 0.8, ""), ("mask", None, None, "the region is not a quadrilateral")]))
    q = find("refine", prob)
    assert q.corners is not None and 0 < q.confidence < 0.5
    assert "5x" in q.reason or "hull" in q.reason


def test_refine_refuses_a_photo_without_a_page():
    """No page in the photo: the model's page map is (nearly) empty and its corner peaks are not
    all sure; that is the one reason to answer "no document found"."""
    prob = np.zeros((H, W), np.float32)
    prob[100:104, 200:210] = 0.9  # a speck, 0.03% of the photo
    q = find("refine", prob, extra={"corners": UPRIGHT, "corner_scores": np.array([0.9, 0.2, 0.1, 0.25])})
    assert q.corners is None and q.reason.startswith("no page")


def test_reference_never_says_no_page_for_a_blob():
    disc = np.zeros((H, W), np.float32)
    cv2.circle(disc, (200, 150), 100, 1.0, -1)
    assert find("reference", disc).corners is not None  # the baseline's known weakness


def test_post_processors_are_deterministic():
    prob = noisy(rotated(17))
    for name in ("reference", "robust", "refine"):
        a, b = find(name, prob), find(name, prob)
        assert np.array_equal(a.corners, b.corners) and a.confidence == b.confidence


# ---------------------------------------------------------------------------------------------
# Coarse-to-fine
# ---------------------------------------------------------------------------------------------

PHOTO_W, PHOTO_H = 640, 480
PAGE = np.array([[180.4, 90.7], [470.2, 112.3], [452.6, 410.5], [150.9, 390.2]])


def test_refinement_improves_an_offset_blurred_coarse_quad():
    photo = synthetic_photo(PAGE, (PHOTO_W, PHOTO_H), seed=5)
    rng = np.random.default_rng(0)
    coarse = PAGE + rng.uniform(-7, 7, (4, 2))
    # what a low-resolution model gives: the offset quad at 1/8 scale, upsampled (blurred)
    small = coverage(coarse / 8, (PHOTO_H // 8, PHOTO_W // 8))
    prob = cv2.resize(small, (PHOTO_W, PHOTO_H), interpolation=cv2.INTER_LINEAR)
    robust = find("robust", prob, photo)
    refined = find("refine", prob, photo)
    before, after = corner_error(robust.corners, PAGE), corner_error(refined.corners, PAGE)
    assert before > 3.0  # the coarse answer is off by pixels
    assert after < 1.0 and after < before / 4
    assert refined.confidence > 0.5


def test_refinement_starts_from_heatmap_corners_when_confident():
    photo = synthetic_photo(PAGE, (PHOTO_W, PHOTO_H), seed=6)
    rng = np.random.default_rng(1)
    heat = PAGE + rng.uniform(-6, 6, (4, 2))
    prob = np.zeros((PHOTO_H, PHOTO_W), np.float32)  # a useless mask: corners must come from heatmaps
    q = find("refine", prob, photo, {"corners": heat, "corner_scores": np.full(4, 0.9)})
    assert q.corners is not None and corner_error(q.corners, PAGE) < 1.0
    # weak heatmap peaks are not trusted; with no mask either, there is no page
    weak = find("refine", prob, photo, {"corners": heat, "corner_scores": np.array([0.9, 0.9, 0.9, 0.05])})
    assert weak.corners is None


def test_refinement_keeps_the_coarse_quad_where_the_photo_has_no_edge():
    flat = np.full((PHOTO_H, PHOTO_W, 3), 128, np.uint8)  # no gradients anywhere
    prob = coverage(PAGE, (PHOTO_H, PHOTO_W))
    q = find("refine", prob, flat)
    assert corner_error(q.corners, PAGE) < 0.5  # the mask fit, untouched
    assert q.confidence < find("robust", prob).confidence  # but less sure of it


def test_options_reach_the_post_processor():
    prob = coverage(PAGE, (PHOTO_H, PHOTO_W))
    assert find("robust", prob, options={"min_area": 0.9}).corners is None


# ---------------------------------------------------------------------------------------------
# Classical baseline
# ---------------------------------------------------------------------------------------------


def test_classical_finds_a_bright_page_on_a_dark_table():
    from docsynth.scan.classical import find_page

    photo = synthetic_photo(PAGE, (PHOTO_W, PHOTO_H), seed=7)
    q = find_page(photo)
    assert q.corners is not None and corner_error(q.corners, PAGE) < 4.0


def test_classical_says_no_page_on_an_empty_photo():
    from docsynth.scan.classical import find_page

    q = find_page(np.full((240, 320, 3), 90, np.uint8))
    assert q.corners is None and q.reason


def test_plausibility_checks_name_what_is_wrong():
    from docsynth_scan.checks import implausible

    assert implausible(UPRIGHT, W, H) == ""
    bowtie = UPRIGHT[[0, 2, 1, 3]]
    assert "convex" in implausible(bowtie, W, H)
    assert "3%" in implausible(np.array([[10, 10], [14, 10], [14, 14], [10, 14.0]]), W, H)
    assert "far outside" in implausible(UPRIGHT + [0, -400], W, H)
    sliver = np.array([[100, 100], [300, 100], [300, 130], [100, 260.0]])  # right side 30, left 160
    assert "5x" in implausible(sliver, W, H)


def test_refine_never_returns_a_crossed_quad_and_falls_back_to_the_mask():
    prob = coverage(UPRIGHT, (H, W))
    bowtie = UPRIGHT[[0, 2, 1, 3]]
    q = find("refine", prob, extra={"corners": bowtie, "corner_scores": np.full(4, 0.9)})
    from docsynth_scan.checks import implausible

    assert q.corners is not None and implausible(q.corners, W, H) == ""
    assert np.abs(order_corners(q.corners) - UPRIGHT).max() < 3  # the mask fit, not the heatmaps
    # heatmap corners that disagree with a clear mask lose to the mask fit
    shifted = UPRIGHT + [60, 0]
    q = find("refine", prob, extra={"corners": shifted, "corner_scores": np.full(4, 0.9)})
    assert np.abs(order_corners(q.corners) - UPRIGHT).max() < 3 and q.confidence >= 0.5


def test_refine_chooses_among_candidates_after_refining_them(monkeypatch):
    """The candidate with the best *final* confidence wins: a heatmap quad ahead by its tie
    margin before refinement loses to a mask fit whose sides the photo's edges back. A sure
    heatmap quad is taken alone: the mask fits are never made."""
    import docsynth_scan.refine as refine

    from docsynth.kinds import Quad

    heat, mask = UPRIGHT + [4, 0], UPRIGHT
    support = {heat.tobytes(): 0.0, mask.tobytes(): 1.0}  # the edges back the mask fit only

    def fake_refine(image, corners, band, passes=2):
        return corners, support[np.asarray(corners).tobytes()]

    def two(page_prob, extra, options, rejected=None):
        yield "heatmaps", Quad(heat, 0.60)  # 0.60 + 0.1 margin > 0.62 before refinement
        yield "mask", Quad(mask, 0.62)

    monkeypatch.setattr(refine, "refine_quad", fake_refine)
    monkeypatch.setattr(refine, "coarse_quads", two)
    page = coverage(UPRIGHT, (H, W))  # the model sees a page (else: "no page" before any candidate)
    q = find("refine", page)
    assert np.allclose(q.corners, mask) and q.confidence == pytest.approx(0.62)
    support[mask.tobytes()] = 0.0  # now neither is backed: the heatmap quad wins the near tie
    q = find("refine", page)
    assert np.allclose(q.corners, heat) and q.confidence == pytest.approx(0.60 * 0.75)

    def sure(page_prob, extra, options, rejected=None):
        yield "heatmaps", Quad(heat, 0.8)
        raise AssertionError("the mask fits were made although the heatmap quad is sure")

    monkeypatch.setattr(refine, "coarse_quads", sure)
    assert np.allclose(find("refine", page).corners, heat)
