"""Linear probe: which parameters are a model's classifier head(s), so `train
--freeze-backbone` can train only those on top of loaded weights (the standard way to score a
pretrained representation).

A model may say itself with `head_parameters()`. Otherwise every `Backbone.head` inside it is a
head (one for the baseline, one per stream for DomainNet, plus DomainNet's fusion weights), and
failing that, the last `nn.Linear` in the model."""

from __future__ import annotations

from bodyscene.errors import ModelError


def head_parameters(model) -> list:
    from torch import nn

    from .backbones import Backbone

    if hasattr(model, "head_parameters"):
        params = list(model.head_parameters())
    else:
        heads = [m.head for m in model.modules() if isinstance(m, Backbone)]
        if not heads:
            heads = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
        params = [p for h in heads for p in h.parameters()]
    if not params:
        raise ModelError(f"{type(model).__name__}: no classifier head to train with "
                         f"--freeze-backbone (give the model a head_parameters() method)")
    return params


def freeze_backbone(model) -> list:
    """Turn off gradients everywhere but the head(s); returns the parameters left trainable."""
    keep = {id(p) for p in head_parameters(model)}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return [p for p in model.parameters() if p.requires_grad]


def frozen_eval(model) -> None:
    """A frozen backbone keeps its BatchNorm statistics while the head trains: every module
    whose own parameters are all frozen goes to eval mode."""
    for m in model.modules():
        own = list(m.parameters(recurse=False))
        if own and not any(p.requires_grad for p in own):
            m.eval()
