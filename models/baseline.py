"""The baseline: one backbone trained and tested on the trial's own image (the paper's ResNet
trained on original frames)."""

from __future__ import annotations

from pathlib import Path

from bodyscene.extras import missing_extra

try:
    import torch
    from torch import nn
except ModuleNotFoundError as exc:  # no models extra: one line naming it
    raise missing_extra(exc) or exc

from .backbones import create_backbone


class Baseline(nn.Module):
    """One stream on the `original` view; logits out."""

    views = ("original",)

    def __init__(self, num_classes: int, backbone: str = "resnet18",
                 weights: str | Path | None = None):
        super().__init__()
        self.backbone = create_backbone(backbone, num_classes, weights)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return self.backbone(original)
