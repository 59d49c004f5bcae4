"""A self-contained HTML page: figures embedded as base64 PNG, tables inline, CSVs linked.

The first screen is the answer (the leaderboard and each model's pattern beside the people's);
every other section is collapsible, and a section without enough data says so in one line."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

STYLE = """body{font-family:system-ui,sans-serif;max-width:1180px;margin:1.2em auto;padding:0 1em;
color:#222}h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:.8em 0 .3em}
table{border-collapse:collapse;font-size:12px;margin:.4em 0 1em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
td:nth-child(2),th:nth-child(2){text-align:left}
table.board td,table.board th{padding:3px 7px;font-size:12.5px}
table.board tr.ref td{background:#f6f6f6;font-style:italic}
table.board tr.sub td{color:#555;font-size:11.5px}table.board th{vertical-align:bottom}
.sim{background:#fff3cd;border:1px solid #e0b400;padding:.35em .8em;margin:.5em 0;font-size:13px}
.lead{font-size:13px;margin:.2em 0 .4em}.thin{color:#666;font-style:italic}
details{border-top:1px solid #ddd;padding:.3em 0}summary{font-size:1.1em;font-weight:600;
cursor:pointer;padding:.2em 0}img{max-width:100%;border:1px solid #eee}
figure{margin:.6em 0 1.2em}figcaption{font-size:13px}.tw{overflow-x:auto}"""

BOARD_HEADERS = {
    "rank": "rank", "observer": "observer", "human_likeness": "mean rank",
    "accuracy_difference": "acc. diff. to people", "observed_consistency": "observed consist.",
    "error_consistency": "error consist. &kappa;",
    "error_consistency_humans": "&kappa; people&ndash;people (ceiling)",
    "profile_distance_ratio": "profile dist. / noise ceiling",
    "body_minus_background": "body &minus; backgr.",
    "body_background_gap": "|&Delta;| to people's body &minus; backgr.",
    "conflict_body_share": "conflict: body share",
    "weights": "weights (sha256)",
}


def figure_html(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(caption)} (<a href="{png.with_suffix(".svg").name}">SVG'
            f'</a>)</figcaption></figure>')


def table_html(df: pd.DataFrame, csv_name: str, max_rows: int = 30) -> str:
    """A table, its first rows inline; an empty cell is shown as a dash and the table's `note`
    column (where it has one) says why."""
    shown = df.head(max_rows)
    more = (f"<p>showing {max_rows} of {len(df)} rows; all in "
            f'<a href="{csv_name}">{csv_name}</a></p>' if len(df) > max_rows
            else f'<p><a href="{csv_name}">{csv_name}</a></p>')
    blank = ""
    if shown.select_dtypes("number").isna().any().any():
        blank = ("<p class='thin'>&ndash; = undefined" +
                 (", the <i>note</i> column says why" if "note" in shown.columns else "") +
                 ".</p>")
    return ("<div class='tw'>" + shown.to_html(index=False, float_format=lambda x: f"{x:.3g}",
                                               na_rep="–", border=0) + "</div>" + blank + more)


def thin(text: str) -> str:
    """The one line a section shows when its data are too thin for its statistic."""
    return f"<p class='thin'>{html.escape(text)}</p>"


def leaderboard_html(board: pd.DataFrame, conditions: list[str]) -> str:
    """The leaderboard as a compact table: the reference people first, then models by rank,
    alternative readouts as indented sub-rows."""
    cols = (["rank", "observer", "human_likeness"] + [f"accuracy_{c}" for c in conditions] +
            [c for c in BOARD_HEADERS if c not in ("rank", "observer", "human_likeness")])
    cols = [c for c in cols if c in board.columns]
    if len(board) == 1:   # the people alone: leave out what compares a model with them
        cols = [c for c in cols if board[c].notna().any() and c != "rank"]
    head = "".join(f"<th>{BOARD_HEADERS.get(c, 'acc. ' + c.replace('accuracy_', ''))}</th>"
                   for c in cols)
    body = []
    for i, row in board.iterrows():
        cls = "ref" if i == 0 else "sub" if row.get("readout_of") else ""
        cells = []
        for c in cols:
            v = row[c]
            if c == "observer":
                text = ("&nbsp;&nbsp;&#8627; " if cls == "sub" else "") + html.escape(str(v))
            elif c == "rank":
                text = "" if not np.isfinite(v) else f"{int(v)}"
            elif isinstance(v, (float, np.floating)):
                text = "&ndash;" if not np.isfinite(v) else f"{v + 0.0:.2f}".replace(
                    "-0.00", "0.00")
            else:
                text = html.escape(str(v))
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr class='{cls}'>" + "".join(cells) + "</tr>")
    undefined = any(isinstance(v, (float, np.floating)) and not np.isfinite(v)
                    for c in cols if c not in ("rank",) for v in board[c])
    note = ("<p class='thin'>&ndash; = undefined: the people's row compares them with no one "
            "but themselves, an alternative readout is not ranked, and a model's cell is "
            "empty where the data are too thin (the section below says why).</p>"
            if undefined else "")
    return (f"<div class='tw'><table class='board'><tr>{head}</tr>" + "".join(body) +
            "</table></div>" + note)


def page(title: str, simulated: bool, lead: list[str], methods: str,
         sections: list[tuple[str, str, list[str]]]) -> str:
    """lead: fragments of the first screen; sections: (heading, explanation, fragments), each
    collapsible."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    if simulated:
        out.append("<div class='sim'><b>Simulated data.</b> Some or all observers are "
                   "simulated (&ldquo;humans (simulated)&rdquo;): they pilot the pipeline and "
                   "are not evidence about people.</div>")
    out.extend(lead)
    out.append(f"<details><summary>Methods</summary><p>{html.escape(methods)}</p></details>")
    for heading, explanation, fragments in sections:
        out.append(f"<details><summary>{html.escape(heading)}</summary>"
                   f"<p>{html.escape(explanation)}</p>")
        out.extend(fragments)
        out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out)
