"""A self-contained HTML page: figures embedded as base64 PNG, tables inline, CSVs linked."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
.sim{background:#fff3cd;border:1px solid #e0b400;padding:.6em 1em;margin:1em 0}
img{max-width:100%;border:1px solid #eee}figure{margin:1em 0 2em}figcaption{font-size:13px}"""


def figure_html(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(caption)} (<a href="{png.with_suffix(".svg").name}">SVG'
            f'</a>)</figcaption></figure>')


def table_html(df: pd.DataFrame, csv_name: str, max_rows: int = 60) -> str:
    shown = df.head(max_rows)
    more = (f"<p>showing {max_rows} of {len(df)} rows; all in "
            f'<a href="{csv_name}">{csv_name}</a></p>' if len(df) > max_rows
            else f'<p><a href="{csv_name}">{csv_name}</a></p>')
    return shown.to_html(index=False, float_format=lambda x: f"{x:.3g}", na_rep="",
                         border=0) + more


def page(title: str, methods: str, simulated: bool,
         sections: list[tuple[str, str, list[str]]]) -> str:
    """sections: (heading, explanation, [html fragments])."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    if simulated:
        out.append("<div class='sim'><b>Simulated data.</b> Some or all observers in this report "
                   "are simulated (group &ldquo;humans (simulated)&rdquo;); they pilot the "
                   "pipeline and are not evidence about people.</div>")
    out.append(f"<h2>Methods</h2><p>{html.escape(methods)}</p>")
    for heading, explanation, fragments in sections:
        out.append(f"<h2>{html.escape(heading)}</h2><p>{html.escape(explanation)}</p>")
        out.extend(fragments)
    out.append("</body></html>")
    return "\n".join(out)
