"""One plan, two venues: the lab runner (PsychoPy on Xvfb, xdotool key presses) and the web page
(headless Chromium against `experiment serve`) run the same participant's trials with the same
lab config and the same keys, and their responses files are compared column by column: same
trials in the same order, same plan facts, and the same columns filled (the lab's flags
included). The only columns allowed to differ in being filled are the browser's own."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import web_browser as wb
from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan
from bodyscene.human_study.responses import BROWSER_COLUMNS, RESPONSES_SCHEMA
from conftest import write_toy_manifest
from test_experiment_display import LAB, Session, _missing, display, sessions  # noqa: F401

pytestmark = [pytest.mark.display, pytest.mark.browser, pytest.mark.slow]

# the same in both venues, row by row
SAME = ("agent", "agent_kind", "session", "trial_id", "sha256", "order", "block", "phase",
        "plan_sha256", "manifest_sha256", "simulated", "practice_round")
# what each venue measures itself, but must fill on every row
MEASURED = ("response", "correct", "rt_s", "choice_order", "timestamp", "software",
            "stim_intended_s", "stim_onset_s", "stim_offset_s", "stim_duration_s",
            "stim_frames", "dropped_frames", "refresh_hz", "timing_mode", "timed_out",
            "anticipation")


def test_lab_and_web_write_the_same_rows_for_the_same_plan(display, sessions,  # noqa: F811
                                                          tmp_path):
    reason = _missing() or wb.missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    from bodyscene.human_study.web.export import WebConfig, export_site

    manifest = write_toy_manifest(tmp_path / "toy", size=16,
                                  items_per_split={"train": 1, "val": 1, "test": 2})
    plan = read_plan(make_plan(manifest, tmp_path / "plan", PlanConfig(
        n_participants=1, practice_items=2, catch_trials=1, break_every=3, stimulus_s=0.1)))
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps(LAB))

    s = Session(sessions, display, plan, lab, tmp_path / "lab-data", "P01")
    s.answer(len(s.trials))
    assert s.finish() == 0

    site = export_site(WebConfig(plan=plan.dir, out=tmp_path / "site", lab_config=lab,
                                 quiet=True, fullscreen=False))
    server = wb.Server(plan.dir, tmp_path / "web-data", site)
    try:
        with sync_playwright() as p:
            browser = wb.launch(p)
            page = wb.open_page(browser, server, "P01")
            assert wb.drive(page, lambda st: st["screen"] == "end", timeout=120)["saved"]
            browser.close()
    finally:
        server.stop()

    def read(path):
        return pd.read_csv(path, dtype=str, keep_default_na=False)

    lab_rows = read(s.path)
    web_rows = read(tmp_path / "web-data" / "P01_s1_bodyscene.csv")
    assert list(lab_rows.columns) == list(web_rows.columns) == list(RESPONSES_SCHEMA.columns)
    assert len(lab_rows) == len(web_rows) == len(plan.trials("P01"))
    for col in SAME:
        assert lab_rows[col].tolist() == web_rows[col].tolist(), col
    for col in MEASURED:
        for venue, rows in (("lab", lab_rows), ("web", web_rows)):
            assert (rows[col] != "").all(), (venue, col)
    for rows in (lab_rows, web_rows):
        for row in rows.itertuples():
            shown = row.choice_order.split(";")
            assert row.response == shown[int(row.order) % len(shown)]   # the key pressed
    assert set(lab_rows["timing_mode"]) == {"software"}
    assert set(web_rows["timing_mode"]) == {"browser-raf"}
    for col in BROWSER_COLUMNS:             # the browser's own: empty in the lab
        assert (lab_rows[col] == "").all() and (web_rows[col] != "").all(), col
    compared = set(SAME) | set(MEASURED) | set(BROWSER_COLUMNS)
    assert compared == set(RESPONSES_SCHEMA.columns), set(RESPONSES_SCHEMA.columns) - compared
