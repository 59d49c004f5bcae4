"""Class probabilities from a model over a TrialFrames: one forward pass, every readout."""

from __future__ import annotations

import numpy as np


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
