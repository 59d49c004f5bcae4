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

from bodyscene.configs import ConfigError, opt
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


def parse_split(text: str) -> tuple[float, float, float]:
    """TRAIN,VAL,TEST fractions from the command line."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise ConfigError("split", f"expected three fractions TRAIN,VAL,TEST such as "
                                   f"0.6,0.2,0.2, got {text!r}")
    return parts  # type: ignore[return-value]


@dataclass
class SynthConfig:
    """The synthetic world, declared once: `bodyscene stimuli synth` builds its options from
    these fields. Its seed is the trial set's (`trials.seed`), the one seed of a world."""

    n_actions: int = opt(8, "number of actions (>= 2)", flag="--actions")
    clips_per_action: int = opt(12, "videos rendered per action; split train/val/test by clip")
    frames_per_video: int = opt(16, "frames in each rendered video")
    samples_per_video: int = opt(2, "frames (or clips) sampled evenly from each video as trial "
                                 "items")
    size: int = opt(64, "image side in pixels")
    scene_consistency: float = opt(0.9, "probability that a clip shows its action's home scene")
    figure_scale: float = opt(1.0, "figure height relative to the default")
    scene_salience: float = opt(1.0, "contrast of scene features (0 = plain, 1 = default)")
    video_fps: float = opt(8.0, "playback rate of the rendered videos")
    split: tuple[float, float, float] = opt((0.6, 0.2, 0.2), "train,val,test fractions of "
                                            "clips (default: 0.6,0.2,0.2)", parse=parse_split)
    trials: TrialSetConfig = field(default_factory=TrialSetConfig)
    progress: bool = opt(True, "no progress bars", flag="--quiet", inverted=True)

    @property
    def seed(self) -> int:
        return self.trials.seed

    def check(self) -> None:
        """Impossible settings, named by field (the command line maps them to its flags)."""
        if not 2 <= self.n_actions <= len(world.ACTIONS):
            raise ConfigError("n_actions", f"the synthetic world has {len(world.ACTIONS)} "
                                           f"actions; choose 2 to {len(world.ACTIONS)}, got "
                                           f"{self.n_actions}")
        if self.clips_per_action < 3:
            raise ConfigError("clips_per_action", f"at least 3 (one per split), got "
                                                  f"{self.clips_per_action}")
        if not 0.0 <= self.scene_consistency <= 1.0:
            raise ConfigError("scene_consistency", f"expected a probability, got "
                                                   f"{self.scene_consistency}")
        if self.size < 16:
            raise ConfigError("size", f"at least 16 px, got {self.size}")
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) < 0:
            raise ConfigError("split", f"three non-negative fractions summing to 1, got "
                                       f"{self.split}")
        clip = self.trials.clip_frames
        if not 1 <= clip <= self.frames_per_video:
            raise ConfigError("clip_frames", f"between 1 and frames_per_video "
                                             f"({self.frames_per_video}), got {clip}")
        if self.samples_per_video < 1:
            raise ConfigError("samples_per_video", f"at least 1, got {self.samples_per_video}")
        if self.frames_per_video < 1:
            raise ConfigError("frames_per_video", f"at least 1, got {self.frames_per_video}")
        if not 0 < self.video_fps <= 1000:
            raise ConfigError("video_fps", f"in (0, 1000] frames per second, got "
                                           f"{self.video_fps}")
        if not 0.1 <= self.figure_scale <= 1.5:
            raise ConfigError("figure_scale", f"between 0.1 and 1.5, got {self.figure_scale}")
        if not 0.0 <= self.scene_salience <= 1.0:
            raise ConfigError("scene_salience", f"between 0 (plain) and 1 (full), got "
                                                f"{self.scene_salience}")
        k = self.trials.k
        if k is not None and not 2 <= k <= self.n_actions:
            raise ConfigError("k", f"choices per trial must be between 2 and the number of "
                                   f"actions ({self.n_actions}), got {k}")
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
        raise ConfigError("split", f"{n} clips per action cannot be split as {fractions} with "
                                   f"at least one clip in every non-empty part; render more "
                                   f"clips")
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
