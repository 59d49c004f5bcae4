"""One exception type for input a user must fix.

The CLI turns it into a single line on stderr and a non-zero exit, so every reader raises it with
a message that names the file, the row and what was expected instead of letting a traceback
through."""

from __future__ import annotations


class BadInput(Exception):
    """Input that breaks a contract; the message is the whole user-facing explanation."""


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
