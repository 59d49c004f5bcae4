"""The same seed gives byte-identical stimuli and manifests: hashes recorded before the package
was restructured (issue 10), so moving code can never silently change what the suite makes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bodyscene.stimuli.synth import SynthConfig, make_synthetic_trials
from bodyscene.stimuli.trialset import TrialSetConfig

# Recorded with the pre-restructure tree (commit 73e94e4) and this exact configuration.
MANIFEST_SHA256 = "77a85d97b70507e65d92fe1e0a8bd91d0472acd8dd7c2b229f664f1b030eb6f9"
TREE_SHA256 = "e642d9847a0c5a8467dcc4934c8dd4749d034fde861c5b0147257fe89cdf7093"


# files added since the recording that hold no stimulus (a review picture of the masks)
ADDED_SINCE = {"masks_sheet.png"}


def tree_hash(root: Path) -> str:
    """sha256 over (relative path, file sha256) of every file but the JSON run records, which
    hold times and versions, and the files ADDED_SINCE the hashes were recorded."""
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file() and q.suffix != ".json"
                    and q.relative_to(root).as_posix() not in ADDED_SINCE):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def test_same_seed_same_bytes_as_before_the_restructure(tmp_path):
    cfg = SynthConfig(n_actions=3, clips_per_action=4, frames_per_video=6, samples_per_video=1,
                      size=32, seed=3, trials=TrialSetConfig(clip_frames=2, seed=3),
                      progress=False)
    manifest = make_synthetic_trials(tmp_path / "w", cfg)
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == MANIFEST_SHA256
    assert tree_hash(tmp_path / "w") == TREE_SHA256
