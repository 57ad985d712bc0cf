"""The nightly report: one self-contained, offline HTML page of segments, scores, audiences,
data quality and drift (see docs/report.md).

Importing this package is cheap; matplotlib is imported when a chart is drawn.
"""

from segmint.report.build import render_report, report_command, write_report

__all__ = ["render_report", "report_command", "write_report"]
