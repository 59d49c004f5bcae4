"""DomainNet (arXiv 2512.07729): a body stream and a background stream, each a backbone,
their logits fused; loss = CE(body) + CE(background) + CE(fused).

Options for the paper's ablations: which loss terms train the net (`all` or `combined-only`), how
the streams are fused (`sum`, `learned-weighted`, `concat-mlp`), and how the net is read out when
one view is blank (`sum`, `softmax-sum`, `stream`) -- the last decides single-view accuracy, so it
is explicit and recorded rather than implied."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from bodyscene.extras import missing_extra

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ModuleNotFoundError as exc:  # no models extra: one line naming it
    raise missing_extra(exc) or exc

from bodyscene.errors import ModelError

from .backbones import create_backbone

FUSIONS = ("sum", "learned-weighted", "concat-mlp")
LOSS_TERMS = ("all", "combined-only")
READOUTS = ("sum", "softmax-sum", "stream")


class StreamLogits(NamedTuple):
    """What a two-stream forward pass returns: each stream's own logits and the fused ones."""

    body: torch.Tensor
    background: torch.Tensor
    fused: torch.Tensor


class DomainNet(nn.Module):
    views = ("body", "background")
    readouts = READOUTS

    def __init__(self, num_classes: int, backbone: str = "resnet18",
                 weights: str | Path | None = None, fusion: str = "sum",
                 loss_terms: str = "all", readout: str = "sum", hidden: int = 256):
        super().__init__()
        for value, allowed, what in ((fusion, FUSIONS, "fusion"),
                                     (loss_terms, LOSS_TERMS, "loss_terms"),
                                     (readout, READOUTS, "readout")):
            if value not in allowed:
                raise ModelError(f"DomainNet {what} {value!r}: expected one of "
                                 f"{', '.join(allowed)}")
        self.fusion, self.loss_terms, self.default_readout = fusion, loss_terms, readout
        self.body = create_backbone(backbone, num_classes, weights)
        self.background = create_backbone(backbone, num_classes, weights)
        if fusion == "learned-weighted":
            # One weight per stream, starting at the paper's plain sum.
            self.stream_weights = nn.Parameter(torch.ones(2))
        elif fusion == "concat-mlp":
            dim = self.body.num_features + self.background.num_features
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True),
                                     nn.Linear(hidden, num_classes))

    def head_parameters(self) -> list[nn.Parameter]:
        """What a linear probe trains: each stream's classifier and the fusion's own weights."""
        params = [*self.body.head.parameters(), *self.background.head.parameters()]
        for name in ("stream_weights", "mlp"):
            part = getattr(self, name, None)
            if isinstance(part, nn.Parameter):
                params.append(part)
            elif part is not None:
                params += list(part.parameters())
        return params

    def forward(self, body: torch.Tensor, background: torch.Tensor) -> StreamLogits:
        fb = self.body.forward_features(body)
        fg = self.background.forward_features(background)
        lb, lg = self.body.head(fb), self.background.head(fg)
        if self.fusion == "sum":
            fused = lb + lg
        elif self.fusion == "learned-weighted":
            fused = self.stream_weights[0] * lb + self.stream_weights[1] * lg
        else:
            fused = self.mlp(torch.cat([fb, fg], dim=1))
        return StreamLogits(lb, lg, fused)

    def loss(self, out: StreamLogits, target: torch.Tensor,
             present: torch.Tensor | None = None) -> torch.Tensor:
        """Mean over the batch of CE(fused) plus, with `all`, each stream's own CE where its
        view was shown. `present` is (N, 2) bool for (body, background); a view blanked by view
        dropout does not train its stream to name the action from nothing."""
        loss = F.cross_entropy(out.fused.float(), target)
        if self.loss_terms == "combined-only":
            return loss
        if present is None:
            present = torch.ones(target.shape[0], 2, dtype=torch.bool, device=target.device)
        for k, logits in enumerate((out.body, out.background)):
            per_item = F.cross_entropy(logits.float(), target, reduction="none")
            loss = loss + (per_item * present[:, k]).mean()
        return loss

    def read_out(self, out: StreamLogits, readout: str | None = None,
                 present: torch.Tensor | None = None) -> torch.Tensor:
        """Class probabilities (N, C). `sum`: softmax of the fused logits, a blank stream's
        included; `softmax-sum`: the mean of the two streams' softmaxes; `stream`: the softmax of
        the stream whose view is present, the fused one where both (or neither) are."""
        readout = readout or self.default_readout
        if readout not in READOUTS:
            raise ModelError(f"readout {readout!r}: expected one of {', '.join(READOUTS)}")
        fused = F.softmax(out.fused.float(), dim=1)
        if readout == "sum":
            return fused
        pb, pg = F.softmax(out.body.float(), dim=1), F.softmax(out.background.float(), dim=1)
        if readout == "softmax-sum":
            return (pb + pg) / 2
        if present is None:
            return fused
        only_body = (present[:, 0] & ~present[:, 1])[:, None]
        only_bg = (present[:, 1] & ~present[:, 0])[:, None]
        return torch.where(only_body, pb, torch.where(only_bg, pg, fused))
