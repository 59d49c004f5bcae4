"""`bodyscene experiment serve`: the HTTP server the online experiment posts each trial to.

Starlette on uvicorn. Routes:
  GET  /api/session/{participant}?session=1  trials already stored, and whether all are
  POST /api/assign   {recruitment}          the next participant nobody has started (a counter)
  POST /api/start    {participant, ...}     a session began or resumed (recorded in the sidecar)
  POST /api/trial    {participant, ...}     one answered trial: validated, appended, fsync'ed
  GET  /healthz, and the exported site itself at / (one command for a pilot)

Every post and the session query carry the session's token (`tokens.py`): none is 401, a wrong
one 403, more posts than the rate limit allows 429; nothing is written for any of them.
A trial is then checked against the plan before anything is written: the participant, the trial
key and its position, the sha256 of the pixels the page showed, the choices offered and the
answer among them; `correct`, block, phase, the hashes and the lab's flags (anticipation from
`min_rt_s`, time-out from the deadline, `timing_mode=browser-raf`, the practice round) come from
the plan and the lab config, never from the browser. A refusal is a 4xx with one line in the
log: 400 not a JSON object, 404 participant not in the plan, 409 trial already answered (the
page treats it as stored: it is a retry whose first answer arrived), 413 body too large, 415 not
JSON, 422 a field that does not match. Replies never name a trial, its action or its condition
(a participant could read them in the browser's developer tools); the log has the detail."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bodyscene.errors import BadInput
from bodyscene.stimuli.manifest import split_choices

from ..labconfig import Timing
from ..plan import Plan, read_plan
from ..responses import check_response, human_row
from ..session import responses_path, software_string
from .export import trial_key
from .store import Duplicate, Store, fsync_dir
from .tokens import RateLimit, load_secret, session_token, token_ok

log = logging.getLogger("bodyscene.web")

MAX_BODY = 16 * 1024
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PX = re.compile(r"^\d{1,5}x\d{1,5}$")
_NUM = (int, float)
# what a page may send with a trial, and the JSON types allowed for each
TRIAL_FIELDS = {
    "participant": (str,), "session": (int,), "trial": (str,), "order": (int,),
    "sha256": (str,), "response": (str,), "rt_s": _NUM, "choice_order": (list,),
    "stim_intended_s": _NUM, "stim_onset_s": _NUM, "stim_offset_s": _NUM,
    "stim_duration_s": _NUM, "stim_frames": (int,), "dropped_frames": (int,),
    "refresh_hz": _NUM, "browser": (str,), "screen_px": (str,), "window_px": (str,),
    "software": (str,), "extra": (dict,), "token": (str,),
}
TRIAL_REQUIRED = ("participant", "session", "trial", "order", "sha256", "response", "rt_s",
                  "choice_order")
START_FIELDS = {
    "participant": (str,), "session": (int,), "plan_sha256": (str,), "recruitment": (dict,),
    "resumed": (bool,), "first_order": (int, type(None)), "browser": (str,),
    "user_agent": (str,), "screen_px": (str,), "window_px": (str,),
    "device_pixel_ratio": _NUM, "client": (str,), "token": (str,),
}
RECRUITMENT_KEYS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId",
                    "hitId", "turkSubmitTo")


class Refused(Exception):
    """A request that is answered with a 4xx and one log line, and never written."""

    def __init__(self, status: int, message: str, detail: str = ""):
        super().__init__(message)
        # message: the reply (never a trial id, action or condition); detail: the log only
        self.status, self.message, self.detail = status, message, detail


@dataclass
class PlannedTrial:
    trial_id: str
    order: int
    block: int
    phase: str
    action: str
    sha256: str
    choices: list[str]
    duration_s: float


class Study:
    """The plan as the server checks it: per participant, trial key (the name the page
    knows a trial by, see `export.trial_key`) -> what was planned."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.trials: dict[str, dict[str, PlannedTrial]] = {}
        for pid in plan.participants:
            self.trials[pid] = {
                trial_key(plan.sha256, pid, t.trial_id): PlannedTrial(
                    t.trial_id, int(t.order), int(t.block), t.phase, t.action, t.sha256,
                    split_choices(t.choices), float(t.duration_s))
                for t in plan.trials(pid).itertuples(index=False)}

    def participant(self, pid: object) -> dict[str, PlannedTrial]:
        if not isinstance(pid, str) or pid not in self.trials:
            raise Refused(404, f"participant {str(pid)[:64]!r} is not in the plan")
        return self.trials[pid]


# --- request checks ------------------------------------------------------------------------------

async def json_body(request, limit: int = MAX_BODY) -> dict:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise Refused(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Refused(413, f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():  # caps a chunked body that declares no length too
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body over {limit} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Refused(400, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "body must be a JSON object")
    return body


def check_fields(body: dict, fields: dict, required: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise Refused(422, f"unknown field(s) {', '.join(unknown)[:200]}")
    missing = [k for k in required if k not in body]
    if missing:
        raise Refused(422, f"missing field(s) {', '.join(missing)}")
    for key, value in body.items():
        allowed = fields[key]
        if value is None and key not in required:
            continue
        # bool is an int in Python: refuse true/false where a number is meant
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise Refused(422, f"{key}: expected {' or '.join(t.__name__ for t in allowed)}, "
                               f"got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise Refused(422, f"{key}: not a finite number")
        if isinstance(value, str) and len(value) > 300:
            raise Refused(422, f"{key}: longer than 300 characters")
    for key in ("screen_px", "window_px"):
        if body.get(key) and not _PX.match(body[key]):
            raise Refused(422, f"{key}: expected WxH, got {body[key][:20]!r}")
    if "session" in body and not 1 <= body["session"] <= 99:
        raise Refused(422, "session must be between 1 and 99")


def check_recruitment(recruitment: object) -> dict:
    """Recruitment-platform parameters: known names, short strings."""
    if not isinstance(recruitment, dict) or any(
            k not in RECRUITMENT_KEYS or not isinstance(v, str) or len(v) > 200
            for k, v in recruitment.items()):
        raise Refused(422, f"recruitment: expected strings for {', '.join(RECRUITMENT_KEYS)}")
    return recruitment


def trial_row(body: dict, study: Study, software: str, timing: Timing | None = None) -> dict:
    """The responses row for a posted trial, or Refused. The lab's flags are computed here
    from `timing` (the lab config the site was exported with)."""
    timing = timing or Timing()
    check_fields(body, TRIAL_FIELDS, TRIAL_REQUIRED)
    planned = study.participant(body["participant"])
    t = planned.get(body["trial"])
    if t is None:
        raise Refused(422, "trial: not in this participant's plan",
                      f"key {body['trial'][:64]!r}")
    if body["order"] != t.order:
        raise Refused(422, "order: not this trial's position in the plan",
                      f"{t.trial_id} is at {t.order}, not {body['order']}")
    wrong = check_response(t.choices, t.sha256, sha256=body["sha256"],
                           choice_order=body["choice_order"], response=body["response"])
    if wrong:
        raise Refused(422, f"{wrong[0]}: {wrong[1]}",
                      f"{t.trial_id}: {str(body.get(wrong[0]))[:120]}")
    for key in ("rt_s", "stim_intended_s", "stim_duration_s", "stim_frames", "dropped_frames",
                "refresh_hz"):
        value = body.get(key)
        if value is not None and not 0 <= value < 3600 * 24:
            raise Refused(422, f"{key}: out of range")
    extra = body.get("extra") or {}
    if len(json.dumps(extra)) > 8000:
        raise Refused(422, "extra: too large")
    rt = float(body["rt_s"])
    deadline = timing.response_deadline_s
    row = human_row(
        agent=body["participant"], session=body["session"], trial_id=t.trial_id,
        action=t.action, sha256=t.sha256, response=body["response"], rt_s=rt, order=t.order,
        block=t.block, choice_order=body["choice_order"], phase=t.phase,
        plan_sha256=study.plan.sha256, manifest_sha256=study.plan.manifest_sha256,
        software=f"{software};{body.get('software', '')}".strip(";"),
        timing_mode="browser-raf", anticipation=rt < timing.min_rt_s,
        timed_out=bool(deadline) and rt > deadline,
        practice_round=1 if t.phase == "practice" else None,
        **{key: body.get(key) for key in (
            "stim_intended_s", "stim_onset_s", "stim_offset_s", "stim_duration_s",
            "stim_frames", "dropped_frames", "refresh_hz", "browser", "screen_px",
            "window_px")})
    return row


# --- participants assigned by a counter -------------------------------------------------------

class Assigner:
    """Hands out the plan's participants in order, each once, persisted in
    data/assignments.jsonl; a recruitment id seen before gets its participant back."""

    def __init__(self, study: Study, store: Store):
        self.study, self.store = study, store
        self.path = store.data_dir / "assignments.jsonl"
        self.lock = threading.Lock()
        self.given: dict[str, str] = {}      # participant -> recruitment key
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.given[rec["participant"]] = rec.get("key", "")

    def assign(self, recruitment: dict) -> str:
        key = "|".join(f"{k}={recruitment[k]}" for k in ("PROLIFIC_PID", "workerId")
                       if recruitment.get(k))
        with self.lock:
            if key:
                for pid, k in self.given.items():
                    if k == key:
                        return pid
            for pid in self.study.trials:   # not handed out, and no file of anyone's
                if pid not in self.given and not responses_path(self.store.data_dir, pid,
                                                                 1).exists():
                    self.given[pid] = key
                    self.store.data_dir.mkdir(parents=True, exist_ok=True)
                    with open(self.path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps({"participant": pid, "key": key,
                                             "recruitment": recruitment,
                                             "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
                                            sort_keys=True) + "\n")
                        fh.flush()
                        os.fsync(fh.fileno())
                    fsync_dir(self.path.parent)
                    return pid
        raise Refused(409, "every participant in the plan has been assigned")


# --- the application ---------------------------------------------------------------------------

def create_app(plan_dir: str | Path, data_dir: str | Path, site: str | Path | None = None,
               allow_origin: str | None = None, max_body: int = MAX_BODY,
               secret_file: str | Path | None = None, rate: RateLimit | None = None,
               timing: Timing | None = None):
    """The ASGI app. `site`: an exported site folder to serve at / (its plan must be this
    plan; its lab timing decides the flags unless `timing` is given); `allow_origin`: a site
    hosted elsewhere that may post here (CORS); `secret_file`: the token secret (default
    `<data_dir>/web-secret`, made on first use); `rate`: posts allowed per session token."""
    import anyio
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    study = Study(read_plan(plan_dir))
    store = Store(Path(data_dir))
    assigner = Assigner(study, store)
    software = software_string().split(";")[0] + ";bodyscene-server"
    secret = load_secret(data_dir, secret_file)
    rate = rate or RateLimit()
    if site is not None:
        site_timing = check_site(Path(site), study.plan)
        timing = timing or Timing(**{k: v for k, v in site_timing.items()
                                     if k in Timing.__dataclass_fields__})
    timing = timing or Timing()

    def authorize(body: dict, token: object, limit: bool = True) -> None:
        """401 without a token, 403 with another session's, 429 over the rate limit."""
        if not token:
            raise Refused(401, "token: missing (open the study through its participant link)")
        pid, n = body.get("participant"), body.get("session", 1)
        if not isinstance(token, str) or not isinstance(pid, str) or \
                not isinstance(n, int) or isinstance(n, bool) or \
                not token_ok(secret, study.plan.sha256, pid, n, token):
            raise Refused(403, "token: not valid for this participant session")
        if limit and not rate.allow(token):
            raise Refused(429, "too many posts; retry later")

    def refuse(request, exc: Refused, who: str = "") -> JSONResponse:
        log.warning("refused %d %s %s%s: %s%s", exc.status, request.method, request.url.path,
                    f" ({who})" if who else "", exc.message,
                    f" [{exc.detail}]" if exc.detail else "")
        headers = {"Retry-After": "1"} if exc.status == 429 else None
        return JSONResponse({"error": exc.message}, exc.status, headers=headers)

    def who_of(body: object) -> str:
        if not isinstance(body, dict):
            return ""
        return " ".join(str(body.get(k))[:64] for k in ("participant", "trial", "order")
                        if k in body)

    async def session(request):
        try:
            try:
                n = int(request.query_params.get("session", "1"))
            except ValueError:
                raise Refused(422, "session must be an integer") from None
            authorize({"participant": request.path_params["participant"], "session": n},
                      request.query_params.get("token"), limit=False)
            planned = study.participant(request.path_params["participant"])
            done = await anyio.to_thread.run_sync(store.peek, request.path_params["participant"],
                                                  n)
        except Refused as exc:
            return refuse(request, exc)
        return JSONResponse({"participant": request.path_params["participant"], "session": n,
                             "done": sorted(done.values()),
                             "complete": len(done) == len(planned)},
                            headers={"Cache-Control": "no-store"})

    async def assign(request):
        body = None
        try:
            body = await json_body(request, max_body)
            recruitment = check_recruitment(body.get("recruitment", {}))
            pid = await anyio.to_thread.run_sync(assigner.assign, recruitment)
        except Refused as exc:
            return refuse(request, exc, who_of(body))
        log.info("assigned %s", pid)
        return JSONResponse({"participant": pid,
                             "token": session_token(secret, study.plan.sha256, pid, 1)})

    async def start(request):
        body = None
        try:
            body = await json_body(request, max_body)
            authorize(body, body.get("token"))
            check_fields(body, START_FIELDS, ("participant", "session", "plan_sha256"))
            check_recruitment(body.get("recruitment", {}))
            study.participant(body["participant"])
            if body["plan_sha256"] != study.plan.sha256:
                raise Refused(422, "plan_sha256 differs from the plan this server runs (the "
                                   "site was exported from another plan)")
            f = await anyio.to_thread.run_sync(store.get, body["participant"], body["session"])
            record = {"event": "start", "received": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      **{k: v for k, v in body.items() if k != "token"}}
            await anyio.to_thread.run_sync(f.note, record)
        except Refused as exc:
            return refuse(request, exc, who_of(body))
        return JSONResponse({"ok": True})

    async def trial(request):
        body = None
        try:
            body = await json_body(request, max_body)
            authorize(body, body.get("token"))
            row = trial_row(body, study, software, timing)
            f = await anyio.to_thread.run_sync(store.get, body["participant"], body["session"])
            try:
                # fsync blocks: off the event loop, the answer goes out once it is on disk
                await anyio.to_thread.run_sync(f.store, row, body.get("extra") or {})
            except Duplicate:
                raise Refused(409, "this trial is already answered",
                              row["trial_id"]) from None
        except Refused as exc:
            return refuse(request, exc, who_of(body))
        log.info("stored %s %s order %d", row["agent"], row["trial_id"], row["order"])
        return JSONResponse({"stored": True})

    async def healthz(request):
        return JSONResponse({"ok": True, "pid": os.getpid(), "plan_sha256": study.plan.sha256})

    routes = [Route("/api/session/{participant}", session, methods=["GET"]),
              Route("/api/assign", assign, methods=["POST"]),
              Route("/api/start", start, methods=["POST"]),
              Route("/api/trial", trial, methods=["POST"]),
              Route("/healthz", healthz, methods=["GET"])]
    if site is not None:
        routes.append(Mount("/", StaticFiles(directory=site, html=True)))
    middleware = []
    if allow_origin:
        middleware.append(Middleware(CORSMiddleware, allow_origins=[allow_origin],
                                     allow_methods=["GET", "POST"],
                                     allow_headers=["Content-Type"]))
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        store.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    return SiteHeaders(app)


def check_site(site: Path, plan: Plan) -> dict:
    """Refuse a site exported from another plan; returns the lab timing it was exported with."""
    config = site / "config.json"
    if not config.is_file():
        raise BadInput(f"{config}: not found; make the site with `bodyscene experiment "
                       f"export-web`")
    cfg = json.loads(config.read_text(encoding="utf-8"))
    sha = cfg.get("plan_sha256")
    if sha != plan.sha256:
        raise BadInput(f"{config}: the site was exported from another plan (plan_sha256 "
                       f"{str(sha)[:12]}... vs {plan.sha256[:12]}...); export it again")
    return cfg.get("timing") or {}


class SiteHeaders:
    """Pure ASGI: a reload must never run a stale experiment.js (no-cache), and cross-origin
    isolation gives the page's clocks 5 us instead of 100 us resolution in Chromium."""

    EXTRA = [(b"cache-control", b"no-cache"),
             (b"cross-origin-opener-policy", b"same-origin"),
             (b"cross-origin-embedder-policy", b"require-corp"),
             (b"cross-origin-resource-policy", b"cross-origin")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                message["headers"] = headers + [(k, v) for k, v in self.EXTRA if k not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- running -----------------------------------------------------------------------------------

def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind before uvicorn starts, so the port is known at once (0 = any free port) and a
    server restarted after a crash can take the same port again (SO_REUSEADDR)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadInput(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


def run(app, sock: socket.socket) -> None:
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(
        sockets=[sock])


class ServerThread:
    """The server in a thread of this process, for tests and benchmarks:
    `with ServerThread(app) as srv: httpx.get(srv.url + "/healthz")`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()
