"""Real pixels through a real segmenter: photos of people (and one without) become short videos,
and `bodyscene stimuli build --segmenter mediapipe` must find the people where they are, compose
the paper's versions from them and write a valid trial set. Skips, saying why, where the offline
backend is not installed; `make install-test` (CI) installs it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import real_photos as rp
from bodyscene.stimuli.build import REJECTED_SCHEMA
from bodyscene.stimuli.compose import dilate_mask
from bodyscene.stimuli.manifest import read_manifest

from bodyscene.tables import read_csv

WHY = rp.unavailable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"offline segmenter: {WHY}")


def _png(path: Path, gray: bool = False) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    assert img is not None, path
    return img if gray else img[..., ::-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from bodyscene.cli import main

    root = tmp_path_factory.mktemp("real")
    videos = rp.write_videos(root / "haa500")
    out = root / "stim"
    code = main(["stimuli", "build", "--videos", str(videos), "--out", str(out),
                 "--segmenter", "mediapipe", "--samples-per-video", "2", "--quiet",
                 "--contact-sheet-items", "4"])
    assert code == 0
    return out


@pytest.mark.slow   # one build shared by the module: about 10 s on 2 cores
def test_both_actions_kept_with_conflict_trials(built):
    df = read_manifest(built / "trials.csv", decode=True)     # schema, files, hashes, frames
    assert set(df.action) == {"portrait", "filming"}
    conflict = df[df.condition == "conflict"]
    assert len(conflict) == 4 and set(conflict.background_action) == {"portrait", "filming"}
    assert (conflict.body_action != conflict.background_action).all()
    assert set(df.segmenter) == {"mediapipe(models=mediapipe-0.10.21 mode=combined conf=0.4 "
                                 "presence=0.5 max_people=4 detector=ssdlite "
                                 "person_conf=0.2)"}
    record = json.loads((built / "build.shard-0-of-1.json").read_text())
    assert record["config"]["segmenter"] == "mediapipe"
    assert record["config"]["segmenter_options"]["mode"] == "combined"
    assert "weights" not in record["config"]["segmenter_options"]   # no YOLO settings
    sheet = cv2.imread(str(built / "masks_sheet.png"))            # masks for review: 8 items
    assert sheet is not None and sheet.shape == (128 + 14, 8 * 128, 3)


@pytest.mark.slow
def test_no_person_on_the_coffee_cup(built):
    rejected = read_csv(built / "rejected.csv", REJECTED_SCHEMA)
    assert set(rejected.video) == {"filming/filming_001.mp4"}
    assert set(rejected.reason) == {"no person detected"}
    df = read_manifest(built / "trials.csv", check_hashes=False)
    assert "filming/filming_001.mp4" not in set(df.source)


@pytest.mark.slow
def test_the_mask_is_where_the_person_is(built):
    df = read_manifest(built / "trials.csv", check_hashes=False)
    items = df[df.condition == "original"]
    assert len(items) == 8
    for it in items.itertuples():
        action, index = it.source.split("/")[0], int(it.source[-7:-4])
        name, motion = rp.source(action, index)
        person, t = rp.PHOTOS[name], int(it.frame)
        shape = rp.photo(name).shape[:2]
        mask = _png(built / "masks" / f"{it.item_id}.png", gray=True) > 127
        inside = lambda p: 0 <= p[0] < rp.SIDE and 0 <= p[1] < rp.SIDE
        on = [p for p in rp.to_frame(person.on, shape, motion, t).astype(int) if inside(p)]
        off = [p for p in rp.to_frame(person.off, shape, motion, t).astype(int) if inside(p)]
        assert on and all(mask[y, x] for x, y in on), (it.item_id, "person missed")
        assert all(not mask[y, x] for x, y in off), (it.item_id, "background taken")
        ys, xs = np.nonzero(mask)
        core = np.clip(rp.to_frame(np.reshape(person.core, (2, 2)), shape, motion, t), 0,
                       rp.SIDE - 1)
        tol = 4
        assert xs.min() <= core[0, 0] + tol and ys.min() <= core[0, 1] + tol, it.item_id
        assert xs.max() >= core[1, 0] - tol and ys.max() >= core[1, 1] - tol, it.item_id


@pytest.mark.slow
def test_background_is_the_original_outside_the_dilated_hole(built):
    df = read_manifest(built / "trials.csv", check_hashes=False)
    for item in df[df.condition == "original"].item_id:
        original = _png(built / "stimuli" / "original" / f"{item}.png")
        background = _png(built / "stimuli" / "background" / f"{item}.png")
        body = _png(built / "stimuli" / "body" / f"{item}.png")
        mask = _png(built / "masks" / f"{item}.png", gray=True) > 127
        hole = dilate_mask(mask, 1.2)
        assert hole.sum() > mask.sum()
        assert (background[~hole] == original[~hole]).all()
        assert (background[mask] != original[mask]).any()          # the person is gone
        assert (body[mask] == original[mask]).all() and (body[~mask] == 0).all()
    for row in df[df.condition == "conflict"].itertuples():
        composite = _png(built / row.stimulus)
        mask = _png(built / "masks" / f"{row.item_id}.png", gray=True) > 127
        body_frame = _png(built / "stimuli" / "original" / f"{row.item_id}.png")
        scene = _png(built / "stimuli" / "background" / f"{row.background_item}.png")
        assert (composite[mask] == body_frame[mask]).all()
        assert (composite[~mask] == scene[~mask]).all()


def test_segmenter_alone_on_the_photos():
    """The backend itself on the full photos: one person each where they are, the held helmet
    kept (the pose mask alone leaves it out), nobody on the coffee cup, and two people pasted
    side by side are two."""
    from bodyscene.stimuli.segmenters import create_segmenter

    seg = create_segmenter("mediapipe")
    for name in ("astronaut", "camera", "grace_hopper"):
        (found,) = seg.segment([rp.photo(name)])
        assert len(found) == 1, name
        mask = found.masks[0]
        assert all(mask[y, x] for x, y in rp.PHOTOS[name].on), name
        assert not any(mask[y, x] for x, y in rp.PHOTOS[name].off), name
    assert len(seg.segment([rp.photo("coffee")])[0]) == 0
    assert seg.segment([rp.photo("astronaut")])[0].masks[0][440, 400]          # the helmet
    pose = create_segmenter("mediapipe", mode="pose")
    assert not pose.segment([rp.photo("astronaut")])[0].masks[0][440, 400]
    scene = cv2.resize(rp.photo("coffee"), (640, 480))
    scene[160:480, 0:320] = cv2.resize(rp.photo("astronaut"), (320, 320),
                                       interpolation=cv2.INTER_AREA)
    scene[160:480, 350:623] = cv2.resize(rp.photo("grace_hopper"), (273, 320),
                                         interpolation=cv2.INTER_AREA)
    people = pose.segment([scene])[0]
    assert len(people) == 2
    left = sorted(round(float(m[:, :320].sum() / m.sum()), 1) for m in people.masks)
    assert left == [0.0, 1.0]


class _Everyone:
    """A stub that calls the whole frame one person (or, with nobody=True, finds nobody)."""

    name, batch, settings = "everyone", 1, {}

    def __init__(self, nobody: bool = False):
        self.nobody = nobody

    def segment(self, frames):
        from bodyscene.stimuli.segmenters import People

        return [People.none(*f.shape[:2]) if self.nobody else
                People(np.ones((1, *f.shape[:2]), bool), np.ones(1, np.float32))
                for f in frames]


def test_the_headless_measure_counts_what_it_says():
    """measure_headless on two stubs: one that finds a person everywhere (every headless
    frame found, every person-free frame a false detection, masks equal to the whole photo's),
    one that finds nobody (every video dropped)."""
    r = rp.measure_headless(_Everyone())
    assert r["frames"] == 8 * len(rp.HEADLESS) * 2 and r["videos"] == 2 * len(rp.HEADLESS)
    assert r["recall"] == 1.0 and r["dropped"] == [] and r["false_rate"] == 1.0
    assert r["iou_min"] == 1.0
    r = rp.measure_headless(_Everyone(nobody=True))
    assert r["recall"] == 0.0 and len(r["dropped"]) == r["videos"] and r["false_rate"] == 0.0


def test_the_person_detector_needs_no_face():
    """SSDLite's boxes on the full photos hold each person's core; nobody on the coffee cup; a
    person seen from the chest down is still found; of two people pasted side by side into a
    wide frame, the small one is missed on the whole frame (so the segmenter runs it again on a
    crop around each pose person) and found on its crop."""
    from bodyscene.stimuli.segmenters.mediapipe_tflite import find_detector
    from bodyscene.stimuli.segmenters.ssd_person import PersonDetector

    detector = PersonDetector(find_detector())
    for name in ("astronaut", "camera", "grace_hopper"):
        found = detector.detect(rp.photo(name))
        assert len(found) == 1, (name, found)
        x0, y0, x1, y1 = rp.PHOTOS[name].core
        box = found[0][1]
        assert box[0] <= x0 + 30 and box[1] <= y0 + 30 and box[2] >= x1 - 30, (name, box)
    assert detector.detect(rp.photo("coffee")) == []
    img = rp.photo("camera")
    frame = rp.region_frames(img, rp.HEADLESS[("camera", "chest down")], "zoom")[0][0]
    assert detector.detect(frame)
    scene = cv2.resize(rp.photo("coffee"), (640, 480))
    scene[160:480, 0:320] = cv2.resize(rp.photo("astronaut"), (320, 320),
                                       interpolation=cv2.INTER_AREA)
    scene[160:480, 350:623] = cv2.resize(rp.photo("grace_hopper"), (273, 320),
                                         interpolation=cv2.INTER_AREA)
    centres = sorted(float(b[0] + b[2]) / 2 for _, b in detector.detect(scene))
    assert len(centres) == 1 and centres[0] > 320, centres
    score, box = detector.detect(scene[120:480, 0:360])[0]        # on the crop, best first
    assert score > 0.5 and box[2] < 320 and box[3] - box[1] > 250, (score, box)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 23, blocked: with the SSDLite person detector "
                   "measured recall 0.70 (7 of 16 videos dropped), 0% false detections, IoU "
                   "0.83 (python tests/real_photos.py); no offline cue reaches the targets "
                   "(python tests/headless_cues.py, docs/real_videos.md); strict, so it fails "
                   "once a backend passes")
def test_people_without_a_head_are_found():
    """Issue 23's targets on the head-cropped videos (chest down, waist down, hands only)."""
    from bodyscene.stimuli.segmenters import create_segmenter

    r = rp.measure_headless(create_segmenter("mediapipe"))
    assert r["recall"] >= 0.98 and not r["dropped"], r
    assert r["false_rate"] <= 0.02, r
    assert r["iou_mean"] >= 0.85, r
