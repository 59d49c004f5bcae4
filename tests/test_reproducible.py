"""The same seed gives byte-identical stimuli and manifests: hashes recorded before the package
was restructured (issue 10), so moving code can never silently change what the suite makes.

Only what must be identical is hashed: the manifests, every stimulus frame and the exact masks.
Review pictures (contact_sheet.png, masks_sheet.png) are left out: their bytes depend on the
plotting and PNG libraries of the day, not on the stimuli (issue 20)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from bodyscene.stimuli.manifest import stimulus_sha256
from bodyscene.stimuli.synth import SynthConfig, make_synthetic_trials
from bodyscene.stimuli.trialset import TrialSetConfig

# Recorded with the pre-restructure tree (commit 73e94e4) and this exact configuration.
MANIFEST_SHA256 = "77a85d97b70507e65d92fe1e0a8bd91d0472acd8dd7c2b229f664f1b030eb6f9"
# The data files below (manifests, stimuli, masks), recorded when the review pictures left the
# hash (issue 20), with main at e605850, whose trials.csv still matched MANIFEST_SHA256.
DATA_SHA256 = "27aeff528d57fa23cc7cbf86935a79ad0736b3af8a493d55e26ad8696d9adf13"

DATA = ("trials.csv", "items.*.csv", "stimuli/**/*.png", "masks/**/*.png")


def data_hash(root: Path) -> str:
    """sha256 over (relative path, file sha256) of the manifests, stimulus frames and masks."""
    files = sorted({p for pattern in DATA for p in root.glob(pattern) if p.is_file()})
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def test_same_seed_same_bytes_as_before_the_restructure(tmp_path):
    cfg = SynthConfig(n_actions=3, clips_per_action=4, frames_per_video=6, samples_per_video=1,
                      size=32, trials=TrialSetConfig(clip_frames=2, seed=3), progress=False)
    manifest = make_synthetic_trials(tmp_path / "w", cfg)
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == MANIFEST_SHA256
    # every stimulus is the one the (pinned) manifest names
    rows = pd.read_csv(manifest)
    for stim, sha in zip(rows["stimulus"], rows["sha256"]):
        assert stimulus_sha256(manifest.parent / stim) == sha, stim
    assert data_hash(tmp_path / "w") == DATA_SHA256


def test_review_pictures_are_not_hashed(tmp_path):
    root = tmp_path / "w"
    (root / "stimuli" / "body").mkdir(parents=True)
    (root / "trials.csv").write_text("x\n")
    (root / "stimuli" / "body" / "a.png").write_bytes(b"a")
    before = data_hash(root)
    (root / "contact_sheet.png").write_bytes(b"rendered by matplotlib")
    (root / "stimuli_run.json").write_text("{}")
    assert data_hash(root) == before
    (root / "stimuli" / "body" / "a.png").write_bytes(b"b")
    assert data_hash(root) != before
