"""Training: any registered model on the train split's `original` trials, validated each epoch.

Defaults are the paper's (SGD, lr 0.001, momentum 0.9, 100 epochs, class-balanced sampling,
from scratch). Each sample is one frame of one trial, shown as the views the model consumes
(benchmark.data). A run directory holds `last.pt` and `best.pt` (written atomically),
`metrics.csv` (one row per epoch) and `run.json` (config, seed, versions, manifest hash).

Exact resume: the sampler's order, the augmentation and the view dropout of epoch e are pure
functions of (seed, e), so a run killed during epoch e and resumed from `last.pt` (end of epoch
e - 1) draws the same batches and ends with the same weights as one never interrupted.
Multi-process: under `torchrun` every rank draws the same global batch and takes its share, and
DistributedDataParallel averages the gradients."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stimuli.errors import BadInput

CHECKPOINT_FORMAT = "bodyscene-checkpoint/1"
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "images_per_s",
                  "seconds", "lr")
# Config fields a resumed run may change: they do not alter what is computed.
_RESUME_FREE = ("epochs", "resume", "workers", "cache", "device", "progress", "out", "trials")


@dataclass
class TrainConfig:
    trials: str
    model: str = "baseline"            # registry name, "package.module:factory" or entry point
    backbone: str = "resnet18"         # passed to models that take a `backbone`
    out: str = "results/runs/run"
    epochs: int = 100
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 32               # global: split across torchrun processes
    image_size: int = 224
    seed: int = 0
    weights: str | None = None         # local torchvision or state-dict file, per backbone
    view_dropout: float = 0.0          # P(a view is blanked); its stream's loss term skipped
    loss_terms: str | None = None      # DomainNet: all | combined-only (model default if None)
    fusion: str | None = None          # DomainNet: sum | learned-weighted | concat-mlp
    model_options: dict[str, Any] = field(default_factory=dict)
    samples_per_epoch: int | None = None  # default: the number of training frames
    augment: bool = True
    workers: int = 0                   # DataLoader workers gathering cached batches
    cache: str = "memory"              # memory | mmap | a folder for the memory-mapped file
    amp: bool = True                   # mixed precision, CUDA only
    channels_last: bool = True         # CUDA only
    resume: bool = False
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    progress: bool = True


class Diverged(BadInput):
    """The loss stopped being a number; the message says where and what to try."""


# ----------------------------------------------------------------------------- model building

def model_options(cfg: TrainConfig) -> dict[str, Any]:
    """The options given to the model's factory: backbone/weights where it takes them, the
    DomainNet options where set, then the user's own."""
    import inspect

    from models.registry import resolve_factory

    factory = resolve_factory(cfg.model)
    try:
        params = inspect.signature(factory).parameters
        takes = lambda name: name in params or any(  # noqa: E731
            p.kind is p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        takes = lambda name: False  # noqa: E731
    options: dict[str, Any] = {}
    if takes("backbone"):
        options["backbone"] = cfg.backbone
    if cfg.weights:
        options["weights"] = cfg.weights
    if cfg.fusion is not None:
        options["fusion"] = cfg.fusion
    if cfg.loss_terms is not None:
        options["loss_terms"] = cfg.loss_terms
    options.update(cfg.model_options)
    return options


def build_model(name: str, num_classes: int, options: dict[str, Any]):
    from models.registry import create_model

    return create_model(name, num_classes, **options)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BadInput(f"{path}: not a readable checkpoint ({exc})".replace("\n", " ")) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise BadInput(f"{path}: not a bodyscene checkpoint (expected format "
                       f"{CHECKPOINT_FORMAT!r}; plain weights go to --weights)")
    return ckpt


def load_model(path: str | Path):
    """(model in eval mode, checkpoint dict) from a checkpoint written by `train`."""
    ckpt = load_checkpoint(path)
    # The trained state replaces any initial weights, which need not exist any more.
    options = {k: v for k, v in ckpt["model_options"].items() if k != "weights"}
    model = build_model(ckpt["model"], len(ckpt["actions"]), options)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def _save_atomic(obj: dict, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------- predict

def stream_readouts(model) -> tuple[str, ...]:
    """Every readout a model offers; a one-stream model has just its softmax."""
    return tuple(getattr(model, "readouts", ())) or ("softmax",)


def default_readout(model) -> str:
    return getattr(model, "default_readout", None) or stream_readouts(model)[0]


def predict(model, frames, batch_size: int = 64, device="cpu", readouts=None,
            channels_last: bool = False, progress: bool = False) -> dict[str, np.ndarray]:
    """Class probabilities (S, C) per readout for every sample of `frames` (a TrialFrames).
    The forward pass runs once; each readout is applied to the same outputs."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from .data import to_input

    readouts = list(readouts or [default_readout(model)])
    out: dict[str, list[np.ndarray]] = {r: [] for r in readouts}
    model.eval()
    starts = range(0, len(frames), batch_size)
    with torch.inference_mode():
        for s in tqdm(starts, desc="predict", unit="batch", disable=not progress, leave=False):
            pixels, _, present = frames.batch(np.arange(s, min(s + batch_size, len(frames))))
            result = model(*to_input(pixels, device, channels_last=channels_last))
            for r in readouts:
                if hasattr(model, "read_out"):
                    probs = model.read_out(result, r, present.to(device))
                else:
                    probs = F.softmax(result.float(), dim=1)
                out[r].append(probs.float().cpu().numpy())
    return {r: np.concatenate(v) if v else np.zeros((0, len(frames.actions))) for r, v in
            out.items()}


# ------------------------------------------------------------------------------------ the loop

@dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _distributed() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(world, int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")))


def _device(cfg: TrainConfig, dist: _Dist):
    import torch

    if cfg.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank)
        return torch.device("cpu")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"device {cfg.device!r}: CUDA is not available on this machine")
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and dist.world > 1 and dev.index is None:
        dev = torch.device("cuda", dist.local_rank)
    return dev


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


def train(cfg: TrainConfig) -> Path:
    """Train `cfg.model` on `cfg.trials`; returns the run directory (best.pt, last.pt,
    metrics.csv, run.json)."""
    import contextlib

    import torch
    import torch.distributed as tdist
    from tqdm import tqdm

    from stimuli.manifest import actions_of, manifest_sha256, read_manifest
    from stimuli.provenance import write_run_record
    from stimuli.tables import write_csv_atomic

    from .data import Augment, ClassBalancedSampler, TrialFrames, batch_slices, to_input

    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.image_size < 8 or cfg.lr <= 0:
        raise BadInput(f"training needs epochs >= 1, batch size >= 1, image size >= 8 and "
                       f"lr > 0; got {cfg.epochs}, {cfg.batch_size}, {cfg.image_size}, {cfg.lr}")
    if not 0.0 <= cfg.view_dropout < 1.0:
        raise BadInput(f"view dropout is a probability in [0, 1), got {cfg.view_dropout}")
    dist = _distributed()
    if cfg.batch_size % dist.world:
        raise BadInput(f"batch size {cfg.batch_size} must be divisible by the number of "
                       f"processes ({dist.world})")
    manifest_hash = manifest_sha256(cfg.trials)
    out, resumed = _prepare_out(cfg, manifest_hash)
    device = _device(cfg, dist)
    cuda = device.type == "cuda"
    own_group = dist.world > 1 and not tdist.is_initialized()
    if own_group:
        if cuda:
            torch.cuda.set_device(device)
        tdist.init_process_group("nccl" if cuda else "gloo")
    if dist.world > 1:
        tdist.barrier()  # every rank has checked the out folder before rank 0 writes into it

    manifest = read_manifest(cfg.trials)
    actions = actions_of(manifest)
    torch.manual_seed(cfg.seed)
    options = model_options(cfg)
    core = build_model(cfg.model, len(actions), options).to(device)
    views = tuple(core.views)
    if cfg.view_dropout > 0 and len(views) < 2:
        raise BadInput(f"view dropout needs a model with two or more views; {cfg.model!r} "
                       f"consumes only {', '.join(views)}")
    train_set = TrialFrames(manifest, views, cfg.image_size, actions, split="train",
                            conditions=("original",), cache=cfg.cache,
                            manifest_path=cfg.trials, progress=cfg.progress and dist.main)
    if len(train_set) == 0:
        raise BadInput(f"{cfg.trials}: no 'original' trials in the train split to train on")
    val_set = TrialFrames(manifest, views, cfg.image_size, actions, split="val",
                          conditions=("original",), cache=cfg.cache,
                          manifest_path=cfg.trials, progress=False) if dist.main else None

    channels_last = cfg.channels_last and cuda
    if channels_last:
        core = core.to(memory_format=torch.channels_last)
    model = core
    if dist.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[device.index] if cuda else None)
    optimizer = torch.optim.SGD(core.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    amp = cfg.amp and cuda
    amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)
    autocast = ((lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp
                else contextlib.nullcontext)

    start, metrics = 0, []
    best: dict[str, Any] = {"epoch": 0, "score": [float("-inf"), float("-inf")]}
    if resumed is not None:
        core.load_state_dict(resumed["state_dict"])
        optimizer.load_state_dict(resumed["optimizer"])
        scaler.load_state_dict(resumed["scaler"])
        torch.set_rng_state(resumed["torch_rng"])
        start, metrics, best = resumed["epoch"], list(resumed["metrics"]), dict(resumed["best"])
    if dist.main:
        write_run_record(out, cfg, cfg.seed, manifest_sha256=manifest_hash, actions=actions,
                         views=views, model_options=options, world_size=dist.world,
                         device=str(device), resumed_from_epoch=start if resumed else None,
                         train_frames=len(train_set),
                         val_frames=len(val_set) if val_set is not None else 0)

    sampler = ClassBalancedSampler(train_set.label, cfg.samples_per_epoch or len(train_set),
                                   cfg.seed, dist.world, dist.rank)
    augment = Augment() if cfg.augment else None
    base = {k: v for k, v in dataclasses.asdict(cfg).items()}

    def checkpoint(epoch: int) -> dict:
        return {"format": CHECKPOINT_FORMAT, "model": cfg.model, "model_options": options,
                "actions": actions, "views": list(views), "state_dict": core.state_dict(),
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "torch_rng": torch.get_rng_state(), "epoch": epoch, "metrics": metrics,
                "best": best, "config": base, "manifest_sha256": manifest_hash,
                "image_size": cfg.image_size}

    for epoch in range(start, cfg.epochs):
        core.train()
        t0 = time.perf_counter()
        order = sampler.global_order(epoch)
        aug_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        drop_rng = np.random.default_rng([cfg.seed, epoch, 7])
        steps = batch_slices(order, cfg.batch_size)
        plan = []
        for gidx in steps:  # draw for the global batch, then take this rank's share
            params = augment.draw(len(gidx), aug_gen) if augment else None
            drop = _dropout(len(gidx), len(views), cfg.view_dropout, drop_rng)
            share = slice(dist.rank, None, dist.world)
            plan.append((gidx[share], None if drop is None else drop[share],
                         None if params is None else {k: v[share] for k, v in params.items()}))
        batches = _batches(train_set, plan, cfg.workers)
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        bar = tqdm(batches, total=len(plan), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="step", disable=not (cfg.progress and dist.main), leave=False)
        for step, ((pixels, labels, present), (_, _, params)) in enumerate(zip(bar, plan)):
            xs = to_input(pixels, device, params, channels_last)
            labels, present = labels.to(device), present.to(device)
            loss, logits = train_step(model, core, xs, labels, present, optimizer, scaler,
                                      autocast)
            if dist.world > 1:
                tdist.all_reduce(loss)
                loss /= dist.world
            value = float(loss)
            if not np.isfinite(value):
                raise Diverged(f"training diverged: the loss became {value} at epoch "
                               f"{epoch + 1}, step {step + 1} (lr {cfg.lr}); lower --lr or check "
                               f"the data; the last good state is {out / 'last.pt'}"
                               + ("" if epoch else " (none yet: it diverged in epoch 1)"))
            total_loss += loss * len(labels)
            correct += (logits.argmax(1) == labels).sum()
            seen += len(labels)
            if step % 5 == 0 or step == len(plan) - 1:
                rate = seen * dist.world / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{value:.3f}", img_s=f"{rate:.0f}")
        bar.close()
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": float(total_loss) / seen,
               "train_acc": float(correct) / seen, "val_loss": None, "val_acc": None,
               "images_per_s": seen * dist.world / seconds, "seconds": seconds, "lr": cfg.lr}
        if dist.main:
            if val_set is not None and len(val_set):
                probs = predict(core, val_set, max(cfg.batch_size, 64), device,
                                channels_last=channels_last)[default_readout(core)]
                picked = probs[np.arange(len(val_set)), val_set.label]
                row["val_loss"] = float(-np.log(np.clip(picked, 1e-12, 1)).mean())
                row["val_acc"] = float((probs.argmax(1) == val_set.label).mean())
            metrics.append(row)
            # Best = highest validation accuracy, then lowest validation loss; with no
            # validation trials, lowest training loss.
            score = ([row["val_acc"], -row["val_loss"]] if row["val_acc"] is not None
                     else [-row["train_loss"], 0.0])
            improved = score > best["score"]
            if improved:
                best = {"epoch": epoch + 1, "score": score}
            state = checkpoint(epoch + 1)
            if improved:
                _save_atomic(state, out / "best.pt")
            _save_atomic(state, out / "last.pt")
            write_csv_atomic(out / "metrics.csv", metrics, METRIC_COLUMNS)
            shown = "-" if row["val_acc"] is None else f"{row['val_acc']:.3f}"
            if cfg.progress:
                print(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.4f}, "
                      f"train acc {row['train_acc']:.3f}, val acc {shown}, "
                      f"{row['images_per_s']:.0f} img/s", flush=True)
        if dist.world > 1:
            tdist.barrier()
    train_set.cache.close()
    if val_set is not None:
        val_set.cache.close()
    if dist.world > 1:
        tdist.barrier()
    if own_group:
        tdist.destroy_process_group()
    return out


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
