"""`bodyscene experiment plan|run|simulate|config|export-web|serve` and `bodyscene responses
import`: the human study from the command line.

PsychoPy is imported only when `run` starts a session; Starlette/uvicorn only by `serve`."""

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

    web = s.add_parser("export-web", help="the plan as a self-contained static jsPsych site")
    web.add_argument("--plan", required=True, type=Path)
    web.add_argument("--out", required=True, type=Path, help="site folder to create")
    _web_options(web)
    web.set_defaults(func=_export_web)

    srv = s.add_parser("serve", help="the HTTP server online sessions post their trials to "
                                     "(serves the site too)")
    srv.add_argument("--plan", required=True, type=Path)
    srv.add_argument("--data", required=True, type=Path, help="responses folder")
    srv.add_argument("--site", type=Path, default=None,
                     help="an exported site to serve (default: export one to a temporary "
                          "folder)")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default: this computer only)")
    srv.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    srv.add_argument("--allow-origin", default=None,
                     help="origin of a site hosted elsewhere that may post here, e.g. "
                          "https://lab.example.org (CORS)")
    srv.add_argument("--secret-file", type=Path, default=None,
                     help="the session-token secret (default: DATA/web-secret, made on first "
                          "use; keep it private)")
    srv.add_argument("--rate", type=float, default=10.0,
                     help="posts per second allowed per session token after a burst of 200")
    _web_options(srv)
    srv.set_defaults(func=_serve)

    links = s.add_parser("links", help="participant URLs with their session tokens (what goes "
                                       "to Prolific or to each participant)")
    links.add_argument("--plan", required=True, type=Path)
    links.add_argument("--data", required=True, type=Path,
                       help="the responses folder `serve` uses (its web-secret signs the links)")
    links.add_argument("--base", required=True,
                       help="the study's public address, e.g. https://study.example.org/")
    links.add_argument("--session", type=int, default=1)
    links.add_argument("--secret-file", type=Path, default=None)
    links.set_defaults(func=_links)

    resp = sub.add_parser("responses", help="bring responses collected elsewhere into the "
                                            "responses contract")
    rs = resp.add_subparsers(dest="responses_command", metavar="STEP")
    resp.set_defaults(func=lambda args: (resp.print_help(), 2)[1])
    imp = rs.add_parser("import", help="a jsPsych, PsychoPy or tidy CSV data file as a "
                                       "responses file")
    imp.add_argument("source", type=Path, help="the data file to import")
    imp.add_argument("--from", dest="tool", required=True, choices=("jspsych", "psychopy", "csv"))
    imp.add_argument("--trials", required=True, type=Path, help="trial manifest (trials.csv)")
    imp.add_argument("--out", required=True, type=Path, help="responses folder to write into")
    imp.add_argument("--map", action="append", default=[], metavar="COLUMN=SOURCE",
                     help="where a responses column comes from in the source, e.g. "
                          "--map agent=subject --map stimulus=image_file (repeatable)")
    imp.add_argument("--participant", default=None,
                     help="participant id when the file has no participant column")
    imp.add_argument("--session", type=int, default=None)
    imp.set_defaults(func=_import)


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


def _web_options(p) -> None:
    p.add_argument("--config", type=Path, default=None, help="lab config JSON (texts, timing)")
    p.add_argument("--web-texts", type=Path, default=None,
                   help="JSON overriding the texts only the online version shows")
    p.add_argument("--server", default="",
                   help="address of the `serve` API when the site is hosted elsewhere "
                        "(default: the site's own origin)")
    p.add_argument("--completion-code", default=None,
                   help="code shown at the end (default: from the plan's hash)")
    p.add_argument("--redirect", default="",
                   help="URL to open after the end screen, {code} filled in, e.g. "
                        "https://app.prolific.com/submissions/complete?cc={code}")
    p.add_argument("--no-fullscreen", dest="fullscreen", action="store_false")
    p.add_argument("--quiet", action="store_true")


def _web_config(args: argparse.Namespace, out: Path):
    from .web.export import WebConfig

    return WebConfig(plan=args.plan, out=out, lab_config=args.config, web_texts=args.web_texts,
                     server=args.server, completion_code=args.completion_code,
                     redirect_url=args.redirect, fullscreen=args.fullscreen, quiet=args.quiet)


def _export_web(args: argparse.Namespace) -> int:
    from .web.export import export_site

    out = export_site(_web_config(args, args.out))
    print(f"{out}: static site; serve it with `bodyscene experiment serve --plan {args.plan} "
          f"--data DATA --site {out}` or put it on any static host (docs/online.md)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging
    import os
    import shutil
    import sys
    import tempfile

    try:
        from .web.server import bind, create_app, run
        from .web.tokens import RateLimit
    except ImportError as exc:
        raise BadInput(f"serve needs the web extra ({exc.name} is missing): "
                       f"pip install -e '.[web]'") from None
    from .web.export import export_site

    tmp = None
    site = args.site
    if site is None:
        tmp = Path(tempfile.mkdtemp(prefix="bodyscene-site-"))
        site = export_site(_web_config(args, tmp / "site"))
    try:
        args.data.mkdir(parents=True, exist_ok=True)
        log = logging.getLogger("bodyscene.web")
        log.setLevel(logging.INFO)
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
        to_file = logging.FileHandler(args.data / "server.log", encoding="utf-8")
        to_file.setFormatter(fmt)
        to_err = logging.StreamHandler(sys.stderr)
        to_err.setFormatter(fmt)
        to_err.setLevel(logging.WARNING)
        log.addHandler(to_file)
        log.addHandler(to_err)
        if args.rate <= 0:
            raise BadInput(f"--rate must be > 0, got {args.rate}")
        app = create_app(args.plan, args.data, site=site, allow_origin=args.allow_origin,
                         secret_file=args.secret_file, rate=RateLimit(per_s=args.rate))
        sock = bind(args.host, args.port)
        host, port = sock.getsockname()[:2]
        print(f"serving http://{host}:{port}/ (pid {os.getpid()}); site {site}, data "
              f"{args.data}; participant links: bodyscene experiment links", flush=True)
        run(app, sock)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _links(args: argparse.Namespace) -> int:
    """One line per participant: id, then the URL that opens their session with its token."""
    from urllib.parse import urlencode

    from .plan import read_plan
    from .web.tokens import load_secret, session_token

    plan = read_plan(args.plan)
    secret = load_secret(args.data, args.secret_file)
    base = args.base if args.base.endswith("/") else args.base + "/"
    for pid in plan.participants:
        query = {"participant": pid, "token": session_token(secret, plan.sha256, pid,
                                                            args.session)}
        if args.session != 1:
            query["session"] = str(args.session)
        print(f"{pid}\t{base}?{urlencode(query)}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from .importers import import_responses, parse_map

    path, n = import_responses(args.source, args.tool, args.trials, args.out,
                               mapping=parse_map(args.map), participant=args.participant,
                               session=args.session)
    print(f"{path}: {n} rows imported from {args.source} ({args.tool})")
    return 0
