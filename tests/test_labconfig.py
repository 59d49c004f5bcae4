"""The lab config is validated completely before any window opens (no display needed)."""

from __future__ import annotations

import json

import pytest
from bodyscene.errors import BadInput
from bodyscene.human_study.experiment import RunConfig, participant_info, prepare
from bodyscene.human_study.labconfig import (
    KEYS,
    LabConfig,
    check_keys,
    check_labels,
    load_lab_config,
)
from bodyscene.human_study.layout import Box, layout_labels, rows_needed
from bodyscene.human_study.plan import PlanConfig, make_plan
from conftest import write_toy_manifest


@pytest.mark.parametrize("content, message", [
    ({"texts": {"break_": "Block {m} of {total}"}}, r"texts.break_ uses \{m\}"),
    ({"texts": {"prompt": "Press 1-{k} {keys}"}}, r"texts.prompt uses \{keys\}"),
    ({"texts": {"wrong": "Wrong {answer"}}, "texts.wrong is not a valid template"),
    ({"texts": {"correct": "Correct {0}"}}, r"texts.correct uses \{0\}"),
    ({"timing": {"fixation_s": "0.5"}}, "timing.fixation_s expects a value like 0.5"),
    ({"timing": {"interpolate": 1}}, "timing.interpolate expects"),
    ({"monitor": {"resolution": [1920.5, 1080]}}, "monitor.resolution expects"),
    ({"monitor": {"screen_check": "ignore"}}, "screen_check must be"),
    ({"procedure": {"practice_criterion": 80}}, "practice_criterion is a fraction"),
    ({"procedure": {"participant_fields": ["age", "session"]}}, "participant_fields"),
    ({"procedure": {"practice_max_rounds": "3"}}, "practice_max_rounds expects"),
    ({"labels": {"kick": ""}}, "labels must map"),
])
def test_mistakes_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(content))
    with pytest.raises(BadInput, match=message) as exc:
        load_lab_config(path)
    assert "\n" not in str(exc.value)


def test_good_config_renders_and_translates(tmp_path):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"texts": {"break_": "Block {n} von {total}"},
                                "timing": {"fixation_s": 1}, "labels": {"kick": "treten"}}))
    lab = load_lab_config(path)
    assert lab.timing.fixation_s == 1.0 and isinstance(lab.timing.fixation_s, float)
    assert lab.label("kick") == "treten" and lab.label("jumping_jack") == "jumping jack"


def test_keys_and_labels_are_checked_against_backend_and_manifest():
    lab = LabConfig()
    names = {"space", "return", "escape", "1", "2"}
    check_keys(lab, names, "lab.json")
    lab.texts.continue_key = "enter"          # the vocabulary's name, PsychoPy's "return"
    check_keys(lab, names, "lab.json")
    lab.texts.continue_key = "f"
    with pytest.raises(BadInput, match="'f' is not a key name of the keyboard backend"):
        check_keys(lab, names, "lab.json")
    lab.labels = {"kick": "treten", "jumpin_jack": "Hampelmann"}
    with pytest.raises(BadInput, match="labels for 'jumpin_jack'"):
        check_labels(lab, {"kick", "jumping_jack"}, "lab.json")


@pytest.mark.parametrize("name,psychopy,browser,shown", [
    ("space", "space", " ", "space"), ("return", "return", "Enter", "Enter"),
    ("enter", "return", "Enter", "Enter"), ("right", "right", "ArrowRight", "the right arrow key"),
    ("f", "f", "f", "F")])
def test_a_continue_key_is_one_name_translated_per_venue_and_named_on_every_screen(
        tmp_path, name, psychopy, browser, shown):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"texts": {"continue_key": name}}))
    lab = load_lab_config(path)
    assert (KEYS[name].psychopy, KEYS[name].browser) == (psychopy, browser)
    for text in ("instructions", "consent", "resume", "practice", "practice_again", "main",
                 "break_", "end"):
        said = getattr(lab.texts, text)
        assert f"Press {shown}" in said and "{continue_key}" not in said, (text, said)
        if name != "space":
            assert "space" not in said
    assert lab.texts.break_.format(n=2, total=5).startswith("Take a short break. Block 2 of 5")


@pytest.mark.parametrize("name", ["spacebar", "Return", "F1", ""])
def test_an_unknown_key_is_refused_when_the_config_loads(tmp_path, name):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"texts": {"continue_key": name}}))
    with pytest.raises(BadInput, match=f"texts.continue_key {name!r} is not a key name"):
        load_lab_config(path)


def test_a_text_keeps_literal_braces_and_other_placeholders(tmp_path):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"texts": {"continue_key": "return", "break_":
                                          "{{Pause}} {n}/{total}: {continue_key}"}}))
    lab = load_lab_config(path)
    assert lab.texts.break_.format(n=1, total=3) == "{Pause} 1/3: Enter"


def test_prepare_refuses_session_zero_and_unknown_labels(tmp_path):
    manifest = write_toy_manifest(tmp_path / "toy", items_per_split={"val": 1, "test": 2})
    plan = make_plan(manifest, tmp_path / "plan", PlanConfig(n_participants=1, practice_items=1))
    with pytest.raises(BadInput, match="--session must be 1 or more"):
        prepare(RunConfig(plan=plan, participant="P01", session=0))
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps({"labels": {"kik": "treten"}}))
    with pytest.raises(BadInput, match="labels for 'kik'"):
        prepare(RunConfig(plan=plan, participant="P01", lab_config=lab))
    cfg = RunConfig(plan=plan, participant="P01")
    assert cfg.data_dir() == plan.resolve() / "data"  # one data folder per plan
    assert not (plan / "data").exists()


def test_participant_info_from_flags_and_terminal():
    lab = LabConfig()
    lab.procedure.participant_fields = ["age", "handedness"]
    cfg = RunConfig(plan=".", participant="P01", session=2, info={"age": "31"})
    info = participant_info(cfg, lab, ask=lambda prompt: "right")
    assert info == {"participant": "P01", "session": "2", "age": "31", "handedness": "right"}
    with pytest.raises(BadInput, match="not a participant field"):
        participant_info(RunConfig(plan=".", participant="P01", info={"eyes": "2"}), lab,
                         ask=lambda p: "x")


@pytest.mark.parametrize("window", [(800, 600), (1920, 1080)])
def test_layout_never_overlaps(window):
    """Widths like long action names at 24 px per character's half: k = 2..12 labels."""
    for k in range(2, 13):
        sizes = [(40.0 + 13 * (8 + (i * 7) % 15), 60.0) for i in range(k)]
        boxes = layout_labels(sizes, window, margin=20, gap=30, top=100)
        for i, a in enumerate(boxes):
            assert (a.w, a.h) == sizes[i] and abs(a.x) + a.w / 2 <= window[0] / 2
            assert all(not a.intersects(b) for b in boxes[i + 1:])


def test_layout_rows():
    assert rows_needed([100, 100, 100], room=400, gap=20) == 1
    assert rows_needed([100, 100, 100], room=300, gap=20) == 2
    assert rows_needed([500, 100], room=300, gap=20) == 2  # a column, still too wide
    assert Box(0, 0, 10, 10).intersects(Box(9, 0, 10, 10))
    assert not Box(0, 0, 10, 10).intersects(Box(10, 0, 10, 10))


def test_the_docs_example_config_is_what_experiment_config_writes(tmp_path):
    import re
    from dataclasses import asdict
    from pathlib import Path

    from bodyscene.human_study.labconfig import write_default_config

    doc = (Path(__file__).parents[1] / "docs" / "experiment.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(\{\"monitor\".*?)```", doc, re.S).group(1)
    shown = json.loads(block)
    written = json.loads(write_default_config(tmp_path / "lab.json").read_text())
    for section in ("monitor", "timing", "procedure", "labels"):
        assert shown[section] == written[section], section
    assert list(shown["texts"]) == list(written["texts"]) == list(asdict(LabConfig().texts))
    for key, text in shown["texts"].items():
        if "..." not in text:
            assert text == written["texts"][key], key


def test_a_resolution_mismatch_says_how_to_make_a_profile():
    from bodyscene.human_study.experiment import check_screen

    with pytest.raises(BadInput, match=r"bodyscene experiment config --out lab.json`, set its "
                                       r"monitor.resolution to \[800, 600\] and pass --config"):
        check_screen(LabConfig(), (800, 600), "lab config")
    with pytest.raises(BadInput, match="correct monitor.resolution in lab.json"):
        check_screen(LabConfig(), (800, 600), "lab.json")


@pytest.mark.parametrize("mode", ["trial", "participant"])
def test_the_choice_order_is_fixed_per_participant_on_request_and_the_instructions_say_which(
        tmp_path, mode):
    from bodyscene.human_study.session import choice_order

    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"procedure": {"choice_order": mode}}))
    lab = load_lab_config(path)
    said = {"trial": "changes from trial to trial", "participant": "stay in the same order"}
    assert said[mode] in lab.texts.instructions and "{choice_order}" not in lab.texts.instructions
    actions = [f"a{i}" for i in range(8)]
    seed = "0123456789abcdefP01"
    orders = [choice_order(";".join(actions[i:i + 4]), seed, i, mode) for i in range(5)]
    pairs = {(a, b) for o in orders for i, a in enumerate(o) for b in o[i + 1:]}
    consistent = not any((b, a) in pairs for a, b in pairs)   # one relative order throughout
    assert consistent == (mode == "participant")
    for o, i in zip(orders, range(5)):
        assert sorted(o) == actions[i:i + 4]
        assert o == choice_order(";".join(actions[i:i + 4]), seed, i, mode)  # reproducible
    path.write_text(json.dumps({"procedure": {"choice_order": "random"}}))
    with pytest.raises(BadInput, match="procedure.choice_order must be"):
        load_lab_config(path)


def test_run_refuses_an_unknown_key_as_export_web_does(tmp_path):
    manifest = write_toy_manifest(tmp_path / "toy", items_per_split={"val": 1, "test": 2})
    plan = make_plan(manifest, tmp_path / "plan", PlanConfig(n_participants=1, practice_items=1))
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps({"texts": {"continue_key": "spacebar"}}))
    with pytest.raises(BadInput, match="texts.continue_key 'spacebar' is not a key name"):
        prepare(RunConfig(plan=plan, participant="P01", lab_config=lab))
