"""Label maps: scoring a model whose classes are not the manifest's actions (ImageNet,
Kinetics-400, a lab's own labels).

A map is a CSV `model_class,action`: `model_class` is an output index, or a class name where the
model declares `class_names`. Many model classes may map to one action; model classes left out are
dropped. The probabilities of the classes mapped to an action are summed (`sum`, the default:
the probability that the model saw any of them) or averaged (`mean`, model-vs-human's choice,
which does not favour an action for having many classes); either way they are then renormalised
to sum to 1 over the actions, so the response among a trial's offered choices is the most
probable of them after renormalising over those choices."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from bodyscene.errors import BadInput, where

COMBINES = ("sum", "mean")
# Shipped example: a Kinetics-400 model onto the demo world's action names.
EXAMPLES = Path(__file__).with_name("label_maps")


@dataclass
class LabelMap:
    path: str
    matrix: np.ndarray                 # (model classes, actions) of 0/1
    combine: str = "sum"
    ignored_actions: list[str] = field(default_factory=list)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """(S, model classes) probabilities -> (S, actions), rows summing to 1."""
        mapped = probs.astype(np.float64) @ self.matrix
        if self.combine == "mean":
            mapped /= self.matrix.sum(axis=0, keepdims=True)
        mapped = np.maximum(mapped, 1e-30)
        return mapped / mapped.sum(axis=1, keepdims=True)

    def record(self) -> dict:
        return {"label_map": self.path, "label_combine": self.combine,
                "mapped_model_classes": int(self.matrix.any(axis=1).sum()),
                "label_map_ignored_actions": self.ignored_actions}


def read_label_map(path: str | Path, actions: Sequence[str], num_classes: int,
                   class_names: Sequence[str] | None = None, combine: str = "sum") -> LabelMap:
    """Read and check a map against the manifest's `actions` and the model's classes."""
    import pandas as pd

    path = Path(path)
    if combine not in COMBINES:
        raise BadInput(f"label combine {combine!r}: expected one of {', '.join(COMBINES)}")
    if not path.is_file():
        raise BadInput(f"{path}: label map not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:
        raise BadInput(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if list(df.columns) != ["model_class", "action"]:
        raise BadInput(f"{where(path, 1)}: expected the header 'model_class,action', got "
                       f"{','.join(df.columns)!r}")
    index = {a: i for i, a in enumerate(actions)}
    by_name = {n: i for i, n in enumerate(class_names or [])}
    matrix = np.zeros((num_classes, len(actions)))
    target: dict[int, str] = {}
    ignored = set()
    for row, (cls, action) in enumerate(zip(df["model_class"], df["action"]), start=2):
        cls, action = cls.strip(), action.strip()
        if cls in by_name:
            k = by_name[cls]
        elif cls.isdigit():
            k = int(cls)
            if k >= num_classes:
                raise BadInput(f"{where(path, row, 'model_class')}: index {k} is out of range; "
                               f"the model has {num_classes} classes (0..{num_classes - 1})")
        else:
            hint = ("the model declares no class names, so use output indices" if not by_name
                    else "not one of the model's class names")
            raise BadInput(f"{where(path, row, 'model_class')}: {cls!r}: {hint}")
        if action not in index:
            ignored.add(action)  # an action of another trial set (a typo leaves one unmapped)
            continue
        if k in target and target[k] != action:
            raise BadInput(f"{where(path, row, 'action')}: model class {cls!r} is already "
                           f"mapped to {target[k]!r}; a class maps to one action")
        target[k] = action
        matrix[k, index[action]] = 1.0
    unmapped = [a for a in actions if not matrix[:, index[a]].any()]
    if unmapped:
        raise BadInput(f"{path}: action {unmapped[0]!r} has no model class mapped to it "
                       f"(every action of the trials needs at least one)")
    return LabelMap(str(path), matrix, combine, sorted(ignored))
