"""Observer groups as every table and figure names and orders them: people, simulated people,
then one group per model. Kept apart from the loader so statistics never import file I/O."""

from __future__ import annotations

import pandas as pd

HUMANS = "humans"
SIMULATED_HUMANS = "humans (simulated)"


def group_order(obs: pd.DataFrame, column: str = "group") -> list[str]:
    """Groups as a reader expects them: people first, then simulated people, then models in the
    order of their names."""
    groups = set(obs[column])
    head = [g for g in (HUMANS, SIMULATED_HUMANS) if g in groups]
    return head + sorted(groups - set(head))


def is_human_group(group: str) -> bool:
    return group in (HUMANS, SIMULATED_HUMANS)
