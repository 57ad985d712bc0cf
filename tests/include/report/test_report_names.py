"""Segment names a person chose (``[segmentation] pinned_names``) on the report's charts:
money signs, markup, accents and length, on the hand-made warehouse."""

from __future__ import annotations

import re
from pathlib import Path

from segmint.config import Settings
from segmint.report import write_report
from segmint.warehouse import connect
from tests.include.report.conftest import AS_OF, quarantine_only


def rename(warehouse: Path, names: dict[str, str]) -> None:
    con = connect(warehouse)
    try:
        for old, new in names.items():
            con.execute(
                "update ml.customer_segments set segment_name = ? where segment_name = ?",
                [new, old],
            )
    finally:
        con.close()


def chart(html: str, name: str) -> str:
    return re.search(rf'data-chart="{name}">(<svg.*?</svg>)', html, re.S).group(1)


def chart_texts(svg: str) -> list[str]:
    """The labels drawn as plain text (mathtext is drawn glyph by glyph in tspans)."""
    return re.findall(r"<text[^>]*>([^<]+)</text>", svg)


def test_money_in_a_name_is_drawn_as_written(handmade_warehouse: Path, tmp_path: Path) -> None:
    rename(handmade_warehouse, {"Alpha": "Spend $50 to $100 <b>", "Beta": "Über-Käufer «VIP»"})
    result = write_report(Settings(warehouse=handmade_warehouse, output=tmp_path), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert result.warnings == []
    for name in ("segment-sizes", "segment-transitions"):
        texts = chart_texts(chart(html, name))
        assert "Spend $50 to $100 &lt;b&gt;" in texts, name
        assert "Über-Käufer «VIP»" in texts, name
    assert "$100 <b>" not in html  # escaped wherever the name is written


def test_a_long_name_is_shortened_on_the_charts_only(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    long = (
        "Customers who bought garden furniture in spring and came back for the barbecue "
        "accessories in summer"
    )
    rename(handmade_warehouse, {"Alpha": long})
    result = write_report(Settings(warehouse=handmade_warehouse, output=tmp_path), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    sizes = chart_texts(chart(html, "segment-sizes"))
    assert "Customers who bought garden fur…" in sizes
    transitions = chart_texts(chart(html, "segment-transitions"))
    assert "Customers who bought garden fur…" in transitions  # the row
    assert "garden fur…" in transitions  # the column, wrapped over lines
    assert not any("barbecue" in t for t in sizes + transitions)
    # The table beside the chart and the persona card keep the whole name.
    assert f'<td class="long">{long}</td>' in html
    assert f"<h4>{long}</h4>" in html


def test_a_name_in_another_script_is_written_without_glyph_warnings(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    """A Chinese segment name printed matplotlib's "Glyph ... missing from font(s)" once per
    character into the task log; the SVG holds the text and the browser draws it."""
    import warnings

    rename(handmade_warehouse, {"Alpha": "高价值客户"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = write_report(Settings(warehouse=handmade_warehouse, output=tmp_path), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert "高价值客户" in chart_texts(chart(html, "segment-sizes"))


def test_a_long_quarantine_reason_is_drawn_whole_over_lines(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    """The ingest's reasons are sentences ("no identity: customer_id and anonymous_id are
    both missing"): the chart cut them at 40 characters, "no identity: customer_id and
    anonymous_id…", and a marketer could not tell what was missing without the table."""
    reasons = [
        "no identity: customer_id and anonymous_id are both missing",
        "malformed JSON: the line is not a valid JSON document",
    ]
    quarantine_only(handmade_warehouse, reasons)
    result = write_report(Settings(warehouse=handmade_warehouse, output=tmp_path), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert result.warnings == []
    drawn = " ".join(chart_texts(chart(html, "quarantine-reasons")))
    for reason in reasons:
        assert reason in drawn  # its lines, in order
    assert "…" not in drawn
