"""Class probabilities from a model over a TrialFrames (or its clips): one forward pass per
batch, every readout, the next batch gathered while the model runs.

A model's output is checked on every batch: a user's model that raises, returns a tuple, the
wrong shape or NaN stops with one line naming it, what it returned and what was expected."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bodyscene.errors import BodysceneError, ModelError


def stream_readouts(model) -> tuple[str, ...]:
    """Every readout a model offers; a one-stream model has just its softmax."""
    return tuple(getattr(model, "readouts", ())) or ("softmax",)


def default_readout(model) -> str:
    return getattr(model, "default_readout", None) or stream_readouts(model)[0]


def batch_ranges(frames, batch_size: int) -> list[np.ndarray]:
    """Consecutive entries, at most `batch_size`, never mixing clip lengths in one batch."""
    lengths = getattr(frames, "lengths", None)
    out, start, n = [], 0, len(frames)
    while start < n:
        stop = min(start + batch_size, n)
        if lengths is not None:
            same = np.flatnonzero(lengths[start:stop] != lengths[start])
            stop = start + int(same[0]) if len(same) else stop
        out.append(np.arange(start, stop))
        start = stop
    return out


def check_output(out, n: int, num_classes: int | None, name: str):
    """The logits tensor of one forward pass, or a one-line ModelError."""
    import torch

    want = f"a tensor of (N, num_classes) = ({n}, {num_classes if num_classes else 'C'}) logits"
    if isinstance(out, (tuple, list)):
        raise ModelError(f"model {name!r}: forward returned a {type(out).__name__} of "
                         f"{len(out)}; expected {want}")
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"model {name!r}: forward returned {type(out).__name__}; "
                         f"expected {want}")
    shape = tuple(out.shape)
    if len(shape) != 2 or shape[0] != n or (num_classes and shape[1] != num_classes):
        raise ModelError(f"model {name!r}: forward returned shape {shape}; expected {want}")
    if not torch.isfinite(out).all():
        bad = "NaN" if torch.isnan(out).any() else "infinite"
        raise ModelError(f"model {name!r}: forward returned {bad} logits; expected {want}")
    return out


def predict(model, frames, batch_size: int = 64, device="cpu", readouts=None,
            channels_last: bool = False, progress: bool = False, spec=None,
            label_map=None, num_classes: int | None = None,
            name: str | None = None, amp: bool = False) -> dict[str, np.ndarray]:
    """Class probabilities (S, C) per readout for every entry of `frames` (a TrialFrames or
    ClipFrames), C = the actions when `label_map` maps the model's classes onto them. `spec` is
    the model's InputSpec (default: its own declaration). `amp`: float16 autocast, on CUDA only
    (probabilities are computed in float32 either way)."""
    from contextlib import nullcontext

    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from .data import to_input
    from .inputs import input_spec

    spec = spec or input_spec(model)
    name = name or type(model).__name__
    readouts = list(readouts or [default_readout(model)])
    out: dict[str, list[np.ndarray]] = {r: [] for r in readouts}
    model.eval()
    ranges = batch_ranges(frames, batch_size)
    width = len(frames.actions) if label_map is not None or num_classes is None else num_classes
    on_cuda = torch.device(device).type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.float16) if amp and on_cuda else nullcontext()
    with torch.inference_mode(), ThreadPoolExecutor(1) as pool:
        pending = pool.submit(frames.batch, ranges[0]) if ranges else None
        for i in tqdm(range(len(ranges)), desc="predict", unit="batch", disable=not progress,
                      leave=False):
            pixels, _, present = pending.result()
            if i + 1 < len(ranges):  # decode the next batch while the model runs
                pending = pool.submit(frames.batch, ranges[i + 1])
            xs = to_input(pixels, device, channels_last=channels_last and not spec.clip,
                          **spec.tensors())
            try:
                with autocast:
                    result = model(*xs)
            except BodysceneError:
                raise
            except Exception as exc:
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise ModelError(f"model {name!r}: forward raised {type(exc).__name__}"
                                 f"{': ' + text if text else ''} on input "
                                 f"{' + '.join(str(tuple(x.shape)) for x in xs)}") from None
            for r in readouts:
                if hasattr(model, "read_out"):
                    probs = check_output(model.read_out(result, r, present.to(device)),
                                         len(pixels), num_classes, name)
                else:
                    probs = F.softmax(check_output(result, len(pixels), num_classes,
                                                   name).float(), dim=1)
                probs = probs.float().cpu().numpy()
                out[r].append(label_map.apply(probs) if label_map is not None else probs)
    return {r: np.concatenate(v) if v else np.zeros((0, width)) for r, v in out.items()}
