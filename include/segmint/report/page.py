"""HTML building blocks for the report: escaping, figures, notes, tables and the page shell.

One file, no external resources: the CSS is inline, charts are inline SVG, and there is no
JavaScript at all, so nothing can fail to load offline.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def figure(name: str, svg: str, caption: str = "", wide: bool = False, data: str = "") -> str:
    """A chart, its caption and, for a chart whose figures the page gives nowhere else, its
    ``data``: a table folded under "Figures of this chart", the chart's text alternative
    (for a screen reader, a reader who cannot tell its colours apart, a copy into a
    spreadsheet)."""
    cls = "chart wide" if wide else "chart"
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    more = details("Figures of this chart", data) if data else ""
    return f'<figure class="{cls}" data-chart="{esc(name)}">{svg}{cap}{more}</figure>'


def note(text: str, kind: str = "na") -> str:
    prefix = {
        "na": "Not available yet: ",
        "error": "Could not be drawn: ",
        "info": "",
        "warning": "Warning: ",  # drawn, but the data behind it is incomplete
    }[kind]
    return f'<p class="note {kind}">{esc(prefix)}{esc(text)}</p>'


def grid(*items: str, cls: str = "grid") -> str:
    return f'<div class="{cls}">' + "".join(i for i in items if i) + "</div>"


def details(summary: str, inner: str) -> str:
    """A collapsed block (no script needed): long tables stay out of the way."""
    return f"<details><summary>{esc(summary)}</summary>{inner}</details>"


def fmt_int(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"{int(value):,}"


def fmt_num(value: Any, digits: int = 3) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{float(value):,.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{float(value):.{digits}%}"


# A text cell longer than this wraps (class "long"); shorter ones, numbers and dates keep to
# one line. A 100-character segment name on one line pushed the size table's counts, share
# and change out of view, behind a horizontal scroll (and off a printed page).
LONG_CELL = 32


def table(
    frame: pd.DataFrame,
    formats: dict[str, Callable[[Any], str]] | None = None,
    numeric: Iterable[str] = (),
    max_rows: int = 60,
    caption: str = "",
) -> str:
    """A small HTML table; ``formats`` maps a column to a formatter, numbers align right."""
    formats = formats or {}
    numeric = set(numeric) | {
        c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)
    }
    head = "".join(
        f'<th class="{"num" if c in numeric else ""}{" long" if len(str(c)) > LONG_CELL else ""}">'
        f"{esc(c)}</th>"
        for c in frame.columns
    )
    body = []
    shown = frame.head(max_rows)
    for row in shown.itertuples(index=False, name=None):  # at most max_rows display rows
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            text = formats[col](value) if col in formats else _default(value)
            cls = "num" if col in numeric else "long" if len(text) > LONG_CELL else ""
            cells.append(f'<td class="{cls}">{esc(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="more">{len(frame) - max_rows:,} more rows not shown.</p>'
        if len(frame) > max_rows
        else ""
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{more}</div>"
    )


def _default(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return "–"
        return value.date().isoformat() if value == value.normalize() else f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, float):
        if pd.isna(value):
            return "–"
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:,.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if value is pd.NaT:
        return "–"
    try:
        if pd.isna(value):
            return "–"
    except (TypeError, ValueError):
        pass
    return str(value)


def kpis(items: Sequence[tuple[str, str]]) -> str:
    tiles = "".join(
        f'<div class="kpi"><div class="kpi-value">{esc(v)}</div>'
        f'<div class="kpi-label">{esc(k)}</div></div>'
        for k, v in items
    )
    return f'<div class="kpis">{tiles}</div>'


CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f6f7f9; --card:#fff;
        --blue:#2563eb; --red:#dc2626; --amber:#b45309; --green:#15803d; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica,
       Arial, sans-serif; color:var(--ink); background:var(--bg); }
header.top { background:#111827; color:#f9fafb; padding:14px 24px; }
header.top h1 { margin:0; font-size:20px; font-weight:650; }
header.top .meta { color:#9ca3af; font-size:12px; margin-top:2px; }
nav { position:sticky; top:0; z-index:5; background:#fff; border-bottom:1px solid var(--line);
      padding:8px 24px; display:flex; gap:18px; flex-wrap:wrap; font-size:13px; }
nav a { color:var(--ink); text-decoration:none; font-weight:550; }
nav a:hover { color:var(--blue); }
main { max-width:1320px; margin:0 auto; padding:16px 24px 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px;
          padding:16px 20px; margin:16px 0; }
section > h2 { margin:0 0 6px; font-size:18px; }
section .lead { color:var(--muted); margin:0 0 10px; }
.block { margin:14px 0 6px; }
.block > h3 { font-size:14.5px; margin:0 0 8px; color:#111827; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(440px, 1fr)); gap:14px;
        align-items:start; }
.grid3 { display:grid; grid-template-columns:repeat(auto-fit, minmax(380px, 1fr)); gap:14px;
         align-items:start; }
details { margin:8px 0; }
.half { max-width:660px; margin-bottom:8px; }
details > summary { cursor:pointer; color:var(--blue); font-size:13px; }
figure.chart { margin:0; padding:6px; border:1px solid var(--line); border-radius:8px;
               background:#fff; min-width:0; }
figure.chart.wide { grid-column:1 / -1; }
figure.chart svg { display:block; width:100%; height:auto; }
figcaption { color:var(--muted); font-size:12px; padding:2px 4px 0; }
.summary { font-size:15px; }
.summary ul { margin:6px 0 0; padding-left:20px; }
.summary li { margin:3px 0; }
.kpis { display:flex; gap:12px; flex-wrap:wrap; margin:10px 0 4px; }
.kpi { background:var(--bg); border:1px solid var(--line); border-radius:8px; padding:8px 14px;
       min-width:150px; }
.kpi-value { font-size:20px; font-weight:650; }
.kpi-label { color:var(--muted); font-size:12px; }
.note { border-left:3px solid #d1d5db; background:#f9fafb; padding:6px 10px; margin:6px 0;
        color:var(--muted); }
.note.error { border-color:var(--red); color:#991b1b; background:#fef2f2; }
.note.warning { border-color:var(--amber); color:#92400e; background:#fffbeb; }
.warn { color:var(--amber); font-weight:600; }
.bad { color:var(--red); font-weight:600; }
.good { color:var(--green); font-weight:600; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(290px, 1fr)); gap:12px; }
.card { border:1px solid var(--line); border-radius:8px; padding:10px 12px; background:#fff; }
.card h4 { margin:0; font-size:15px; }
.card .size { color:var(--muted); font-size:12px; margin-bottom:4px; }
.card .desc { margin:4px 0 8px; font-size:13px; }
.feat { display:grid; grid-template-columns:128px 1fr 58px; gap:6px; align-items:center;
        font-size:12px; margin:2px 0; }
.feat .bar { height:8px; background:#eef2ff; border-radius:4px; position:relative; }
.feat .bar span { position:absolute; left:0; top:0; bottom:0; border-radius:4px;
                  background:var(--blue); }
.feat .bar i { position:absolute; top:-2px; bottom:-2px; width:2px; background:#111827; }
.feat .idx { text-align:right; color:var(--muted); }
.tags { margin-top:6px; font-size:12px; color:var(--muted); }
.table-wrap { overflow-x:auto; }
table { border-collapse:collapse; font-size:12.5px; margin:4px 0; }
th, td { padding:4px 10px; border-bottom:1px solid var(--line); text-align:left;
         white-space:nowrap; }
th { background:#f9fafb; font-weight:600; white-space:normal; vertical-align:bottom; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.long, th.long { white-space:normal; min-width:16em; overflow-wrap:anywhere; }
caption { text-align:left; color:var(--muted); font-size:12px; padding-bottom:4px; }
.more { color:var(--muted); font-size:12px; }
h3.model { font-size:16px; margin:18px 0 4px; padding-top:10px; border-top:1px dashed var(--line); }
footer { color:var(--muted); font-size:12px; text-align:center; padding:10px; }
@media print {
  /* A page on paper: no sticky menu, the title in ink rather than white on a dark band a
     printer drops, sections, charts and cards not cut across pages, tables within the
     page's width, and the persona bars printed (CSS backgrounds are dropped by default). */
  body { background:#fff; font-size:12px; }
  nav { display:none; }
  header.top { background:none; color:var(--ink); padding:0 0 6px;
               border-bottom:2px solid var(--ink); }
  header.top .meta { color:var(--muted); }
  main { max-width:none; padding:0; }
  section { border:none; border-radius:0; padding:0; margin:12px 0; }
  section > h2, .block > h3, h3.model { break-after:avoid; }
  figure.chart, .card, .kpi, .note, tr { break-inside:avoid; }
  .grid, .grid3 { grid-template-columns:1fr; }
  .half { max-width:none; }
  .table-wrap { overflow:visible; }
  table { font-size:9.5px; }
  th, td { padding:2px 3px; white-space:normal; }
  td.long, th.long { min-width:8em; }
  .feat .bar, .feat .bar span, .feat .bar i, .note, .kpi {
    print-color-adjust:exact; -webkit-print-color-adjust:exact; }
}
"""


def page(title: str, meta: str, summary: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document; ``sections`` are ``(id, title, inner html)``."""
    nav = "".join(f'<a href="#{esc(sid)}">{esc(stitle)}</a>' for sid, stitle, _ in sections)
    body = "".join(
        f'<section id="{esc(sid)}"><h2>{esc(stitle)}</h2>{inner}</section>'
        for sid, stitle, inner in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top"><h1>{esc(title)}</h1><div class="meta">{esc(meta)}</div></header>'
        f'<nav><a href="#summary">Summary</a>{nav}</nav><main>'
        f'<section id="summary" class="summary"><h2>Summary</h2>{summary}</section>'
        f"{body}</main><footer>segmint nightly report · one self-contained file, "
        "works offline</footer></body></html>\n"
    )
