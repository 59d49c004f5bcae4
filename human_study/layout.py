"""Where the k response labels go: laid out from their measured text sizes, so long action
names never overlap at any k or window size.

Pure arithmetic in pixels (origin at the window's centre, y up), kept free of PsychoPy so it
is tested without a window; the runner measures each label's text with PsychoPy and passes
the sizes in. Labels fill one row when they fit the window's width, otherwise the fewest rows
that fit (down to one label per row, a column)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    """A label's box: centre (x, y) and size (w, h) in pixels."""

    x: float
    y: float
    w: float
    h: float

    def intersects(self, other: "Box") -> bool:
        return (abs(self.x - other.x) * 2 < self.w + other.w
                and abs(self.y - other.y) * 2 < self.h + other.h)

    def inside(self, width: float, height: float) -> bool:
        return (abs(self.x) + self.w / 2 <= width / 2 + 1e-6
                and abs(self.y) + self.h / 2 <= height / 2 + 1e-6)


def rows_needed(widths: list[float], room: float, gap: float) -> int:
    """The fewest rows (labels kept in their order, as even as possible) whose widest row,
    gaps included, fits `room` pixels; len(widths) when even a column does not fit."""
    k = len(widths)
    for rows in range(1, k + 1):
        if max(_row_width(r, gap) for r in split_rows(widths, rows)) <= room:
            return rows
    return k


def split_rows(items: list, rows: int) -> list[list]:
    """`items` in order into `rows` rows, earlier rows holding the extra one."""
    per, extra = divmod(len(items), rows)
    out, start = [], 0
    for r in range(rows):
        n = per + (r < extra)
        out.append(items[start:start + n])
        start += n
    return [r for r in out if r]


def layout_labels(sizes: list[tuple[float, float]], window: tuple[float, float],
                  margin: float = 20.0, gap: float = 30.0, top: float | None = None
                  ) -> list[Box]:
    """Boxes for labels of the given (w, h) sizes, centred in the window in as few rows as fit
    its width. Rows are stacked downwards from `top` (the y of the first row's top edge;
    default: the block is centred vertically). Columns within a row share one spacing."""
    width, height = window
    room = width - 2 * margin
    widths = [w for w, _ in sizes]
    rows = split_rows(list(range(len(sizes))), rows_needed(widths, room, gap))
    row_h = [max(sizes[i][1] for i in r) for r in rows]
    block = sum(row_h) + gap / 2 * (len(rows) - 1)
    y = top if top is not None else block / 2
    boxes: dict[int, Box] = {}
    for r, h in zip(rows, row_h):
        total = _row_width([sizes[i][0] for i in r], gap)
        x = -total / 2
        for i in r:
            w = sizes[i][0]
            boxes[i] = Box(x + w / 2, y - h / 2, w, sizes[i][1])
            x += w + gap
        y -= h + gap / 2
    return [boxes[i] for i in range(len(sizes))]


def _row_width(widths: list[float], gap: float) -> float:
    return sum(widths) + gap * (len(widths) - 1)
