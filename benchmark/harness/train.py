"""Training: any registered model on the train split's `original` trials, validated each epoch.

Defaults are the paper's (SGD, lr 0.001, momentum 0.9, 100 epochs, class-balanced sampling,
from scratch). Each sample is one frame of one trial, shown as the views the model consumes
(bodyscene.benchmark.harness.data). A run directory holds `last.pt` and `best.pt` (written atomically),
`metrics.csv` (one row per epoch) and `run.json` (config, seed, versions, manifest hash).

Exact resume: the sampler's order, the augmentation and the view dropout of epoch e are pure
functions of (seed, e), so a run killed during epoch e and resumed from `last.pt` (end of epoch
e - 1) draws the same batches and ends with the same weights as one never interrupted.
Multi-process: under `torchrun` every rank draws the same global batch and takes its share, and
DistributedDataParallel averages the gradients."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bodyscene.configs import ConfigError, opt
from bodyscene.errors import BadInput, TrainingError
from bodyscene.seeds import derive_rng, derive_seed

from .checkpoint import (
    CHECKPOINT_FORMAT,
    build_model,
    load_checkpoint,
    model_options,
    save_checkpoint,
)
from .runtime import Dist, distributed, pin_numerics, select_device

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "images_per_s",
                  "seconds", "lr")
# Config fields a resumed run may change: they do not alter what is computed.
_RESUME_FREE = ("epochs", "resume", "workers", "cache", "device", "progress", "out", "trials")


def _key_values(pairs: list[str]) -> dict[str, Any]:
    """`KEY=JSON` strings (a plain string where the value is not JSON) as a dict."""
    import json

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("model_options", f"expected KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@dataclass
class TrainConfig:
    """One training run, declared once: `bodyscene train` builds its options from these fields
    (bodyscene.configs) and `run.json` records them."""

    trials: str = opt("", "trials.csv", required=True)
    model: str = opt("baseline", "baseline | domainnet | package.module:factory | an "
                     "entry-point name")
    backbone: str = opt("resnet18", "torchvision name (resnet18/34/50, ...), miniresnet for "
                        "48-64 px on a CPU, or tiny/small for tests")
    out: str = opt("results/runs/run", "run folder (new or empty unless --resume)",
                   required=True)
    epochs: int = opt(100, "training epochs")
    lr: float = opt(0.001, "peak learning rate")
    lr_schedule: str = opt("constant", "constant is the paper's; onecycle/cosine reach a low "
                           "loss in few epochs (see lr_at)", choices=("constant", "onecycle",
                                                                      "cosine"))
    momentum: float = opt(0.9, "SGD momentum")
    weight_decay: float = opt(0.0, "SGD weight decay")
    batch_size: int = opt(32, "global batch, split across torchrun processes")
    image_size: int = opt(224, "input side in pixels")
    seed: int = opt(0, "seeds the weights, the sampler, augmentation and view dropout")
    weights: str | None = opt(None, "local torchvision or state-dict file for each backbone")
    view_dropout: float = opt(0.0, "probability that a view is blanked (its stream's loss "
                              "term skipped)")
    loss_terms: str | None = opt(None, "DomainNet: all | combined-only (model default if "
                                 "unset)", choices=("all", "combined-only"))
    fusion: str | None = opt(None, "DomainNet: stream fusion (model default if unset)",
                             choices=("sum", "learned-weighted", "concat-mlp"))
    model_options: dict[str, Any] = opt(
        help="extra model option, e.g. --option hidden=128 (repeatable)", factory=dict,
        flag="--option", metavar="KEY=JSON", parse=_key_values, append=True)
    freeze_backbone: bool = opt(False, "linear probe: train only the classifier head(s) on "
                                "loaded --weights")
    samples_per_epoch: int | None = opt(None, "frames drawn per epoch (default: the number of "
                                        "training frames)")
    augment: bool = opt(True, "no flips, shifts, jitter or blur")
    workers: int = opt(0, "DataLoader workers gathering cached batches")
    cache: str = opt("memory", "memory | mmap | folder for the memory-mapped file")
    amp: bool = opt(True, "full precision on CUDA (mixed precision is CUDA only)")
    channels_last: bool = opt(True, "keep the NCHW layout on CUDA")
    resume: bool = opt(False, "continue the run in --out")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N")
    # Part of the result, not only of the speed: another count sums floats in another order.
    # Fixed rather than "all cores", so the same seed gives the same weights on a busy or an
    # idle machine, with any number of cores; 2 because the smallest machine the suite targets
    # (a 2-core laptop or VM) is fastest with it when idle.
    threads: int = opt(2, "CPU threads for torch; the same seed and --threads give "
                       "byte-identical checkpoints")
    progress: bool = opt(True, "no progress bars", flag="--quiet", inverted=True)


def _prepare_out(cfg: TrainConfig, manifest_hash: str) -> tuple[Path, dict | None]:
    out = Path(cfg.out)
    last = out / "last.pt"
    if not cfg.resume:
        if out.exists() and any(out.iterdir()):
            raise BadInput(f"{out}: the folder already holds a run; pass --resume to continue it "
                           f"or choose a new --out (nothing is overwritten)")
        return out, None
    if not last.is_file():
        raise BadInput(f"{last}: nothing to resume (no last.pt in {out})")
    ckpt = load_checkpoint(last)
    if ckpt["manifest_sha256"] != manifest_hash:
        raise BadInput(f"{last}: this run was trained on a different manifest (sha256 "
                       f"{ckpt['manifest_sha256'][:12]}..., {cfg.trials} is "
                       f"{manifest_hash[:12]}...); resume it with the same trials.csv")
    before = ckpt["config"]
    now = dataclasses.asdict(cfg)
    changed = [k for k in now if k not in _RESUME_FREE and before.get(k) != now[k]]
    if changed:
        k = changed[0]
        raise BadInput(f"{last}: cannot resume with {k}={now[k]!r}, the run was started with "
                       f"{k}={before.get(k)!r} (only {', '.join(_RESUME_FREE[:5])} may change)")
    return out, ckpt


LR_SCHEDULES = ("constant", "onecycle", "cosine")


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """The learning rate of global step `step` of `total`: a pure function, so a resumed run
    follows the same curve. `onecycle` warms up linearly from lr/25 to lr over the first 25 %
    of steps, then anneals by a half cosine to lr/1000 (few epochs reach a low loss); `cosine`
    anneals from lr to 0 with no warm-up."""
    if cfg.lr_schedule == "constant" or total <= 1:
        return cfg.lr
    t = step / (total - 1)
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))
    warm = 0.25
    if t < warm:
        return cfg.lr * (1 / 25 + (1 - 1 / 25) * t / warm)
    u = (t - warm) / (1 - warm)
    return cfg.lr * (1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * u)))


def _dropout(n: int, views: int, p: float, rng: np.random.Generator) -> np.ndarray | None:
    """Which views to blank: each with probability p, but never every view of one frame."""
    if p <= 0:
        return None
    drop = rng.random((n, views)) < p
    drop[drop.all(axis=1)] = False
    return drop


def train_step(model, core, xs, labels, present, optimizer, scaler, autocast):
    """One SGD step; returns (loss, logits used for accuracy), both detached."""
    import torch.nn.functional as F

    with autocast():
        out = model(*xs)
        if hasattr(core, "loss"):
            loss = core.loss(out, labels, present)
        else:
            loss = F.cross_entropy(out.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    logits = getattr(out, "fused", out)
    return loss.detach(), logits.detach()


@dataclass
class _Run:
    """Everything one training run holds while its epochs go by."""

    cfg: TrainConfig
    dist: Dist
    device: Any
    out: Path
    manifest_hash: str
    actions: list[str]
    options: dict[str, Any]
    core: Any                  # the model itself
    model: Any                 # the model as trained: DDP-wrapped under torchrun
    views: tuple[str, ...]
    train_set: Any
    val_set: Any
    optimizer: Any
    scaler: Any
    autocast: Any
    channels_last: bool
    start: int = 0
    spec: Any = None           # the model's declared input (inputs.InputSpec)
    bar: Any = None            # one progress bar over every step of the run (its ETA)
    metrics: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": 0,
                                                "score": [float("-inf"), float("-inf")]})


def train(cfg: TrainConfig) -> Path:
    """Train `cfg.model` on `cfg.trials`; returns the run directory (best.pt, last.pt,
    metrics.csv, run.json)."""
    import torch.distributed as tdist
    from bodyscene.stimuli.manifest import manifest_sha256

    dist = distributed()
    _check_config(cfg, dist)
    pin_numerics(cfg.threads)
    manifest_hash = manifest_sha256(cfg.trials)
    out, resumed = _prepare_out(cfg, manifest_hash)
    device = select_device(cfg.device, dist)
    own_group = _join_process_group(dist, device)
    run = _set_up(cfg, dist, device, out, manifest_hash, resumed)
    sampler, augment = _sampling(run)
    for epoch in range(run.start, cfg.epochs):
        row = _train_epoch(run, epoch, sampler, augment)
        if dist.main:
            _end_epoch(run, row)
        if dist.world > 1:
            tdist.barrier()
    if run.bar is not None:
        run.bar.close()
    run.train_set.cache.close()
    if run.val_set is not None:
        run.val_set.cache.close()
    if dist.world > 1:
        tdist.barrier()
    if own_group:
        tdist.destroy_process_group()
    return out


def _check_config(cfg: TrainConfig, dist: Dist) -> None:
    """Impossible settings, named by field (the command line maps them to its flags)."""
    for name, low in (("epochs", 1), ("batch_size", 1), ("image_size", 8), ("threads", 1)):
        if getattr(cfg, name) < low:
            raise ConfigError(name, f"at least {low}, got {getattr(cfg, name)}")
    if cfg.lr <= 0:
        raise ConfigError("lr", f"a positive learning rate, got {cfg.lr}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ConfigError("lr_schedule", f"expected one of {', '.join(LR_SCHEDULES)}, got "
                                         f"{cfg.lr_schedule!r}")
    if not 0.0 <= cfg.view_dropout < 1.0:
        raise ConfigError("view_dropout", f"a probability in [0, 1), got {cfg.view_dropout}")
    if cfg.batch_size % dist.world:
        raise ConfigError("batch_size", f"{cfg.batch_size} must be divisible by the number of "
                                        f"processes ({dist.world})")


def _join_process_group(dist: Dist, device) -> bool:
    """Start the torchrun process group unless the caller already did; True if we started it."""
    import torch
    import torch.distributed as tdist

    own_group = dist.world > 1 and not tdist.is_initialized()
    if own_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.world > 1:
        tdist.barrier()  # every rank has checked the out folder before rank 0 writes into it
    return own_group


def _set_up(cfg: TrainConfig, dist: Dist, device, out: Path, manifest_hash: str,
            resumed: dict | None) -> _Run:
    """The model, the cached data, the optimizer and mixed precision; restored from `resumed`
    if given; the run record written."""
    import contextlib

    import torch
    from bodyscene.stimuli.manifest import actions_of, read_manifest

    from bodyscene.provenance import write_run_record

    from bodyscene.models.probe import freeze_backbone

    from .data import TrialFrames
    from .inputs import input_spec, model_frames

    cuda = device.type == "cuda"
    manifest = read_manifest(cfg.trials)
    actions = actions_of(manifest)
    torch.manual_seed(cfg.seed)
    options = model_options(cfg)
    core = build_model(cfg.model, len(actions), options, actions).to(device)
    views = tuple(core.views)
    spec = input_spec(core, cfg.image_size, 1, cfg.model)
    if cfg.view_dropout > 0 and len(views) < 2:
        raise BadInput(f"view dropout needs a model with two or more views; {cfg.model!r} "
                       f"consumes only {', '.join(views)}")
    train_set = TrialFrames(manifest, views, cfg.image_size, actions, split="train",
                            conditions=("original",), cache=cfg.cache,
                            manifest_path=cfg.trials, progress=cfg.progress and dist.main,
                            resize=spec.resize)
    train_set = model_frames(train_set, spec)  # clip models train on whole clips
    if len(train_set) == 0:
        raise BadInput(f"{cfg.trials}: no 'original' trials in the train split to train on")
    val_set = TrialFrames(manifest, views, cfg.image_size, actions, split="val",
                          conditions=("original",), cache=cfg.cache,
                          manifest_path=cfg.trials, progress=False,
                          resize=spec.resize) if dist.main else None
    val_set = model_frames(val_set, spec) if val_set is not None else None

    channels_last = cfg.channels_last and cuda and not spec.clip
    if channels_last:
        core = core.to(memory_format=torch.channels_last)
    model = core
    if dist.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[device.index] if cuda else None)
    params = freeze_backbone(core) if cfg.freeze_backbone else core.parameters()
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    amp = cfg.amp and cuda
    amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)
    autocast = ((lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp
                else contextlib.nullcontext)
    run = _Run(cfg, dist, device, out, manifest_hash, actions, options, core, model, views,
               train_set, val_set, optimizer, scaler, autocast, channels_last, spec=spec)
    if resumed is not None:
        core.load_state_dict(resumed["state_dict"])
        optimizer.load_state_dict(resumed["optimizer"])
        scaler.load_state_dict(resumed["scaler"])
        torch.set_rng_state(resumed["torch_rng"])
        run.start, run.metrics = resumed["epoch"], list(resumed["metrics"])
        run.best = dict(resumed["best"])
    if dist.main:
        write_run_record(out, cfg, cfg.seed, manifest_sha256=manifest_hash, actions=actions,
                         views=views, model_options=options, world_size=dist.world,
                         device=str(device), resumed_from_epoch=run.start if resumed else None,
                         train_frames=len(train_set),
                         val_frames=len(val_set) if val_set is not None else 0)
    return run


def _sampling(run: _Run):
    from .data import Augment, ClassBalancedSampler

    cfg = run.cfg
    sampler = ClassBalancedSampler(run.train_set.label,
                                   cfg.samples_per_epoch or len(run.train_set), cfg.seed,
                                   run.dist.world, run.dist.rank)
    return sampler, (Augment() if cfg.augment else None)


def _epoch_plan(run: _Run, epoch: int, sampler, augment) -> list:
    """This rank's batches of epoch `epoch`: indices, view dropout and augmentation, each drawn
    for the global batch from (seed, epoch) alone, so a resumed run draws the same."""
    import torch

    from .data import batch_slices

    cfg, dist = run.cfg, run.dist
    order = sampler.global_order(epoch)
    aug_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "augment", epoch))
    drop_rng = derive_rng(cfg.seed, "view-dropout", epoch)
    plan = []
    for gidx in batch_slices(order, cfg.batch_size):
        params = augment.draw(len(gidx), aug_gen) if augment else None
        drop = _dropout(len(gidx), len(run.views), cfg.view_dropout, drop_rng)
        share = slice(dist.rank, None, dist.world)
        plan.append((gidx[share], None if drop is None else drop[share],
                     None if params is None else {k: v[share] for k, v in params.items()}))
    return plan


def _train_epoch(run: _Run, epoch: int, sampler, augment) -> dict:
    """One pass over the epoch's plan; returns its metrics row (validation not yet filled)."""
    import torch
    import torch.distributed as tdist
    from tqdm import tqdm

    from .data import to_input

    cfg, dist, device = run.cfg, run.dist, run.device
    run.core.train()
    if cfg.freeze_backbone:
        from bodyscene.models.probe import frozen_eval

        frozen_eval(run.core)
    t0 = time.perf_counter()
    plan = _epoch_plan(run, epoch, sampler, augment)
    batches = _batches(run.train_set, plan, cfg.workers)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    if run.bar is None:
        run.bar = tqdm(total=len(plan) * (cfg.epochs - run.start), desc=f"train {cfg.model}",
                       unit="step", disable=not (cfg.progress and dist.main), leave=False)
    bar = run.bar
    for step, ((pixels, labels, present), (_, _, params)) in enumerate(zip(batches, plan)):
        lr = lr_at(cfg, epoch * len(plan) + step, cfg.epochs * len(plan))
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        xs = to_input(pixels, device, params, run.channels_last, **run.spec.tensors())
        labels, present = labels.to(device), present.to(device)
        loss, logits = train_step(run.model, run.core, xs, labels, present, run.optimizer,
                                  run.scaler, run.autocast)
        if dist.world > 1:
            tdist.all_reduce(loss)
            loss /= dist.world
        value = float(loss)
        if not np.isfinite(value):
            raise TrainingError(
                f"training diverged: the loss became {value} at epoch {epoch + 1}, step "
                f"{step + 1} (lr {cfg.lr}); lower --lr or check the data; the last good state "
                f"is {run.out / 'last.pt'}"
                + ("" if epoch else " (none yet: it diverged in epoch 1)"))
        total_loss += loss * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
        if step % 5 == 0 or step == len(plan) - 1:
            rate = seen * dist.world / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", loss=f"{value:.3f}",
                            img_s=f"{rate:.0f}")
        bar.update(1)
    seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "train_loss": float(total_loss) / seen,
            "train_acc": float(correct) / seen, "val_loss": None, "val_acc": None,
            "images_per_s": seen * dist.world / seconds, "seconds": seconds, "lr": lr}


def _end_epoch(run: _Run, row: dict) -> None:
    """Validate, keep the best and the last state, write the metrics (main process only)."""
    import torch

    from bodyscene.tables import write_csv_atomic

    from .predict import default_readout, predict

    cfg, val_set = run.cfg, run.val_set
    if val_set is not None and len(val_set):
        probs = predict(run.core, val_set, max(cfg.batch_size, 64), run.device,
                        channels_last=run.channels_last,
                        spec=run.spec)[default_readout(run.core)]
        picked = probs[np.arange(len(val_set)), val_set.label]
        row["val_loss"] = float(-np.log(np.clip(picked, 1e-12, 1)).mean())
        row["val_acc"] = float((probs.argmax(1) == val_set.label).mean())
    run.metrics.append(row)
    # Best = highest validation accuracy, then lowest validation loss; with no validation
    # trials, lowest training loss.
    score = ([row["val_acc"], -row["val_loss"]] if row["val_acc"] is not None
             else [-row["train_loss"], 0.0])
    improved = score > run.best["score"]
    if improved:
        run.best = {"epoch": row["epoch"], "score": score}
    state = {"format": CHECKPOINT_FORMAT, "model": cfg.model, "model_options": run.options,
             "actions": run.actions, "views": list(run.views),
             "state_dict": run.core.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scaler": run.scaler.state_dict(), "torch_rng": torch.get_rng_state(),
             "epoch": row["epoch"], "metrics": run.metrics, "best": run.best,
             "config": dataclasses.asdict(cfg), "manifest_sha256": run.manifest_hash,
             "image_size": cfg.image_size}
    if improved:
        save_checkpoint(state, run.out / "best.pt")
    save_checkpoint(state, run.out / "last.pt")
    write_csv_atomic(run.out / "metrics.csv", run.metrics, METRIC_COLUMNS)
    shown = "-" if row["val_acc"] is None else f"{row['val_acc']:.3f}"
    if cfg.progress:
        from tqdm import tqdm

        tqdm.write(f"epoch {row['epoch']}/{cfg.epochs}: loss {row['train_loss']:.4f}, "
                   f"train acc {row['train_acc']:.3f}, val acc {shown}, "
                   f"{row['images_per_s']:.0f} img/s")


def _batches(frames, plan, workers: int):
    """Gather each planned batch from the cache: inline, or in DataLoader worker processes."""
    if workers <= 0:
        return (frames.batch(idx, drop) for idx, drop, _ in plan)
    from torch.utils.data import DataLoader

    return iter(DataLoader(_Planned(frames, plan), batch_size=None, shuffle=False,
                           num_workers=workers))


class _Planned:
    """A map-style dataset whose item i is planned batch i (for DataLoader workers)."""

    def __init__(self, frames, plan):
        self.frames, self.plan = frames, [(idx, drop) for idx, drop, _ in plan]

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int):
        idx, drop = self.plan[i]
        return self.frames.batch(idx, drop)
