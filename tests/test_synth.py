"""`bodyscene stimuli synth` end to end, the trial-set writer and finalize, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from bodyscene.stimuli import world
from bodyscene.stimuli.manifest import read_manifest, split_choices
from bodyscene.stimuli.trialset import Item, TrialSetConfig, TrialSetWriter, finalize

from bodyscene.cli import main
from bodyscene.errors import BadInput

TINY = ["--actions", "3", "--clips-per-action", "3", "--size", "32", "--frames-per-video", "6",
        "--samples-per-video", "2"]


def _synth(out: Path, *extra: str) -> Path:
    rc = main(["stimuli", "synth", "--out", str(out), *TINY, *extra])
    assert rc == 0
    return out / "trials.csv"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    choices = root / "choices.csv"
    choices.write_text("action,choices\nwave,wave;cheer\ncheer,cheer;squat\nsquat,squat;wave\n")
    return {
        "a": _synth(root / "a", "--seed", "1"),
        "a_again": _synth(root / "a_again", "--seed", "1"),
        "other_seed": _synth(root / "b", "--seed", "2"),
        "clips": _synth(root / "clips", "--seed", "3", "--clip-frames", "4", "--k", "2"),
        "choices": _synth(root / "choices", "--seed", "1", "--choices-file", str(choices)),
        "noise": _synth(root / "noise", "--seed", "1", "--mask-noise", "erode:0.2"),
        "choices_file": choices,
    }


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "stimuli_run.json"}


def test_manifest_validates_with_hashes(runs):
    df = read_manifest(runs["a"])
    assert set(df.condition) == {"original", "body", "background", "conflict"}
    assert set(df.action) == {"wave", "cheer", "squat"}
    assert (df.segmenter == "exact").all() and (df.mask_iou.astype(float) == 1.0).all()
    frac = df.mask_fraction.astype(float)
    assert ((frac > 0.01) & (frac < 0.5)).all()
    assert main(["stimuli", "validate", str(runs["a"])]) == 0


def test_same_seed_gives_byte_identical_files(runs):
    a, again = _files(runs["a"].parent), _files(runs["a_again"].parent)
    assert a.keys() == again.keys() and len(a) > 20
    assert all(a[k] == again[k] for k in a)
    assert runs["a"].read_bytes() != runs["other_seed"].read_bytes()


def test_split_is_by_clip_never_by_frame(runs):
    df = read_manifest(runs["a"], check_hashes=False)
    video = df.source.str.rsplit(":", n=1).str[0]
    per_video = df.groupby(video).split.nunique()
    assert (per_video == 1).all()
    assert (df.groupby(video).item_id.nunique() == 2).all()   # two frames sampled per clip
    for action, group in df.groupby("action"):
        assert set(group.split) == {"train", "val", "test"}, action


def test_sources_name_home_or_other_scenes(runs):
    df = read_manifest(runs["a"], check_hashes=False)
    scenes = df.source.str.rsplit(":", n=1).str[1]
    assert set(scenes) <= set(world.SCENES)
    home = [s == world.home_scene(a) for s, a in zip(scenes, df.action)]
    assert np.mean(home) > 0.5


def _read(path: Path, gray: bool = False) -> np.ndarray:
    files = sorted(path.glob("*.png")) if path.is_dir() else [path]
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    return np.stack([cv2.imread(str(f), flag) for f in files])


def test_clip_trials_are_frame_aligned(runs):
    path = runs["clips"]
    df = read_manifest(path)
    root = path.parent
    assert (df.n_frames.astype(int) == 4).all()
    items = df.pivot(index="item_id", columns="condition", values="stimulus")
    conflicts = df[df.condition == "conflict"].set_index("item_id")
    assert len(conflicts) > 0
    for item_id, row in items.iterrows():
        original = _read(root / row.original)
        body = _read(root / row.body)
        background = _read(root / row.background)
        masks = _read(root / "masks" / item_id, gray=True) > 127
        assert original.shape[0] == body.shape[0] == background.shape[0] == masks.shape[0] == 4
        for t in range(4):
            m = masks[t]
            assert np.array_equal(body[t][m], original[t][m]) and np.all(body[t][~m] == 0)
            assert np.array_equal(background[t][m], original[t][m]) is False
        if item_id in conflicts.index:
            c = conflicts.loc[item_id]
            comp = _read(root / c.stimulus)
            other = _read(root / items.loc[c.background_item, "background"])
            for t in range(4):
                m = masks[t]
                assert np.array_equal(comp[t][m], original[t][m])
                assert np.array_equal(comp[t][~m], other[t][~m])


def test_choice_sets(runs):
    df = read_manifest(runs["clips"], check_hashes=False)
    for row in df.itertuples():
        offered = split_choices(row.choices)
        assert len(offered) == 2 and row.action in offered
        if row.condition == "conflict":
            assert row.background_action in offered     # following the scene must be possible
    # without --k: all 3 actions offered, in a seeded order
    df = read_manifest(runs["a"], check_hashes=False)
    assert all(sorted(split_choices(c)) == ["cheer", "squat", "wave"] for c in df.choices)
    assert df.choices.nunique() > 1
    # a choices file fixes the set per action (conflict rows may swap in the scene's action)
    df = read_manifest(runs["choices"], check_hashes=False)
    fixed = {"wave": {"wave", "cheer"}, "cheer": {"cheer", "squat"}, "squat": {"squat", "wave"}}
    for row in df[df.condition != "conflict"].itertuples():
        assert set(split_choices(row.choices)) == fixed[row.action]


def test_conflict_rows(runs):
    df = read_manifest(runs["a"], check_hashes=False)
    conf = df[df.condition == "conflict"]
    test_items = df[(df.split == "test") & (df.condition == "original")]
    assert len(conf) == len(test_items)            # one per test item by default
    assert (conf.split == "test").all()
    assert (conf.body_action == conf.action).all()
    assert (conf.background_action != conf.action).all()
    action_of = dict(zip(df.item_id, df.action))
    split_of = dict(zip(df.item_id, df.split))
    for row in conf.itertuples():
        assert action_of[row.background_item] == row.background_action
        assert split_of[row.background_item] == "test"


def test_mask_noise_is_recorded(runs):
    df = read_manifest(runs["noise"], check_hashes=False)
    assert df.segmenter.str.contains(r"\+noise\(erode:0.2\)").all()
    assert df.mask_iou.astype(float).between(0.78, 0.82).all()
    clean = read_manifest(runs["a"], check_hashes=False).set_index("trial_id")
    noisy = df.set_index("trial_id")
    assert (noisy.mask_fraction.astype(float)
            < clean.loc[noisy.index, "mask_fraction"].astype(float)).all()


def test_contact_sheet_and_run_record(runs):
    root = runs["a"].parent
    sheet = cv2.imread(str(root / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 4 * 128 and sheet.shape[0] > 128
    record = json.loads((root / "stimuli_run.json").read_text())
    assert record["seed"] == 1
    assert record["config"]["n_actions"] == 3 and record["config"]["size"] == 32
    assert "numpy" in record["versions"] and record["n_trials"] == len(pd.read_csv(runs["a"]))


def _items(n_per_action: int = 2) -> list[Item]:
    style = world.WorldStyle(size=24)
    items = []
    for action in ("wave", "kick", "bow"):
        for c in range(n_per_action * 2):
            frames, masks = world.render_video(action, world.home_scene(action), 2, style,
                                               np.random.default_rng(c))
            split = ("train", "test")[c % 2]
            items.append(Item(item_id=f"{action}_{c}", action=action, split=split,
                              source=f"test:{action}/{c}", frame=0, fps=8.0, frames=frames,
                              masks=masks, segmenter="exact", exact_masks=masks))
    return items


def test_shards_merge_to_the_same_trial_set(tmp_path):
    cfg = TrialSetConfig(clip_frames=2, seed=4)
    items = _items()
    one = TrialSetWriter(tmp_path / "one", cfg)
    for it in items:
        one.add(it)
    one.close()
    finalize(tmp_path / "one", cfg)
    shards = [TrialSetWriter(tmp_path / "many", cfg, shard=(i, 3)) for i in range(3)]
    for j, it in enumerate(reversed(items)):          # any order, any shard
        shards[j % 3].add(it)
    for w in shards:
        w.close()
    finalize(tmp_path / "many", cfg)
    a, b = _files(tmp_path / "one"), _files(tmp_path / "many")
    a = {k: v for k, v in a.items() if not k.startswith("items.")}
    b = {k: v for k, v in b.items() if not k.startswith("items.")}
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    read_manifest(tmp_path / "many" / "trials.csv")


def test_writer_and_finalize_refuse_bad_states(tmp_path):
    cfg = TrialSetConfig(seed=0)
    items = _items(1)
    w = TrialSetWriter(tmp_path / "s", cfg, shard=(0, 2))
    w.add(items[0])
    with pytest.raises(BadInput, match="appears twice"):
        w.add(items[0])
    w.close()
    with pytest.raises(BadInput, match=r"shard\(s\) 1/2 missing"):
        finalize(tmp_path / "s", cfg)
    with pytest.raises(BadInput, match="already built"):
        TrialSetWriter(tmp_path / "s", cfg, shard=(0, 2))
    with pytest.raises(BadInput, match="--shard"):
        TrialSetWriter(tmp_path / "t", cfg, shard=(2, 2))
    with pytest.raises(BadInput, match="no shard item lists"):
        finalize(tmp_path / "empty_dir_that_has_nothing", cfg)


def test_finished_set_is_never_overwritten(runs, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(runs["a"].parent, copy)
    with pytest.raises(BadInput, match="already"):
        finalize(copy, TrialSetConfig(seed=1))
    with pytest.raises(BadInput, match="already"):
        TrialSetWriter(copy, TrialSetConfig(seed=1), shard=(0, 2))
    # a tampered image is caught by validate with one line naming the row and column
    png = next((copy / "stimuli" / "body").glob("*.png"))
    png.write_bytes(png.read_bytes() + b"x")
    capsys.readouterr()
    assert main(["stimuli", "validate", str(copy / "trials.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "column 'sha256'" in err


def _bad_choices(tmp_path: Path, text: str) -> str:
    p = tmp_path / "bad_choices.csv"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("extra, message", [
    (["--actions", "1"], "--actions"),
    (["--actions", "99"], "--actions"),
    (["--clips-per-action", "2"], "--clips-per-action"),
    (["--scene-consistency", "1.5"], "--scene-consistency"),
    (["--size", "8"], "--size"),
    (["--split", "0.5,0.5"], "--split"),
    (["--split", "0.7,0.2,0.2"], "--split"),
    (["--clip-frames", "0"], "--clip-frames"),
    (["--clip-frames", "7"], "--clip-frames"),
    (["--k", "1"], "--k"),
    (["--k", "4"], "--k"),
    (["--fill", "1,2"], "--fill"),
    (["--mask-noise", "blur:0.1"], "--mask-noise"),
    (["--mask-noise", "erode:2"], "--mask-noise"),
    (["--dilation", "0.5"], "--dilation"),
    (["--inpaint-radius", "0"], "--inpaint-radius"),
    (["--scene-salience", "-1"], "--scene-salience"),
    (["--choices-file", "CHOICES:action,choices\nwave,wave;jump\n"], "unknown action 'jump'"),
    (["--choices-file", "CHOICES:action,choices\nwave,cheer;squat\n"], "must include 'wave'"),
    (["--choices-file", "CHOICES:action,choices\nwave,wave;cheer\n"], "no choice set for"),
    (["--choices-file", "CHOICES:act,choices\nwave,wave;cheer\n"], "missing column"),
    (["--choices-file", "/nonexistent/choices.csv"], "not found"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    extra = [_bad_choices(tmp_path, e[len("CHOICES:"):]) if e.startswith("CHOICES:") else e
             for e in extra]
    out = tmp_path / "out"
    rc = main(["stimuli", "synth", "--out", str(out), *TINY, *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("bodyscene: error:")
    assert message in err
    assert not (out / "trials.csv").exists()


def test_output_folder_must_be_new(tmp_path, capsys):
    out = tmp_path / "used"
    out.mkdir()
    (out / "participant_data.csv").write_text("precious\n")
    assert main(["stimuli", "synth", "--out", str(out), *TINY]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "participant_data.csv").read_text() == "precious\n"
