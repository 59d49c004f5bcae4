"""Shared fixtures: tiny manifests made on the fly, so no test needs a download."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def write_toy_manifest(root: Path, actions=("clap", "kick", "wave"), items_per_split=None,
                       clip_frames: int = 1, size: int = 16, k: int | None = None,
                       conflict: bool = True, seed: int = 0) -> Path:
    """A minimal but valid trial set: per item, an 'original' image whose body (a bright square
    whose position encodes the action) sits on a background whose colour encodes the action, the
    matching body and background versions, and conflict versions on the test split.

    Built directly through the manifest's writer so tests of later stages do not depend on the
    synthetic world's renderer."""

    from bodyscene.stimuli.manifest import write_manifest

    items_per_split = items_per_split or {"train": 4, "val": 1, "test": 2}
    rng = np.random.default_rng(seed)
    actions = list(actions)
    k = k or len(actions)
    rows = []
    made = {}  # (split, action, n) -> (body frames, masks, background frames)
    for split, n_items in items_per_split.items():
        for a_idx, action in enumerate(actions):
            for n in range(n_items):
                item_id = f"{action}_{split}{n:02d}"
                bg = np.zeros((clip_frames, size, size, 3), np.uint8)
                bg[...] = (np.array([40 + 60 * a_idx, 200 - 50 * a_idx, 90]) % 256)
                bg = np.clip(bg + rng.integers(0, 30, bg.shape), 0, 255).astype(np.uint8)
                mask = np.zeros((clip_frames, size, size), bool)
                y0 = 2 + (a_idx * 3) % (size - 6)
                for t in range(clip_frames):
                    mask[t, y0:y0 + 4, 2 + t % 3:6 + t % 3] = True
                body = np.where(mask[..., None], np.uint8(255), np.zeros(3, np.uint8))  # RGB
                original = np.where(mask[..., None], body, bg)
                made[(split, action, n)] = (body, mask, bg)
                versions = {"original": original, "body": body, "background": bg}
                others = [a for a in actions if a != action]
                choices = [action] + list(rng.choice(others, size=k - 1, replace=False))
                rng.shuffle(choices)
                for cond, frames in versions.items():
                    rows.append(_row(root, item_id, action, cond, split, frames, choices,
                                     mask, clip_frames))
                if conflict and split == "test":
                    other = actions[(a_idx + 1) % len(actions)]
                    _, _, other_bg = made.get((split, other, n), (None, None, None)) or (None,) * 3
                    if other_bg is None:
                        ob = np.zeros_like(bg)
                        ob[...] = np.array([40 + 60 * ((a_idx + 1) % len(actions)),
                                            200 - 50 * ((a_idx + 1) % len(actions)), 90]) % 256
                        other_bg = ob
                    frames = np.where(mask[..., None], body, other_bg)
                    cchoices = list(dict.fromkeys([action, other] + choices))[:max(k, 2)]
                    rng.shuffle(cchoices)
                    row = _row(root, item_id, action, "conflict", split, frames, cchoices, mask,
                               clip_frames)
                    row.update(body_action=action, background_action=other,
                               background_item=f"{other}_{split}{n:02d}")
                    rows.append(row)
    return write_manifest(root / "trials.csv", rows)


def _row(root, item_id, action, cond, split, frames, choices, mask, clip_frames):
    import cv2
    from bodyscene.stimuli.manifest import join_choices, stimulus_sha256

    if clip_frames == 1:
        rel = Path("stimuli") / cond / f"{item_id}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), frames[0][..., ::-1])
    else:
        rel = Path("stimuli") / cond / item_id
        (root / rel).mkdir(parents=True, exist_ok=True)
        for t, f in enumerate(frames):
            cv2.imwrite(str(root / rel / f"{t:03d}.png"), f[..., ::-1])
    return dict(trial_id=f"{item_id}-{cond}", item_id=item_id, action=action, condition=cond,
                split=split, stimulus=rel.as_posix(), n_frames=clip_frames, fps=8.0,
                sha256=stimulus_sha256(root / rel), choices=join_choices(choices),
                source=f"toy:{item_id}", frame=0, mask_fraction=float(mask.mean()),
                segmenter="exact", mask_iou=1.0)


@pytest.fixture
def toy_manifest(tmp_path) -> Path:
    """A valid single-frame manifest of 3 actions in a temporary folder."""
    return write_toy_manifest(tmp_path / "toy")


@pytest.fixture
def toy_clip_manifest(tmp_path) -> Path:
    """A valid clip manifest (4 frames per trial) of 3 actions."""
    return write_toy_manifest(tmp_path / "toyclip", clip_frames=4)


def check_plan_rows(df, plan, participant: str):
    """The rows a session wrote against its plan, trial by trial, as every experiment front end
    (lab runner, web page) must write them; yields (row, planned trial) for the caller's own
    checks (timing, software)."""
    trials = plan.trials(participant)
    assert df["order"].tolist() == trials["order"].tolist()
    assert df["trial_id"].tolist() == trials["trial_id"].tolist()
    for row, t in zip(df.itertuples(), trials.itertuples()):
        shown = row.choice_order.split(";")
        assert sorted(shown) == sorted(t.choices.split(";"))
        assert row.response == shown[int(t.order) % len(shown)]  # the key that was pressed
        assert row.correct == (row.response == t.action)
        assert row.sha256 == t.sha256 and row.phase == t.phase and row.block == t.block
        assert row.plan_sha256 == plan.sha256 and row.manifest_sha256 == plan.manifest_sha256
        assert not row.simulated and row.agent == participant and row.agent_kind == "human"
        yield row, t
