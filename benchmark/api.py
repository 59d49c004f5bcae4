"""The Python API: a model scored, compared with people and reported in three calls.

    import bodyscene
    preds = bodyscene.evaluate("torchvision", "stim/trials.csv", weights="resnet18.pth",
                               options={"arch": "resnet18"}, label_map="imagenet.csv")
    board = bodyscene.compare(preds, "responses/", "stim/trials.csv")

`evaluate` returns the predictions contract as a DataFrame (what `read_predictions` gives for the
file, its run record in `.attrs["run"]`), `compare` the report's own leaderboard and per-condition
tables as DataFrames, `report` the report folder. The command line calls these same functions;
nothing here re-implements the harness or the analysis."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from bodyscene.errors import BadInput

# keyword settings of evaluate() beyond its named parameters, by the path they go to
_RUN_SETTINGS = ("num_classes", "label_combine", "image_size", "clips", "readout",
                 "aggregation", "cache", "threads")
_CALLABLE_SETTINGS = ("input", "views", "image_size", "clip_frames", "clip_sampling",
                      "clip_layout", "input_transform", "aggregation")


def evaluate(model: Any, trials: str | Path, *, out: str | Path | None = None,
             weights: str | Path | None = None, random_init: bool = False,
             options: dict[str, Any] | None = None, label_map: str | Path | None = None,
             device: str = "auto", amp: bool = False, batch_size: int = 64,
             split: str = "test", name: str | None = None, progress: bool = False,
             **settings: Any) -> pd.DataFrame:
    """Score `model` on the trials people answered; the predictions as a DataFrame.

    `model` is a registry name, `module:factory` or entry point (built with `options`, loaded
    from the local `weights`; a pretrained architecture without weights is refused unless
    `random_init`), a checkpoint of `bodyscene train` (a `.pt` path), a torch `nn.Module`
    (scored as it is; its weights' sha256 is recorded), or a plain function
    `fn(*views) -> probabilities (N, actions)`. With `out` (predictions/NAME.csv) the file(s)
    and run record are written there, as by `bodyscene evaluate`; without, nothing is kept.
    The agent is `name`, else out's stem, else the model's name. `device="auto"` picks CUDA,
    then MPS, then CPU (recorded in `.attrs["run"]["device"]`); `amp` autocasts on CUDA.
    Further `settings`: num_classes, label_combine, image_size, clips, readout, aggregation,
    cache, threads (CPU threads, pinned with deterministic kernels; default: torch's setting
    as it is, recorded either way); for a function: input, views, image_size, clip_frames,
    clip_sampling, clip_layout, input_transform, aggregation."""
    from bodyscene.benchmark.harness.predictions import read_predictions

    with tempfile.TemporaryDirectory(prefix="bodyscene-evaluate-") as tmp:
        target = Path(out) if out is not None else \
            Path(tmp) / f"{_safe(name or _model_name(model))}.csv"
        if out is not None and name is not None and target.stem != name:
            raise BadInput(f"name {name!r} and out {str(out)!r}: the agent is out's file name; "
                           f"give one of them")
        path = _score(model, trials, target, weights=weights, random_init=random_init,
                      options=options or {}, label_map=label_map, device=device, amp=amp,
                      batch_size=batch_size, split=split, progress=progress, **settings)
        df = read_predictions(path)
        record = path.parent / f"{path.stem}.run.json"
        df.attrs["run"] = json.loads(record.read_text(encoding="utf-8"))
    return df


def _score(model: Any, trials, out: Path, *, weights, random_init: bool, options: dict,
           label_map, device: str, amp: bool, batch_size: int, split: str, progress: bool,
           **settings: Any) -> Path:
    """The predictions file written for `model` (any kind evaluate() takes) at `out`."""
    from torch import nn

    from bodyscene.benchmark.harness.evaluate import EvalConfig, evaluate_callable, score
    from bodyscene.benchmark.harness.evaluate import evaluate as evaluate_config
    from bodyscene.stimuli.manifest import Manifest

    if isinstance(model, (str, Path)):
        _known(settings, _RUN_SETTINGS, "a model name or checkpoint")
        checkpoint = _is_checkpoint(model)
        cfg = EvalConfig(checkpoint=str(model) if checkpoint else None, trials=str(
            getattr(trials, "file", trials)), out=str(out),
            model=None if checkpoint else str(model), weights=str(weights) if weights else None,
            random_init=random_init, model_options=dict(options),
            label_map=str(label_map) if label_map else None, device=device, amp=amp,
            batch_size=batch_size, split=split, progress=progress, **settings)
        return evaluate_config(cfg, trials if isinstance(trials, Manifest) else None)[0]
    if weights or random_init or options:
        raise BadInput("weights, random_init and options go with a model name or "
                       "checkpoint; a model object or function is scored as it is")
    manifest = Manifest.of(trials)
    if isinstance(model, nn.Module):
        _known(settings, _RUN_SETTINGS, "a model object")
        cfg = EvalConfig(trials=str(manifest.file), out=str(out), device=device, amp=amp,
                         batch_size=batch_size, split=split, progress=progress,
                         label_map=str(label_map) if label_map else None, **settings)
        return score(module_run(model, manifest.actions, cfg), manifest, cfg)[0]
    if not callable(model):
        raise BadInput(f"model: expected a model name, a checkpoint path, a torch module or a "
                       f"function, got {type(model).__name__}")
    _known(settings, _CALLABLE_SETTINGS, "a function")
    if label_map or amp:
        raise BadInput("label_map and amp go with models; a function returns probabilities "
                       "over the manifest's actions")
    return evaluate_callable(model, manifest, out, batch_size=batch_size, split=split,
                             device=device, progress=progress, **settings)


def module_run(model, actions: list[str], cfg) -> Any:
    """A ModelRun for a torch module given as an object: its views default to the original
    frame, and the record states the sha256 of its state dict (its weights)."""
    from bodyscene.models.weights import state_sha256

    from bodyscene.benchmark.harness.evaluate import ModelRun
    from bodyscene.benchmark.harness.labelmap import read_label_map

    if not hasattr(model, "views"):
        model.views = ("original",)
    name = _model_name(model)
    num_classes = cfg.num_classes or (len(getattr(model, "class_names", ()) or ())
                                      if cfg.label_map else len(actions))
    if not num_classes:
        raise BadInput(f"model {name!r} with a label map: give num_classes (its class count)")
    facts = {"source": "module", "model": name, "num_classes": num_classes,
             "weights_sha256": state_sha256(model), "random_init": False}
    run = ModelRun(model.eval(), name, facts, num_classes, cfg.image_size)
    if cfg.label_map:
        run.label_map = read_label_map(cfg.label_map, actions, num_classes,
                                       getattr(model, "class_names", None), cfg.label_combine)
        facts.update(run.label_map.record())
    return run


def _is_checkpoint(model: Any) -> bool:
    """A Path, or a name ending in .pt (no model name does): a missing file is then reported
    as a missing checkpoint, not as an unknown model."""
    return isinstance(model, Path) or (isinstance(model, str) and model.endswith(".pt"))


def _model_name(model: Any) -> str:
    if isinstance(model, (str, Path)):
        text = str(model)
        return Path(text).parent.name or Path(text).stem if _is_checkpoint(model) else \
            text.rsplit(":", 1)[-1]
    return getattr(model, "__name__", None) or type(model).__name__


def _safe(name: str) -> str:
    """A file stem from an agent name (the stem is the agent)."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")
    return cleaned or "model"


def _known(settings: dict, allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise BadInput(f"setting {unknown[0]!r} does not apply to {what}; it takes "
                       f"{', '.join(allowed)}")


# ------------------------------------------------------------------------------ compare

@dataclass
class Leaderboard:
    """The report's comparison of models with people, as DataFrames (no files).

    board        one row per observer: the people first, then models in rank order
                 (`leaderboard.csv` of the report), with `weights` (sha256 or "random init")
    accuracy     accuracy per group and condition with bootstrap intervals (accuracy.csv)
    consistency  error consistency of each model with the people (error_consistency.csv)
    tables       every table of the report by name
    observations the tidy trials table every statistic was computed from"""

    board: pd.DataFrame
    accuracy: pd.DataFrame
    consistency: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    observations: pd.DataFrame

    def by_condition(self, observer: str) -> dict[str, float]:
        """An observer's (group's) accuracy per condition."""
        rows = self.accuracy[self.accuracy["group"] == observer]
        if rows.empty:
            raise BadInput(f"no observer {observer!r}; the groups are "
                           f"{', '.join(dict.fromkeys(self.accuracy['group']))}")
        return dict(zip(rows["condition"], rows["accuracy"].astype(float)))

    def _repr_html_(self) -> str:
        return self.board._repr_html_()

    def __repr__(self) -> str:
        return self.board.to_string(index=False, float_format=lambda x: f"{x:.3f}")


# predictions or responses: DataFrames, files or folders, one or a list of them
Answers = "pd.DataFrame | str | Path | Iterable[pd.DataFrame | str | Path] | None"


def compare(predictions: Answers, responses: Answers, trials: str | Path, *,
            bootstrap: int = 2000, seed: int = 0, regression: bool = False,
            **report_options: Any) -> Leaderboard:
    """The report's statistics for these answers, as DataFrames: predictions (DataFrames from
    `evaluate`, files or a folder) against the people's responses (the same), on the trials.
    `report_options` are ReportConfig fields (split_halves, min_shared_trials, ...); the
    mixed-effects regression, the slowest table, is off unless asked for."""
    from bodyscene.benchmark.analysis.observations import load_observations
    from bodyscene.benchmark.analysis.report.analyse import analyse

    cfg = _report_config(bootstrap=bootstrap, seed=seed, regression=regression,
                         progress=report_options.pop("progress", False), **report_options)
    with tempfile.TemporaryDirectory(prefix="bodyscene-compare-") as tmp:
        pred_dir, records = _gather(predictions, Path(tmp) / "predictions")
        resp_dir, _ = _gather(responses, Path(tmp) / "responses")
        obs = load_observations(_trials_path(trials), resp_dir, pred_dir,
                                include_readouts=cfg.include_readouts,
                                exclude_anticipations=cfg.exclude_anticipations)
    from bodyscene.benchmark.harness.evaluate import with_weights

    tables = analyse(obs, cfg)
    tables["leaderboard"] = with_weights(tables["leaderboard"], records)
    return Leaderboard(tables["leaderboard"], tables["accuracy"],
                       tables["error_consistency"], tables, obs)


def _report_config(**options: Any):
    from bodyscene.benchmark.analysis.report import ReportConfig

    allowed = {f.name for f in fields(ReportConfig)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise BadInput(f"report option {unknown[0]!r}: expected one of "
                       f"{', '.join(sorted(allowed))}")
    return ReportConfig(**options)


def _trials_path(trials) -> Path:
    return Path(getattr(trials, "file", trials))


def _gather(answers, folder: Path) -> tuple[Path | None, list[dict]]:
    """One folder holding every answers file given (DataFrames written as CSV, files linked by
    copy), and the run records that came with them (DataFrame attrs, `<stem>.run.json`)."""
    import shutil

    from bodyscene.benchmark.analysis.observations import csv_files
    from bodyscene.benchmark.analysis.report.methods import run_records

    if answers is None:
        return None, []
    if isinstance(answers, (str, Path)):  # a file or folder is read where it is
        return Path(answers), run_records(Path(answers))
    if isinstance(answers, pd.DataFrame):
        answers = [answers]
    folder.mkdir(parents=True)
    records: list[dict] = []
    for i, item in enumerate(answers):
        if isinstance(item, pd.DataFrame):
            if item.empty:
                raise BadInput(f"answers table {i + 1} has no rows")
            item.to_csv(folder / f"{i:03d}-{_safe(str(item['agent'].iloc[0]))}.csv",
                        index=False)
            if "run" in item.attrs:
                records.append(item.attrs["run"])
            continue
        path = Path(item)
        for f in csv_files(path):
            shutil.copyfile(f, folder / f"{i:03d}-{f.name}")
        records += run_records(path)
    return folder, records


# ------------------------------------------------------------------------------- report

def report(trials: str | Path, out: str | Path, *, responses: str | Path | None = None,
           predictions: str | Path | None = None, **report_options: Any) -> Path:
    """Write the HTML report (tables, figures, summary.json) into `out` (new or empty), as
    `bodyscene report` does; returns the path of report.html. `report_options` are
    ReportConfig fields (bootstrap, seed, split_halves, regression, ...)."""
    from bodyscene.benchmark.analysis.report import make_report

    if responses is None and predictions is None:
        raise BadInput("give responses and/or predictions: there is nothing to report")
    make_report(_trials_path(trials), responses, predictions, out,
                _report_config(**report_options))
    return Path(out) / "report.html"


__all__ = ["Leaderboard", "compare", "evaluate", "report"]
