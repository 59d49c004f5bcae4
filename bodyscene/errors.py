"""One exception hierarchy for everything a user must act on.

The CLI catches `BodysceneError` by type and turns it into a single line on stderr and a
non-zero exit, so every reader raises with a message that names the file, the row and what was
expected instead of letting a traceback through."""

from __future__ import annotations


class BodysceneError(Exception):
    """An error whose message is the whole user-facing explanation."""


class BadInput(BodysceneError):
    """Input that breaks a contract: a file, a row, a flag, a configuration value."""


class ModelError(BodysceneError):
    """A model name, option, weights file or model output that cannot be used."""


class TrainingError(BodysceneError):
    """A training run that cannot go on (e.g. the loss stopped being a number)."""


def where(path, row: int | None = None, column: str | None = None) -> str:
    """'file', 'file: row 3' or 'file: row 3, column sha256' (rows counted as in a spreadsheet,
    header = row 1)."""
    text = str(path)
    if row is not None:
        text += f": row {row}"
        if column is not None:
            text += f", column {column!r}"
    elif column is not None:
        text += f": column {column!r}"
    return text
