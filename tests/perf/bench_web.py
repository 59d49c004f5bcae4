"""The online experiment under load, and its timing in a browser.

1. Server: `bodyscene experiment serve` (its own process, 127.0.0.1) and N simulated
   participants posting their trials concurrently, each as a page does (one trial after the
   other, retrying on connection errors and 5xx, a 409 counting as stored). Half-way through
   the server is killed with SIGKILL and restarted on the same port. Prints trials/s accepted
   and p50/p99 latency, and checks every participant's file row by row: no trial lost, none
   twice. Baseline (same run): the same rows appended in-process through the lab runner's
   ResponseWriter (fsync per row) - the ratio is what HTTP, validation and threads cost.
2. Browser: one participant's session of T trials with a stimulus of D seconds in headless
   Chromium, answered by key presses; prints the logged stimulus durations against the
   intended whole refreshes (the baseline), dropped frames, and the refresh rate measured.
   Headless Chromium's frames come from a software clock, not a display: this measures the
   page's own scheduling, not a participant's monitor.

    python tests/perf/bench_web.py [--participants 50] [--trials 40] [--browser-trials 200]
        [--duration 0.1] [--budget 600]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import web_browser as wb  # noqa: E402
from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan  # noqa: E402
from bodyscene.human_study.responses import (  # noqa: E402
    RESPONSES_SCHEMA,
    ResponseWriter,
    read_responses,
)
from bodyscene.human_study.web.export import WebConfig, export_site, trial_key  # noqa: E402
from bodyscene.human_study.web.tokens import (  # noqa: E402
    RateLimit,
    load_secret,
    session_token,
    token_ok,
)
from conftest import write_toy_manifest  # noqa: E402


def study(work: Path, participants: int, trials: int, duration: float, lab: dict):
    actions = ("clap", "kick", "wave", "jump")
    per_action = -(-trials // len(actions))
    manifest = write_toy_manifest(work / "toy", actions=actions, size=16, conflict=False,
                                  items_per_split={"val": 1, "test": per_action})
    plan = read_plan(make_plan(manifest, work / "plan", PlanConfig(
        n_participants=participants, practice_items=0, break_every=10_000, max_run=4,
        stimulus_s=duration)))
    (work / "lab.json").write_text(json.dumps(lab))
    site = export_site(WebConfig(plan=plan.dir, out=work / "site", lab_config=work / "lab.json",
                                 quiet=True))
    return plan, site


def bodies(plan, pid: str, secret: bytes) -> list[dict]:
    out = []
    token = session_token(secret, plan.sha256, pid, 1)
    for t in plan.trials(pid).itertuples(index=False):
        choices = t.choices.split(";")
        out.append({"participant": pid, "session": 1,
                    "trial": trial_key(plan.sha256, pid, t.trial_id), "order": int(t.order),
                    "sha256": t.sha256, "response": choices[int(t.order) % len(choices)],
                    "rt_s": 0.5, "choice_order": choices, "stim_intended_s": 0.1,
                    "stim_onset_s": 1.0, "stim_duration_s": 0.1, "dropped_frames": 0,
                    "refresh_hz": 60.0, "window_px": "1280x800", "software": "bench",
                    "token": token})
    return out


def participant(url_of, items: list[dict], latencies: list, deadline: float) -> None:
    """One page: its trials in order, each sent until the server has it."""
    import httpx

    with httpx.Client(timeout=10) as client:
        for body in items:
            delay = 0.05
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError("the benchmark ran past its budget")
                t0 = time.perf_counter()
                try:
                    r = client.post(url_of() + "/api/trial", json=body)
                except httpx.TransportError:
                    r = None
                if r is not None and (r.status_code == 200 or r.status_code == 409):
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t0)
                    break
                if r is not None and r.status_code < 500:
                    raise AssertionError(f"refused: {r.status_code} {r.text}")
                time.sleep(delay)
                delay = min(delay * 2, 1.0)


def bench_server(work: Path, plan, site: Path, n: int, budget: float) -> dict:
    pids = list(plan.participants)[:n]
    data = work / "data"
    secret = load_secret(data)           # the server below signs with the same secret
    items = {pid: bodies(plan, pid, secret) for pid in pids}
    total = sum(len(v) for v in items.values())

    # what the token checks cost: the server's per-post check (HMAC + rate bucket), timed here
    limit = RateLimit(per_s=1e9, burst=10**9)
    flat = [b for v in items.values() for b in v]
    t0 = time.perf_counter()
    for _ in range(5):
        for b in flat:
            assert token_ok(secret, plan.sha256, b["participant"], 1, b["token"])
            assert limit.allow(b["token"])
    token_s = (time.perf_counter() - t0) / 5

    # baseline: the same rows through ResponseWriter in this process (fsync per row)
    from bodyscene.human_study.web.server import Study, trial_row

    checker = Study(plan)
    t0 = time.perf_counter()
    for pid in pids:
        with ResponseWriter(work / "direct" / f"{pid}.csv",
                            columns=RESPONSES_SCHEMA.columns) as w:
            for body in items[pid]:
                w.write(trial_row(body, checker, "bench"))
    direct_s = time.perf_counter() - t0

    server = wb.Server(plan.dir, data, site)
    port = server.port
    current = {"url": server.url}
    latencies: list[float] = []
    deadline = time.monotonic() + budget
    errors: list[BaseException] = []

    def run(pid):
        try:
            participant(lambda: current["url"], items[pid], latencies, deadline)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(pid,)) for pid in pids]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    while len(latencies) < total // 2 and any(th.is_alive() for th in threads):
        time.sleep(0.01)
    killed_at = len(latencies)
    server.kill9()
    down = time.perf_counter()
    time.sleep(0.5)
    server = wb.Server(plan.dir, data, site, port=port)
    restarted = time.perf_counter() - down
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    server.stop()
    if errors:
        raise errors[0]
    lost = dup = 0
    for pid in pids:
        df = read_responses(data / f"{pid}_s1_bodyscene.csv")
        want = plan.trials(pid)["trial_id"].tolist()
        got = df["trial_id"].tolist()
        dup += len(got) - len(set(got))
        lost += len(set(want) - set(got))
        assert df["order"].tolist() == sorted(df["order"].tolist()), pid
    lat = np.array(latencies) * 1000
    return {"participants": n, "trials": total, "wall_s": wall, "trials_per_s": total / wall,
            "up_trials_per_s": total / (wall - restarted),
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "killed_after": killed_at, "restart_s": restarted, "lost": lost,
            "duplicated": dup, "direct_trials_per_s": total / direct_s,
            "token_share": token_s / (wall - restarted), "token_us": token_s / total * 1e6}


def bench_browser(work: Path, plan, site: Path, budget: float) -> dict:
    from playwright.sync_api import sync_playwright

    data = work / "bdata"
    server = wb.Server(plan.dir, data, site)
    pid = list(plan.participants)[0]
    n = len(plan.trials(pid))
    try:
        with sync_playwright() as p:
            browser = wb.launch(p)
            page = wb.open_page(browser, server, pid, size=(1280, 800))
            wb.drive(page, lambda s: s["screen"] == "end", timeout=budget)
            browser.close()
    finally:
        server.stop()
    df = read_responses(data / f"{pid}_s1_bodyscene.csv")
    assert len(df) == n
    dur = df["stim_duration_s"].astype(float).to_numpy()
    intended = df["stim_intended_s"].astype(float).to_numpy()
    hz = df["refresh_hz"].astype(float).to_numpy()
    frames = np.rint(dur * hz).astype(int)
    want = np.rint(intended * hz).astype(int)
    return {"trials": n, "refresh_hz": float(np.median(hz)), "intended_ms": float(intended[0] * 1000),
            "mean_ms": float(dur.mean() * 1000), "sd_ms": float(dur.std() * 1000),
            "min_ms": float(dur.min() * 1000), "max_ms": float(dur.max() * 1000),
            "exact_frames": int((frames == want).sum()),
            "dropped_frames": int(df["dropped_frames"].astype(int).sum()),
            "ratio": float(dur.mean() / intended.mean())}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=50)
    ap.add_argument("--trials", type=int, default=40, help="trials per simulated participant")
    ap.add_argument("--browser-trials", type=int, default=200)
    ap.add_argument("--duration", type=float, default=0.1, help="stimulus seconds (browser)")
    ap.add_argument("--budget", type=float, default=600, help="seconds per part, at most")
    args = ap.parse_args()
    reason = wb.missing()
    if reason:
        print(f"bench_web: {reason}")
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    plan, site = study(work / "load", args.participants, args.trials, args.duration, {})
    s = bench_server(work / "load", plan, site, args.participants, args.budget)
    print(f"server: {s['participants']} participants x {s['trials'] // s['participants']} "
          f"trials posted concurrently to 127.0.0.1, kill -9 after {s['killed_after']} stored, "
          f"restarted in {s['restart_s']:.2f} s")
    print(f"  {s['trials_per_s']:.0f} trials/s accepted over {s['wall_s']:.1f} s wall "
          f"({s['up_trials_per_s']:.0f} trials/s leaving out the outage); latency of stored "
          f"posts p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms")
    print(f"  baseline in-process ResponseWriter: {s['direct_trials_per_s']:.0f} trials/s; "
          f"server (leaving out the outage)/baseline = "
          f"{s['up_trials_per_s'] / s['direct_trials_per_s']:.2f}")
    print(f"  token checks (HMAC + rate limit) {s['token_us']:.1f} us a post = "
          f"{100 * s['token_share']:.2f}% of the server's time per accepted trial (target <= 10%)")
    print(f"  rows lost: {s['lost']}, rows duplicated: {s['duplicated']}")
    lab = {"timing": {"fixation_s": 0.1, "iti_s": 0.05}}
    plan, site = study(work / "browser", 1, args.browser_trials, args.duration, lab)
    b = bench_browser(work / "browser", plan, site, args.budget)
    print(f"browser: {b['trials']} trials of {b['intended_ms']:.1f} ms intended (whole "
          f"refreshes at {b['refresh_hz']:.3f} Hz) in headless Chromium")
    print(f"  logged duration mean {b['mean_ms']:.2f} ms (sd {b['sd_ms']:.2f}, min "
          f"{b['min_ms']:.2f}, max {b['max_ms']:.2f}); measured/intended = {b['ratio']:.4f}")
    print(f"  exactly the intended frames: {b['exact_frames']}/{b['trials']}; dropped frames "
          f"in all: {b['dropped_frames']}")
    return 0 if s["lost"] == 0 and s["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
