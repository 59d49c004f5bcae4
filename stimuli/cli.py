"""`bodyscene stimuli ...`: make, merge and check trial sets."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stimuli", help="make, merge and validate trial sets")
    s = p.add_subparsers(dest="stimuli_command", metavar="SUBCOMMAND", required=True)
    _register_synth(s)
    _register_build(s)
    _register_validate(s)


def add_composition_args(p: argparse.ArgumentParser) -> None:
    """Options shared by every path that composes trials (see stimuli.trialset.TrialSetConfig)."""
    g = p.add_argument_group("trials and composition")
    g.add_argument("--clip-frames", type=int, default=1,
                   help="frames per trial: 1 = single-frame trials, N > 1 = clips of N frames")
    g.add_argument("--fps", type=float, default=None,
                   help="playback rate of clip trials (default: the source's)")
    g.add_argument("--k", type=int, default=None,
                   help="choices offered per trial (default: all actions if <= 8, else 5)")
    g.add_argument("--choices-file", default=None,
                   help="CSV 'action,choices' fixing the ';'-separated choice set per action")
    g.add_argument("--fill", default="0,0,0", help="RGB fill of the body version's background")
    g.add_argument("--dilation", type=float, default=1.2,
                   help="person-mask dilation factor before inpainting (paper: 1.2)")
    g.add_argument("--inpaint-method", choices=("telea", "ns"), default="telea")
    g.add_argument("--inpaint-radius", type=float, default=5.0)
    g.add_argument("--mask-noise", default=None,
                   help="controlled mask noise KIND:FRACTION, KIND in erode|dilate|flip "
                        "(e.g. dilate:0.1)")
    g.add_argument("--conflict-per-action", type=int, default=None,
                   help="conflict trials per action on the test split (default: one per test "
                        "item)")
    g.add_argument("--contact-sheet-items", type=int, default=8)


def composition_config(args: argparse.Namespace, seed: int):
    from .trialset import TrialSetConfig, parse_mask_noise, parse_rgb

    return TrialSetConfig(
        clip_frames=args.clip_frames, fps=args.fps, k=args.k, choices_file=args.choices_file,
        fill=parse_rgb(args.fill), dilation=args.dilation, inpaint_method=args.inpaint_method,
        inpaint_radius=args.inpaint_radius, mask_noise=parse_mask_noise(args.mask_noise),
        conflict_per_action=args.conflict_per_action,
        contact_sheet_items=args.contact_sheet_items, seed=seed)


def _register_synth(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("synth", help="render a trial set from the built-in synthetic action world")
    p.add_argument("--out", required=True, help="output folder (must be new or empty)")
    p.add_argument("--actions", type=int, default=8, help="number of actions (>= 2)")
    p.add_argument("--clips-per-action", type=int, default=12,
                   help="videos rendered per action; split train/val/test by clip")
    p.add_argument("--frames-per-video", type=int, default=16,
                   help="frames in each rendered video")
    p.add_argument("--samples-per-video", type=int, default=2,
                   help="frames (or clips) sampled evenly from each video as trial items")
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--scene-consistency", type=float, default=0.9,
                   help="probability that a clip shows its action's home scene")
    p.add_argument("--figure-scale", type=float, default=1.0,
                   help="figure height relative to the default")
    p.add_argument("--scene-salience", type=float, default=1.0,
                   help="contrast of scene features (0 = plain, 1 = default)")
    p.add_argument("--video-fps", type=float, default=8.0)
    p.add_argument("--split", default="0.6,0.2,0.2", help="train,val,test fractions of clips")
    p.add_argument("--seed", type=int, default=0)
    add_composition_args(p)
    p.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    from .synth import SynthConfig, make_synthetic_trials

    cfg = SynthConfig(
        n_actions=args.actions, clips_per_action=args.clips_per_action,
        frames_per_video=args.frames_per_video, samples_per_video=args.samples_per_video,
        size=args.size, scene_consistency=args.scene_consistency,
        figure_scale=args.figure_scale, scene_salience=args.scene_salience,
        video_fps=args.video_fps, split=_parse_split(args.split),
        seed=args.seed, trials=composition_config(args, args.seed))
    manifest = make_synthetic_trials(args.out, cfg)
    print(f"wrote {manifest}")
    return 0


def _parse_split(text: str) -> tuple[float, float, float]:
    from .errors import BadInput

    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise BadInput(f"--split: expected three fractions TRAIN,VAL,TEST such as 0.6,0.2,0.2, "
                       f"got {text!r}")
    return parts  # type: ignore[return-value]


def _register_build(s: argparse._SubParsersAction) -> None:
    """Real-video path: `build` and `merge` (stimuli.build)."""
    import importlib

    try:
        build = importlib.import_module(f"{__package__}.build")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.build":
            raise
        return
    build.register(s, add_composition_args, composition_config)


def _register_validate(s: argparse._SubParsersAction) -> None:
    v = s.add_parser("validate", help="check a trials.csv: schema, files and hashes")
    v.add_argument("trials", help="path to trials.csv")
    v.add_argument("--no-hashes", action="store_true", help="skip re-hashing the images")
    v.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    from .manifest import read_manifest

    df = read_manifest(args.trials, check_hashes=not args.no_hashes)
    counts = df.groupby(["split", "condition"]).size().unstack(fill_value=0)
    print(f"{args.trials}: {len(df)} trials, {df.item_id.nunique()} items, "
          f"{df.action.nunique()} actions — valid")
    print(counts.to_string())
    return 0
