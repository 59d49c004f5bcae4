"""Checkpoints: what a training run saves and how a model is rebuilt from it.

A checkpoint is a dict with `format` = CHECKPOINT_FORMAT, the model's registry name, options
and actions (class-index order), its state dict, and what exact resume needs (optimizer, scaler,
RNG, epoch, metrics, config). It is written through a temporary file and a rename, so a killed
run never leaves half a file."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from bodyscene.errors import BadInput

CHECKPOINT_FORMAT = "bodyscene-checkpoint/1"


def model_options(cfg) -> dict[str, Any]:
    """The options given to the model's factory (from a TrainConfig): backbone/weights where it
    takes them, the DomainNet options where set, then the user's own."""
    from bodyscene.models.registry import resolve_factory

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


def build_model(name: str, num_classes: int, options: dict[str, Any],
                actions: list[str] | None = None):
    from bodyscene.models.registry import create_model

    return create_model(name, num_classes, actions=actions, **options)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise BadInput(f"{path}: not a readable checkpoint (expected best.pt or last.pt "
                       f"written by `bodyscene train`)") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise BadInput(f"{path}: not a bodyscene checkpoint (expected format "
                       f"{CHECKPOINT_FORMAT!r}; plain weights go to --weights)")
    return ckpt


def load_model(path: str | Path):
    """(model in eval mode, checkpoint dict) from a checkpoint written by `train`."""
    ckpt = load_checkpoint(path)
    # The trained state replaces any initial weights, which need not exist any more.
    options = {k: v for k, v in ckpt["model_options"].items() if k != "weights"}
    model = build_model(ckpt["model"], len(ckpt["actions"]), options, list(ckpt["actions"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def save_checkpoint(obj: dict, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)
