"""`bodyscene experiment plan|run|simulate|config`: the human study from the command line.

PsychoPy is imported only when `run` starts a session."""

from __future__ import annotations

import argparse
from pathlib import Path

from bodyscene.errors import BadInput


def register(sub) -> None:
    p = sub.add_parser("experiment", help="plan, run and simulate the human experiment")
    s = p.add_subparsers(dest="experiment_command", metavar="STEP")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    plan = s.add_parser("plan", help="per-participant trial lists (Latin square) from a manifest")
    plan.add_argument("--trials", required=True, type=Path, help="trial manifest (trials.csv)")
    plan.add_argument("--participants", required=True, type=int)
    plan.add_argument("--out", required=True, type=Path, help="plan folder to create")
    plan.add_argument("--seed", type=int, default=0)
    plan.add_argument("--conditions", default=None,
                      help="comma-separated square conditions (default: all in the test split)")
    plan.add_argument("--practice", type=int, default=None,
                      help="practice items with feedback (default: up to 6, as the val split "
                           "allows)")
    plan.add_argument("--catch", type=int, default=None,
                      help="attention (catch) trials (default: one per 20 main trials, at "
                           "least 2, when there are 20 or more; 0 turns them off)")
    plan.add_argument("--break-every", type=int, default=60)
    plan.add_argument("--max-run", type=int, default=3,
                      help="most consecutive trials of one action or one condition")
    plan.add_argument("--duration", type=float, default=0.2,
                      help="seconds a single image is shown (clips play at their fps)")
    plan.set_defaults(func=_plan)

    run = s.add_parser("run", help="run (or resume) one participant's session in PsychoPy")
    run.add_argument("--plan", required=True, type=Path)
    run.add_argument("--participant", required=True)
    run.add_argument("--session", type=int, default=1, help="session number (1 or more)")
    run.add_argument("--data", type=Path, default=None,
                     help="responses folder (default: data/ inside the plan folder)")
    run.add_argument("--resume", action="store_true",
                     help="continue after the last completed trial of an existing file")
    run.add_argument("--config", type=Path, default=None,
                     help="lab config JSON: monitor profile, timing, texts, labels")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--fullscr", dest="fullscr", action="store_true", default=True,
                      help="full screen (default)")
    mode.add_argument("--windowed", dest="fullscr", action="store_false",
                      help="a window instead of full screen (testing)")
    run.add_argument("--window-size", default=None, help="WxH for --windowed, e.g. 1024x768")
    run.add_argument("--screenshots", type=Path, default=None,
                     help="save each kind of screen once, from the back buffer, into this folder")
    run.add_argument("--assume-refresh", type=float, default=None, metavar="HZ",
                     help="the display cannot be timed (no vsync): pace flips in software at "
                          "HZ and record that (otherwise such a display is refused)")
    run.add_argument("--info", action="append", default=[], metavar="FIELD=VALUE",
                     help="a participant field of the lab config (procedure.participant_fields); "
                          "missing ones are asked on the terminal")
    run.add_argument("--debug-stall", default=None, help=argparse.SUPPRESS)  # ORDER:SECONDS
    run.set_defaults(func=_run)

    sim = s.add_parser("simulate", help="responses files from simulated observers (flagged)")
    sim.add_argument("--plan", required=True, type=Path)
    sim.add_argument("--accuracy", required=True,
                     help="condition=P(correct) pairs, e.g. original=0.8,body=0.85,background=0.6")
    sim.add_argument("--out", required=True, type=Path)
    sim.add_argument("--participants", type=int, default=None,
                     help="simulate the first N planned participants (default: all)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--participant-sd", type=float, default=0.3)
    sim.add_argument("--item-sd", type=float, default=0.3)
    sim.add_argument("--rt-mean", type=float, default=1.0)
    sim.set_defaults(func=_simulate)

    cfg = s.add_parser("config", help="write the default lab config (to edit and translate)")
    cfg.add_argument("--out", required=True, type=Path)
    cfg.set_defaults(func=_config)


def _plan(args: argparse.Namespace) -> int:
    from .plan import PlanConfig, make_plan, read_plan

    conditions = tuple(c.strip() for c in args.conditions.split(",")) if args.conditions else None
    cfg = PlanConfig(n_participants=args.participants, seed=args.seed, conditions=conditions,
                     practice_items=args.practice, catch_trials=args.catch,
                     break_every=args.break_every, max_run=args.max_run,
                     stimulus_s=args.duration)
    plan = read_plan(make_plan(args.trials, args.out, cfg))
    k = len(plan.conditions)
    note = "" if len(plan.participants) % k == 0 else (
        f" (note: {len(plan.participants)} is not a multiple of {k}, so the Latin square is "
        f"incomplete; plan a multiple of {k} participants for full balance)")
    print(f"{args.out}: {len(plan.participants)} participants, conditions "
          f"{', '.join(plan.conditions)}{note}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .experiment import RunConfig, run_session

    size = None
    if args.window_size:
        try:
            w, h = (int(v) for v in args.window_size.lower().split("x"))
        except ValueError:
            raise BadInput(f"--window-size expects WxH such as 1024x768, got "
                           f"{args.window_size!r}") from None
        size = (w, h)
    info = {}
    for item in args.info:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BadInput(f"--info expects FIELD=VALUE, got {item!r}")
        info[name.strip()] = value.strip()
    stall = None
    if args.debug_stall:
        order, _, seconds = args.debug_stall.partition(":")
        stall = (int(order), float(seconds))
    cfg = RunConfig(plan=args.plan, participant=args.participant, session=args.session,
                    data=args.data, resume=args.resume, lab_config=args.config,
                    fullscr=args.fullscr, window_size=size, screenshots=args.screenshots,
                    assume_refresh=args.assume_refresh, info=info, stall=stall)
    return run_session(cfg).exit_code


def _simulate(args: argparse.Namespace) -> int:
    from bodyscene.provenance import write_run_record

    from .plan import read_plan
    from .simulate import ObserverModel, parse_accuracy, simulate_participants

    model = ObserverModel(accuracy=parse_accuracy(args.accuracy),
                          participant_sd=args.participant_sd, item_sd=args.item_sd,
                          rt_mean_s=args.rt_mean)
    names = None
    if args.participants is not None:
        planned = list(read_plan(args.plan).participants)
        if not 1 <= args.participants <= len(planned):
            raise BadInput(f"--participants must be between 1 and {len(planned)} (the plan's "
                           f"participants), got {args.participants}")
        names = planned[:args.participants]
    paths = simulate_participants(args.plan, model, args.out, args.seed, names)
    write_run_record(args.out, model, args.seed, name="simulate_run.json",
                     plan=str(args.plan), files=[p.name for p in paths])
    print(f"{args.out}: {len(paths)} simulated responses files (simulated=true)")
    return 0


def _config(args: argparse.Namespace) -> int:
    from .labconfig import write_default_config

    print(write_default_config(args.out))
    return 0
