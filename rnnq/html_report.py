"""`rnnq validate --report report.html`: one self-contained page (no script, no external file,
no plotting library) with what the text and JSON reports hold: the accuracy table, the
per-layer SQNR as a bar chart, the error against the timestep, and the confusion matrices of a
classifier. The charts are inline SVG drawn here from the report dict (rnnq.report's numbers).
"""

from __future__ import annotations

import html
import math

from rnnq.report import format_per_layer, format_report

_W, _BAR_H, _LEFT = 760, 16, 300  # chart width, bar height, label column (px)
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; color: #222; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
table.conf { border-collapse: collapse; margin: 0.5em 2em 1em 0; display: inline-table; }
table.conf td, table.conf th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
table.conf td.diag { background: #d9ecd9; }
svg text { font-size: 11px; font-family: system-ui, sans-serif; }
"""


def _db(v: float) -> float:
    """A plottable dB value: exact (inf, or the JSON's 999 / 1e9) is drawn at 99."""
    return 99.0 if (math.isinf(v) and v > 0) or v >= 999 else float(v)


def _bars(rows: list[dict], threshold: float) -> str:
    """Horizontal bars per tensor: accumulated SQNR (dark) and 'alone' (light), dB."""
    top = max([_db(r["sqnr_db"]) for r in rows] + [_db(r["alone_sqnr_db"]) for r in rows]
              + [threshold + 10])
    scale = (_W - _LEFT - 60) / max(top, 1.0)
    h = len(rows) * (2 * _BAR_H + 6) + 30
    out = [f'<svg width="{_W}" height="{h}" role="img" aria-label="SQNR per tensor">']
    x_t = _LEFT + threshold * scale
    out.append(f'<line x1="{x_t:.1f}" y1="0" x2="{x_t:.1f}" y2="{h - 20}" stroke="#c00" '
               f'stroke-dasharray="4 3"/><text x="{x_t + 3:.1f}" y="{h - 6}" fill="#c00">'
               f'{threshold:.0f} dB</text>')
    for k, r in enumerate(rows):
        y = k * (2 * _BAR_H + 6) + 4
        name = html.escape(r["tensor"] if len(r["tensor"]) <= 44 else "…" + r["tensor"][-43:])
        out.append(f'<text x="{_LEFT - 6}" y="{y + _BAR_H + 2}" text-anchor="end">'
                   f'<title>{html.escape(r["tensor"])} ({html.escape(r["op"])})</title>'
                   f'{name}</text>')
        for j, (key, color) in enumerate((("sqnr_db", "#3366aa"), ("alone_sqnr_db", "#99bbdd"))):
            v = _db(r[key])
            yy = y + j * _BAR_H
            w = max(v, 0.0) * scale
            label = "exact" if v >= 99 else f"{v:.1f}"
            out.append(f'<rect x="{_LEFT}" y="{yy}" width="{w:.1f}" height="{_BAR_H - 2}" '
                       f'fill="{color}"/><text x="{_LEFT + w + 4:.1f}" y="{yy + _BAR_H - 4}">'
                       f'{label}</text>')
    out.append("</svg>")
    return "".join(out)


def _line(values: list[float], label: str) -> str:
    """A line chart of values against the timestep (1-based)."""
    vals = [_db(v) for v in values]
    h, left, bottom, top = 240, 50, 30, 28
    lo, hi = min(vals + [0.0]), max(vals + [1.0])
    sx = (_W - left - 20) / max(len(vals) - 1, 1)
    sy = (h - bottom - top) / (hi - lo if hi > lo else 1.0)
    pts = " ".join(f"{left + k * sx:.1f},{h - bottom - (v - lo) * sy:.1f}"
                   for k, v in enumerate(vals))
    out = [f'<svg width="{_W}" height="{h}" role="img" aria-label="{html.escape(label)}">',
           f'<line x1="{left}" y1="{h - bottom}" x2="{_W - 20}" y2="{h - bottom}" stroke="#888"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#888"/>',
           f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{hi:.0f}</text>',
           f'<text x="{left - 4}" y="{h - bottom}" text-anchor="end">{lo:.0f}</text>',
           f'<text x="{left}" y="{h - 8}">step 1</text>',
           f'<text x="{_W - 20}" y="{h - 8}" text-anchor="end">step {len(vals)}</text>',
           f'<text x="{left}" y="14">{html.escape(label)}</text>',
           f'<polyline points="{pts}" fill="none" stroke="#3366aa" stroke-width="1.5"/>',
           "</svg>"]
    return "".join(out)


def _confusion(title: str, conf: list[list[int]]) -> str:
    k = len(conf)
    head = "".join(f"<th>{j}</th>" for j in range(k))
    body = "".join(
        f"<tr><th>{i}</th>" + "".join(
            f'<td{" class=diag" if i == j else ""}>{conf[i][j]}</td>' for j in range(k))
        + "</tr>" for i in range(k))
    return (f'<table class="conf"><caption>{html.escape(title)} (rows: label, columns: '
            f"predicted)</caption><tr><th></th>{head}</tr>{body}</table>")


def render_html(rep: dict, title: str = "rnnq validate") -> str:
    """The page for a validate report (with its "per_layer" entry when present)."""
    parts = [(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
              f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"),
             "<h2>Accuracy</h2>", f"<pre>{html.escape(format_report(rep))}</pre>"]
    pl = rep.get("per_layer")
    if pl:
        parts += ["<h2>Where error enters</h2>",
                  ("<p>Dark: SQNR of each tensor against the float model (the error accumulated "
                   "up to there). Light: SQNR of the first output with only that tensor "
                   "quantised. Dashed: the threshold.</p>"),
                  _bars(pl["tensors"], pl["threshold_db"]),
                  f"<pre>{html.escape(format_per_layer(pl))}</pre>"]
    steps = rep.get("error_by_step", {}).get("sqnr_db")
    if steps:
        parts += ["<h2>Error against the timestep</h2>",
                  _line(steps, "SQNR of the first output (dB) over the sequences reaching t")]
    confs = [(f"{name} model", rep[key]["confusion"]) for key, name in
             (("float", "float"), ("int", "integer")) if rep.get(key, {}).get("confusion")]
    if confs:
        parts += ["<h2>Confusion matrices</h2>",
                  "".join(_confusion(t, c) for t, c in confs)]
    parts.append("</body></html>\n")
    return "".join(parts)
