"""Compositor `realistic` (the default): pages as a phone camera sees them.

One sample, in order (each part has a probability/option in ``generate.compositor_options``):

1. frame: output size (``size``, ``landscape_p`` or a list of ``sizes``), background cropped
   to it at a random zoom; sometimes a light surface (white page on a light table);
2. page pose from a camera model (3D rotation + focal length -> homography, page area drawn
   log-uniformly from ``camera.area``), sometimes over a border (``truncate_p``: truncated),
   sometimes small in a cluttered frame (``small_p``);
3. paper shape: curl or fold (``curl_p``, ``fold_p``), a smooth warp of the page plane with
   matching shading; a soft contact shadow on the table; paper colour;
4. more sheets: sheets stacked under the page (``stacked_p``; they are NOT page in the mask)
   or other documents elsewhere (``multi_p``); their corners go to ``extra["instances"]``;
5. negatives (``negative_p``): no page at all, empty mask, corners None;
6. the step pipeline (``pipeline``/``steps``): clutter, distractors, occluders, hands, light,
   shadows, white balance, blur, noise, JPEG.

``extra["cases"]`` lists the hard cases present (curl, fold, stacked, multi, small,
light_surface, hand, occlusion, distractor, clutter, shadow, blur) for curricula.
The compositor is pure: everything random comes from ``rng``; it keeps no state that changes
results, so DataLoader workers can call ``compose`` directly for online training.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from docsynth.config import SHARE, F
from docsynth.errors import DocsynthError
from docsynth.generate.pagemap import Homography, page_map
from docsynth.geometry import apply_homography, page_corners, quad_area
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Page, Sample
from docsynth.options import Options
from docsynth_compose.steps import build_pipeline
from docsynth_compose.steps.camera_model import DEFAULTS as CAMERA_DEFAULTS
from docsynth_compose.steps.camera_model import camera_quad
from docsynth_compose.steps.cutouts import Cutouts
from docsynth_compose.steps.geometric import Squash
from docsynth_compose.steps.hold import draw_palm, hold_geometry, thumb
from docsynth_compose.steps.paper import random_curl, random_fold
from docsynth_compose.steps.paste import composite, warp_page
from docsynth_compose.steps.scene import Clutter, cut_mask, draw_obj
from docsynth_compose.steps.sheets import (
    SheetMemo,
    blank_page,
    book_spread,
    larger_sheet,
    other_document,
    shade_gutter,
    stacked_sheets,
)
from docsynth_compose.steps.special_pages import make_card, make_receipt
from docsynth_compose.steps.surfaces import desk_surface

SMALL_PAGE_CLUTTER = Clutter(count=[3, 6], size=[0.06, 0.22])
# a page that fills the frame is photographed nearly square-on, turned little, its edges at the
# frame's border or up to 2.5% past it (a negative margin)
FULL_FRAME_CAMERA = {"tilt": [0.0, 14.0], "rotation_sigma": 2.0, "rotation_wide_p": 0.0,
                     "quarter_turn_p": 0.0, "margin": -0.025}
_SQUASH = Squash()
# the random streams of one sample, one per phase of ``compose`` (frame: which scenes and the
# output size; surface: desk or background window; pose: camera; paper: card, receipt, curl,
# fold; sheets: book, larger sheet, stacked, other documents; hand: a hand holding the page;
# paste: the page's light and shadow; scene: clutter and cut-outs; photo: the step pipeline)
PHASES = ("frame", "surface", "pose", "paper", "sheets", "hand", "paste", "scene", "photo")

REALISTIC_PIPELINE: list[Any] = [
    {"step": "clutter", "p": 0.25},
    {"step": "props", "p": 0.3},
    {"step": "distractors", "p": 0.3},
    {"step": "occlusion", "p": 0.1},
    {"step": "hand", "p": 0.12},
    {"step": "uneven_light", "p": 0.75},
    {"step": "cast_shadow", "p": 0.25},
    {"step": "glare", "p": 0.15},
    {"step": "vignetting", "p": 0.35},
    {"step": "white_balance", "p": 0.85},
    {"one_of": [{"step": "motion_blur", "blur_limit": 9}, "defocus", "gaussian_blur"], "p": 0.45},
    {"step": "sensor_noise", "p": 0.6},
    {"step": "sharpen", "p": 0.1},
    {"step": "jpeg", "p": 0.3, "quality": [45, 90]},
]

DEFAULTS: dict[str, Any] = {
    "size": [480, 640],  # [width, height]; landscape_p swaps them
    "landscape_p": 0.4,
    "sizes": None,  # a list of [width, height] to choose from instead (e.g. [[480, 640], [640, 360]])
    "bg_zoom": [1.0, 2.0],  # background magnification before the random crop
    "bg_saturation": [0.3, 1.0],  # tables and floors are mostly muted; scales background saturation
    "light_surface_p": 0.08,
    "desk_p": 0.3,  # a rendered light desk (white, cream, pink-white, grey, light wood, glass)
    "card_p": 0.05,  # the document is a plastic ID-1 card (rounded corners)...
    "receipt_p": 0.05,  # ...or a long thermal receipt, torn, usually on a light desk
    "held_p": 0.06,  # a hand holds the page: palm behind, thumb over a corner
    "card_held_p": 0.5,  # the same for cards
    "close_p": 0.2,  # a close-up: the page covers ``close_area`` of the frame
    "close_area": [0.4, 0.92],
    "full_p": 0.06,  # the page fills the frame (``full_area``), its edges at the border or just past it
    "full_area": [0.8, 1.0],
    "larger_sheet_p": 0.06,  # the page lies on a similar sheet, notebook or cover 2-8% larger
    "book_p": 0.06,  # the page is one page of an open booklet: facing page, page edges, cover
    "blank_p": 0.0,  # the page is a blank sheet of its paper colour (faint grain)
    "book_bow_p": 0.0,  # share of those (not curled or folded) whose pages bow up out of the gutter
    "book_area": None,  # [low, high]: an open book's page is framed at this share of the frame (null: as any page)
    "cutouts": None,  # a folder of RGBA cut-outs (recipes/offline/cutouts.sh): real desk objects...
    "cutouts_p": 0.35,  # ...beside, across or on the page in this share of the samples
    "underlay_p": 0.08,  # other sheets right under the page, offset by a few px to a few %
    "squash_p": 0.05,  # the frame stored with another aspect ratio (e.g. squashed to a square)
    "negative_p": 0.04,
    "truncate_p": 0.1,
    "small_p": 0.1,  # page at 8-20% of the frame in a cluttered scene
    "small_area": [0.06, 0.2],
    "curl_p": 0.18,
    "fold_p": 0.1,
    "stacked_p": 0.1,
    "multi_p": 0.04,
    "page_shadow": [0.1, 0.45],  # strength of the contact shadow under the sheet
    "paper_tint": 0.06,  # max deviation of the paper colour from neutral, per channel
    "page_exposure": [0.62, 0.95],  # paper is rarely exposed as pure white in photos
    "camera": {},
    "pipeline": None,
    "steps": {},
}


def _field(key: str, default: Any):
    """The typed option behind a DEFAULTS entry: ``*_p`` probabilities, shares, lists, mappings."""
    if key.endswith("_p") or key == "paper_tint":
        return F(float, default, "probability" if key.endswith("_p") else "share", **SHARE)
    if key == "cutouts":
        return F((str, None), default, "folder of RGBA cut-outs (recipes/offline/cutouts.sh)")
    if isinstance(default, list) or default is None and key in ("sizes", "pipeline", "book_area"):
        return F((list, None) if default is None else list, default)
    return F(type(default), default)


class RealisticCompositor:
    name = "realistic"
    options = {key: _field(key, default) for key, default in DEFAULTS.items()}
    description = "camera model, curl/fold, stacked sheets, hands, distractors, uneven light, sensor effects"

    def __init__(self):
        self._pipelines: dict[str, Any] = {}
        self._cutouts: dict[str, Cutouts] = {}
        self._sheets = SheetMemo()  # per page: the sheets made from it

    def resolve_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """What the declaration cannot check (the camera's keys); the host calls it once."""
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise DocsynthError(f"generate.compositor_options: unknown option(s) {', '.join(sorted(unknown))} "
                                f"for compositor 'realistic' (known: {', '.join(sorted(DEFAULTS))})")
        bad = set(options.get("camera") or {}) - set(CAMERA_DEFAULTS)
        if bad:
            raise DocsynthError(f"generate.compositor_options.camera: unknown option(s) {', '.join(sorted(bad))} "
                                f"(known: {', '.join(sorted(CAMERA_DEFAULTS))})")
        area = options.get("book_area")
        if area is not None and not (len(area) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                            for v in area) and 0 < area[0] <= area[1] <= 1):
            raise DocsynthError(f"generate.compositor_options.book_area: {area!r} is not [low, high] with "
                                "0 < low <= high <= 1 (shares of the frame), or null")
        return {**DEFAULTS, **options}

    def pipeline(self, o: dict[str, Any]):
        key = repr((o["pipeline"], o["steps"]))
        if key not in self._pipelines:  # built once per distinct options
            self._pipelines[key] = build_pipeline(REALISTIC_PIPELINE if o["pipeline"] is None else o["pipeline"], o["steps"] or {})
        return self._pipelines[key]

    # ------------------------------------------------------------------------------------------
    def compose(self, page: Page, background: np.ndarray, rng: np.random.Generator,
                options: Options) -> Sample:
        o = options  # validated and default-filled once by the host (docsynth.options.build)
        pipeline = self.pipeline(o)
        # One random stream per phase (spawned from the sample's generator): a change to one
        # phase (a new scene, a faster surface) leaves every other phase's draws as they were.
        frame_rng, surface_rng, pose_rng, paper_rng, sheets_rng, hand_rng, paste_rng, scene_rng, photo_rng = \
            rng.spawn(len(PHASES))
        out_w, out_h = self._size(o, frame_rng)
        cases: set[str] = set()
        # what is being photographed: a sheet from the pool, a plastic card or a receipt
        r = frame_rng.random()
        if r < o["card_p"]:
            page = make_card(paper_rng)
            cases.add("card")
        elif r < o["card_p"] + o["receipt_p"]:
            page = make_receipt(paper_rng)
            cases.add("receipt")
        # a blank sheet as the page itself (blank paper also appears as covers, facing pages and
        # sheets underneath, which are not the page: without blank pages blankness says "not page")
        if o["blank_p"] > 0 and not cases & {"card", "receipt"} and frame_rng.random() < o["blank_p"]:
            page = blank_page(page, paper_rng)
            cases.add("blank")
        # a page filling the frame: the frame then takes the page's orientation
        # (a scene whose probability is 0 draws no random number: configs without it keep their output)
        full = o["full_p"] > 0 and not cases & {"card", "receipt"} and frame_rng.random() < o["full_p"]
        if full and (out_w > out_h) != (page.image.shape[1] > page.image.shape[0]):
            out_w, out_h = out_h, out_w
        desk_p = max(o["desk_p"], 0.7) if "receipt" in cases else o["desk_p"]
        if frame_rng.random() < desk_p:
            bg = desk_surface(surface_rng, out_w, out_h)
            cases.add("light_desk")
        else:
            bg = self._background(background, out_w, out_h, o, surface_rng)
            if frame_rng.random() < o["light_surface_p"]:
                bg = _light_surface(bg, surface_rng)
                cases.add("light_surface")
        if frame_rng.random() < o["negative_p"]:
            sample = Sample(image=bg, mask=np.zeros((out_h, out_w), np.uint8), corners=None,
                            flags={"negative"}, extra={"cases": sorted(cases)})
            return pipeline(sample, photo_rng)

        ph, pw = page.image.shape[:2]
        src = page.corners if page.corners is not None else page_corners(pw, ph)
        cam = o["camera"] or {}
        truncate = frame_rng.random() < o["truncate_p"]
        small = not full and frame_rng.random() < o["small_p"]
        close = not small and not full and frame_rng.random() < o["close_p"]
        area = float(pose_rng.uniform(*o["small_area"])) if small else None
        if close:
            area = float(pose_rng.uniform(*o["close_area"]))
            cases.add("close_up")
        src_w, src_h = np.ptp(src[:, 0]), np.ptp(src[:, 1])
        if full:  # held square-on and close, in a frame of the page's orientation
            area, truncate = float(pose_rng.uniform(*o["full_area"])), False
            cam = {**cam, **FULL_FRAME_CAMERA}
            cases.add("full_frame")
        quad = camera_quad(pose_rng, src_w, src_h, out_w, out_h, cam, truncate=truncate, area=area)
        h_edge = cv2.getPerspectiveTransform(src.astype(np.float32), quad.astype(np.float32)).astype(np.float64)

        def paste(sheet: Page, frame: np.ndarray, h: np.ndarray, warp=None) -> np.ndarray:
            return self._paste(sheet, frame, h, warp, sheets_rng, o)[0]

        warp = None
        r = frame_rng.random()
        curl_p = max(o["curl_p"], 0.5) if "receipt" in cases else o["curl_p"]
        if "card" in cases:
            pass  # plastic does not curl or fold
        elif r < curl_p:
            warp = random_curl(paper_rng, pw, ph)
            cases.add("curl")
        elif r < curl_p + o["fold_p"]:
            warp = random_fold(paper_rng, pw, ph)
            cases.add("fold")

        instances: list[dict[str, Any]] = []
        image = bg
        gutter = None
        r = frame_rng.random() if o["book_p"] + o["larger_sheet_p"] > 0 else 1.0
        if "card" not in cases and r < o["book_p"]:
            if o["book_area"] is not None and not full:
                # One page of a book is photographed to be read: the camera frames that page and
                # the facing page runs out of the frame. In a small spread nothing in the photo
                # says which of two alike pages is meant, and such a label only teaches a guess.
                quad = camera_quad(pose_rng, src_w, src_h, out_w, out_h, cam, truncate=truncate,
                                   area=float(pose_rng.uniform(*o["book_area"])))
                h_edge = cv2.getPerspectiveTransform(src.astype(np.float32), quad.astype(np.float32)).astype(np.float64)
                small = False
            # pages of a book bow up out of the gutter, or curl (a probability of 0 draws nothing:
            # configs without it keep their output)
            bow = warp is None and o["book_bow_p"] > 0 and paper_rng.random() < o["book_bow_p"]
            image, more, gutter = book_spread(page, image, h_edge, sheets_rng, paste, self._sheets.drawer(sheets_rng),
                                              bow=bow)
            instances += more
            cases.add("book")
            if bow:
                warp = gutter["warp"]
                cases.add("gutter")
            elif warp is None and paper_rng.random() < 0.6:
                warp = random_curl(paper_rng, pw, ph)
                cases.add("curl")
        elif "card" not in cases and r < o["book_p"] + o["larger_sheet_p"]:
            image, more = larger_sheet(page, image, quad, sheets_rng, paste, self._sheets.drawer(sheets_rng))
            instances += more
            cases.add("larger_sheet")
        elif frame_rng.random() < o["stacked_p"]:
            image, under = stacked_sheets(page, image, quad, sheets_rng, paste, self._sheets.drawer(sheets_rng))
            instances += under
            cases.add("stacked")
        elif frame_rng.random() < o["underlay_p"]:
            image, under = stacked_sheets(page, image, quad, sheets_rng, paste, self._sheets.drawer(sheets_rng),
                                          tight=True)
            instances += under
            cases.add("underlay")
        if frame_rng.random() < o["multi_p"]:
            image, others = other_document(page, image, quad, sheets_rng, paste, self._sheets.drawer(sheets_rng),
                                           o["camera"] or {})
            instances += others
            if others:
                cases.add("multi")
        hold = None
        if frame_rng.random() < (o["card_held_p"] if "card" in cases else o["held_p"]):
            hold = hold_geometry(quad, hand_rng)
            image = draw_palm(image, quad, hold, hand_rng)  # behind the page

        image, mask = self._paste(page, image, h_edge, warp, paste_rng, o)
        if gutter is not None:
            image = shade_gutter(image, gutter)
        corners = apply_homography(h_edge, src) if warp is None else \
            apply_homography(h_edge, warp.forward(src))
        # a torn receipt or a card's rounded corners: the outline is not the straight-edge quad
        flags = {"approximate"} if warp is not None or cases & {"card", "receipt"} else set()
        if hold is not None:
            obj = thumb(image.shape[:2], quad, hold, hand_rng)
            if obj is not None:
                draw_obj(image, obj)
                before = cv2.countNonZero(mask)
                cut_mask(mask, obj)
                if cv2.countNonZero(mask) < before:
                    flags.add("occluded")
            cases.add("hand_hold")
        if small:
            cases.add("small")
        extra: dict[str, Any] = {"cases": sorted(cases)}
        if instances:
            extra["instances"] = instances
        # the page's way into the frame, for dense labels: paper shape, then the camera
        geometry = page_map(page, warp.stage() if warp is not None else None, Homography(h_edge, name="camera"))
        sample = Sample(image=image, mask=mask, corners=corners, flags=flags, extra=extra, geometry=geometry)
        if small:  # a small page comes with a busy table
            sample = SMALL_PAGE_CLUTTER.run(sample, scene_rng)
        if o["cutouts"] and frame_rng.random() < o["cutouts_p"]:
            sample = self._cutout_step(o["cutouts"]).run(sample, scene_rng)
        sample = pipeline(sample, photo_rng)
        if frame_rng.random() < o["squash_p"]:
            sample = _SQUASH.run(sample, frame_rng)
            sample.extra["cases"] = sorted(set(sample.extra["cases"]) | {"squashed"})
        return sample

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _size(o: dict[str, Any], rng: np.random.Generator) -> tuple[int, int]:
        if o["sizes"]:
            w, h = o["sizes"][int(rng.integers(len(o["sizes"])))]
            return int(w), int(h)
        w, h = (int(v) for v in o["size"])
        if rng.random() < o["landscape_p"]:
            w, h = h, w
        return w, h

    @staticmethod
    def _background(background: np.ndarray, out_w: int, out_h: int, o: dict[str, Any],
                    rng: np.random.Generator) -> np.ndarray:
        """A random window of the background, magnified by ``bg_zoom`` beyond covering the
        frame, resized once (only the window is touched)."""
        bh, bw = background.shape[:2]
        zoom = float(rng.uniform(*o["bg_zoom"]))
        scale = max(out_w / bw, out_h / bh) * zoom
        win_w, win_h = min(bw, max(2, round(out_w / scale))), min(bh, max(2, round(out_h / scale)))
        x0, y0 = int(rng.integers(0, bw - win_w + 1)), int(rng.integers(0, bh - win_h + 1))
        window = background[y0:y0 + win_h, x0:x0 + win_w]
        inter = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR  # area averaging only where linear aliases
        bg = cv2.resize(window, (out_w, out_h), interpolation=inter)
        sat = float(rng.uniform(*o["bg_saturation"]))
        if sat < 0.99:
            grey = cv2.cvtColor(cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            bg = cv2.addWeighted(bg, sat, grey, 1 - sat, 0)
        return bg

    @staticmethod
    def _page_look(rng: np.random.Generator, o: dict[str, Any]) -> np.ndarray:
        """Paper colour under this light: exposure times a small random tint (BGR gains)."""
        exposure = rng.uniform(*o["page_exposure"])
        tint = 1 + rng.uniform(-o["paper_tint"], o["paper_tint"], 3)
        tint[0] -= abs(tint[0] - 1) * 0.5 if rng.random() < 0.5 else 0  # paper leans warm more often
        return (exposure * tint).astype(np.float32)

    def _paste(self, page: Page, image: np.ndarray, h_edge: np.ndarray, warp, rng, o) -> tuple[np.ndarray, np.ndarray]:
        out_h, out_w = image.shape[:2]
        tint = self._page_look(rng, o)
        size = np.sqrt(max(1.0, quad_area(apply_homography(h_edge, page_corners(*page.image.shape[1::-1])))))
        lift = 2.5 if warp is not None and warp.kind == "curl" else 1.0
        ang = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.002, 0.012) * size * lift
        shadow = (np.cos(ang) * dist, np.sin(ang) * dist, rng.uniform(0.004, 0.015) * size * lift,
                  rng.uniform(*o["page_shadow"]))
        warped = warp_page(page, h_edge, out_w, out_h, warp)
        if warped is None:
            return image, np.zeros((out_h, out_w), np.uint8)
        page_scale = size / np.sqrt(page.image.shape[0] * page.image.shape[1])
        return composite(image, warped, tint=tint, shadow=shadow, warp=warp, page_scale=page_scale)

    def _cutout_step(self, folder: str) -> Cutouts:
        if folder not in self._cutouts:
            self._cutouts[folder] = Cutouts(dir=folder)
        return self._cutouts[folder]

def _light_surface(bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Wash the background towards a light, low-contrast surface (white desk, bed sheet)."""
    level = rng.uniform(175, 235)
    colour = level * (1 + rng.uniform(-0.05, 0.05, 3))
    keep = rng.uniform(0.1, 0.35)  # how much of the original texture survives
    grey = cv2.cvtColor(cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    # out = colour + keep * (grey - mean(grey)), per channel, in one affine colour transform
    mean = float(cv2.mean(grey)[0])
    m = np.hstack([np.eye(3) * keep, (colour - keep * mean)[:, None]]).astype(np.float32)
    return cv2.transform(grey, m)


@hookimpl
def register_compositors(register):
    register(RealisticCompositor())
