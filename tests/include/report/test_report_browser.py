"""Acceptance: the report of a small run opens in headless Chromium, offline, with no script
or console errors and every chart drawn at a real size; screenshots are kept as artifacts.

Chromium is Debian's ``chromium`` package; ``browser.chromium_path`` installs it when it is
missing and the tests run as root with apt. If it cannot be had, the test fails and says why.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from segmint.config import Settings
from segmint.report import charts as charts_module
from segmint.report import write_report
from tests.include.report.browser import BrowserUnavailable, chromium_path, open_in_chromium

AS_OF = date(2026, 6, 30)
ARTIFACTS = Path(__file__).resolve().parents[3] / "output" / "test-artifacts"
SECTIONS = ["summary", "segments", "propensity", "audiences", "data-quality", "drift"]
CHART_COUNT = 20  # every chart of a run with two propensity models (see test_report.py)


@pytest.mark.timeout(900)  # a first run may install Chromium with apt
def test_report_renders_in_headless_chromium(sample_warehouse: Path, tmp_path: Path) -> None:
    try:
        chromium_path()
    except BrowserUnavailable as exc:
        pytest.fail(str(exc))
    settings = Settings(warehouse=sample_warehouse, output=tmp_path / "output")
    page = Path(write_report(settings, AS_OF).details["path"])

    report = open_in_chromium(page, tmp_path / "browser")

    assert report.errors == [], report.errors
    assert report.console == [], report.console
    assert report.title == "segmint nightly report · 2026-06-30"
    assert report.sections == SECTIONS
    assert len(report.charts) == CHART_COUNT
    for chart in report.charts:
        assert chart["has_svg"], chart
        assert chart["width"] >= 300 and chart["height"] >= 150, chart
        assert chart["marks"] > 5, chart  # bars, lines, ticks: something was drawn
        assert chart["clipped"] == [], chart  # no label or title cut off at the edge
    # Laptop screen: nothing wider than the window (no horizontal scrolling), no table
    # scrolling sideways inside its box.
    assert report.page_width <= 1440
    assert [t for t in report.tables if t["overflow"] > 1] == []

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in report.screenshots:
        with Image.open(shot) as image:
            assert image.width == 1440 and image.height >= 900
            # Not a blank page: the first screen has the dark header and coloured tiles.
            colours = image.crop((0, 0, 1440, 900)).convert("RGB").getcolors(1 << 20)
            assert colours is not None and len(colours) > 50
        name = "report-first-screen.png" if image.height == 900 else "report-full-page.png"
        shutil.copy2(shot, ARTIFACTS / name)
    shutil.copy2(page, ARTIFACTS / "report.html")


def test_a_small_shops_charts_fit_their_text(handmade_warehouse: Path, tmp_path: Path) -> None:
    """Two segments: the transitions heatmap was drawn 6 inches wide, narrower than its
    title, which the page cut off ("... (colour = share of the ro"), and scaled up to the
    page's width, 2.2 times. A wide chart is drawn at the wide width."""
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "output")
    page = Path(write_report(settings, AS_OF).details["path"])
    report = open_in_chromium(page, tmp_path / "browser", screenshot_sizes=(), full_page_width=None)
    charts = {chart["name"]: chart for chart in report.charts}
    assert "segment-transitions" in charts
    for chart in charts.values():
        assert chart["clipped"] == [], chart
    # Same type size as the other wide charts: about 1.3 times at 1440 px, not 2.2.
    assert charts["segment-transitions"]["height"] < 400
    loads = charts_module.stacked_by_day("loads", "t", {"crm": {"loaded": [1]}}, [AS_OF], {})
    assert 'viewBox="0 0 691.2 ' in loads  # one source: drawn as wide as two, not 2.8 times


def test_a_long_segment_name_leaves_the_tables_counts_in_view(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    """A 100-character segment name was written on one line: the size table beside the
    chart scrolled sideways, its customers, share and change out of view (and off a printed
    page). A long text cell now wraps."""
    from tests.include.report.test_report_names import rename

    long = (
        "Customers who bought garden furniture in spring and came back for the barbecue "
        "accessories in summer"
    )
    rename(handmade_warehouse, {"Alpha": long})
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "output")
    page = Path(write_report(settings, AS_OF).details["path"])
    report = open_in_chromium(page, tmp_path / "browser", screenshot_sizes=(), full_page_width=None)
    sizes = [t for t in report.tables if t["columns"][:3] == ["id", "segment", "customers"]]
    assert len(sizes) == 1, report.tables
    assert sizes[0]["overflow"] <= 1, sizes[0]
    assert [t for t in report.tables if t["overflow"] > 1] == []


def test_a_large_shops_audience_table_fits_the_screen(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A shop of 200,000 customers: the audiences table's 13 columns of 5- to 7-digit
    counts, under headers kept on one line ("without consent", "other exclusions", "rows
    exported"), ran 27 px past its box at 1440 px, its last column half out of view. The
    headers now wrap when the table would not fit."""
    from segmint.warehouse import connect

    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        con.execute(
            "update audiences.summary set matched = matched + 1234567, "
            "without_consent = without_consent + 1234567, suppressed = suppressed + 123456"
        )
    finally:
        con.close()
    page = Path(
        write_report(Settings(warehouse=warehouse, output=tmp_path / "o"), AS_OF).details["path"]
    )
    report = open_in_chromium(page, tmp_path / "browser", screenshot_sizes=(), full_page_width=None)
    audiences = [t for t in report.tables if t["columns"][:3] == ["audience", "consent", "matched"]]
    assert len(audiences) == 1, report.tables
    assert [t for t in report.tables if t["overflow"] > 1] == []


def test_the_printed_report_fits_the_paper_and_keeps_its_bars(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """Printed, the page had no print rules: the sticky menu on the first sheet, tables of
    13 columns cut at the paper's edge (a scrolling box prints clipped: the audiences'
    exports and the readouts' p-values were lost), and the persona cards' bars, CSS
    backgrounds, dropped by the browser. Measured with the print rules at an A4 sheet's
    width within its margins (about 720 px)."""
    settings = Settings(warehouse=sample_warehouse, output=tmp_path / "output")
    page = Path(write_report(settings, AS_OF).details["path"])
    report = open_in_chromium(
        page,
        tmp_path / "browser",
        screenshot_sizes=(),
        full_page_width=None,
        width=720,
        print_rules=True,
    )
    assert report.errors == [], report.errors
    assert report.styles["nav_display"] == "none"
    assert report.styles["header_background"] == "rgba(0, 0, 0, 0)"  # ink on white paper
    assert report.styles["bar_color_adjust"] == "exact"  # the persona bars are printed
    assert len(report.tables) >= 5
    assert [t for t in report.tables if t["overflow"] > 1] == []
    assert report.page_width <= 720
    for chart in report.charts:
        assert chart["clipped"] == [], chart


def test_the_browser_check_sees_broken_pages(tmp_path: Path) -> None:
    """The acceptance check is not vacuous: script errors, console errors, resources that do
    not load, charts without an SVG and text cut off at a chart's edge are all reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><title>broken</title><script src="missing.js"></script>'
        '</head><body><figure data-chart="empty"><div>no svg</div></figure>'
        '<figure data-chart="cut"><svg viewBox="0 0 100 50" width="100" height="50">'
        '<text x="10" y="20">in</text><text x="60" y="20">a title far too long</text>'
        "</svg></figure>"
        '<script>console.error("boom"); notDefined();</script></body></html>'
    )
    report = open_in_chromium(page, tmp_path / "browser", screenshot_sizes=(), full_page_width=None)
    assert any("missing.js" in e for e in report.errors)
    assert any("boom" in e for e in report.errors)
    assert any("notDefined is not defined" in e for e in report.errors)
    assert any("notDefined is not defined" in m for m in report.console)
    assert report.charts[0] == {
        "name": "empty",
        "has_svg": False,
        "width": 0,
        "height": 0,
        "marks": 0,
        "clipped": [],
    }
    assert report.charts[1]["clipped"] == ["a title far too long"]
