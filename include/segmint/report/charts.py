"""Static charts as inline SVG, drawn with matplotlib's object API (no pyplot state).

Every function takes small, already-aggregated data and returns an ``<svg>`` string sized
by its container (``width: 100%``), so the page works offline with no chart library. Text
stays text (``svg.fonttype = none``), which keeps files small and searchable, and each chart
gets its own id salt so clip-path ids never collide when many SVGs share one page.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Colours: the model in blue, baselines in muted tones; thresholds in red.
BLUE = "#2563eb"
ORANGE = "#ea8a1a"
GREEN = "#16a34a"
GREY = "#9ca3af"
DARK = "#1f2937"
RED = "#dc2626"
SERIES = ("#2563eb", "#ea8a1a", "#16a34a", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#78716c")
# One marker per series beside its colour: blue and purple, orange and green read alike to
# a colour-blind reader (one man in twelve), and the drift lines differed by colour alone.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
BASELINE_COLOURS = ("#ea8a1a", "#78716c", "#9333ea", "#0891b2")
# And a dash pattern and a marker of its own: the recency rule and the BG/NBD model were
# both dashed with the same dots, stone grey and purple, colours of one lightness that a
# colour-blind reader (or a grey-scale print) cannot tell apart on the ROC, lift, capture
# and calibration charts.
# Indexed as BASELINE_COLOURS, by the scorer's place after the model: dashed first.
BASELINE_LINES = (
    ((0, (6, 2, 1, 2, 1, 2)), "v"),
    ("--", "s"),
    ("-.", "^"),
    ((0, (1, 1.5)), "D"),
)

_RC = {
    "svg.fonttype": "none",
    # Labels are data (segment names pinned in settings, audience names, reasons), never
    # formulas: "Spend $50 to $100" was drawn as mathtext, "Spend 50to100" in italics.
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["Inter", "Segoe UI", "Helvetica", "Arial", "DejaVu Sans"],
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": DARK,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "legend.fontsize": 9,
}


LABEL_MAX = 32  # characters of a name on a chart; the tables and cards show it whole


def short(label: Any, limit: int = LABEL_MAX) -> str:
    """A name cut to ``limit`` characters with an ellipsis. A long pinned segment name
    pushed the charts out of their frame: its start clipped off the size chart, the
    transition chart's column labels written over each other."""
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def wrapped(label: Any, width: int = 34, lines: int = 4) -> str:
    """A long label over up to ``lines`` lines of ``width`` characters, cut with "…" only
    past them. A quarantine reason cut at 40 characters ("no identity: customer_id and
    anonymous_id are b…") no longer said what was wrong."""
    parts = textwrap.wrap(str(label), width, break_on_hyphens=False) or [""]
    if len(parts) > lines:
        parts = [*parts[: lines - 1], short(" ".join(parts[lines - 1 :]), width)]
    return "\n".join(parts)


def _label_inches(labels: Sequence[str], font_pt: float = 10) -> float:
    """Rough width of the longest tick label (its longest line), in inches (avoids a layout
    engine pass)."""
    longest = max((len(line) for x in labels for line in str(x).split("\n")), default=4)
    return 0.2 + longest * font_pt * 0.62 / 72


def _figure(
    width: float,
    height: float,
    ncols: int = 1,
    left: float = 0.7,
    right: float = 0.2,
    bottom: float = 0.55,
    top: float = 0.35,
    wspace: float = 0.28,
):
    """A figure with margins given in inches: a fixed layout is twice as fast as a layout
    engine, and the report draws some twenty charts."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, ncols, squeeze=False)
    fig.subplots_adjust(
        left=min(left / width, 0.6),
        right=1 - right / width,
        bottom=min(bottom / height, 0.6),
        top=1 - top / height,
        wspace=wspace,
    )
    return fig, axes


def to_svg(fig: Any, name: str, label: str) -> str:
    """Render ``fig`` to an inline, responsive ``<svg>`` element."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"segmint-{name}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    # Drop the fixed pt size: the viewBox keeps the aspect ratio, CSS sets the width.
    svg = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r"<svg\1", svg, count=1)
    safe_label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg", f'<svg role="img" aria-label="{safe_label}"', 1)


def _render(name: str, label: str, draw, width: float, height: float, **layout: Any) -> str:
    import warnings

    import matplotlib

    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        # The SVG holds text as text (svg.fonttype none), drawn by the reader's browser with
        # its own fonts: a glyph missing from matplotlib's fonts (a Chinese segment name)
        # only widens a layout estimate. It printed a warning per glyph into task logs.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig, axes = _figure(width, height, **layout)
        draw(fig, axes)
        return to_svg(fig, name, label)


# Width of a chart drawn across the page (a wide figure, shown at the page's full width): a
# narrower drawing is scaled up to fill it, its type with it (a one-source loads chart at
# 2.8 times), and a title wider than the drawing is cut off (the transitions heatmap of a
# shop with up to four segments).
WIDE_INCHES = 9.6


def dated(title: str, night: Any) -> str:
    """A chart's title with the night it shows ("Customers per segment · 2026-06-30"): a
    chart copied into a slide or an e-mail left the page's header behind, and with it the
    date its figures are of."""
    return f"{title} · {night}" if night is not None else title


def day_label(day: Any) -> str:
    """A day on a chart's axis, with its year (2026-12-31): "12-31" then "01-01" did not say
    which year, nor did a backfill of an older year's nights."""
    return day.strftime("%Y-%m-%d")


def _thousands(ax: Any, axis: str = "x", nbins: int | str = "auto") -> None:
    """Whole numbers with thousands separators on a count axis, ticks on whole numbers only.

    The default locator puts ticks at 0.2, 0.4, ... when the largest count is 1 or 2 (a shop
    with one customer, a day with one CRM row): formatted without decimals, they read
    0, 0, 0, 1, 1, 1."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10], integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


# --- segments --------------------------------------------------------------------------


def segment_sizes(
    names: Sequence[str],
    sizes: Sequence[int],
    previous: Sequence[float | None],
    night: Any = None,
) -> str:
    """Horizontal bars of segment size with share labels; last run's size as a tick.

    Each label starts past the end of its bar and of its tick, and the axis is widened by
    the longest label's width: "95 (46.8%)" was written through the tick of last run's 99,
    a label past the axis's end overlapped the legend in the plot's corner, and with long
    segment names the narrower plot's tick labels ran together ("100,000125,000"). The
    legend sits above the plot, under the title."""
    names = [short(n) for n in names]
    total = max(sum(sizes), 1)
    width = 6.4
    left = _label_inches(names)
    plot = width - min(left, 0.6 * width) - 0.2  # the axes' width, in inches
    labels = [f"{size:,} ({size / total:.1%})" for size in sizes]
    label = _label_inches(labels, 9) + 0.1  # its text, the offset past the tick and a margin
    prev = np.array([np.nan if p is None else p for p in previous], dtype=float)
    bars = np.asarray(sizes, dtype=float)
    largest = max(float(np.fmax(bars, prev).max(initial=0)), 1.0)
    xmax = largest / max(1 - label / plot, 0.3)
    # A label goes past its bar, or past the tick when the tick falls where its text would
    # be; a tick far beyond a shrunken bar leaves the label by the bar it describes.
    reach = np.array([(_label_inches([t], 9) + 0.1) / plot * xmax for t in labels])
    ends = np.where((prev > bars) & (prev <= bars + reach), prev, bars)

    def draw(fig, axes):
        ax = axes[0][0]
        y = np.arange(len(names))[::-1]
        ax.barh(y, sizes, color=BLUE, height=0.62, label="this run", zorder=2)
        if np.isfinite(prev).any():
            ax.scatter(
                prev, y, marker="|", s=260, color=DARK, linewidths=2, zorder=3, label="previous run"
            )
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, borderaxespad=0.2)
        for yi, end, text in zip(y, ends, labels, strict=True):
            ax.annotate(
                text,
                xy=(end, yi),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
                color=DARK,
            )
        ax.set_yticks(y, names)
        ax.set_xlim(0, xmax)
        ax.grid(axis="y", visible=False)
        _thousands(ax, nbins=max(2, int(plot / 0.8)))
        ax.set_xlabel("customers")
        ax.set_title(dated("Customers per segment", night), pad=24)

    return _render(
        "segment-sizes",
        "Customers per segment",
        draw,
        width,
        0.45 * len(names) + 1.6,
        left=left,
        top=0.65,
    )


def heatmap(
    name: str,
    title: str,
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    annotations: np.ndarray | None = None,
    fmt: str = "{:.0%}",
    xlabel: str = "",
    ylabel: str = "",
    separators: Sequence[float] = (),
    cmap: str = "Blues",
    width: float | None = None,
) -> str:
    """A labelled heatmap; cells annotated with ``annotations`` (default: the values)."""
    labels = matrix if annotations is None else annotations
    row_labels = [short(x) for x in row_labels]
    # Columns stand side by side, about an inch apart: a name is wrapped over short lines.
    col_labels = [textwrap.fill(short(x), 11) for x in col_labels]
    lines = max((x.count("\n") for x in col_labels), default=0)

    def draw(fig, axes):
        ax = axes[0][0]
        data = np.ma.masked_invalid(matrix.astype(float))
        vmax = float(np.nanmax(matrix)) if np.isfinite(matrix).any() else 1.0
        im = ax.imshow(data, cmap=cmap, aspect="auto", vmin=0, vmax=vmax or 1.0)
        ax.set_xticks(range(len(col_labels)), col_labels)
        ax.set_yticks(range(len(row_labels)), row_labels)
        ax.tick_params(axis="x", labelrotation=0 if len(col_labels) <= 16 else 45)
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if matrix.size <= 400:
            for (i, j), value in np.ndenumerate(labels):
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    continue
                shade = matrix[i, j] / vmax if vmax and np.isfinite(matrix[i, j]) else 0
                text = fmt.format(value) if not isinstance(value, str) else value
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if shade > 0.6 else DARK,
                )
        for x in separators:
            ax.axvline(x, color="white", linewidth=3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8, pad=0.015, fraction=0.04, format=_percent_or_count(fmt))

    w = width or max(5.5, 0.55 * len(col_labels) + 2.6)
    rotate = len(col_labels) > 16
    bottom = 0.75 + (0.5 if rotate else 0) + (0.18 if xlabel else 0) + 0.17 * lines
    return _render(
        name,
        title,
        draw,
        w,
        0.42 * len(row_labels) + bottom + 0.4,
        left=_label_inches(row_labels) + (0.25 if ylabel else 0),
        right=0.9,
        bottom=bottom,
    )


def _percent_or_count(fmt: str):
    from matplotlib.ticker import FuncFormatter

    if "%" in fmt:
        return FuncFormatter(lambda v, _: f"{v:.0%}")
    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def k_selection(
    ks: Sequence[int],
    inertia: Sequence[float],
    silhouette: Sequence[float],
    chosen: int | None,
    night: Any = None,
) -> str:
    """Inertia (elbow) and silhouette per k side by side, the chosen k marked; ``night``
    the date of the search."""

    def draw(fig, axes):
        for ax, values, title, colour in (
            (axes[0][0], inertia, dated("Inertia (elbow)", night), BLUE),
            (axes[0][1], silhouette, dated("Silhouette (higher is better)", night), GREEN),
        ):
            vals = np.array([np.nan if v is None else v for v in values], dtype=float)
            ax.plot(ks, vals, marker="o", color=colour, linewidth=2)
            if chosen is not None and chosen in list(ks):
                i = list(ks).index(chosen)
                ax.axvline(chosen, color=RED, linestyle="--", linewidth=1.2)
                if np.isfinite(vals[i]):
                    ax.scatter(
                        [chosen],
                        [vals[i]],
                        s=110,
                        facecolors="none",
                        edgecolors=RED,
                        linewidths=2,
                        zorder=4,
                    )
                # Left of the line when the chosen k is the last candidate: on its right,
                # "chosen k = 10" ran past the chart's edge and was cut off.
                last = chosen == max(ks) and len(ks) > 1
                ax.annotate(
                    f"chosen k = {chosen}",
                    xy=(chosen, 1),
                    xycoords=("data", "axes fraction"),
                    xytext=(-4 if last else 4, -12),
                    textcoords="offset points",
                    ha="right" if last else "left",
                    color=RED,
                    fontsize=9,
                )
            ax.set_xticks(list(ks))
            ax.set_xlabel("k (number of segments)")
            ax.set_title(title)
        if np.nanmax(np.array(inertia, dtype=float)) >= 1e4:
            _thousands(axes[0][0], "y")

    return _render("k-selection", "Choosing k", draw, WIDE_INCHES, 3.0, ncols=2)


# --- propensity ------------------------------------------------------------------------


# The baselines in words (ml/propensity/baselines.py): "beats baseline_recency" and legends
# of "baseline_bgnbd" told a marketer nothing. The model lines stay "model".
SCORER_NAMES = {"baseline_recency": "recency rule", "baseline_bgnbd": "BG/NBD model"}


def scorer_label(scorer: Any) -> str:
    """A scorer's name for people: "recency rule" for ``baseline_recency``; others as stored."""
    return SCORER_NAMES.get(str(scorer), str(scorer))


def _scorer_style(scorer: str, i: int) -> dict[str, Any]:
    if scorer == "model":
        return {"color": BLUE, "linewidth": 2.4, "marker": "o", "markersize": 4, "zorder": 3}
    linestyle, marker = BASELINE_LINES[i % len(BASELINE_LINES)]
    return {
        "color": BASELINE_COLOURS[i % len(BASELINE_COLOURS)],
        "linewidth": 1.5,
        "linestyle": linestyle,
        "marker": marker,
        "markersize": 4,
        "zorder": 2,
    }


def _ordered(curves: Mapping[str, Any]) -> list[str]:
    return sorted(curves, key=lambda s: (s != "model", s))


def lift_capture(
    name: str,
    lift: Mapping[str, Any],
    capture: Mapping[str, tuple[Any, Any]],
    positives: str = "positives",
    empty: Sequence[int] = (),
    night: Any = None,
) -> str:
    """Lift per decile (bars for the model, lines for baselines) and cumulative capture of
    the model's ``positives`` ("buyers", "churners") against the share of customers
    targeted, top scores first: ``capture[scorer] = (share targeted, share captured)``.
    ``empty``: the model's deciles that hold nobody (equal scores share a decile), marked."""

    def draw(fig, axes):
        ax1, ax2 = axes[0]
        if lift:
            for i, scorer in enumerate(_ordered(lift)):
                series = lift[scorer]
                if scorer == "model":
                    ax1.bar(
                        series.index, series.values, color=BLUE, alpha=0.85, label="model", zorder=2
                    )
                else:
                    ax1.plot(
                        series.index,
                        series.values,
                        label=scorer_label(scorer),
                        **_scorer_style(scorer, i),
                    )
            ax1.axhline(1, color=GREY, linewidth=1, linestyle=":")
            for decile in empty:
                ax1.text(
                    decile,
                    0.02,
                    "empty",
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="#6b7280",
                    transform=ax1.get_xaxis_transform(),
                )
            ax1.set_xticks(range(1, 11))
            ax1.legend()
        else:
            ax1.text(0.5, 0.5, "lift not stored", ha="center", transform=ax1.transAxes)
        ax1.set_xlabel("decile (10 = highest scores)")
        ax1.set_ylabel("lift")
        ax1.set_title(dated("Lift by decile", night))
        if capture:
            from matplotlib.ticker import PercentFormatter

            ax2.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1, label="random")
            for i, scorer in enumerate(_ordered(capture)):
                x, y = capture[scorer]
                ax2.plot(x, y, label=scorer_label(scorer), **_scorer_style(scorer, i))
            ax2.set_xlim(0, 1)
            ax2.set_ylim(0, 1.02)
            ax2.xaxis.set_major_formatter(PercentFormatter(1.0))
            ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax2.legend(loc="lower right")
        else:
            ax2.text(0.5, 0.5, "capture not stored", ha="center", transform=ax2.transAxes)
        ax2.set_xlabel("share of customers targeted, top scores first")
        ax2.set_ylabel(f"share of {positives} captured")
        ax2.set_title(dated("Cumulative capture", night))

    return _render(name, "Lift and capture by decile", draw, WIDE_INCHES, 3.1, ncols=2, wspace=0.25)


def calibration(name: str, points: Mapping[str, tuple[Any, Any]], night: Any = None) -> str:
    """Observed rate against mean predicted probability per bin; the diagonal is perfect."""

    def draw(fig, axes):
        ax = axes[0][0]
        top = 0.0
        for i, scorer in enumerate(_ordered(points)):
            pred, obs = points[scorer]
            ax.plot(pred, obs, label=scorer_label(scorer), **_scorer_style(scorer, i))
            top = max(top, float(np.nanmax(pred)), float(np.nanmax(obs)))
        top = min(1.0, top * 1.08 + 0.01)
        ax.plot(
            [0, top], [0, top], color=GREY, linestyle=":", linewidth=1, label="perfectly calibrated"
        )
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed rate")
        ax.set_title(dated("Calibration", night))
        ax.legend(loc="upper left")

    return _render(name, "Calibration plot", draw, 4.6, 3.4)


def roc(
    name: str,
    curves: Mapping[str, tuple[Any, Any]],
    aucs: Mapping[str, float],
    night: Any = None,
) -> str:
    """ROC curves of the model and the baselines, AUC in the legend."""

    def draw(fig, axes):
        ax = axes[0][0]
        for i, scorer in enumerate(_ordered(curves)):
            fpr, tpr = curves[scorer]
            name = scorer_label(scorer)
            label = f"{name} (AUC {aucs[scorer]:.3f})" if scorer in aucs else name
            # Markers spaced along the curve: a stored curve can have hundreds of points.
            ax.plot(fpr, tpr, label=label, markevery=0.1, **_scorer_style(scorer, i))
        ax.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1, label="random")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(dated("ROC: model vs baselines", night))
        ax.legend(loc="lower right")

    return _render(name, "ROC curve against baselines", draw, 4.6, 3.4)


def metric_bars(name: str, table: Mapping[str, Mapping[str, float]], night: Any = None) -> str:
    """ROC-AUC and average precision per scorer (used when no ROC points are stored)."""
    scorers = _ordered(table)
    metrics = [m for m in ("ROC-AUC", "avg precision") if any(m in table[s] for s in scorers)]

    def draw(fig, axes):
        ax = axes[0][0]
        width = 0.8 / max(len(scorers), 1)
        x = np.arange(len(metrics))
        for i, scorer in enumerate(scorers):
            vals = [table[scorer].get(m, np.nan) for m in metrics]
            colour = BLUE if scorer == "model" else BASELINE_COLOURS[i % len(BASELINE_COLOURS)]
            bars = ax.bar(
                x + (i - (len(scorers) - 1) / 2) * width,
                vals,
                width * 0.92,
                color=colour,
                label=scorer_label(scorer),
                zorder=2,
            )
            for bar, v in zip(bars, vals, strict=True):
                if np.isfinite(v):
                    ax.text(
                        bar.get_x() + bar.get_width() / 2,
                        v,
                        f"{v:.3f}",
                        ha="center",
                        va="bottom",
                        fontsize=8,
                    )
        ax.set_xticks(x, metrics)
        ax.set_ylim(0, 1.1)
        ax.grid(axis="x", visible=False)
        ax.axhline(0.5, color=GREY, linestyle=":", linewidth=1)
        ax.set_title(dated("Model vs baselines (holdout)", night))
        ax.legend(loc="upper right", ncols=min(len(scorers), 3))

    return _render(name, "Model against baselines", draw, 4.6, 3.4)


def histogram(
    name: str,
    lefts: Sequence[float],
    counts: Sequence[int],
    width: float,
    title: str,
    xlabel: str,
    marks: Mapping[str, float] | None = None,
) -> str:
    """A histogram from pre-computed bins (the bins come from DuckDB, not raw rows)."""

    def draw(fig, axes):
        ax = axes[0][0]
        ax.bar(lefts, counts, width=width, align="edge", color=BLUE, alpha=0.85, zorder=2)
        for i, (label, x) in enumerate((marks or {}).items()):
            ax.axvline(x, color=SERIES[(i + 1) % len(SERIES)], linestyle="--", linewidth=1.2)
            ax.annotate(
                f"{label} {x:.3f}",
                xy=(x, 1),
                xycoords=("data", "axes fraction"),
                xytext=(4, -12 - 12 * i),
                textcoords="offset points",
                fontsize=8,
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("customers")
        ax.grid(axis="x", visible=False)
        _thousands(ax, "y")
        ax.set_title(title)

    return _render(name, title, draw, 4.6, 3.4)


def horizontal_bars(
    name: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    errors: Sequence[float] | None = None,
    xlabel: str = "",
    value_fmt: str = "{:,.0f}",
    colour: str = BLUE,
) -> str:
    """Ranked horizontal bars, biggest on top, values printed at the bar ends."""

    def draw(fig, axes):
        ax = axes[0][0]
        y = np.arange(len(labels))[::-1]
        err = None if errors is None else np.nan_to_num(np.asarray(errors, dtype=float))
        ax.barh(
            y,
            values,
            xerr=err,
            color=colour,
            height=0.62,
            zorder=2,
            error_kw={"ecolor": DARK, "elinewidth": 1, "capsize": 2},
        )
        top = max([abs(v) for v in values] + [1e-12])
        ends = np.asarray(values, dtype=float) + (0 if err is None else err)
        for yi, v, end in zip(y, values, ends, strict=True):
            ax.text(end, yi, "  " + value_fmt.format(v), va="center", fontsize=8, color=DARK)
        ax.set_yticks(y, labels, multialignment="right")  # a wrapped label's lines too
        ax.set_xlim(min(0, min(values, default=0)), top * 1.3)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(xlabel)
        # The title starts at the drawing's left edge, over the labels: from the plot's
        # edge, right of long labels, a dated title ran past the drawing and was cut off.
        ax.set_title(title).set_x(-(margin - 0.1) / (width - margin - 0.3))

    left = _label_inches(labels, 9)
    width = max(4.8, left + 3.4, len(title) * 11 * 0.62 / 72 + 0.4)
    margin = min(left, 0.6 * width)  # _figure's cap of the left margin
    # A label wrapped over n lines needs a row about n lines high.
    lines = max((str(x).count("\n") + 1 for x in labels), default=1)
    return _render(
        name,
        title,
        draw,
        width,
        (0.32 + 0.15 * (lines - 1)) * len(labels) + 1.2,
        left=left,
        right=0.3,
    )


def stacked_by_day(
    name: str,
    title: str,
    panels: Mapping[str, Mapping[str, Any]],
    days: Sequence[Any],
    colours: Mapping[str, str],
) -> str:
    """One small panel per source: stacked daily bars (loaded, duplicate, quarantined)."""
    n = max(len(panels), 1)

    def draw(fig, axes):
        labels = [day_label(d) for d in days]
        x = np.arange(len(days))
        for ax, (source, parts) in zip(axes[0], panels.items(), strict=False):
            bottom = np.zeros(len(days))
            for part, values in parts.items():
                vals = np.asarray(values, dtype=float)
                ax.bar(
                    x,
                    vals,
                    bottom=bottom,
                    color=colours.get(part, GREY),
                    label=part,
                    zorder=2,
                    width=0.75,
                )
                bottom += vals
            ax.set_xticks(
                x,
                labels,
                rotation=60 if len(days) > 3 else 0,
                rotation_mode="anchor",
                ha="right" if len(days) > 3 else "center",
                fontsize=8,
            )
            ax.grid(axis="x", visible=False)
            _thousands(ax, "y")
            ax.set_title(f"{source}: rows per day")
        axes[0][0].legend(loc="lower left", ncols=3, bbox_to_anchor=(0, 1.08))
        fig.suptitle(title, x=0.01, y=0.99, ha="left", va="top", fontsize=11, fontweight="bold")

    return _render(name, title, draw, WIDE_INCHES, 3.9, ncols=n, bottom=1.1, top=0.75, wspace=0.22)


def drift_lines(
    name: str,
    title: str,
    series: Mapping[str, tuple[Sequence, Sequence]],
    threshold: float | None,
    ylabel: str,
    highlight: int = 6,
) -> str:
    """Small line chart over runs; the ``highlight`` worst series coloured, the rest grey."""
    worst = sorted(series, key=lambda k: -float(np.nanmax(np.asarray(series[k][1], float))))
    coloured = set(worst[:highlight])
    # The legend below the plot in two columns when two of its longest names fit side by
    # side (a handle and spacing each, 0.45 in), else in one: the second column of
    # feature names (avg_order_value) ran past the chart's edge and was cut off.
    width, left = 4.4, 0.7
    fits = _label_inches([short(k) for k in coloured], 9) + 0.45 <= (width - left - 0.2) / 2
    ncols = 2 if fits else 1
    # Dates in full, slanted when two or more share the axis (the last one, centred on the
    # axis' end, was cut off by the edge of the drawing): "06-28" had no year,
    # ambiguous across New Year ("12-31", "01-01") and for a backfill of an older year.
    runs = sorted({x for xs, _ in series.values() for x in xs})
    slanted = len(runs) > 1
    rows = -(-min(len(series), highlight) // ncols)
    extra = 0.45 if slanted else 0.0  # the slanted dates' depth below the axis, inches

    def draw(fig, axes):
        from matplotlib.dates import AutoDateLocator, DateFormatter

        ax = axes[0][0]
        i = 0
        for key in worst[::-1]:
            x, y = series[key]
            if key in coloured:
                ax.plot(
                    x,
                    y,
                    marker=MARKERS[i % len(MARKERS)],
                    markersize=4.5,
                    linewidth=1.8,
                    color=SERIES[i % len(SERIES)],
                    label=short(key),
                    zorder=3,
                )
                i += 1
            else:
                ax.plot(x, y, color="#d1d5db", linewidth=1, zorder=2)
        if threshold is not None:
            ax.axhline(threshold, color=RED, linestyle="--", linewidth=1.2)
            ax.annotate(
                f"threshold {threshold:g}",
                xy=(0, threshold),
                xycoords=("axes fraction", "data"),
                xytext=(2, 3),
                textcoords="offset points",
                color=RED,
                fontsize=8,
            )
            top = max(
                threshold, *(float(np.nanmax(np.asarray(v[1], float))) for v in series.values())
            )
            ax.set_ylim(0, top * 1.15)
        if len(runs) <= 8:
            ax.set_xticks(runs, [day_label(d) for d in runs])
        else:
            ax.xaxis.set_major_locator(AutoDateLocator(maxticks=6))
            ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
        if slanted:
            ax.tick_params(axis="x", labelrotation=35, labelsize=8)
            for tick in ax.get_xticklabels():
                tick.set_horizontalalignment("right")
                tick.set_rotation_mode("anchor")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(
                handles[::-1],
                labels[::-1],
                loc="upper left",
                bbox_to_anchor=(0, -(0.31 + extra) / 1.95),  # inches below the 1.95 in axes
                ncols=ncols,
                fontsize=9,
            )

    return _render(
        name,
        title,
        draw,
        width,
        2.9 + 0.2 * rows + extra,
        left=left,
        bottom=0.6 + 0.2 * rows + extra,
    )


def audience_sizes(
    names: Sequence[str], parts: Mapping[str, Sequence[int]], night: Any = None
) -> str:
    """Stacked horizontal bars per audience: target and holdout."""
    names = [short(n) for n in names]
    colours = {"target": BLUE, "holdout": ORANGE}

    def draw(fig, axes):
        ax = axes[0][0]
        y = np.arange(len(names))[::-1]
        left = np.zeros(len(names))
        for part, values in parts.items():
            vals = np.asarray(values, dtype=float)
            ax.barh(
                y, vals, left=left, color=colours.get(part, GREY), height=0.6, label=part, zorder=2
            )
            left += vals
        for yi, total in zip(y, left, strict=True):
            ax.text(total, yi, f"  {total:,.0f}", va="center", fontsize=8)
        ax.set_yticks(y, names)
        ax.set_xlim(0, max(left.max(initial=1), 1) * 1.25)
        ax.grid(axis="y", visible=False)
        _thousands(ax)
        ax.set_xlabel("customers")
        ax.legend(loc="lower right")
        ax.set_title(dated("Audience size: target and holdout", night))

    return _render(
        "audience-sizes",
        "Audience sizes",
        draw,
        6.4,
        0.42 * len(names) + 1.3,
        left=_label_inches(names),
    )
