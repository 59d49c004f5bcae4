"""The trial manifest contract: valid files read, every kind of bad file is one clear error."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from bodyscene.stimuli.manifest import COLUMNS, read_manifest, stimulus_sha256

from bodyscene.errors import BadInput


def _rewrite(path: Path, edit):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
        fields = list(rows[0].keys())
    fields = edit(rows, fields) or fields
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def test_valid_manifest_reads(toy_manifest):
    df = read_manifest(toy_manifest)
    assert list(df.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert set(df.condition) == {"original", "body", "background", "conflict"}
    assert all(p.exists() for p in df.path)
    assert all(a in c for a, c in zip(df.action, df.choice_list))


def test_clip_hash_is_hash_of_frame_digests(toy_clip_manifest):
    import hashlib

    df = read_manifest(toy_clip_manifest)
    stim = df.path.iloc[0]
    frames = sorted(stim.glob("*.png"))
    assert len(frames) == 4
    digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in frames]
    assert stimulus_sha256(stim) == hashlib.sha256("\n".join(digests).encode()).hexdigest()


def test_missing_column(toy_manifest):
    def edit(rows, fields):
        for r in rows:
            del r["sha256"]
        return [f for f in fields if f != "sha256"]
    _rewrite(toy_manifest, edit)
    with pytest.raises(BadInput, match=r"trials.csv: row 1: missing column\(s\) sha256"):
        read_manifest(toy_manifest)


def test_duplicate_trial_id(toy_manifest):
    def edit(rows, fields):
        rows[3]["trial_id"] = rows[0]["trial_id"]
    _rewrite(toy_manifest, edit)
    with pytest.raises(BadInput, match=r"row 5, column 'trial_id': duplicate"):
        read_manifest(toy_manifest)


def test_bad_condition_value(toy_manifest):
    def edit(rows, fields):
        rows[1]["condition"] = "bodies"
    _rewrite(toy_manifest, edit)
    with pytest.raises(BadInput, match=r"row 3, column 'condition': expected one of"):
        read_manifest(toy_manifest)


def test_missing_image(toy_manifest):
    df = read_manifest(toy_manifest)
    df.path.iloc[2].unlink()
    with pytest.raises(BadInput, match=r"row 4, column 'stimulus': stimulus .* is missing"):
        read_manifest(toy_manifest)


def test_hash_mismatch(toy_manifest):
    df = read_manifest(toy_manifest)
    p = df.path.iloc[0]
    p.write_bytes(p.read_bytes() + b"\0")
    with pytest.raises(BadInput, match=r"row 2, column 'sha256': .* does not match"):
        read_manifest(toy_manifest)


def test_true_action_must_be_offered(toy_manifest):
    def edit(rows, fields):
        rows[0]["choices"] = ";".join(c for c in rows[0]["choices"].split(";")
                                      if c != rows[0]["action"])
    _rewrite(toy_manifest, edit)
    with pytest.raises(BadInput, match=r"row 2, column 'choices': the true action"):
        read_manifest(toy_manifest)


def test_cli_reports_one_line(toy_manifest, capsys):
    from bodyscene.cli import main

    toy_manifest.write_text("trial_id\nx\n")
    code = main(["stimuli", "validate", str(toy_manifest)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing column" in err[0]


def test_conflict_trial_must_offer_its_background_action(toy_manifest):
    """Otherwise its background share would be 0 by construction, not by the observers."""
    def edit(rows, fields):
        row = next(r for r in rows if r["condition"] == "conflict")
        keep = [c for c in row["choices"].split(";") if c != row["background_action"]]
        row["choices"] = ";".join(keep)
    _rewrite(toy_manifest, edit)
    with pytest.raises(BadInput, match=r"column 'choices': a conflict trial must offer its "
                                       r"background_action"):
        read_manifest(toy_manifest, check_hashes=False)
