"""Evaluation: a model answers the test trials people answered, in the predictions format.

The model is a checkpoint written by `train` (`--checkpoint`), or any model with no training
run (`--model NAME --weights FILE --option k=v`: a built-in adapter, `module:factory` or an
entry point), or a plain Python function (`evaluate_callable`). Every trial of the split, in
every condition, is shown as the views the model consumes (bodyscene.benchmark.harness.data's
protocol), transformed as the model declares (bodyscene.benchmark.harness.inputs). A frame
model scores a clip frame by frame and its frames' probabilities are aggregated; a clip model
gets whole clips, its temporal crops aggregated the same way. A model whose classes are not the
manifest's actions is read through a label map. `response` is the most probable action among the
trial's offered `choices` (the question people answered), `response_open` the most probable of
all actions. A two-stream model is read out every way it offers: the default (or chosen) readout
goes to `out`, each other one to `out.parent / "readouts" / "<stem>.<readout>.csv"`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from bodyscene.errors import BadInput, ModelError

if TYPE_CHECKING:
    from bodyscene.stimuli.manifest import Manifest

AGGREGATIONS = ("mean", "log-mean")


@dataclass
class EvalConfig:
    checkpoint: str | None = None  # a run's best.pt / last.pt ...
    trials: str = ""
    out: str = ""                  # predictions/NAME.csv; NAME becomes the agent
    model: str | None = None       # ... or a model with no training run: registry name,
    weights: str | None = None     #     module:factory or entry point, and its local weights
    random_init: bool = False      # score a pretrained architecture with random weights on
                                   # purpose (a control): marked in the agent name and record
    model_options: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None  # the model's classes (default: actions, or with a label
    label_map: str | None = None    # map the factory's own default, e.g. 400 for Kinetics)
    label_combine: str = "sum"     # sum | mean: how mapped classes' probabilities combine
    image_size: int | None = None  # default: the checkpoint's, else the model's declared, 224
    clips: int | None = None       # clip models: temporal crops averaged (default: declared)
    readout: str | None = None     # default: the model's own default readout
    aggregation: str = "mean"      # frames or crops of a clip: mean | log-mean (geometric)
    split: str = "test"            # train | val | test | all
    batch_size: int = 64
    device: str = "auto"           # auto: CUDA, then MPS, then CPU (the choice is recorded)
    amp: bool = False              # float16 autocast on CUDA
    cache: str = "stream"          # stream (decode per batch) | memory | mmap | a folder
    threads: int | None = None     # CPU threads, pinned with deterministic kernels (the count
                                   # sums floats in its own order); None: as torch is set.
                                   # The count used is recorded either way.
    progress: bool = True


RANDOM_INIT = "random init"


@dataclass
class ModelRun:
    """A model ready to score and what its run record says about it (where its weights came
    from, their sha256, its options)."""

    model: Any
    name: str
    facts: dict
    num_classes: int | None
    size: int | None = None
    seed: int | None = None        # the training run's (evaluation draws nothing at random)
    label_map: Any = None

    def agent(self, stem: str) -> str:
        """The observer's name: the file's stem, marked when the weights are random on purpose."""
        return f"{stem} ({RANDOM_INIT})" if self.facts.get("random_init") else stem


def weights_by_agent(records: list[dict]) -> dict[str, str]:
    """{agent: its weights' sha256, or "random init"} from evaluation run records (every
    readout file of a run shares its model's weights)."""
    found: dict[str, str] = {}
    for record in records:
        if "weights_sha256" not in record and "random_init" not in record:
            continue
        random = bool(record.get("random_init"))
        label = RANDOM_INIT if random else (record.get("weights_sha256") or "")
        for output in record.get("outputs", []):
            stem = Path(str(output)).stem
            found[f"{stem} ({RANDOM_INIT})" if random else stem] = label
    return found


def with_weights(board, records: list[dict]):
    """The leaderboard (a DataFrame) with a `weights` column from the run records: a model's
    weights sha256, "random init" for a deliberate random-weights control, empty if unknown."""
    if board.empty:
        return board
    known = weights_by_agent(records)
    return board.assign(weights=[known.get(str(o), "") for o in board["observer"]])


def readout_path(out: Path, readout: str) -> Path:
    return out.parent / "readouts" / f"{out.stem}.{readout}.csv"


def aggregate(probs: np.ndarray, trial: np.ndarray, n_trials: int, how: str) -> np.ndarray:
    """Per-trial probabilities (T, C) from per-frame ones (S, C); `trial` maps frame -> trial."""
    if how not in AGGREGATIONS:
        raise BadInput(f"aggregation {how!r}: expected one of {', '.join(AGGREGATIONS)}")
    counts = np.bincount(trial, minlength=n_trials)[:, None].astype(np.float64)
    values = probs.astype(np.float64)
    if how == "log-mean":
        values = np.log(np.clip(values, 1e-12, 1.0))
    total = np.zeros((n_trials, probs.shape[1]))
    np.add.at(total, trial, values)
    mean = total / np.maximum(counts, 1)
    if how == "log-mean":
        mean = np.exp(mean - mean.max(axis=1, keepdims=True))
        mean /= mean.sum(axis=1, keepdims=True)
    return mean


def _check_config(cfg: EvalConfig) -> Path:
    out = Path(cfg.out)
    if not cfg.trials or not cfg.out:
        raise BadInput("evaluation needs trials (trials.csv) and out (predictions/NAME.csv)")
    if out.suffix != ".csv":
        raise BadInput(f"{out}: a predictions file is a .csv")
    if (cfg.checkpoint is None) == (cfg.model is None):
        raise BadInput("give either --checkpoint (a run of `bodyscene train`) or --model "
                       "(a model with no training run), not both or neither")
    if cfg.checkpoint and (cfg.weights or cfg.model_options or cfg.label_map
                           or cfg.num_classes or cfg.random_init):
        raise BadInput("--weights, --random-init, --option, --num-classes and --label-map go "
                       "with --model; a checkpoint carries its own weights, options and actions")
    if cfg.weights and cfg.random_init:
        raise BadInput("--weights and --random-init contradict each other: give the weights "
                       "file, or --random-init for a deliberate random-weights control")
    if cfg.split not in ("train", "val", "test", "all"):
        raise BadInput(f"split {cfg.split!r}: expected train, val, test or all")
    if cfg.aggregation not in AGGREGATIONS:
        raise BadInput(f"aggregation {cfg.aggregation!r}: expected one of "
                       f"{', '.join(AGGREGATIONS)}")
    if cfg.batch_size < 1 or (cfg.clips is not None and cfg.clips < 1):
        raise BadInput(f"batch size and clips must be at least 1, got {cfg.batch_size} and "
                       f"{cfg.clips}")
    return out


def load_untrained(cfg: EvalConfig, actions: Sequence[str]):
    """(model, num_classes, facts for the run record) for `--model`: weights go to a factory
    that takes them, else they are loaded into the built model as a state dict. A pretrained
    architecture (registry.needs_weights) without weights is refused unless `random_init`."""
    from bodyscene.models.registry import create_model, default_num_classes, needs_weights, \
        resolve_factory, takes
    from bodyscene.models.weights import load_state
    from bodyscene.tables import file_sha256

    factory = resolve_factory(cfg.model)
    if not cfg.weights and not cfg.random_init and needs_weights(factory):
        raise BadInput(f"model {cfg.model!r} is a pretrained architecture: give --weights FILE "
                       f"(its local weights), or --random-init to score random weights on "
                       f"purpose (then marked '{RANDOM_INIT}')")
    num_classes = cfg.num_classes
    if num_classes is None:
        num_classes = default_num_classes(cfg.model) if cfg.label_map else len(actions)
    if num_classes is None:
        raise BadInput(f"model {cfg.model!r}: give --num-classes (the number of classes the "
                       f"label map's indices refer to); its factory has no default")
    options = dict(cfg.model_options)
    own_loader = bool(cfg.weights) and takes(factory, "weights")
    if own_loader:
        options["weights"] = cfg.weights
    model = create_model(cfg.model, num_classes, actions=list(actions), **options)
    if cfg.weights and not own_loader:
        load_state(model, cfg.weights, what=f"model {cfg.model!r}")
    facts = {"source": "model", "model": cfg.model, "model_options": cfg.model_options,
             "num_classes": num_classes, "weights": cfg.weights,
             "weights_sha256": file_sha256(cfg.weights) if cfg.weights else None,
             "random_init": bool(cfg.random_init),
             "actions_given_to_factory": takes(factory, "actions")}
    return model.eval(), num_classes, facts


def load_run(cfg: EvalConfig, actions: list[str]) -> ModelRun:
    """The model of a checkpoint (`cfg.checkpoint`) or of `cfg.model`, with its label map."""
    from bodyscene.tables import file_sha256

    from .checkpoint import load_model

    if cfg.checkpoint:
        model, ckpt = load_model(cfg.checkpoint)
        if list(ckpt["actions"]) != actions:
            raise BadInput(f"{cfg.checkpoint}: the model was trained for actions "
                           f"{', '.join(ckpt['actions'])} but {cfg.trials} has "
                           f"{', '.join(actions)}; evaluate it on a trial set of the same "
                           f"actions")
        facts = {"source": "checkpoint", "checkpoint": str(cfg.checkpoint),
                 "model": ckpt["model"], "model_options": ckpt["model_options"],
                 "trained_epochs": ckpt["epoch"], "weights_sha256": file_sha256(cfg.checkpoint),
                 "random_init": False}
        run = ModelRun(model, ckpt["model"], facts, len(actions), int(ckpt["image_size"]),
                       ckpt["config"]["seed"])
    else:
        model, num_classes, facts = load_untrained(cfg, actions)
        run = ModelRun(model, cfg.model, facts, num_classes, cfg.image_size)
    if cfg.label_map:
        from .labelmap import read_label_map

        run.label_map = read_label_map(cfg.label_map, actions, run.num_classes,
                                       getattr(model, "class_names", None), cfg.label_combine)
        run.facts.update(run.label_map.record())
    return run


def evaluate(cfg: EvalConfig, manifest: "Manifest | None" = None) -> list[Path]:
    """Write the predictions file(s); returns their paths, the chosen readout's first. An
    already-read `manifest` (of cfg.trials) is used as is; else the file is read."""
    from bodyscene.stimuli.manifest import Manifest

    _check_config(cfg)
    manifest = manifest or Manifest.read(cfg.trials)
    return score(load_run(cfg, manifest.actions), manifest, cfg)


def score(run: ModelRun, manifest: "Manifest", cfg: EvalConfig) -> list[Path]:
    """Run `run.model` on the split's trials and write its predictions and run record."""
    import torch

    from bodyscene.provenance import write_run_record
    from bodyscene.tables import write_csv_atomic

    from .data import TrialFrames
    from .inputs import input_spec, model_frames
    from .predict import default_readout, predict, stream_readouts
    from .predictions import columns_for, prediction_row
    from .runtime import cpu_capability, pin_numerics, select_device

    out = Path(cfg.out)
    if out.suffix != ".csv":
        raise BadInput(f"{out}: a predictions file is a .csv")
    model, name, actions = run.model, run.name, manifest.actions
    readouts = list(stream_readouts(model))
    chosen = cfg.readout or default_readout(model)
    if chosen not in readouts:
        raise BadInput(f"readout {chosen!r}: model {name!r} offers {', '.join(readouts)}")
    targets = {chosen: out, **{r: readout_path(out, r) for r in readouts if r != chosen}}
    existing = [p for p in targets.values() if p.exists()]
    if existing:
        raise BadInput(f"{existing[0]}: a predictions file already exists (nothing is "
                       f"overwritten); choose another --out")
    spec = input_spec(model, run.size or cfg.image_size, cfg.clips, name)
    if cfg.threads is not None:
        pin_numerics(cfg.threads)
    device = select_device(cfg.device)
    if cfg.amp and device.type != "cuda":
        raise BadInput(f"--amp (float16 autocast) needs a CUDA device; this run is on "
                       f"{device.type}")
    model = model.to(device)
    frames = TrialFrames(manifest.table, model.views, spec.size, actions,
                         split=None if cfg.split == "all" else cfg.split, cache=cfg.cache,
                         manifest_path=manifest.file, progress=cfg.progress,
                         resize=spec.resize)
    if len(frames.trials) == 0:
        raise BadInput(f"{manifest.file}: no trials in split {cfg.split!r} to evaluate")
    fed = model_frames(frames, spec)
    probs = predict(model, fed, cfg.batch_size, device, readouts, progress=cfg.progress,
                    spec=spec, label_map=run.label_map,
                    num_classes=None if hasattr(model, "read_out") and run.label_map is None
                    else run.num_classes, name=name, amp=cfg.amp)
    frames.cache.close()

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    label = run.facts.get("checkpoint") or run.facts.get("weights") or ""
    written = []
    for readout, path in targets.items():
        per_trial = aggregate(probs[readout], fed.trial, len(frames.trials), cfg.aggregation)
        rows = (prediction_row(t, p, actions, agent=run.agent(path.stem), order=order,
                               stamp=stamp, manifest_sha256=manifest.sha256, readout=readout,
                               aggregation=cfg.aggregation, checkpoint=label, model=name)
                for order, (t, p) in enumerate(zip(frames.trials.itertuples(index=False),
                                                   per_trial)))
        write_csv_atomic(path, rows, columns_for(actions))
        written.append(path)
    clips = fed.record() if spec.clip else {}
    write_run_record(out.parent, cfg, run.seed, name=f"{out.stem}.run.json",
                     manifest_sha256=manifest.sha256, actions=actions, readouts=readouts,
                     default_readout=chosen, input=spec.record(), **clips, **run.facts,
                     agent=run.agent(out.stem), device=str(device),
                     amp=bool(cfg.amp), threads_used=torch.get_num_threads(),
                     cpu_capability=cpu_capability(), outputs=written)
    return written


# ---------------------------------------------------------------------- your own function

def _callable_model(fn: Callable, n_actions: int, declared: dict):
    """`fn(*views) -> probabilities` as the nn.Module interface predict() drives (its forward
    returns log-probabilities, so the softmax predict applies gives them back)."""
    import torch
    from torch import nn

    label = getattr(fn, "__name__", repr(fn))

    class CallableModel(nn.Module):
        def forward(self, *views):
            p = fn(*views)
            if isinstance(p, np.ndarray):
                p = torch.from_numpy(p)
            n = len(views[0])
            if not isinstance(p, torch.Tensor) or tuple(p.shape) != (n, n_actions):
                got = tuple(p.shape) if hasattr(p, "shape") else type(p).__name__
                raise ModelError(f"function {label!r} returned {got}; expected probabilities "
                                 f"of shape (N, actions) = ({n}, {n_actions})")
            p = p.double()
            if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(n, dtype=p.dtype),
                                                   atol=1e-4):
                raise ModelError(f"function {label!r} returned rows that are not "
                                 f"probabilities (non-negative, summing to 1 within 1e-4)")
            return torch.log(p.clamp_min(1e-30)).float()

    model = CallableModel()
    for k, v in declared.items():
        setattr(model, k, v)
    return model


def evaluate_callable(fn: Callable, trials: "str | Path | Manifest", out: str | Path, *,
                      input: str = "frame", views: Sequence[str] = ("original",),
                      image_size: int = 224, clip_frames: int | None = None,
                      clip_sampling: str = "uniform", clip_layout: str = "NTCHW",
                      input_transform: dict | None = None, split: str = "test",
                      batch_size: int = 64, aggregation: str = "mean",
                      device: str = "cpu", progress: bool = False) -> Path:
    """Write a valid predictions file from your own function, with no model class.

    `fn(*views)` gets one float tensor per view, normalised as `input_transform` says (default
    ImageNet mean/std, padded to a square): frames (N, 3, H, W), or with `input="clip"` clips
    (N, T, 3, H, W) ((N, 3, T, H, W) with clip_layout="NCTHW"), and returns probabilities
    (N, actions) over the manifest's actions in sorted order (a tensor or a numpy array).
    Returns the predictions file (its stem is the agent name)."""
    from bodyscene.stimuli.manifest import Manifest

    manifest = Manifest.of(trials)
    actions = manifest.actions
    declared = {"views": tuple(views), "input": input, "clip_frames": clip_frames,
                "clip_sampling": clip_sampling, "clip_layout": clip_layout,
                "input_transform": {"size": image_size, **(input_transform or {})}}
    model = _callable_model(fn, len(actions), declared)
    name = f"callable:{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
    cfg = EvalConfig(trials=str(manifest.file), out=str(out), split=split,
                     batch_size=batch_size, aggregation=aggregation, device=device,
                     progress=progress)
    facts = {"source": "callable", "model": name, "weights_sha256": None, "random_init": False}
    return score(ModelRun(model, name, facts, len(actions)), manifest, cfg)[0]
