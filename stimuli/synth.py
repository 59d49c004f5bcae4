"""The embedded default data set: a trial set rendered from the synthetic action world.

Each action gets `clips_per_action` videos; a video shows the action's home scene with
probability `scene_consistency`, otherwise another action's home scene, which plants the same
body/background confound that real action datasets have. Videos are split train/val/test by
clip (never by frame), and trial items are frames or short clips sampled evenly from each video,
as they would be from real footage."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bodyscene.errors import BadInput
from bodyscene.seeds import derive_rng
from bodyscene.tables import fresh_output_dir

from . import world
from .trialset import (
    Item,
    TrialSetConfig,
    TrialSetWriter,
    finalize,
    read_choices_file,
)


@dataclass
class SynthConfig:
    n_actions: int = 8
    clips_per_action: int = 12
    frames_per_video: int = 16
    samples_per_video: int = 2
    size: int = 64
    scene_consistency: float = 0.9
    figure_scale: float = 1.0
    scene_salience: float = 1.0
    video_fps: float = 8.0
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0
    trials: TrialSetConfig = field(default_factory=TrialSetConfig)
    progress: bool = True

    def check(self) -> None:
        if not 2 <= self.n_actions <= len(world.ACTIONS):
            raise BadInput(f"--actions: the synthetic world has {len(world.ACTIONS)} actions; "
                           f"choose 2 to {len(world.ACTIONS)}, got {self.n_actions}")
        if self.clips_per_action < 3:
            raise BadInput(f"--clips-per-action: at least 3 (one per split), got "
                           f"{self.clips_per_action}")
        if not 0.0 <= self.scene_consistency <= 1.0:
            raise BadInput(f"--scene-consistency: expected a probability, got "
                           f"{self.scene_consistency}")
        if self.size < 16:
            raise BadInput(f"--size: at least 16 px, got {self.size}")
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) < 0:
            raise BadInput(f"--split: three non-negative fractions summing to 1, got {self.split}")
        clip = self.trials.clip_frames
        if not 1 <= clip <= self.frames_per_video:
            raise BadInput(f"--clip-frames: between 1 and --frames-per-video "
                           f"({self.frames_per_video}), got {clip}")
        if self.samples_per_video < 1:
            raise BadInput(f"--samples-per-video: at least 1, got {self.samples_per_video}")
        if self.frames_per_video < 1:
            raise BadInput(f"--frames-per-video: at least 1, got {self.frames_per_video}")
        if not 0 < self.video_fps <= 1000:
            raise BadInput(f"--video-fps: in (0, 1000] frames per second, got {self.video_fps}")
        if not 0.1 <= self.figure_scale <= 1.5:
            raise BadInput(f"--figure-scale: between 0.1 and 1.5, got {self.figure_scale}")
        if not 0.0 <= self.scene_salience <= 1.0:
            raise BadInput(f"--scene-salience: between 0 (plain) and 1 (full), got "
                           f"{self.scene_salience}")
        k = self.trials.k
        if k is not None and not 2 <= k <= self.n_actions:
            raise BadInput(f"--k: choices per trial must be between 2 and the number of actions "
                           f"({self.n_actions}), got {k}")
        self.trials.check()
        split_of_clips(self.clips_per_action, self.split, np.random.default_rng(0))


def split_of_clips(n: int, fractions: tuple[float, float, float],
                   rng: np.random.Generator) -> list[str]:
    """Assign n clips to train/val/test: counts from the fractions (val and test get at least
    one clip each when they have a non-zero share), membership shuffled with the seed."""
    n_val = max(1, round(fractions[1] * n)) if fractions[1] > 0 else 0
    n_test = max(1, round(fractions[2] * n)) if fractions[2] > 0 else 0
    n_train = n - n_val - n_test
    if n_train < (1 if fractions[0] > 0 else 0) or n_train < 0:
        raise BadInput(f"--split: {n} clips per action cannot be split as {fractions} with at "
                       f"least one clip in every non-empty part; render more clips")
    labels = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return [labels[j] for j in rng.permutation(n)]


def choose_scene(action_index: int, homes: list[str], consistency: float,
                 rng: np.random.Generator) -> str:
    """The scene of one clip: its action's home scene with probability `consistency`, otherwise
    the home scene of another action drawn uniformly (the body/background confound)."""
    if rng.random() < consistency:
        return homes[action_index]
    others = [h for j, h in enumerate(homes) if j != action_index]
    return others[int(rng.integers(len(others)))]


def sample_starts(n_frames: int, window: int, samples: int) -> list[int]:
    """Start frames of `samples` windows of `window` frames spread evenly over a video."""
    last = n_frames - window
    if samples == 1:
        return [last // 2]
    return sorted({int(round(x)) for x in np.linspace(0, last, samples)})


def make_synthetic_trials(out: str | Path, cfg: SynthConfig) -> Path:
    """Render the world's videos, write their trial items and finalize the trial set in `out`
    (a new or empty folder); returns the path of trials.csv."""
    cfg.check()
    out = Path(out)
    fresh_output_dir(out)
    actions = world.ACTIONS[:cfg.n_actions]
    if cfg.trials.choices_file:   # a bad choices file fails now, not after rendering
        read_choices_file(Path(cfg.trials.choices_file), sorted(actions))
    homes = [world.home_scene(a) for a in actions]
    style = world.WorldStyle(size=cfg.size, figure_scale=cfg.figure_scale,
                             scene_salience=cfg.scene_salience, video_fps=cfg.video_fps)
    writer = TrialSetWriter(out, cfg.trials)
    window = cfg.trials.clip_frames
    jobs = [(a_idx, c) for a_idx in range(len(actions)) for c in range(cfg.clips_per_action)]
    splits = {a_idx: split_of_clips(cfg.clips_per_action, cfg.split,
                                    derive_rng(cfg.seed, f"split/{actions[a_idx]}"))
              for a_idx in range(len(actions))}

    def render(job):
        a_idx, c = job
        action = actions[a_idx]
        rng = derive_rng(cfg.seed, f"video/{action}/{c}")
        scene = choose_scene(a_idx, homes, cfg.scene_consistency, rng)
        starts = sample_starts(cfg.frames_per_video, window, cfg.samples_per_video)
        # render just the frames the trial items sample (identical to a full render's frames)
        needed = sorted({t for s in starts for t in range(s, s + window)})
        frames, masks = world.render_video(action, scene, cfg.frames_per_video, style, rng,
                                           only=needed)
        for start in starts:
            sl = [needed.index(t) for t in range(start, start + window)]
            writer.add(Item(
                item_id=f"{action}_{c:03d}_f{start:03d}", action=action,
                split=splits[a_idx][c], source=f"synth:seed={cfg.seed}:{action}/{c:03d}:{scene}",
                frame=start, fps=cfg.video_fps, frames=frames[sl], masks=masks[sl],
                segmenter="exact", exact_masks=masks[sl]))

    # OpenCV drawing, inpainting and PNG encoding release the GIL: two threads use both cores
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in tqdm(pool.map(render, jobs), total=len(jobs), desc="synth videos",
                      unit="video", leave=False, disable=not cfg.progress):
            pass
    writer.close()
    return finalize(out, cfg.trials, run_config=cfg)
