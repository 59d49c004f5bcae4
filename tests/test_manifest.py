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


@pytest.mark.parametrize("stimulus,message", [("../../etc/passwd", "leads outside"),
                                              ("stimuli/../../x.png", "leads outside"),
                                              ("/etc/passwd", "absolute path"),
                                              ("C:\\data\\x.png", "absolute path")])
def test_a_stimulus_outside_the_manifest_folder_is_refused(toy_manifest, tmp_path, stimulus,
                                                           message):
    """Even with the file's real sha256, a path leaving the manifest's folder is refused, by
    validation and by every reader (no file outside is read)."""
    import hashlib

    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not yours")

    def edit(rows, fields):
        rows[0]["stimulus"] = stimulus
        rows[0]["sha256"] = hashlib.sha256(outside.read_bytes()).hexdigest()
    _rewrite(toy_manifest, edit)
    for kwargs in ({}, {"check_files": False}):
        with pytest.raises(BadInput, match=f"row 2, column 'stimulus': .*{message}"):
            read_manifest(toy_manifest, **kwargs)


def _swap_frame(toy_manifest, data: bytes):
    """Replace the first stimulus with `data` and write its recomputed hash."""
    import hashlib

    df = read_manifest(toy_manifest)
    df.path.iloc[0].write_bytes(data)

    def edit(rows, fields):
        rows[0]["sha256"] = hashlib.sha256(data).hexdigest()
    _rewrite(toy_manifest, edit)


def test_validate_decodes_every_frame(toy_manifest, capsys):
    import cv2
    import numpy as np

    from bodyscene.cli import main

    assert main(["stimuli", "validate", str(toy_manifest)]) == 0
    img = cv2.imread(str(read_manifest(toy_manifest).path.iloc[0]))
    _swap_frame(toy_manifest, cv2.imencode(".jpg", img)[1].tobytes())
    read_manifest(toy_manifest)                   # the hash alone is satisfied
    with pytest.raises(BadInput, match="row 2, column 'stimulus': .* is not a PNG"):
        read_manifest(toy_manifest, decode=True)
    capsys.readouterr()
    assert main(["stimuli", "validate", str(toy_manifest)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["stimuli", "validate", "--no-decode", str(toy_manifest)]) == 0
    _swap_frame(toy_manifest, b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(BadInput, match="does not decode"):
        read_manifest(toy_manifest, decode=True)
    bigger = np.zeros((img.shape[0] + 2, img.shape[1], 3), np.uint8)
    _swap_frame(toy_manifest, cv2.imencode(".png", bigger)[1].tobytes())
    with pytest.raises(BadInput, match="all frames of an item must match"):
        read_manifest(toy_manifest, decode=True)


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


def test_manifest_object_reads_once_and_answers_from_memory(toy_manifest):
    from bodyscene.stimuli.manifest import Manifest, split_choices
    from bodyscene.tables import file_sha256

    m = Manifest.read(toy_manifest)
    assert Manifest.of(m) is m and m.file == toy_manifest and len(m) == len(m.table)
    assert m.sha256 == file_sha256(toy_manifest)
    assert m.actions == ["clap", "kick", "wave"]
    assert m.vocabulary() == {"clap", "kick", "wave"}
    assert set(m.split("test")["split"]) == {"test"} and len(m.split("all")) == len(m)
    row = m.by_id.loc[m.table["trial_id"].iloc[0]]
    assert list(row["choice_list"]) == split_choices(row["choices"])
    assert split_choices("a;;b;") == ["a", "b"]
