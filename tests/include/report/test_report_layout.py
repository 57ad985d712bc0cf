"""The charts' text measured where matplotlib draws it: labels that overlap marks, the
legend or each other are unreadable, yet every chart is still "present" in the browser."""

from __future__ import annotations

import re
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segmint.report import charts, render_report
from tests.include.report.conftest import AS_OF


def captured_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """From now on, every figure a chart draws, by its chart name (``charts.to_svg`` still
    renders it)."""
    figures: dict[str, Any] = {}
    real = charts.to_svg

    def keep(fig, name, label):
        figures[name] = fig
        return real(fig, name, label)

    monkeypatch.setattr(charts, "to_svg", keep)
    return figures


def drawn(monkeypatch: pytest.MonkeyPatch, chart, *args: Any):
    """Draw a chart and return its figure, laid out by matplotlib's Agg renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figures = captured_figures(monkeypatch)
    chart(*args)
    (fig,) = figures.values()
    FigureCanvasAgg(fig).draw()
    return fig


def overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


LONG = "Segment number {} with a rather long pinned name"


@pytest.mark.parametrize(
    ("names", "sizes", "previous"),
    [
        (["A", "B", "C", "D"], [100, 95, 5, 3], [None, 99, 2, 3]),  # ticks just past bars
        (["Champions", "Dormant"], [9, 12_000], [12_500, 11_000]),  # label by the legend
        (  # twelve segments, long names: a narrow plot
            [LONG.format(i) if i % 3 == 0 else f"S{i}" for i in range(12)],
            [10 ** (1 + i % 5) for i in range(12)],
            [10 ** (1 + i % 5) * 1.1 for i in range(12)],
        ),
    ],
)
def test_segment_size_labels_clear_the_ticks_the_legend_and_each_other(
    monkeypatch: pytest.MonkeyPatch, names, sizes, previous
) -> None:
    """ "95 (46.8%)" was written through the tick of last run's 99, "12,000 (99.9%)" under
    the legend in the plot's corner, and twelve long-named segments left a plot so narrow
    that its axis read "100,000125,000"."""
    fig = drawn(monkeypatch, charts.segment_sizes, names, sizes, previous)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if "%)" in t.get_text()]
    assert len(labels) == len(names)
    boxes = [t.get_window_extent(renderer) for t in labels]
    offsets = ax.transData.transform(ax.collections[0].get_offsets())
    legend = ax.get_legend().get_window_extent(renderer)
    axes_box = ax.get_window_extent(renderer)
    for box in boxes:
        # The tick marker is 2 px wide around its centre; a label must not cross it.
        for x, y in offsets:
            if box.y0 <= y <= box.y1:
                assert not box.x0 - 2 < x < box.x1 + 2, (box, x)
        assert not overlap(box, legend)
        assert box.x1 <= axes_box.x1  # inside the plot, not past the axis' end
    xticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    for a, b in pairwise(xticks):
        assert a.x1 + 4 < b.x0, [t.get_text() for t in ax.get_xticklabels()]


def inside_and_apart(fig, ax, texts) -> None:
    """Each tick label within the drawing, none over the next: level labels by their boxes,
    slanted ones (whose boxes overlap while the text does not) by the distance between
    their parallel lines against the font's line height."""
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    texts = [t for t in texts if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    for box in boxes:
        assert page.x0 - 0.5 <= box.x0 and box.x1 <= page.x1 + 0.5, box
        assert page.y0 - 0.5 <= box.y0, box
    angle = texts[0].get_rotation()
    if angle == 0:
        for a, b in pairwise(boxes):
            assert not overlap(a, b), (a, b)
        return
    xs = [ax.transData.transform((t.get_position()[0], 0))[0] for t in texts]
    line = texts[0].get_fontsize() * 1.2 * fig.dpi / 72
    for a, b in pairwise(xs):
        assert (b - a) * np.sin(np.radians(angle)) >= line, (a, b, angle)


@pytest.mark.parametrize("nights", [3, 8, 12])
def test_drift_axes_name_the_year_of_each_night(
    monkeypatch: pytest.MonkeyPatch, nights: int
) -> None:
    """Runs across New Year read "12-30, 12-31, 01-01": which year? A backfill of 2024's
    nights looked like this year's. The last of three dates was cut off by the edge."""
    runs = [date(2026, 12, 31) + timedelta(days=i - nights + 2) for i in range(nights)]
    series = {f"feature_{i}": (runs, [0.05 * (i + 1)] * nights) for i in range(8)}
    fig = drawn(monkeypatch, charts.drift_lines, "drift", "Feature PSI per run", series, 0.2, "PSI")
    ax = fig.axes[0]
    ticks = [t for t in ax.get_xticklabels() if t.get_text()]
    assert len(ticks) >= 3
    assert all(re.fullmatch(r"20\d\d-\d\d-\d\d", t.get_text()) for t in ticks), ticks
    assert {t.get_text()[:4] for t in ticks} == {"2026", "2027"}
    inside_and_apart(fig, ax, ticks)
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    for tick in ticks:
        assert not overlap(tick.get_window_extent(renderer), legend)


def test_the_loads_chart_names_the_year_of_each_day(monkeypatch: pytest.MonkeyPatch) -> None:
    days = [date(2026, 12, 25) + timedelta(days=i) for i in range(14)]
    panels = {s: {"loaded": [100] * 14, "quarantined": [3] * 14} for s in ("crm", "events")}
    fig = drawn(monkeypatch, charts.stacked_by_day, "loads", "Rows", panels, days, {})
    for ax in fig.axes:
        ticks = ax.get_xticklabels()
        assert [t.get_text() for t in ticks] == [d.isoformat() for d in days]
        inside_and_apart(fig, ax, ticks)


DATE = re.compile(r"20\d\d-\d\d-\d\d")


def test_every_chart_says_which_night_it_shows_and_keeps_its_title_whole(
    monkeypatch: pytest.MonkeyPatch, sample_warehouse: Path, tmp_path: Path
) -> None:
    """ "Customers per segment", "Score distribution", "Audience size: target
    and holdout": copied into a slide or an e-mail, a chart left the page's header behind
    and no longer said which night it was of. The titles that now carry a date start at
    the drawing's edge: from the plot's, right of long labels, "Quarantine reasons,
    ranked · 2026-06-17 .. 2026-06-30" was cut off."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figures = captured_figures(monkeypatch)
    render_report(sample_warehouse, AS_OF, tmp_path / "r.html")
    assert len(figures) >= 19, sorted(figures)
    # What a score is, in words ("calibrated probability" said nothing to a marketer).
    assert figures["scores-purchase"].axes[0].get_xlabel() == (
        "predicted chance of a purchase (0 to 1)"
    )
    assert figures["scores-churn"].axes[0].get_xlabel() == "predicted chance of churning (0 to 1)"
    for name, fig in figures.items():
        FigureCanvasAgg(fig).draw()
        renderer = fig.canvas.get_renderer()
        titles = [t for ax in fig.axes for t in (ax.title, ax._left_title) if t.get_text()]
        if fig._suptitle is not None:
            titles.append(fig._suptitle)
        assert titles, name
        for title in titles:
            box = title.get_window_extent(renderer)
            assert fig.bbox.x0 - 0.5 <= box.x0 and box.x1 <= fig.bbox.x1 + 0.5, (name, title)
        for ax in fig.axes:  # the axes' labels too ("predicted chance of ..." ran off both sides)
            for label in (ax.xaxis.label, ax.yaxis.label):
                if label.get_text():
                    box = label.get_window_extent(renderer)
                    assert fig.bbox.x0 - 0.5 <= box.x0 and box.x1 <= fig.bbox.x1 + 0.5, (
                        name,
                        label,
                    )
        # The night in a title, or on the axis where the chart runs over nights.
        texts = [t.get_text() for t in titles]
        for ax in fig.axes:
            texts += [ax.get_xlabel(), ax.get_ylabel()]
            texts += [t.get_text() for t in ax.get_xticklabels()]
        assert any(DATE.search(t) for t in texts), (name, texts)
        assert any(str(AS_OF) in t for t in texts), (name, texts)


def test_drift_lines_differ_by_marker_not_colour_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six features' PSI lines differed by colour only: blue and purple, orange and green
    look alike to a colour-blind reader, who could not tell which line was over 0.2."""
    runs = [date(2026, 6, 28), date(2026, 6, 29), date(2026, 6, 30)]
    series = {f"feature_{i}": (runs, [0.05 * (i + 1)] * 3) for i in range(6)}
    fig = drawn(monkeypatch, charts.drift_lines, "drift", "Feature PSI per run", series, 0.2, "PSI")
    lines = [line for line in fig.axes[0].get_lines() if line.get_label() in series]
    assert len(lines) == 6
    assert len({line.get_marker() for line in lines}) == 6
    # and the legend shows them
    handles = fig.axes[0].get_legend().legend_handles
    assert len({h.get_marker() for h in handles}) == 6


def test_the_baselines_differ_by_line_and_marker_not_colour_alone(
    monkeypatch: pytest.MonkeyPatch, sample_warehouse: Path, tmp_path: Path
) -> None:
    """The recency rule and the BG/NBD model were both dashed with the same dots, stone
    grey and purple, colours of one lightness: a colour-blind reader, or a grey-scale
    print, could not tell them apart on the ROC, lift, capture and calibration charts of
    the real report."""
    figures = captured_figures(monkeypatch)
    render_report(sample_warehouse, AS_OF, tmp_path / "r.html")
    checked = 0
    for name, fig in figures.items():
        if not name.startswith(("roc-", "lift-", "calibration-")):
            continue
        for ax in fig.axes:
            scorers = [
                line
                for line in ax.get_lines()
                if line.get_label() in ("model", "recency rule", "BG/NBD model")
                or line.get_label().startswith(("model (", "recency rule (", "BG/NBD model ("))
            ]
            if len(scorers) < 2:
                continue
            checked += 1
            looks = {(str(line.get_linestyle()), line.get_marker()) for line in scorers}
            assert len(looks) == len(scorers), (name, looks)
            assert all(line.get_marker() not in ("", "None", None) for line in scorers), name
            lines = [h for h in ax.get_legend().legend_handles if hasattr(h, "get_marker")]
            assert len({(str(h.get_linestyle()), h.get_marker()) for h in lines}) == len(lines)
    assert checked >= 4, sorted(figures)


@pytest.mark.parametrize("chosen", [2, 6, 10])
def test_the_chosen_k_label_stays_inside_the_chart(
    monkeypatch: pytest.MonkeyPatch, chosen: int
) -> None:
    """A 200,000-customer shop chose k = 10, the last candidate: "chosen k = 10", written
    right of its line, ran past the chart's edge and was cut off."""
    ks = list(range(2, 11))
    fig = drawn(
        monkeypatch,
        charts.k_selection,
        ks,
        [1000.0 / k for k in ks],
        [0.3 + 0.01 * k for k in ks],
        chosen,
        date(2026, 6, 30),
    )
    renderer = fig.canvas.get_renderer()
    labels = [t for ax in fig.axes for t in ax.texts if t.get_text() == f"chosen k = {chosen}"]
    assert len(labels) == 2
    for label in labels:
        box = label.get_window_extent(renderer)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, (chosen, box)
        axes = label.axes.get_window_extent(renderer)
        assert box.x1 <= axes.x1 + 1, (chosen, box, axes)  # not past the plot either
