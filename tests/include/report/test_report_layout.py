"""The charts' text measured where matplotlib draws it: labels that overlap marks, the
legend or each other are unreadable, yet every chart is still "present" in the browser."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from segmint.report import charts


def drawn(monkeypatch: pytest.MonkeyPatch, chart, *args: Any):
    """Draw a chart and return its figure, laid out by matplotlib's Agg renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figures = []
    real = charts.to_svg

    def keep(fig, name, label):
        figures.append(fig)
        return real(fig, name, label)

    monkeypatch.setattr(charts, "to_svg", keep)
    chart(*args)
    (fig,) = figures
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
