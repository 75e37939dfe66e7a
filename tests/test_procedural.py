"""The built-in offline plugins: rendered pages and surfaces are varied, valid and seeded."""

from __future__ import annotations

import numpy as np
import pytest
from docsynth_backgrounds.procedural import FAMILIES, render_background
from docsynth_sources.procedural import LAYOUTS, render_page

from docsynth import options as options_mod
from docsynth import plugins


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_renders_ink_on_paper(layout):
    page = render_page(1, 0, layout=layout, long_side=400)
    h, w = page.shape[:2]
    assert page.dtype == np.uint8 and page.ndim == 3 and max(h, w) >= 300
    ink = (page.mean(axis=2) < 128).mean()
    assert 0.002 < ink < 0.5, ink  # some text, not a black page
    if layout == "receipt":
        assert h / w > 2  # narrow and long


def test_pages_are_pure_functions_of_seed_and_index():
    assert np.array_equal(render_page(3, 5, long_side=300), render_page(3, 5, long_side=300))
    assert not np.array_equal(render_page(3, 5, long_side=300), render_page(3, 6, long_side=300))


def test_at_least_six_distinct_background_families():
    assert len(FAMILIES) >= 6
    means = {}
    for name in FAMILIES:
        img = render_background(0, 1, 96, 64, family=name)
        assert img.shape == (64, 96, 3) and img.dtype == np.uint8
        assert img.std() > 3, name  # textured, not flat
        means[name] = img.reshape(-1, 3).mean(axis=0)
    assert len({tuple(np.round(m)) for m in means.values()}) == len(FAMILIES)


def test_provider_cycles_families_and_validates_options():
    provider = plugins.get("background", "procedural")
    refs = provider.list_backgrounds(options_mod.build(provider, {"count": 10, "seed": 1, "size": [64, 48]}))
    assert {r.meta["family"] for r in refs} == set(FAMILIES)
    assert provider.load_background(refs[0]).shape == (48, 64, 3)
    from docsynth.errors import DocsynthError

    with pytest.raises(DocsynthError, match="unknown families"):
        provider.list_backgrounds(options_mod.build(provider, {"families": ["lava"]}))
    source = plugins.get("source", "procedural")
    with pytest.raises(DocsynthError, match="'options.layout' is 'poster', expected one of letter"):
        source.list_documents(options_mod.build(source, {"layout": "poster"}))
