"""The built-in models' factories, registered by name (timm's way: constructor and name side
by side). Torch and the network classes are imported inside each factory, so listing the
models (`bodyscene models`) stays instant."""

from __future__ import annotations

from pathlib import Path

from .registry import register_model


@register_model("baseline")
def baseline(num_classes: int, backbone: str = "resnet18", weights: str | Path | None = None):
    """One backbone on the trial's own image: the paper's ResNet trained on original frames."""
    from .baseline import Baseline

    return Baseline(num_classes, backbone, weights)


@register_model("domainnet")
def domainnet(num_classes: int, backbone: str = "resnet18", weights: str | Path | None = None,
              fusion: str = "sum", loss_terms: str = "all", readout: str = "sum",
              hidden: int = 256):
    """The paper's two streams (body, background) with their logits fused."""
    from .domainnet import DomainNet

    return DomainNet(num_classes, backbone, weights, fusion, loss_terms, readout, hidden)
