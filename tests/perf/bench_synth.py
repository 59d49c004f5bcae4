"""Synthetic world throughput: trial items (original, body, background and conflict versions)
made per second by the whole `stimuli synth` pipeline, against rendering the same clips alone
(world.render_video, same seeds, same run) as the baseline.

    python tests/perf/bench_synth.py [--size 64] [--actions 8] [--clips-per-action 12]

The pipeline renders only the frames its trial items sample from each clip, then composes
(inpaints), encodes, hashes and writes them with two threads; the second ratio says what all of
that costs on top of drawing those frames."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bodyscene.stimuli import world
from bodyscene.stimuli.synth import (
    SynthConfig,
    choose_scene,
    make_synthetic_trials,
    sample_starts,
)
from bodyscene.seeds import derive_rng
from bodyscene.stimuli.trialset import TrialSetConfig


def render_only(cfg: SynthConfig, sampled: bool = False) -> float:
    """Seconds to render the pipeline's clips with the same per-clip generators: every frame of
    every clip, or (sampled) only the frames its trial items use, as the pipeline does."""
    actions = world.ACTIONS[:cfg.n_actions]
    homes = [world.home_scene(a) for a in actions]
    style = world.WorldStyle(size=cfg.size, figure_scale=cfg.figure_scale,
                             scene_salience=cfg.scene_salience, video_fps=cfg.video_fps)
    t0 = time.perf_counter()
    for a_idx, action in enumerate(actions):
        for c in range(cfg.clips_per_action):
            rng = derive_rng(cfg.seed, f"video/{action}/{c}")
            scene = choose_scene(a_idx, homes, cfg.scene_consistency, rng)
            starts = sample_starts(cfg.frames_per_video, cfg.trials.clip_frames,
                                   cfg.samples_per_video)
            only = sorted({t for s in starts for t in range(s, s + cfg.trials.clip_frames)})
            world.render_video(action, scene, cfg.frames_per_video, style, rng,
                               only=only if sampled else None)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--actions", type=int, default=8)
    ap.add_argument("--clips-per-action", type=int, default=12)
    ap.add_argument("--clip-frames", type=int, default=1)
    args = ap.parse_args()
    cfg = SynthConfig(n_actions=args.actions, clips_per_action=args.clips_per_action,
                      size=args.size, trials=TrialSetConfig(clip_frames=args.clip_frames))
    render_only(SynthConfig(n_actions=2, clips_per_action=3, size=args.size))   # warm-up
    t_render = render_only(cfg)
    t_sampled = render_only(cfg, sampled=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        manifest = make_synthetic_trials(Path(tmp) / "set", cfg)
        t_pipe = time.perf_counter() - t0
        lines = manifest.read_text().splitlines()[1:]
    n_items = len({line.split(",")[1] for line in lines})
    n_trials = len(lines)
    print(f"synthetic world, {cfg.n_actions} actions x {cfg.clips_per_action} clips of "
          f"{cfg.frames_per_video} frames at {cfg.size} px, clip-frames {args.clip_frames}: "
          f"{n_items} items, {n_trials} trials")
    print(f"render_video, whole clips   : {t_render:6.2f} s  {n_items / t_render:8.1f} items/s "
          f"(baseline)")
    print(f"render_video, sampled frames: {t_sampled:6.2f} s  {n_items / t_sampled:8.1f} items/s")
    print(f"full synth pipeline         : {t_pipe:6.2f} s  {n_items / t_pipe:8.1f} items/s "
          f"({n_trials / t_pipe:.1f} trial images/s)")
    print(f"ratio pipeline / render_video whole clips: {t_render / t_pipe:.2f}; "
          f"/ render_video sampled frames: {t_sampled / t_pipe:.2f}")


if __name__ == "__main__":
    main()
