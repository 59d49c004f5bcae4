"""`bodyscene experiment export-web`: the site holds everything a browser needs and nothing
that gives answers away. Needs npm (jsPsych comes from the npm registry); skips otherwise."""

from __future__ import annotations

import json
import shutil

import pytest

from bodyscene.cli import main
from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan
from bodyscene.stimuli.manifest import stimulus_frames
from bodyscene.tables import file_sha256

pytestmark = pytest.mark.skipif(shutil.which("npm") is None,
                                reason="npm is not installed (bash scripts/install-web.sh)")


def export(manifest, tmp_path, *extra):
    plan = read_plan(make_plan(manifest, tmp_path / "plan",
                               PlanConfig(n_participants=2, practice_items=1)))
    code = main(["experiment", "export-web", "--plan", str(plan.dir), "--out",
                 str(tmp_path / "site"), "--quiet", *extra])
    assert code == 0
    return plan, tmp_path / "site"


def test_site_is_self_contained_and_hides_answers(toy_manifest, tmp_path):
    plan, site = export(toy_manifest, tmp_path, "--completion-code", "ABC123", "--redirect",
                        "https://example.org/done?cc={code}")
    vendored = json.loads((site / "vendor" / "VERSIONS.json").read_text())
    assert vendored["jspsych.js"]["version"] == "8.3.0"
    for name, meta in vendored.items():
        assert file_sha256(site / "vendor" / name) == meta["sha256"]
    for path in [site / "index.html", *site.glob("vendor/*.js")]:
        assert "sourceMappingURL" not in path.read_text()   # devtools would fetch from a CDN
    html = (site / "index.html").read_text()
    assert "http" not in html.replace("http-equiv", "")        # every script is local
    config = json.loads((site / "config.json").read_text())
    assert config["plan_sha256"] == plan.sha256 and config["completion_code"] == "ABC123"
    trials = plan.trials("P01")
    page = json.loads((site / "plan" / "P01.json").read_text())
    text = json.dumps(page)
    for t, shown in zip(trials.itertuples(), page["trials"]):
        assert t.trial_id not in text and t.item_id not in text
        assert ("answer" in shown) == t.feedback
        assert shown["order"] == t.order and sorted(shown["choices"]) == sorted(t.choices.split(";"))
        frames = stimulus_frames(plan.stimulus_path(t.stimulus))
        assert shown["frames"] == [f"stim/{file_sha256(f)}.png" for f in frames]
    for png in site.glob("stim/*.png"):
        assert png.stem == file_sha256(png)
    assert (tmp_path / "site.export.json").exists() and not (site / "site.export.json").exists()


def test_clip_frames_are_exported_in_order(toy_clip_manifest, tmp_path):
    plan, site = export(toy_clip_manifest, tmp_path)
    page = json.loads((site / "plan" / "P02.json").read_text())
    t = plan.trials("P02").iloc[-1]
    shown = page["trials"][-1]
    assert len(shown["frames"]) == 4 and shown["fps"] == t["fps"]
    assert [(site / f).read_bytes() for f in shown["frames"]] == \
        [f.read_bytes() for f in stimulus_frames(plan.stimulus_path(t["stimulus"]))]


def test_an_existing_site_or_a_changed_stimulus_is_refused(toy_manifest, tmp_path, capsys):
    plan, site = export(toy_manifest, tmp_path)
    again = main(["experiment", "export-web", "--plan", str(plan.dir), "--out", str(site)])
    assert again == 2 and "not empty" in capsys.readouterr().err
    t = plan.trials("P01").iloc[0]
    path = plan.stimulus_path(t["stimulus"])
    path.write_bytes(path.read_bytes() + b"\0")
    code = main(["experiment", "export-web", "--plan", str(plan.dir), "--out",
                 str(tmp_path / "site2"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "sha256" in err[0]


@pytest.mark.parametrize("lab,setting", [
    ({"timing": {"mask_s": 0.1}}, "timing.mask_s 0.1"),
    ({"timing": {"response_deadline_s": 3}}, "timing.response_deadline_s 3.0"),
    ({"procedure": {"practice_criterion": 0.8}}, "procedure.practice_criterion 0.8"),
    ({"procedure": {"participant_fields": ["age"]}}, 'procedure.participant_fields ["age"]'),
    ({"texts": {"continue_key": "spacebar"}}, "texts.continue_key 'spacebar' is not a key name"),
])
def test_a_setting_the_page_does_not_implement_is_refused_by_name(toy_manifest, tmp_path, capsys,
                                                                   lab, setting):
    plan = make_plan(toy_manifest, tmp_path / "plan", PlanConfig(n_participants=1))
    (tmp_path / "lab.json").write_text(json.dumps(lab))
    code = main(["experiment", "export-web", "--plan", str(plan), "--out", str(tmp_path / "site"),
                 "--config", str(tmp_path / "lab.json"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and setting in err[0], err
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("name,browser,words", [("return", "Enter", "Enter"),
                                                ("enter", "Enter", "Enter"),
                                                ("right", "ArrowRight", "the right arrow key"),
                                                ("f", "f", "F")])
def test_the_page_gets_the_browser_key_display_names_and_consent(toy_manifest, tmp_path, name,
                                                                  browser, words):
    lab = {"texts": {"continue_key": name}, "procedure": {"consent": True,
                                                          "completion_code": "LAB42"},
           "labels": {"kick": "treten"}}
    (tmp_path / "lab.json").write_text(json.dumps(lab))
    plan, site = export(toy_manifest, tmp_path, "--config", str(tmp_path / "lab.json"))
    config = json.loads((site / "config.json").read_text())
    assert config["keys"] == {"continue": browser}
    assert config["procedure"] == {"consent": True, "choice_order": "trial"}
    assert config["completion_code"] == "LAB42"
    for key in ("instructions", "consent", "practice", "main", "break_", "resume"):
        assert f"Press {words}" in config["texts"][key] and "space" not in config["texts"][key]
    actions = {c for pid in plan.participants for cs in plan.trials(pid)["choices"]
               for c in cs.split(";")}
    assert set(config["labels"]) == actions and config["labels"]["kick"] == "treten"
    assert all(config["labels"][a] == a.replace("_", " ") for a in actions - {"kick"})
