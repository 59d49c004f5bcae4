"""The predictions contract (`predictions/*.csv`): a model's answers in the responses format.

Same columns as human responses (agent_kind=model) so a model is one more observer, plus
`response_open` (its choice among all actions), how a two-stream model was read out, how clip
frames were aggregated, and one probability column `p_<action>` per action."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from bodyscene.human_study.responses import RESPONSES_SCHEMA, read_responses

from bodyscene.errors import BadInput, where
from bodyscene.tables import Schema, is_float, non_empty

PROB_PREFIX = "p_"

PREDICTIONS_SCHEMA = Schema(
    name="predictions",
    required=RESPONSES_SCHEMA.required + ("response_open", "readout", "aggregation"),
    optional=RESPONSES_SCHEMA.optional + ("checkpoint", "model"),
    checks={**RESPONSES_SCHEMA.checks, "response_open": non_empty},
    extra_prefixes=(PROB_PREFIX,),
)
COLUMNS = PREDICTIONS_SCHEMA.columns


def prob_column(action: str) -> str:
    return PROB_PREFIX + action


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions file; probability columns become floats in [0, 1]."""
    df = read_responses(path, PREDICTIONS_SCHEMA)
    if (df["agent_kind"] != "model").any():
        i = int((df["agent_kind"] != "model").to_numpy().nonzero()[0][0])
        raise BadInput(f"{where(path, i + 2, 'agent_kind')}: predictions are written by models, "
                       f"expected 'model'")
    check = is_float(0.0, 1.0)
    for col in [c for c in df.columns if c.startswith(PROB_PREFIX)]:
        for i, v in enumerate(df[col].tolist()):
            problem = check(v)
            if problem:
                raise BadInput(f"{where(path, i + 2, col)}: {problem}, got {v!r}")
        df[col] = df[col].astype(float)
    return df
