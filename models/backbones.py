"""Backbones: a feature extractor plus a linear head, from torchvision by name or tiny ones for
tests. Weights come only from a local file; nothing is ever downloaded."""

from __future__ import annotations

from pathlib import Path

from bodyscene.extras import missing_extra

try:
    import torch
    from torch import nn
except ModuleNotFoundError as exc:  # no models extra: one line naming it
    raise missing_extra(exc) or exc

from bodyscene.errors import ModelError

from .weights import HEAD_NAMES as _HEAD_NAMES
from .weights import check_fit, read_state_dict

# Tiny architectures for tests and quick CPU demos (timm's `test_*` idea): the real code path,
# in milliseconds. No BatchNorm, so a two-process DDP run equals one process on the same batch.
_TINY = {"tiny": (8, 16), "small": (16, 32)}
# Small residual nets for 48-64 px inputs (the CPU demo). A ResNet-18 at 64 px spends most of
# its FLOPs and its 11 M parameters on 256-512 channels at 4x4 and 2x2 that a synthetic world of
# 8 actions does not need; these keep ResNet's shape (stem, four stages, one basic block each,
# BatchNorm, identity shortcuts) at a tenth of the widths, with a 3x3 stride-2 stem and no
# max-pool so a 64 px figure keeps 32x32 detail in the first stage.
_MINI = {"miniresnet": (16, 32, 64, 128)}


class Backbone(nn.Module):
    """`features(x) -> (N, num_features)` then `head -> (N, num_classes)` logits. Kept apart so
    a fusion can combine features (concat-mlp) while each stream keeps its own classifier."""

    def __init__(self, features: nn.Module, num_features: int, num_classes: int, arch: str):
        super().__init__()
        self.arch = arch
        self.features = features
        self.num_features = num_features
        self.head = nn.Linear(num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _tiny(widths: tuple[int, int]) -> tuple[nn.Module, int]:
    a, b = widths
    net = nn.Sequential(
        nn.Conv2d(3, a, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return net, b


class _BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the shortcut (a strided 1x1 conv-BN where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        # The last BN of each residual branch starts at zero, so every block starts as the
        # identity: trains stably at a high learning rate in few epochs.
        nn.init.zeros_(self.bn2.weight)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def _mini(widths: tuple[int, ...]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 2, 1, bias=False),
                               nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    cin = widths[0]
    for i, w in enumerate(widths):
        layers.append(_BasicBlock(cin, w, 1 if i == 0 else 2))
        cin = w
    for m in layers:
        for conv in (c for c in m.modules() if isinstance(c, nn.Conv2d)):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), cin


def _torchvision(arch: str) -> tuple[nn.Module, int]:
    import torchvision

    try:
        net = torchvision.models.get_model(arch, weights=None)
    except (ValueError, KeyError):
        raise ModelError(f"unknown backbone {arch!r}: use one of {', '.join(list_backbones())}") \
            from None
    # Replace the last Linear (fc, classifier[-1], heads.head ...) by Identity: what is left
    # maps images to features, whatever the family's layout.
    last = None
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear):
            last = (name, module)
    if last is None:
        raise ModelError(f"backbone {arch!r} has no linear classifier to replace")
    name, linear = last
    parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
    setattr(parent, name.rpartition(".")[2], nn.Identity())
    return net, linear.in_features


def list_backbones() -> list[str]:
    import torchvision

    return sorted(_TINY) + sorted(_MINI) + sorted(torchvision.models.list_models(module=torchvision.models))


def create_backbone(arch: str, num_classes: int, weights: str | Path | None = None) -> Backbone:
    """Backbone `arch` with a fresh `num_classes` head; `weights` a local state-dict file."""
    if arch in _TINY:
        features, dim = _tiny(_TINY[arch])
    elif arch in _MINI:
        features, dim = _mini(_MINI[arch])
    else:
        features, dim = _torchvision(arch)
    backbone = Backbone(features, dim, num_classes, arch)
    if weights:
        load_weights(backbone, weights)
    return backbone


def load_weights(backbone: Backbone, path: str | Path) -> list[str]:
    """Load a torchvision or plain state-dict checkpoint into `backbone`. The classifier head is
    loaded only where its shape fits this task (else it stays freshly initialised); any other
    missing, unexpected or mis-shaped tensor is an error. Returns the keys left out."""
    state = read_state_dict(path)
    # Our own wrappers ("backbone.") prefix the backbone's keys (DDP's "module." is gone).
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    own_features = backbone.features.state_dict()
    head = backbone.head
    features, head_state, skipped = {}, {}, []
    for key, value in state.items():
        if key.startswith("features."):
            key = key.removeprefix("features.")
        if key in own_features:
            features[key] = value
            continue
        param = key.rpartition(".")[2]
        if key.startswith(_HEAD_NAMES) and param in ("weight", "bias"):
            if tuple(value.shape) == tuple(getattr(head, param).shape):
                head_state[param] = value
            else:
                skipped.append(key)
            continue
        features[key] = value  # reported as unexpected below
    check_fit(path, f"backbone {backbone.arch!r}", own_features, features)
    backbone.features.load_state_dict(features)
    if len(head_state) == 2:
        head.load_state_dict(head_state)
    else:
        skipped += [f"head.{k}" for k in head_state]
    return skipped
