"""Composition: body, background (dilated mask, inpainted), conflict, mask noise, IoU."""

from __future__ import annotations

import numpy as np
import pytest
from bodyscene.stimuli import world
from bodyscene.stimuli.compose import (
    MaskNoise,
    background_only,
    body_only,
    conflict,
    dilate_mask,
    mask_iou,
    perturb_mask,
)
from bodyscene.stimuli.trialset import parse_mask_noise

from bodyscene.errors import BadInput


def _extent(mask: np.ndarray) -> int:
    ys, xs = np.nonzero(mask)
    return max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)


def _person(size: int = 48, salience: float = 1.0, seed: int = 1, action: str = "cheer"):
    style = world.WorldStyle(size=size, scene_salience=salience)
    params = world.sample_clip(action, "meadow", style, np.random.default_rng(seed))
    scene, _, _ = world.render_layers(params, 1, style)
    frames, masks = world.render_clip(params, 1, style)
    return frames[0], masks[0], scene.astype(np.uint8)


def test_dilation_grows_the_extent_by_the_factor():
    mask = np.zeros((80, 80), bool)
    mask[20:60, 30:45] = True                          # extent 40
    grown = dilate_mask(mask, 1.2)
    assert np.all(grown[mask])
    assert _extent(grown) / _extent(mask) == pytest.approx(1.2, abs=0.05)
    assert _extent(dilate_mask(mask, 1.5)) / _extent(mask) == pytest.approx(1.5, abs=0.05)
    assert np.array_equal(dilate_mask(mask, 1.0), mask)
    _, person, _ = _person()
    assert _extent(dilate_mask(person, 1.2)) / _extent(person) == pytest.approx(1.2, abs=0.1)


def test_body_keeps_person_pixels_on_the_fill():
    frame, mask, _ = _person()
    body = body_only(frame, mask)
    assert np.array_equal(body[mask], frame[mask])
    assert np.all(body[~mask] == 0)
    grey = body_only(frame, mask, fill=(10, 20, 30))
    assert np.all(grey[~mask] == np.array([10, 20, 30], np.uint8))


def test_background_leaves_no_person_pixels():
    # on a plain scene, inpainting must give back the plain colour everywhere
    frame, mask, scene = _person(salience=0.0)
    bg = background_only(frame, mask)
    assert np.abs(bg.astype(int) - scene.astype(int)).max() <= 4    # inpainting rounds
    assert np.abs(frame.astype(int) - scene.astype(int)).max() > 40   # the person was there
    # on a textured scene the hole holds scene-like colours, not the figure's
    frame, mask, scene = _person(salience=1.0)
    bg = background_only(frame, mask)
    hole = dilate_mask(mask, 1.2)
    assert np.array_equal(bg[~hole], frame[~hole])
    err_bg = np.abs(bg.astype(int) - scene.astype(int))[mask].mean()
    err_frame = np.abs(frame.astype(int) - scene.astype(int))[mask].mean()
    assert err_bg < err_frame / 2
    with pytest.raises(BadInput, match="inpaint method"):
        background_only(frame, mask, method="smudge")


def test_conflict_keeps_position_and_scale():
    frame, mask, _ = _person(seed=1, action="kick")
    other, other_mask, _ = _person(seed=2, action="wave")
    bg = background_only(other, other_mask)
    out = conflict(frame, mask, bg)
    assert np.array_equal(out[mask], frame[mask])        # same pixels at the same place
    assert np.array_equal(out[~mask], bg[~mask])
    small = bg[::2, ::2].copy()                          # a background of another size is resized
    out2 = conflict(frame, mask, small)
    assert out2.shape == frame.shape and np.array_equal(out2[mask], frame[mask])


@pytest.mark.parametrize("kind", ["erode", "dilate", "flip"])
@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_mask_noise_changes_the_requested_fraction(kind, fraction):
    _, mask, _ = _person(size=48)
    rng = np.random.default_rng(0)
    noisy = perturb_mask(mask, MaskNoise(kind, fraction), rng)
    changed = (noisy != mask).sum()
    assert changed == pytest.approx(fraction * mask.sum(), abs=1)
    if kind == "erode":
        assert not np.any(noisy & ~mask)                             # only removes
        assert mask_iou(noisy, mask) == pytest.approx(1 - fraction, abs=0.01)
    elif kind == "dilate":
        assert np.all(noisy[mask])                                   # only adds, at the boundary
        added = noisy & ~mask
        near = dilate_mask(mask, 1.0 + 2 * (int(np.sqrt(changed)) + 2) / _extent(mask))
        assert np.all(near[added])
        assert mask_iou(noisy, mask) == pytest.approx(1 / (1 + fraction), abs=0.01)
    else:
        ys, xs = np.nonzero(noisy != mask)
        my, mx = np.nonzero(mask)
        assert ys.min() >= my.min() - 5 and ys.max() <= my.max() + 5
    again = perturb_mask(mask, MaskNoise(kind, fraction), np.random.default_rng(0))
    assert np.array_equal(again, noisy)                              # seeded
    assert np.array_equal(perturb_mask(mask, None, rng), mask)


def test_mask_noise_options_are_checked():
    with pytest.raises(BadInput):
        MaskNoise("blur", 0.1)
    with pytest.raises(BadInput):
        MaskNoise("erode", 1.5)
    assert parse_mask_noise("dilate:0.1") == MaskNoise("dilate", 0.1)
    assert parse_mask_noise(None) is None
    for bad in ("blur:0.1", "erode:2", "erode", "erode:x"):
        with pytest.raises(BadInput, match="--mask-noise"):
            parse_mask_noise(bad)


def test_mask_iou():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    assert mask_iou(a, b) == 1.0
    a[:5] = True
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, b) == 0.0
    b[3:8] = True                # overlap 2 rows, union 8 rows
    assert mask_iou(a, b) == pytest.approx(0.25)
