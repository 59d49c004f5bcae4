"""The synthetic action world: figures, masks, scenes, determinism and the scene confound."""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import pytest
from bodyscene.stimuli import world
from bodyscene.stimuli.synth import choose_scene

SIZE = 40


def _style(size: int = SIZE, **kw) -> world.WorldStyle:
    return world.WorldStyle(size=size, **kw)


def test_vocabulary():
    assert len(world.ACTIONS) >= 8 and len(world.SCENES) >= 8
    for name in world.ACTIONS + world.SCENES:
        assert re.fullmatch(r"[a-z][a-z_]*", name), name
    homes = [world.home_scene(a) for a in world.ACTIONS]
    assert len(set(homes)) == len(homes) and set(homes) <= set(world.SCENES)
    with pytest.raises(ValueError):
        world.home_scene("juggle")


@pytest.mark.parametrize("action", world.ACTIONS)
def test_every_action_renders_a_person_sized_figure(action):
    frames, masks = world.render_video(action, world.home_scene(action), 4, _style(),
                                       np.random.default_rng(3))
    assert frames.shape == (4, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert masks.shape == (4, SIZE, SIZE) and masks.dtype == bool
    for m in masks:
        assert 0.02 < m.mean() < 0.5
        rows = np.flatnonzero(m.any(axis=1))
        # tall enough to read: the standing figure is ~55-70% of the image, a bow or a squat less
        assert rows[-1] - rows[0] + 1 >= 0.3 * SIZE


def test_mask_is_the_drawn_figure():
    style = _style(48)
    params = world.sample_clip("wave", "beach", style, np.random.default_rng(7))
    scene, colour, alpha = world.render_layers(params, 3, style)
    frames, masks = world.render_clip(params, 3, style)
    assert np.array_equal(masks, alpha >= 0.5)
    # where the figure covers nothing the frame is the scene, pixel for pixel
    untouched = alpha == 0
    assert np.array_equal(frames[untouched], np.broadcast_to(scene, frames.shape)[untouched]
                          .astype(np.uint8))
    # inside the mask the figure's paint replaced the scene almost everywhere
    changed = np.abs(frames.astype(int) - scene[None].astype(int)).max(-1) > 0
    assert changed[masks].mean() > 0.9
    # and the figure's fringe (coverage below one half) is a thin rim around the mask
    fringe = (alpha > 0) & ~masks
    grown = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                      for m in masks])
    assert np.all(grown[fringe])


def test_same_rng_state_gives_identical_frames():
    a = world.render_video("kick", "gym", 5, _style(), np.random.default_rng(11))
    b = world.render_video("kick", "gym", 5, _style(), np.random.default_rng(11))
    c = world.render_video("kick", "gym", 5, _style(), np.random.default_rng(12))
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].tobytes() != c[0].tobytes()


def test_figure_moves_and_camera_stays():
    frames, masks = world.render_video("jumping_jack", "indoor_room", 8, _style(48),
                                       np.random.default_rng(2))
    assert not all(np.array_equal(masks[0], m) for m in masks[1:])   # a pose sequence, not a still
    grown = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                      for m in masks])
    never_person = ~grown.any(axis=0)
    assert never_person.mean() > 0.3
    assert np.all(frames[:, never_person] == frames[0, never_person])  # a static camera


@pytest.mark.parametrize("action", ["wave", "kick"])   # a front-view and a side-view action
def test_mirroring_flips_the_figure(action):
    style = _style(48)
    params = dataclasses.replace(world.sample_clip(action, "meadow", style,
                                                   np.random.default_rng(5)), x=0.5, mirror=False)
    _, masks = world.render_clip(params, 2, style)
    _, flipped = world.render_clip(dataclasses.replace(params, mirror=True), 2, style)
    for m, f in zip(masks, flipped):
        mirror = m[:, ::-1]
        iou = (mirror & f).sum() / (mirror | f).sum()
        assert iou > 0.8
        assert (m & f).sum() / (m | f).sum() < iou   # it really is flipped, not symmetric
    draws = [world.sample_clip(action, "meadow", style, np.random.default_rng(s)).mirror
             for s in range(40)]
    assert 5 < sum(draws) < 35


def test_per_clip_variation():
    style = _style()
    clips = [world.sample_clip("cheer", "forest", style, np.random.default_rng(s))
             for s in range(20)]
    for field in ("height", "x", "limbs", "phase", "colours"):
        assert len({getattr(c, field) for c in clips}) > 10, field
    assert np.std([c.jitter for c in clips]) > 2.0
    assert all(0.5 <= c.height <= 0.7 for c in clips)


def test_actions_are_told_apart_by_the_body_alone():
    """A nearest-centroid reader of bounding-box-normalised silhouettes (mirroring averaged
    out) names the action far above chance: the poses are distinct."""
    style = _style(48)
    feats, labels = [], []
    for a_idx, action in enumerate(world.ACTIONS):
        for s in range(5):
            _, masks = world.render_video(action, "meadow", 1, style,
                                          np.random.default_rng(100 + s))
            ys, xs = np.nonzero(masks[0])
            crop = masks[0][ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
            crop = cv2.resize(crop, (12, 12), interpolation=cv2.INTER_AREA)
            aspect = (ys.max() - ys.min() + 1) / (xs.max() - xs.min() + 1)
            feats.append(np.append((crop + crop[:, ::-1]).ravel() / 2, aspect))
            labels.append(a_idx)
    feats, labels = np.array(feats), np.array(labels)
    hits = 0
    for i in range(len(feats)):   # leave one out
        keep = np.arange(len(feats)) != i
        cents = np.stack([feats[keep & (labels == a)].mean(0) for a in range(len(world.ACTIONS))])
        hits += int(np.argmin(((cents - feats[i]) ** 2).sum(1)) == labels[i])
    assert hits / len(feats) >= 0.6   # chance is 1/8


def test_scenes_are_distinct_and_vary_per_clip():
    feats, labels = [], []
    for s_idx, scene in enumerate(world.SCENES):
        imgs = [world.draw_scene(scene, 32, 1.0, np.random.default_rng(s)) for s in range(5)]
        assert not np.array_equal(imgs[0], imgs[1])      # colours and objects vary per clip
        for img in imgs:
            f = img.astype(np.float32)
            feats.append(np.concatenate([f[:16].mean((0, 1)), f[16:].mean((0, 1)),
                                         f[:16].std((0, 1)), f[16:].std((0, 1))]))
            labels.append(s_idx)
    feats, labels = np.array(feats), np.array(labels)
    hits = 0
    for i in range(len(feats)):
        keep = np.arange(len(feats)) != i
        cents = np.stack([feats[keep & (labels == k)].mean(0) for k in range(len(world.SCENES))])
        hits += int(np.argmin(((cents - feats[i]) ** 2).sum(1)) == labels[i])
    assert hits / len(feats) >= 0.85


def test_scene_salience_scales_contrast():
    full = world.draw_scene("city_street", 32, 1.0, np.random.default_rng(4)).astype(float)
    half = world.draw_scene("city_street", 32, 0.5, np.random.default_rng(4)).astype(float)
    plain = world.draw_scene("city_street", 32, 0.0, np.random.default_rng(4))
    assert np.all(plain == plain[0, 0])
    assert half.std() == pytest.approx(full.std() / 2, rel=0.05)


def test_scene_consistency_statistics():
    homes = [world.home_scene(a) for a in world.ACTIONS[:4]]
    rng = np.random.default_rng(0)
    n = 4000
    drawn = [choose_scene(1, homes, 0.9, rng) for _ in range(n)]
    home_share = np.mean([d == homes[1] for d in drawn])
    assert abs(home_share - 0.9) < 3 * np.sqrt(0.9 * 0.1 / n)
    others = [d for d in drawn if d != homes[1]]
    counts = np.array([others.count(h) for h in homes if h != homes[1]])
    assert set(others) == set(homes) - {homes[1]}
    assert counts.min() > 0.8 * len(others) / 3          # uniform over the other scenes
    assert all(choose_scene(2, homes, 1.0, rng) == homes[2] for _ in range(50))
    assert all(choose_scene(2, homes, 0.0, rng) != homes[2] for _ in range(50))


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown action"):
        world.render_video("juggle", "beach", 2, _style(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown scene"):
        world.render_video("wave", "moon", 2, _style(), np.random.default_rng(0))


def test_rendering_selected_frames_matches_the_full_clip():
    full = world.render_video("punch", "city_street", 6, _style(), np.random.default_rng(9))
    some = world.render_video("punch", "city_street", 6, _style(), np.random.default_rng(9),
                              only=[1, 4])
    assert np.array_equal(some[0], full[0][[1, 4]]) and np.array_equal(some[1], full[1][[1, 4]])
    with pytest.raises(ValueError, match="frame indices"):
        world.render_video("punch", "gym", 6, _style(), np.random.default_rng(9), only=[6])
