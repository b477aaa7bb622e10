"""The direction of an intervention's change, measured on images, and the data's trend over the same pixels."""

from __future__ import annotations

import numpy as np
import pytest

from xcausal.effects import data_trend, image_change


def _blank(n=4, side=16):
    return np.zeros((n, 1, side, side))


def test_a_brighter_corner_marker_is_brighter_and_located():
    d = _blank()
    d[:, :, 1:4, 12:15] = 0.8  # upper-right marker appears
    c = image_change(d)
    assert c.direction == "brighter" and c.sign == 1 and c.where == "upper-right region"
    assert c.level == pytest.approx(255 * 0.8 * 9 / 256)
    assert c.up[2, 13] and not c.up[8, 8] and not c.down.any()
    c = image_change(-d)
    assert c.direction == "darker" and c.sign == -1 and c.where == "upper-right region" and c.down[2, 13]


def test_a_shift_is_rearranged_and_a_tiny_change_unchanged():
    before, after = _blank(), _blank()
    before[:, :, 6:10, 1:5] = 1.0  # a blob moves from the left to the right
    after[:, :, 6:10, 11:15] = 1.0
    c = image_change(after - before)
    assert c.direction == "rearranged" and c.sign == 0
    assert c.where_up == "right region" and c.where_down == "left region"
    assert image_change(_blank() + 0.001).direction == "unchanged"  # 0.26 grey levels
    # a brightening with a small darkening elsewhere is still brighter (dominance 2:1)
    d = _blank()
    d[:, :, 0:4, 0:4] = 0.6
    d[:, :, 12:14, 12:14] = -0.5
    assert image_change(d).direction == "brighter"


def test_data_trend_signs_and_no_trend():
    rng = np.random.default_rng(0)
    n, side = 300, 8
    v = rng.uniform(0, 10, n)
    imgs = rng.uniform(0, 0.2, (n, 1, side, side))
    imgs[:, :, :2, :2] += 0.05 * v[:, None, None, None]  # upper-left brightens with v
    mask = np.zeros((side, side), bool)
    mask[:2, :2] = True
    t = data_trend(imgs, v, mask, continuous=True)
    assert t.sign == 1 and t.statistic > 0.9 and t.rows == n and "Spearman" in t.text()
    assert data_trend(imgs, -v, mask, continuous=True).sign == -1
    other = np.zeros((side, side), bool)
    other[6:, 6:] = True  # pure noise there
    t = data_trend(imgs, v, other, continuous=True)
    assert t.sign == 0 and abs(t.statistic) < t.threshold
    codes = (v > 5).astype(float)
    assert data_trend(imgs, codes, mask, continuous=False, first=0.0, last=1.0).sign == 1
    assert data_trend(imgs, codes, mask, continuous=False, first=1.0, last=0.0).sign == -1
    assert data_trend(imgs, v, np.zeros((side, side), bool), continuous=True) is None


def test_the_report_names_a_change_within_one_region_once():
    from xcausal.viz.report import _change_sentence

    before, after = _blank(), _blank()
    before[:, :, 6:10, 6:8] = 1.0  # a stroke moves by two pixels inside the centre
    after[:, :, 6:10, 8:10] = 1.0
    c = image_change(after - before)
    assert c.where_up == c.where_down == "central region"
    text = _change_sentence("Going from a to b", c)
    assert "brighter in some pixels and darker in others of the central region" in text
    assert text.count("central region") == 1
