"""The online experiment end to end in headless Chromium (Debian's, driven by Playwright):
export the site, serve it on 127.0.0.1, answer every trial with key presses, reload in the
middle, kill -9 the server and restart it, then check the data file row by row against the
plan, as the lab runner's end-to-end test does. Skips with a reason where Chromium, npm or the
web extra is missing."""

from __future__ import annotations

import json
import shutil

import pytest

import web_browser as wb
from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan
from bodyscene.human_study.responses import read_responses
from conftest import check_plan_rows, write_toy_manifest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LAB = {"timing": {"fixation_s": 0.1, "iti_s": 0.05, "feedback_s": 0.1}}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    reason = wb.missing()
    if reason:
        pytest.skip(reason)
    from bodyscene.human_study.web.export import WebConfig, export_site

    root = tmp_path_factory.mktemp("web")
    manifest = write_toy_manifest(root / "toy", actions=("clap", "kick", "wave", "jump"),
                                  items_per_split={"train": 1, "val": 1, "test": 2})
    plan = read_plan(make_plan(manifest, root / "plan", PlanConfig(
        n_participants=4, practice_items=2, catch_trials=1, break_every=4, stimulus_s=0.1)))
    lab = root / "lab.json"
    lab.write_text(json.dumps(LAB))
    site = export_site(WebConfig(plan=plan.dir, out=root / "site", lab_config=lab, quiet=True,
                                 completion_code="C0DE42"))
    return plan, site, root


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = wb.launch(p)
        yield b
        b.close()


def check_rows(df, plan, participant: str, window: str) -> None:
    for row, t in check_plan_rows(df, plan, participant):
        assert row.rt_s > 0 and "bodyscene-web=" in row.software and "jspsych=8." in row.software
        hz = float(row.refresh_hz)
        intended = float(row.stim_intended_s)
        assert intended == pytest.approx(t.duration_s, abs=0.5 / hz + 1e-6)
        assert float(row.stim_duration_s) >= intended - 0.5 / hz
        assert int(row.dropped_frames) >= 0
        if "stim_frames" in df.columns:  # a column the lab runner may add: the same meaning
            assert int(row.stim_frames) >= 1
        assert float(row.stim_onset_s) > 0
        assert row.browser.startswith("Chrom") and row.window_px == window


def test_session_with_reload_and_server_crash_matches_plan(study, browser, tmp_path):
    plan, site, _ = study
    data = tmp_path / "data"
    server = wb.Server(plan.dir, data, site)
    try:
        page = wb.open_page(browser, server, "P01")
        # a reload while the fourth trial is on screen: the page resumes at that trial
        wb.drive(page, lambda s: s["acked"] >= 3 and s["screen"] == "trial")
        page.reload()
        s = wb.drive(page, lambda s: s["screen"] == "resume")
        # the server dies (kill -9) with two trials still to be answered...
        wb.drive(page, lambda s: s["acked"] >= 6 and s["screen"] == "trial")
        server.kill9()
        s = wb.drive(page, lambda s: s["pending"] >= 2)
        assert s["acked"] == 6
        # ...and comes back on the same port: the page's queue sends what it kept
        server = wb.Server(plan.dir, data, site, port=server.port)
        s = wb.drive(page, lambda s: s["screen"] == "end" and s.get("saved"), timeout=120)
        assert "C0DE42" in page.inner_text("body")
        assert page.errors == []
        df = read_responses(data / "P01_s1_bodyscene.csv")
        check_rows(df, plan, "P01", "1024x768")
        side = [json.loads(x) for x in
                (data / "P01_s1_bodyscene.web.jsonl").read_text().splitlines()]
        attempts = {r["order"]: r["attempt"] for r in side if r["event"] == "trial"}
        assert attempts[3] == 2 and all(a == 1 for o, a in attempts.items() if o != 3)
        starts = [r for r in side if r["event"] == "start"]
        assert [r["resumed"] for r in starts] == [False, True]
        # who has finished gets the end screen again, not a second session: from the same
        # browser, and from a fresh one that only the server remembers
        before = (data / "P01_s1_bodyscene.csv").read_bytes()
        again = wb.open_page(browser, server, "P01", context=page.context)
        assert wb.drive(again, lambda s: s["screen"] == "end")["saved"]
        fresh = wb.open_page(browser, server, "P01")
        assert wb.drive(fresh, lambda s: s["screen"] == "end")["saved"]
        assert (data / "P01_s1_bodyscene.csv").read_bytes() == before
    finally:
        server.stop()


def test_counter_assigns_a_participant_and_keeps_it_across_reloads(study, browser, tmp_path):
    plan, site, _ = study
    data = tmp_path / "data"
    server = wb.Server(plan.dir, data, site)
    try:
        ctx = browser.new_context(viewport={"width": 800, "height": 600})
        page = ctx.new_page()
        page.goto(f"{server.url}/?PROLIFIC_PID=abc123&STUDY_ID=s1&SESSION_ID=x9&fullscreen=0")
        page.wait_for_function("new URL(location.href).searchParams.get('participant')")
        pid = page.evaluate("new URL(location.href).searchParams.get('participant')")
        assert pid == "P01"
        page.reload()
        assert page.evaluate("new URL(location.href).searchParams.get('participant')") == pid
        page.wait_for_function("window.__bodyscene !== undefined")
        side = (data / "P01_s1_bodyscene.web.jsonl").read_text().splitlines()
        rec = json.loads(side[0])
        assert rec["recruitment"] == {"PROLIFIC_PID": "abc123", "STUDY_ID": "s1",
                                      "SESSION_ID": "x9"}
        assert rec["window_px"] == "800x600"
    finally:
        server.stop()


def test_data_of_a_plain_jspsych_experiment_imports(study, browser, tmp_path):
    """jsPsych's own CSV, from its own image-keyboard-response plugin, made live."""
    import pandas as pd

    from bodyscene.human_study.importers import import_responses
    from bodyscene.human_study.web.export import npm_modules

    _, _, root = study
    manifest = root / "toy" / "trials.csv"
    rows = pd.read_csv(manifest).query("split == 'test'").head(3)
    trials = [{"image": r.stimulus, "choices": r.choices.split(";")} for r in rows.itertuples()]
    folder = tmp_path / "jspsych"
    shutil.copytree(root / "toy" / "stimuli", folder / "stimuli")
    csv = wb.jspsych_data_file(browser, npm_modules(), folder, trials, ["2", "1", "3"])
    (folder / "data.csv").write_text(csv)
    import_responses(folder / "data.csv", "jspsych", manifest, tmp_path / "resp")
    df = read_responses(tmp_path / "resp" / "S01_s1_import-jspsych.csv")
    assert df["trial_id"].tolist() == rows["trial_id"].tolist()
    assert df["response"].tolist() == [t["choices"][int(k) - 1]
                                       for t, k in zip(trials, ["2", "1", "3"])]
    assert df["correct"].tolist() == [a == b for a, b in zip(df["response"], rows["action"])]
    assert (df["rt_s"] > 0).all()


def test_clips_play_their_frames_at_the_manifest_fps(browser, tmp_path):
    reason = wb.missing()
    if reason:
        pytest.skip(reason)
    from bodyscene.human_study.web.export import WebConfig, export_site

    manifest = write_toy_manifest(tmp_path / "clip", clip_frames=3,
                                  items_per_split={"val": 1, "test": 1})
    plan = read_plan(make_plan(manifest, tmp_path / "plan",
                               PlanConfig(n_participants=1, practice_items=1)))
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps(LAB))
    site = export_site(WebConfig(plan=plan.dir, out=tmp_path / "site", lab_config=lab,
                                 quiet=True, fullscreen=False))
    server = wb.Server(plan.dir, tmp_path / "data", site)
    try:
        page = wb.open_page(browser, server, "P01")
        wb.drive(page, lambda s: s["screen"] == "end" and s.get("saved"))
    finally:
        server.stop()
    df = read_responses(tmp_path / "data" / "P01_s1_bodyscene.csv")
    trials = plan.trials("P01")
    assert df["trial_id"].tolist() == trials["trial_id"].tolist()   # sha256 of 3 frames matched
    for row, t in zip(df.itertuples(), trials.itertuples()):
        hz = float(row.refresh_hz)
        per_frame = max(1, round(hz / t.fps))           # 8 fps at 60 Hz: 8 refreshes a frame
        assert float(row.stim_intended_s) == pytest.approx(t.n_frames * per_frame / hz,
                                                           abs=1e-5)
        assert float(row.stim_duration_s) >= float(row.stim_intended_s) - 0.5 / hz


@pytest.mark.parametrize("name,press", [("return", "Enter"), ("right", "ArrowRight"), ("f", "f")])
def test_a_configured_continue_key_is_the_one_that_works_and_is_named(study, browser, tmp_path,
                                                                      name, press):
    """Space does nothing, the configured key goes on, and every screen names it."""
    from bodyscene.human_study.web.export import WebConfig, export_site

    plan, _, _ = study
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps({**LAB, "texts": {"continue_key": name},
                               "procedure": {"consent": True}}))
    site = export_site(WebConfig(plan=plan.dir, out=tmp_path / "site", lab_config=lab,
                                 quiet=True, fullscreen=False))
    data = tmp_path / "data"
    server = wb.Server(plan.dir, data, site)
    try:
        page = wb.open_page(browser, server, "P03")
        page.wait_for_function("window.__bodyscene && window.__bodyscene.jsPsych.getCurrentTrial()")
        assert wb.state(page)["screen"] == "consent"
        words = {"return": "Enter", "right": "the right arrow key", "f": "F"}[name]
        assert f"Press {words}" in page.inner_text("body")
        page.keyboard.press(" ")
        page.wait_for_timeout(300)
        assert wb.state(page)["screen"] == "consent"          # space is not the key
        seen = set()

        def until(s):
            if s["screen"] in ("instructions", "practice", "main", "break"):
                seen.add(s["screen"])
                assert "space" not in page.inner_text("body")
            return s["screen"] == "end"
        end = wb.drive(page, until, continue_key=press, timeout=120)
        assert end["saved"] and {"instructions", "practice", "main"} <= seen
        assert not page.errors, page.errors
    finally:
        server.stop()
    df = read_responses(data / "P03_s1_bodyscene.csv")
    assert len(df) == len(plan.trials("P03"))
    assert set(df["timing_mode"]) == {"browser-raf"}                # the lab's flags, filled
    assert df["anticipation"].isin(["true", "false"]).all() and set(df["timed_out"]) == {"false"}
