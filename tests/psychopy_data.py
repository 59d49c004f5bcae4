"""A PsychoPy Builder trial CSV written by PsychoPy's own data classes, the way a Builder
script writes it: a conditions file read by `importConditions`, a `TrialHandler` loop added to
the `ExperimentHandler`, `<component>.keys` / `<component>.rt` per trial, `nextEntry()`, and
`saveAsWideText` at the end."""

from __future__ import annotations

import csv
from pathlib import Path


def builder_csv(out: Path, trials: list[dict], answers: list[tuple[str, float]],
                participant: str = "P07", session: str = "001") -> Path:
    """trials: {"image": path relative to the manifest, "choices": [...]}; answers: (key, rt)
    per trial. Returns the CSV PsychoPy wrote."""
    from psychopy import data

    out.mkdir(parents=True, exist_ok=True)
    conditions = out / "conditions.csv"
    with open(conditions, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "choice_order"])
        for t in trials:
            w.writerow([t["image"], ";".join(t["choices"])])
    exp_info = {"participant": participant, "session": session, "date": data.getDateStr(),
                "expName": "actions", "psychopyVersion": "2026.2.5", "frameRate": 60.0}
    stem = out / f"{participant}_actions_{exp_info['date']}"
    this_exp = data.ExperimentHandler(name="actions", extraInfo=exp_info, savePickle=False,
                                      saveWideText=False, dataFileName=str(stem))
    loop = data.TrialHandler(nReps=1.0, method="sequential", extraInfo=exp_info,
                             trialList=data.importConditions(str(conditions)), seed=None,
                             name="trials")
    this_exp.addLoop(loop)
    for _, (key, rt) in zip(loop, answers):
        this_exp.addData("fixation.started", 0.1)
        this_exp.addData("key_resp.keys", key)
        this_exp.addData("key_resp.rt", rt)
        this_exp.nextEntry()
    this_exp.saveAsWideText(str(stem) + ".csv", delim="auto")
    this_exp.abort()  # nothing more to save when the process exits
    return Path(str(stem) + ".csv")
