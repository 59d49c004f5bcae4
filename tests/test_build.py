"""The real-video path on tiny generated videos: a red rectangle is the "person", and a stub
segmenter that thresholds red stands in for YOLO wherever a real detection is needed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
from bodyscene.stimuli.build import (
    REJECTED_SCHEMA,
    BuildConfig,
    build,
    choose_masks,
    in_shard,
    merge,
    parse_shard,
)
from bodyscene.stimuli.manifest import read_manifest
from bodyscene.stimuli.segmenters import People
from bodyscene.stimuli.trialset import TrialSetConfig
from bodyscene.stimuli.video import Video, discover_videos, read_windows, window_starts

from bodyscene.errors import BadInput
from bodyscene.tables import read_csv

W, H = 64, 48


def _frames(n=12, people=((10, 4, 16, 12),), vanish_after=None, tiny=False, seed=0):
    """BGR frames: a blue-green gradient scene with red rectangles (y, x, h, w) moving right."""
    rng = np.random.default_rng(seed)
    base = np.zeros((H, W, 3), np.uint8)
    base[..., 0] = np.linspace(120, 220, W, dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(60, 160, H, dtype=np.uint8)[:, None]
    base[..., 2] = 30
    frames = []
    for t in range(n):
        f = np.clip(base.astype(int) + rng.integers(-5, 6, base.shape), 0, 255).astype(np.uint8)
        if vanish_after is None or t < vanish_after:
            for y, x, h, w in people:
                if tiny:
                    h, w = 5, 5
                f[y:y + h, x + t:x + t + w] = (20, 20, 235)
        frames.append(f)
    return frames


def write_video(path: Path, frames, fps: float = 8.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    assert vw.isOpened()
    for f in frames:
        vw.write(f)
    vw.release()
    return path


class RedSegmenter:
    """Stub segmenter: each red connected component (>= 6 px) is one person."""

    name = "red-threshold"

    def __init__(self, batch: int = 1):
        self.batch = batch
        self.calls = 0

    def segment(self, frames):
        self.calls += 1
        out = []
        for rgb in frames:
            r, g, b = (rgb[..., i].astype(int) for i in range(3))
            red = (r > 150) & (g < 110) & (b < 110)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(red.astype(np.uint8), 8)
            masks = [labels == j for j in range(1, n) if stats[j, cv2.CC_STAT_AREA] >= 6]
            out.append(People(np.array(masks, bool).reshape(len(masks), *rgb.shape[:2]),
                              np.ones(len(masks), np.float32)))
        return out


ACTIONS = ("jumping jack", "wave")        # an irregular HAA500-style name with a space
INDICES = (0, 1, 16, 17, 18)


def haa500(root: Path, extra=None) -> Path:
    for a_idx, action in enumerate(ACTIONS):
        for k in INDICES:
            y = 6 + 16 * a_idx
            write_video(root / "video" / action / f"{action}_{k:03d}.mp4",
                        _frames(people=((y, 4 + k % 5, 16, 12),), seed=k + 10 * a_idx))
    for name, frames in (extra or {}).items():
        write_video(root / "video" / name, frames)
    return root


def cfg_for(videos: Path, out: Path, **kw) -> BuildConfig:
    trials = kw.pop("trials", TrialSetConfig(contact_sheet_items=2))
    return BuildConfig(videos=str(videos), out=str(out),
                       samples_per_video=kw.pop("samples_per_video", 2), workers=2, trials=trials,
                       **kw)


def test_discover_both_layouts_and_haa500_split(tmp_path):
    haa500(tmp_path / "haa", extra={"wave/wave_025.mp4": _frames(2), "wave/notes.mp4": _frames(2),
                                    "wave/._wave_003.mp4": _frames(2)})   # macOS litter
    videos, skipped = discover_videos(tmp_path / "haa")
    assert {v.action for v in videos} == set(ACTIONS)
    split = {(v.action, v.index): v.split for v in videos}
    assert split[("jumping jack", 1)] == "train" and split[("wave", 16)] == "val"
    assert split[("wave", 17)] == "test" and split[("wave", 18)] == "test"
    assert [s.key for s in skipped] == ["wave/notes.mp4", "wave/wave_025.mp4"]
    assert "000-019" in skipped[1].reason
    # the video/ folder itself works too, and so does a flat folder
    assert len(discover_videos(tmp_path / "haa" / "video")[0]) == len(videos)
    write_video(tmp_path / "flat" / "play_violin_017.mp4", _frames(3))
    (v,), _ = discover_videos(tmp_path / "flat")
    assert (v.action, v.index, v.split) == ("play_violin", 17, "test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no videos"):
        discover_videos(tmp_path / "empty")


def test_window_starts_are_even_and_fit():
    assert window_starts(12, 1, 4) == [1, 4, 7, 10]
    assert window_starts(12, 1, 1) == [6]
    assert window_starts(12, 4, 3) == [1, 4, 7]
    assert window_starts(3, 4, 2) == []            # too short for a 4-frame clip
    assert window_starts(5, 1, 8) == [0, 1, 2, 3, 4]


def test_read_windows_rgb_and_reasons(tmp_path):
    path = write_video(tmp_path / "a_000.mp4", _frames(12))
    video = Video(path, "a_000.mp4", "a", 0, "train")
    clip = read_windows(video, samples=3, window=4)
    assert [s for s, _ in clip.windows] == [1, 4, 7] and clip.fps == pytest.approx(8.0)
    frame = clip.windows[0][1][0]
    assert frame.shape == (H, W, 3) and frame[15, 10, 0] > 150 and frame[15, 10, 2] < 110  # RGB
    from bodyscene.stimuli.video import VideoError
    (tmp_path / "b_000.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="unreadable|empty"):
        read_windows(Video(tmp_path / "b_000.mp4", "b_000.mp4", "b", 0, "train"), 2)
    with pytest.raises(VideoError, match="too short"):
        read_windows(video, samples=1, window=20)


def test_build_haa500_end_to_end(tmp_path, capsys):
    videos = haa500(tmp_path / "haa")
    manifest = build(cfg_for(videos, tmp_path / "out"), segmenter=RedSegmenter())
    df = read_manifest(manifest)                      # schema, files and hashes all check out
    assert set(df.action) == set(ACTIONS)
    assert set(df.segmenter) == {"red-threshold"} and set(df.mask_iou) == {""}
    assert set(df.condition) == {"original", "body", "background", "conflict"}
    orig = df[df.condition == "original"]
    assert len(orig) == len(ACTIONS) * len(INDICES) * 2
    by_source = orig.groupby("source").split.first()
    assert by_source["wave/wave_016.mp4"] == "val"
    assert by_source["jumping jack/jumping jack_017.mp4"] == "test"
    assert " " not in "".join(df.stimulus)          # file names are slugs, actions stay as named
    frac = orig.mask_fraction.astype(float)
    assert ((frac > 0.04) & (frac < 0.09)).all()     # the 16x12 rectangle: 6.25% of the frame
    rejected = read_csv(tmp_path / "out" / "rejected.csv", REJECTED_SCHEMA)
    assert rejected.empty
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    record = json.loads((tmp_path / "out" / "build.shard-0-of-1.json").read_text())
    assert record["config"]["policy"] == "single" and record["segmenter"] == "red-threshold"
    printed = capsys.readouterr().out
    assert "20 items from 10 videos (10 kept); 0 rejection(s)" in printed
    assert "trials per condition: original 20, body 20, background 20, conflict 8" in printed
    with pytest.raises(BadInput, match="nothing is overwritten"):
        build(cfg_for(videos, tmp_path / "out"), segmenter=RedSegmenter())


def test_flat_layout_clip_trials(tmp_path):
    for action, y in (("kick", 4), ("bow", 24)):
        for k in (3, 16, 19):
            write_video(tmp_path / "flat" / f"{action}_{k:03d}.mp4",
                        _frames(people=((y, 6, 16, 12),), seed=k))
    manifest = build(cfg_for(tmp_path / "flat", tmp_path / "out", samples_per_video=1,
                             trials=TrialSetConfig(clip_frames=4, contact_sheet_items=1)),
                     segmenter=RedSegmenter())
    df = read_manifest(manifest)
    assert set(df.n_frames) == {"4"} and set(df.frame) == {"4"}   # middle window of 12 frames
    assert set(df.split) == {"train", "val", "test"}
    assert all((manifest.parent / s).is_dir() for s in df.stimulus)


def _two_people_clip(tmp_path):
    path = write_video(tmp_path / "duo_000.mp4",
                       _frames(people=((4, 2, 16, 12), (28, 30, 10, 8))))
    return read_windows(Video(path, "duo_000.mp4", "duo", 0, "train"), samples=2)


@pytest.mark.parametrize("policy", ["single", "largest", "union"])
def test_people_policies(tmp_path, policy):
    clip = _two_people_clip(tmp_path)
    seg = RedSegmenter()
    people = [seg.segment(list(w)) for _, w in clip.windows]
    assert all(len(p) == 2 for found in people for p in found)
    items, rejected = choose_masks(clip, people, policy, 0.005, seg.name)
    if policy == "single":
        assert items == [] and len(rejected) == 2
        assert all("2 people detected" in r.reason for r in rejected)
        return
    assert len(items) == 2 and rejected == []
    frac = items[0].masks.mean()
    big, both = 16 * 12 / (H * W), (16 * 12 + 10 * 8) / (H * W)
    expected = big if policy == "largest" else both
    assert abs(frac - expected) < 0.02


def test_bad_videos_go_to_rejected_and_run_continues(tmp_path, capsys):
    videos = haa500(tmp_path / "haa", extra={
        "wave/wave_002.mp4": _frames(vanish_after=6),                 # no person, 2nd half
        "wave/wave_003.mp4": _frames(tiny=True),                      # mask below threshold
        "wave/wave_004.mp4": _frames(people=((4, 2, 16, 12), (28, 30, 10, 8)))})  # two people
    (videos / "video" / "wave" / "wave_005.mp4").write_bytes(b"not a video" * 50)
    (videos / "video" / "wave" / "wave_006.mp4").write_bytes(b"")
    out = tmp_path / "out"
    manifest = build(cfg_for(videos, out, min_mask=0.02, samples_per_video=4),
                     segmenter=RedSegmenter())
    rej = read_csv(out / "rejected.csv", REJECTED_SCHEMA)
    reasons = {v: list(g.reason) for v, g in rej.groupby("video")}
    assert reasons["wave/wave_002.mp4"] == ["no person detected"] * 2
    assert list(rej[rej.video == "wave/wave_002.mp4"].frame) == ["7", "10"]
    assert len(reasons["wave/wave_003.mp4"]) == 4
    assert all("below --min-mask 2.00%" in r for r in reasons["wave/wave_003.mp4"])
    assert all("2 people detected" in r for r in reasons["wave/wave_004.mp4"])
    assert reasons["wave/wave_005.mp4"][0].startswith("unreadable video")
    assert reasons["wave/wave_006.mp4"][0].startswith(("unreadable", "empty"))
    assert set(rej[rej.video.isin(["wave/wave_005.mp4", "wave/wave_006.mp4"])].frame) == {""}
    df = read_manifest(manifest)
    sources = set(df.source)
    assert "wave/wave_002.mp4" not in sources       # single policy: a frame without a person
    assert not {"wave/wave_003.mp4", "wave/wave_004.mp4"} & sources
    assert len(df[df.condition == "original"]) == 10 * 4
    assert f"{len(rej)} rejection(s) in 5 video(s)" in capsys.readouterr().out


def test_largest_policy_drops_only_the_frames_without_a_person(tmp_path):
    videos = haa500(tmp_path / "haa", extra={"wave/wave_002.mp4": _frames(vanish_after=6)})
    manifest = build(cfg_for(videos, tmp_path / "out", policy="largest", samples_per_video=4),
                     segmenter=RedSegmenter())
    df = read_manifest(manifest, check_hashes=False)
    kept = df[(df.source == "wave/wave_002.mp4") & (df.condition == "original")]
    assert sorted(kept.frame.astype(int)) == [1, 4]


def test_shards_and_merge_equal_one_run(tmp_path):
    videos = haa500(tmp_path / "haa", extra={"wave/wave_002.mp4": _frames(vanish_after=6)})
    one = build(cfg_for(videos, tmp_path / "one"), segmenter=RedSegmenter(batch=3))
    keys = [v.key for v in discover_videos(videos)[0]]
    assert all(sum(in_shard(k, (i, 2)) for i in range(2)) == 1 for k in keys)
    assert 0 < sum(in_shard(k, (0, 2)) for k in keys) < len(keys)
    out = tmp_path / "sharded"
    build(cfg_for(videos, out, shard=(0, 2)), segmenter=RedSegmenter())
    with pytest.raises(BadInput, match="shard\\(s\\) 1/2 missing"):
        merge(out)
    build(cfg_for(videos, out, shard=(1, 2)), segmenter=RedSegmenter())
    merged = merge(out)
    assert merged.read_bytes() == one.read_bytes()
    assert (out / "rejected.csv").read_bytes() == (tmp_path / "one" / "rejected.csv").read_bytes()
    read_manifest(merged)


def test_merge_refuses_shards_with_different_settings(tmp_path):
    videos = haa500(tmp_path / "haa")
    out = tmp_path / "out"
    build(cfg_for(videos, out, shard=(0, 2)), segmenter=RedSegmenter())
    build(cfg_for(videos, out, shard=(1, 2), trials=TrialSetConfig(seed=5)),
          segmenter=RedSegmenter())
    with pytest.raises(BadInput, match="different trial settings"):
        merge(out)


def test_bad_options():
    assert parse_shard("3/4") == (3, 4)
    for text in ("4/4", "1", "a/b", "-1/2"):
        with pytest.raises(BadInput, match="--shard"):
            parse_shard(text)
    with pytest.raises(BadInput, match="--policy"):
        BuildConfig(videos=".", out=".", policy="all").check()


def test_cli_missing_weights_is_one_line(tmp_path, capsys):
    from bodyscene.cli import main

    videos = haa500(tmp_path / "haa")
    code = main(["stimuli", "build", "--videos", str(videos), "--weights",
                 str(tmp_path / "yolov8x-seg.pt"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "yolov8x-seg.pt" in err and "not found" in err
    assert not (tmp_path / "out").exists()
    code = main(["stimuli", "merge", "--stimuli", str(tmp_path / "nothing")])
    assert code == 2 and capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("weights,message", [("garbage", "cannot load"), ("yolov8n.yaml",
                                                                            "a detect model")])
def test_unusable_weights_are_one_line(tmp_path, capsys, weights, message):
    pytest.importorskip("ultralytics")
    from bodyscene.cli import main

    if weights == "garbage":
        weights = str(tmp_path / "broken-seg.pt")
        Path(weights).write_text("not a checkpoint")
    videos = haa500(tmp_path / "haa")
    code = main(["stimuli", "build", "--videos", str(videos), "--weights", weights,
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err


def test_untrained_yolo_from_yaml_runs_offline(tmp_path, monkeypatch):
    """Ultralytics builds the architecture from its bundled yaml and predicts without any
    network access (sockets are cut) and without fetching weights into the working folder."""
    pytest.importorskip("ultralytics")
    import torch
    from bodyscene.stimuli.segmenters.yolo import YoloSegmenter

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seg = YoloSegmenter("yolov8n-seg.yaml", imgsz=64, conf=0.25, batch=2, device="cpu")
        frames = [f[..., ::-1].copy() for f in _frames(3)]
        found = seg.segment(frames)
    finally:
        torch.set_num_threads(threads)
    assert seg.name == "yolo" and seg.settings["weights"] == "yolov8n-seg.yaml"
    assert len(found) == 3
    for p in found:
        assert p.masks.dtype == bool and p.masks.shape[1:] == (H, W)
        assert len(p.scores) == len(p.masks)
    assert list(tmp_path.iterdir()) == []            # nothing downloaded or saved here


def test_a_failing_segmenter_stops_the_run_and_the_reader(tmp_path):
    import threading

    class Broken(RedSegmenter):
        def segment(self, frames):
            raise RuntimeError("segmenter exploded")

    videos = haa500(tmp_path / "haa")
    with pytest.raises(RuntimeError, match="exploded"):
        build(cfg_for(videos, tmp_path / "out"), segmenter=Broken())
    assert not any(t.name == "bodyscene-video-reader" and t.is_alive()
                   for t in threading.enumerate())
    assert not (tmp_path / "out" / "trials.csv").exists()


# --- behaviours found on real footage ----------------------------------------------------------

def _square(mask_shape, y, x, side):
    m = np.zeros(mask_shape, bool)
    m[y:y + side, x:x + side] = True
    return m


def test_stray_pieces_are_dropped_before_people_are_counted(tmp_path):
    """A blob under 2% of the person (a piece of the same mask, or a mask of its own) is not a
    person: the single policy keeps the video, and the composed mask has no floating patch."""
    from bodyscene.stimuli.segmenters import clean_people
    from bodyscene.stimuli.video import Clip

    shape = (H, W)
    person = _square(shape, 10, 10, 20)                       # 400 px
    blob = _square(shape, 40, 55, 2)                          # 4 px = 1% of the person
    big_blob = _square(shape, 40, 50, 4)                      # 16 px = 4%: kept
    one_mask = People((person | blob)[None], np.ones(1, np.float32))
    two_masks = People(np.stack([person, blob]), np.ones(2, np.float32))
    assert len(clean_people(two_masks)) == 1
    assert (clean_people(one_mask).masks[0] == person).all()
    assert (clean_people(People((person | big_blob)[None], np.ones(1))).masks[0]
            == (person | big_blob)).all()
    assert len(clean_people(two_masks, min_part=0.0)) == 2   # --min-part 0: as the segmenter said
    video = Video(tmp_path / "a_000.mp4", "a_000.mp4", "a", 0, "train")
    frames = np.zeros((1, H, W, 3), np.uint8)
    clip = Clip(video, 8.0, 4, [(0, frames), (2, frames)])
    items, rejected = choose_masks(clip, [[two_masks], [one_mask]], "single", 0.005, "seg")
    assert rejected == [] and len(items) == 2
    assert all((it.masks[0] == person).all() for it in items)
    items, rejected = choose_masks(clip, [[two_masks], [one_mask]], "single", 0.005, "seg",
                                   min_part=0.0)
    assert items == [] and "2 people detected" in rejected[0].reason


def test_counts_per_condition_and_an_empty_condition_is_an_error(tmp_path, capsys):
    """Without test videos there can be no conflict trials: that is an error naming the counts
    (and the failed run leaves nothing behind), unless conflict trials were not asked for."""
    videos = tmp_path / "haa"
    for a_idx, action in enumerate(ACTIONS):
        for k in (0, 1, 16):
            write_video(videos / "video" / action / f"{action}_{k:03d}.mp4",
                        _frames(people=((6 + 16 * a_idx, 4, 16, 12),), seed=k))
    out = tmp_path / "out"
    with pytest.raises(BadInput, match="no conflict trials .*conflict 0.*test split has items "
                                       "of 0 action"):
        build(cfg_for(videos, out), segmenter=RedSegmenter())
    assert not out.exists()
    build(cfg_for(videos, out, trials=TrialSetConfig(conflict_per_action=0,
                                                      contact_sheet_items=1)),
          segmenter=RedSegmenter())
    captured = capsys.readouterr()
    assert "trials per condition: original 12, body 12, background 12, conflict 0" in captured.out
    assert "warning: no conflict trials" in captured.err


def test_a_failed_build_removes_what_it_wrote(tmp_path):
    class Nobody(RedSegmenter):
        def segment(self, frames):
            return [People.none(*f.shape[:2]) for f in frames]

    videos = haa500(tmp_path / "haa")
    out = tmp_path / "out"
    with pytest.raises(BadInput, match="no items were kept.*no person detected: 20.*removed"):
        build(cfg_for(videos, out), segmenter=Nobody())
    assert not out.exists()
    keep = tmp_path / "mine"                         # a folder that held something before
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(BadInput, match="no items were kept"):
        build(cfg_for(videos, keep), segmenter=Nobody())
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]
    build(cfg_for(videos, out), segmenter=RedSegmenter())            # the rerun just works
    with pytest.raises(BadInput, match=f"delete the folder {out}"):
        build(cfg_for(videos, out), segmenter=RedSegmenter())
    # a shard removes only its own files: others may be writing into the same folder
    shared = tmp_path / "shared"
    build(cfg_for(videos, shared, shard=(0, 2)), segmenter=RedSegmenter())
    before = sorted(p.name for p in shared.iterdir())
    with pytest.raises(RuntimeError, match="exploded"):
        class Broken(RedSegmenter):
            def segment(self, frames):
                raise RuntimeError("segmenter exploded")
        build(cfg_for(videos, shared, shard=(1, 2)), segmenter=Broken())
    assert sorted(p.name for p in shared.iterdir()) == before


def exploding_segmenter(**options):
    """A `module:factory` segmenter that must never be reached (see the --out checks)."""
    raise AssertionError("the segmenter was loaded before --out was checked")


@pytest.mark.parametrize("case", ["file", "under-file", "unwritable"])
def test_unusable_out_is_one_line_before_the_model_loads(tmp_path, capsys, case):
    from bodyscene.cli import main

    videos = haa500(tmp_path / "haa")
    (tmp_path / "taken").write_text("x")
    out = {"file": tmp_path / "taken", "under-file": tmp_path / "taken" / "out",
           "unwritable": Path("/proc/bodyscene-out")}[case]
    if case == "unwritable" and not Path("/proc/self").exists():
        pytest.skip("needs Linux's /proc as a place nobody can write")
    code = main(["stimuli", "build", "--videos", str(videos), "--out", str(out),
                 "--segmenter", "test_build:exploding_segmenter"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--out" in err, err


def test_broken_files_are_reported_once_and_ffmpeg_stays_quiet(tmp_path):
    """FFmpeg's own complaints ('moov atom not found') do not reach stderr; the file is in
    rejected.csv once and named in the summary."""
    import os
    import subprocess
    import sys

    videos = haa500(tmp_path / "haa")
    good = (videos / "video" / "wave" / "wave_000.mp4").read_bytes()
    (videos / "video" / "wave" / "wave_005.mp4").write_bytes(good[:len(good) // 2])
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)
    done = subprocess.run(
        [sys.executable, "-m", "bodyscene.cli", "stimuli", "build", "--videos", str(videos),
         "--out", str(tmp_path / "out"), "--segmenter", "test_build:RedSegmenter", "--quiet"],
        capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "moov" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    rej = read_csv(tmp_path / "out" / "rejected.csv", REJECTED_SCHEMA)
    assert list(rej.video) == ["wave/wave_005.mp4"]
    assert "1 unreadable video(s): wave/wave_005.mp4" in done.stdout


def _losing_dataset(root: Path) -> Path:
    """wave keeps its 5 videos; 'sweep' has 3, and 2 show nobody on any frame."""
    return haa500(root, extra={
        "sweep/sweep_000.mp4": _frames(),
        "sweep/sweep_001.mp4": _frames(vanish_after=0),
        "sweep/sweep_017.mp4": _frames(vanish_after=0),
        "wave/wave_002.mp4": _frames(vanish_after=6)})


EXPECTED_TALLY = [
    {"action": "jumping jack", "videos": 5, "kept": 5, "rejected": 0, "reason": ""},
    {"action": "sweep", "videos": 3, "kept": 1, "rejected": 2, "reason": "no person detected"},
    {"action": "wave", "videos": 6, "kept": 5, "rejected": 1, "reason": "no person detected"}]


def _check_tally_printed(printed: str, warned: str) -> None:
    assert "per action: videos kept / rejected (most common reason)" in printed
    assert "  jumping jack     5 kept /    0 rejected\n" in printed
    assert "  sweep            1 kept /    2 rejected  (no person detected)" in printed
    assert "  wave             5 kept /    1 rejected  (no person detected)" in printed
    # the loud part: only the action that lost more than half of its videos
    assert "WARNING: action 'sweep' lost 2 of its 3 videos (more than 50%), mostly " \
           "'no person detected'" in warned
    assert "'wave'" not in warned and "jumping jack" not in warned


def test_per_action_summary_is_printed_recorded_and_warns(tmp_path, capsys):
    videos = _losing_dataset(tmp_path / "haa")
    out = tmp_path / "out"
    seg = RedSegmenter()
    seg.miss_hint = "red-threshold misses people in blue"
    build(cfg_for(videos, out), segmenter=seg)
    captured = capsys.readouterr()
    _check_tally_printed(captured.out, captured.err)
    assert "'no person detected' (red-threshold misses people in blue); see" in captured.err
    record = json.loads((out / "build.shard-0-of-1.json").read_text())
    assert record["per_action"] == EXPECTED_TALLY
    assert record["lost_actions"] == ["sweep"]
    # sharded: each shard records its own tally, and merge adds them up to the same table
    sharded = tmp_path / "sharded"
    for i in range(3):
        build(cfg_for(videos, sharded, shard=(i, 3)), segmenter=RedSegmenter())
    capsys.readouterr()
    merge(sharded)
    captured = capsys.readouterr()
    _check_tally_printed(captured.out, captured.err)
    run = json.loads((sharded / "stimuli_run.json").read_text())
    assert run["config"]["per_action"] == EXPECTED_TALLY


def test_most_common_reason_counts_videos_not_frames():
    from bodyscene.stimuli.build import Rejection, per_action

    vids = [Video(Path(f"a_{k:03d}.mp4"), f"a/a_{k:03d}.mp4", "a", k, "train") for k in range(3)]
    rej = [Rejection("a/a_000.mp4", f, "no person detected") for f in range(5)]
    rej += [Rejection(f"a/a_00{k}.mp4", 0, f"{k + 1} people detected (policy single ...)")
            for k in (1, 2)]
    rej += [Rejection("b/b_000.mp4", None, "unreadable video: broken")]
    tally = per_action(vids, set(), rej)
    assert tally == [
        {"action": "a", "videos": 3, "kept": 0, "rejected": 3, "reason": "N people detected"},
        {"action": "b", "videos": 1, "kept": 0, "rejected": 1, "reason": "unreadable video"}]


class _Array:
    """What YOLO's results hold (torch tensors), as far as the segmenter reads them."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.a

    def __len__(self):
        return len(self.a)


class _Boxes:
    def __init__(self, n: int):
        self.cls, self.conf = _Array(np.zeros(n)), _Array(np.full(n, 0.9))

    def __len__(self):
        return len(self.cls)


class FakeYOLO:
    """Stands in for ultralytics.YOLO (no weights on this machine): each red component of a
    BGR frame is a person, found at confidence 0.9, as a model's results would say."""

    task = "segment"

    def __init__(self, weights):
        self.weights = weights

    def predict(self, frames, **kwargs):
        from types import SimpleNamespace

        results = []
        for (people,) in (RedSegmenter().segment([f[..., ::-1]]) for f in frames):
            n = len(people)
            results.append(SimpleNamespace(
                masks=SimpleNamespace(data=_Array(people.masks.astype(np.float32))),
                boxes=_Boxes(n)))
        return results


def test_yolo_path_gives_the_same_per_action_summary(tmp_path, capsys, monkeypatch):
    import bodyscene.stimuli.segmenters.yolo as yolo

    from bodyscene.cli import main

    monkeypatch.setattr(yolo, "_import_ultralytics", lambda: FakeYOLO)
    weights = tmp_path / "yolov8x-seg.pt"
    weights.write_bytes(b"stand-in")
    videos = _losing_dataset(tmp_path / "haa")
    out = tmp_path / "out"
    code = main(["stimuli", "build", "--videos", str(videos), "--out", str(out), "--quiet",
                 "--segmenter", "yolo", "--weights", str(weights), "--samples-per-video", "2",
                 "--contact-sheet-items", "2"])
    assert code == 0
    captured = capsys.readouterr()
    _check_tally_printed(captured.out, captured.err)
    record = json.loads((out / "build.shard-0-of-1.json").read_text())
    assert record["segmenter"].startswith("yolo(weights=yolov8x-seg.pt")
    assert record["per_action"] == EXPECTED_TALLY
