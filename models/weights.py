"""Local weights files: read a state dict safely and load it into a model, with one-line errors.

Files are read with `weights_only=True` (no pickled code runs). A torchvision/timm-style
checkpoint that nests its tensors under `state_dict`, `model` or `module` is unwrapped, and the
prefixes DistributedDataParallel (`module.`) and our wrappers add are stripped. The classifier
head is loaded only where its shape fits the model (else it stays freshly initialised), so the
same file serves a 400-class evaluation and a 3-action linear probe."""

from __future__ import annotations

from pathlib import Path

from bodyscene.errors import ModelError

HEAD_NAMES = ("fc.", "classifier.", "head.", "heads.")


def read_state_dict(path: str | Path) -> dict:
    """The tensors of a local weights file; a missing, garbage or pickled-object file is one
    line, never torch's multi-line message."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        with open(path, "rb") as fh:
            head = fh.read(4)
        is_torch_file = head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"
        if is_torch_file and "Unsupported global" in str(exc):
            raise ModelError(f"{path}: holds Python objects besides tensors; bodyscene reads "
                             f"weights without running pickled code, so save "
                             f"model.state_dict() with torch.save") from None
        raise ModelError(f"{path}: not a readable torch weights file (expected a state dict "
                         f"written by torch.save)") from None
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: expected a state dict of tensors (name -> tensor)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_state(model, path: str | Path, strip: str = "", what: str = "model") -> list[str]:
    """Load `path` into `model`; a head tensor whose shape does not fit is skipped, anything else
    missing, unexpected or mis-shaped is an error. Returns the keys skipped."""
    state = read_state_dict(path)
    if strip:
        state = {k.removeprefix(strip): v for k, v in state.items()}
    own = model.state_dict()
    keep, skipped = {}, []
    for key, value in state.items():
        if key in own and tuple(value.shape) != tuple(own[key].shape) \
                and key.startswith(HEAD_NAMES):
            skipped.append(key)
            continue
        keep[key] = value
    check_fit(path, what, {k: v for k, v in own.items() if k not in skipped}, keep)
    model.load_state_dict(keep, strict=not skipped)
    return skipped


def check_fit(path, what: str, own: dict, given: dict) -> None:
    """One line naming what is missing, unexpected or mis-shaped when `given` tensors are to
    replace a module's `own` state."""
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        raise ModelError(f"{path}: weights do not fit {what} (missing {missing[:3]}"
                         f"{'...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}"
                         f"{'...' if len(unexpected) > 3 else ''})")
    bad = [k for k, v in given.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise ModelError(f"{path}: tensor {bad[0]!r} has shape {tuple(given[bad[0]].shape)}, "
                         f"{what} expects {tuple(own[bad[0]].shape)}")


def state_sha256(model) -> str:
    """sha256 of a module's weights: every tensor of its state dict in name order (name, dtype,
    shape and bytes), so the record names the weights a model object was scored with."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        t = value.detach().to("cpu").contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
