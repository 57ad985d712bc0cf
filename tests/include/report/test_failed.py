"""The page a failed night leaves where its report would be (segmint.report.failed)."""

from datetime import date
from pathlib import Path

from segmint.config import Settings
from segmint.report.failed import is_failure_page, leave_failure_page, write_failure_page
from segmint.stages import QualityGateError


def test_two_failed_nights_link_the_last_real_report(tmp_path: Path) -> None:
    """The second failed night's page links the newest real report, not the first failed
    night's page."""
    settings = Settings(output=tmp_path / "out")
    (tmp_path / "out" / "2026-06-28").mkdir(parents=True)
    (tmp_path / "out" / "2026-06-28" / "report.html").write_text("<html>06-28</html>")
    error = QualityGateError("events 2026-06-29: 12% quarantined, first: a@example.com")
    first = write_failure_page(settings, date(2026, 6, 29), "validate", error)
    second = write_failure_page(settings, date(2026, 6, 30), "transform", RuntimeError("x"))
    assert is_failure_page(first) and is_failure_page(second)
    assert not is_failure_page(tmp_path / "out" / "2026-06-28" / "report.html")
    assert '<a href="../2026-06-28/report.html">' in second.read_text()
    assert "a@example.com" not in first.read_text()


def test_no_page_when_the_report_is_written_or_not_part_of_the_run(tmp_path: Path) -> None:
    """A failed publish keeps tonight's report; a run of stages without the report leaves
    the folder alone; a report an earlier run of the night drew is kept (it tells what is
    published), a failure page is replaced."""
    settings = Settings(output=tmp_path / "out")
    stages = ["ingest", "transform", "report", "publish"]
    leave_failure_page(settings, date(2026, 6, 30), "publish", RuntimeError(), stages)
    leave_failure_page(settings, date(2026, 6, 30), "ingest", RuntimeError(), ["ingest"])
    assert not (tmp_path / "out").exists()
    leave_failure_page(settings, date(2026, 6, 30), "report", RuntimeError(), stages)
    assert is_failure_page(tmp_path / "out" / "2026-06-30" / "report.html")
    leave_failure_page(settings, date(2026, 6, 30), "ingest", RuntimeError(), stages)
    assert 'data-failed-stage="ingest"' in (tmp_path / "out/2026-06-30/report.html").read_text()
    (tmp_path / "out" / "2026-06-30" / "report.html").write_text("<html>drawn</html>")
    leave_failure_page(settings, date(2026, 6, 30), "transform", RuntimeError(), stages)
    assert (tmp_path / "out/2026-06-30/report.html").read_text() == "<html>drawn</html>"
