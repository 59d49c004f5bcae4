"""Adapters for classifiers trained elsewhere: torchvision's image classifiers and video
classifiers, plus a tiny 3D CNN that runs the clip code path in tests.

Each adapter declares what the harness must feed it (docs/evaluate_your_model.md): `input`
("frame" or "clip"), its clip length, sampling and layout, its input transform and, where its
head is the one it was trained with, its class names (ImageNet-1k, Kinetics-400), so a label map
can name classes instead of indices. Weights come from a local file only."""

from __future__ import annotations

from pathlib import Path

from bodyscene.extras import missing_extra

try:
    import torch
    from torch import nn
except ModuleNotFoundError as exc:  # no models extra: one line naming it
    raise missing_extra(exc) or exc

from bodyscene.errors import ModelError

from .backbones import Backbone, create_backbone
from .weights import load_state

# torchvision's video presets (transforms/_presets.py: VideoClassification) normalise with
# Kinetics statistics, not ImageNet's.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
# arch -> (crop size, smallest clip length the network accepts)
VIDEO_ARCHS = {"r3d_18": (112, 1), "r2plus1d_18": (112, 1), "mc3_18": (112, 1),
               "s3d": (224, 14), "mvit_v2_s": (224, 16)}
SAMPLINGS = ("uniform", "all", "fps")


def _categories(name: str, num_classes: int) -> list[str] | None:
    from torchvision.models import _meta

    names = list(getattr(_meta, name))
    return names if len(names) == num_classes else None


def image_classifier(num_classes: int, arch: str, weights: str | Path | None,
                     size: int) -> Backbone:
    """A torchvision image classifier as a one-view model; torchvision's own eval transform
    (resize the short side, centre crop) and ImageNet class names when it has 1000 classes."""
    net = create_backbone(arch, num_classes, weights)
    net.views = ("original",)
    net.input_transform = {"size": size, "resize": "crop"}
    names = _categories("_IMAGENET_CATEGORIES", num_classes)
    if names:
        net.class_names = names
    return net


class VideoClassifier(nn.Module):
    """A torchvision video network on whole clips, (N, C, T, H, W) as torchvision expects."""

    views = ("original",)
    input = "clip"
    clip_layout = "NCTHW"

    def __init__(self, arch: str, num_classes: int, weights: str | Path | None = None,
                 frames: int = 16, sampling: str = "uniform", fps: float | None = None,
                 clips: int = 1, size: int | None = None):
        super().__init__()
        import torchvision.models.video as video

        if arch not in VIDEO_ARCHS:
            raise ModelError(f"video model {arch!r}: expected one of {', '.join(VIDEO_ARCHS)}")
        crop, min_frames = VIDEO_ARCHS[arch]
        if frames < min_frames:
            raise ModelError(f"{arch} needs clips of at least {min_frames} frames, got "
                             f"frames={frames}")
        if sampling not in SAMPLINGS:
            raise ModelError(f"{arch} sampling {sampling!r}: expected one of "
                             f"{', '.join(SAMPLINGS)}")
        size = int(size or crop)
        if arch == "mvit_v2_s" and (size, frames) != (224, 16):
            # Its position embeddings are built for one input shape.
            raise ModelError(f"mvit_v2_s takes 16 frames of 224x224, got frames={frames}, "
                             f"size={size}")
        self.arch = arch
        self.net = getattr(video, arch)(weights=None, num_classes=num_classes)
        if weights:
            load_state(self.net, weights, what=arch)
        self.clip_frames, self.clip_sampling, self.clip_fps = frames, sampling, fps
        self.num_clips = clips
        self.input_transform = {"size": size, "resize": "crop", "mean": KINETICS_MEAN,
                                "std": KINETICS_STD}
        names = _categories("_KINETICS400_CATEGORIES", num_classes)
        if names:
            self.class_names = names

    def head_parameters(self):
        """The classifier a linear probe trains (fc, classifier or head by family)."""
        for name in ("fc", "classifier", "head"):
            if hasattr(self.net, name):
                return list(getattr(self.net, name).parameters())
        raise ModelError(f"{self.arch}: no classifier head found")

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(clip)


class TinyClip3D(nn.Module):
    """Two 3D convolutions and a linear head: the clip path in milliseconds. Takes (N, T, C,
    H, W), the harness's default layout, so tests cover both layouts."""

    views = ("original",)
    input = "clip"
    clip_layout = "NTCHW"
    clip_sampling = "uniform"

    def __init__(self, num_classes: int, frames: int = 4, width: int = 8,
                 weights: str | Path | None = None):
        super().__init__()
        self.clip_frames = frames
        self.features = nn.Sequential(
            nn.Conv3d(3, width, 3, stride=(1, 2, 2), padding=1), nn.ReLU(inplace=True),
            nn.Conv3d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.head = nn.Linear(2 * width, num_classes)
        if weights:
            load_state(self, weights, what="test_clip3d")

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(clip.transpose(1, 2)))
