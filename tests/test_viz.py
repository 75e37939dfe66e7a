"""viz: the raster line charts behind curves.png and stats --plot."""

import numpy as np

from docsynth.viz import COLOURS, Panel, bgr, raster_chart


def _pixels(image: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((np.abs(image.astype(int) - np.array(colour)).sum(axis=2) < 30).sum())


def test_raster_chart_lays_panels_out_and_draws_each_series_in_its_panel():
    first = Panel("loss", {"train": [(1, 1.0), (2, 0.5), (3, 0.2)]})
    second = Panel("IoU", {"valid": [(1, 0.2), (3, 0.9)], "real": [(1, 0.1), (3, 0.7)]}, y_range=(0.0, 1.0))
    chart = raster_chart([first, second, Panel("empty")], columns=2, size=(300, 200))
    assert chart.shape == (8 + 2 * (200 + 8), 8 + 2 * (300 + 8), 3)  # two rows of two, 8 px gaps
    left, right = chart[8:208, 8:308], chart[8:208, 316:616]
    blue, red = bgr(COLOURS[0]), bgr(COLOURS[1])
    assert _pixels(left, blue) > 100 and _pixels(left, red) == 0
    assert _pixels(right, blue) > 100 and _pixels(right, red) > 100
    assert _pixels(chart[216:416, 8:308], blue) == 0  # the empty panel has a frame and a title only


def test_raster_chart_moves_the_legend_below_a_long_title_and_drops_bad_points():
    series = {"dataset": [(0, 0.1), (1, float("nan")), (2, 0.3)], "real": [(0, 0.2), (2, 0.1)]}
    short = raster_chart([Panel("area", series)], size=(300, 200))
    long = raster_chart([Panel("a very long statistic name", series)], size=(300, 200))
    blue = bgr(COLOURS[0])
    # the legend's swatch: in the title row when it fits, on a row of its own when it does not
    assert _pixels(short[8:30], blue) > 10 and _pixels(long[8:30], blue) == 0 and _pixels(long[30:50], blue) > 10
