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


@register_model("torchvision", pretrained=True)
def torchvision_image(num_classes: int = 1000, arch: str = "resnet18",
                      weights: str | Path | None = None, size: int = 224):
    """Any torchvision image classifier (`--option arch=resnet50`), weights from a local file;
    1000 classes (ImageNet, class names declared) unless told otherwise."""
    from .adapters import image_classifier

    return image_classifier(num_classes, arch, weights, size)


def _video(arch: str):
    def factory(num_classes: int = 400, weights: str | Path | None = None, frames: int = 16,
                sampling: str = "uniform", fps: float | None = None, clips: int = 1,
                size: int | None = None):
        from .adapters import VideoClassifier

        return VideoClassifier(arch, num_classes, weights, frames, sampling, fps, clips, size)

    factory.__name__ = arch
    factory.__doc__ = (f"torchvision's {arch} video classifier on whole clips (N, C, T, H, W); "
                       f"400 Kinetics classes unless told otherwise; weights from a local file.")
    return factory


for _arch in ("r3d_18", "r2plus1d_18", "mc3_18", "s3d", "mvit_v2_s"):
    register_model(_arch, pretrained=True)(_video(_arch))


@register_model("test_clip3d")
def test_clip3d(num_classes: int, frames: int = 4, width: int = 8,
                weights: str | Path | None = None):
    """A tiny 3D CNN on (N, T, C, H, W) clips, for fast tests of the clip path."""
    from .adapters import TinyClip3D

    return TinyClip3D(num_classes, frames, width, weights)
