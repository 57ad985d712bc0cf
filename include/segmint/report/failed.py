"""The page a failed night leaves where its report would be.

A night that failed before its report stage wrote no ``<output>/<as-of>/report.html``:
marketing, opening the output folder, found yesterday's page the newest, with nothing
saying tonight's night had failed, and took it for tonight's. Now the failed night's folder
holds a short page saying so: the night, the stage that failed, that nothing of the night
was published, and a link to the newest report. The next run of the night that succeeds
replaces it with the report; a report an earlier run of the night drew is kept. It names
the error's kind, not its message, which may quote a record of a landing file (a
customer's e-mail address): the operator's log has that.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime
from pathlib import Path

from segmint.config import Settings
from segmint.outputs import written_atomically

log = logging.getLogger(__name__)

# In the page's head, so the newest real report can be told from a page of a failed night.
MARKER = '<meta name="segmint-report" content="failed-night">'
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def is_failure_page(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return MARKER in f.read(4096)
    except OSError:
        return False


def previous_report(output: Path, as_of: date) -> Path | None:
    """The report of the newest night before ``as_of`` that has one (not a failure page)."""
    if not output.is_dir():
        return None
    nights = sorted(
        (d.name for d in output.iterdir() if _DATE_DIR.match(d.name) and d.name < str(as_of)),
        reverse=True,
    )
    for night in nights:
        page = output / night / "report.html"
        if page.is_file() and not is_failure_page(page):
            return page
    return None


def write_failure_page(settings: Settings, as_of: date, stage: str, exc: BaseException) -> Path:
    """Write ``<output>/<as-of>/report.html`` saying the night failed at ``stage``."""
    from segmint.report.page import esc, page

    out = settings.run_output_dir(as_of) / "report.html"
    previous = previous_report(settings.output, as_of)
    newest = (
        f'<p>The newest report is that of the night of <a href="../{esc(previous.parent.name)}/'
        f"report.html\">{esc(previous.parent.name)}</a>; its figures are that night's, not "
        f"{esc(as_of)}'s.</p>"
        if previous is not None
        else "<p>There is no report of an earlier night in this folder.</p>"
    )
    summary = (
        f'<p class="note error" data-failed-stage="{esc(stage)}">The night of {esc(as_of)} '
        f"failed at its '{esc(stage)}' stage ({esc(type(exc).__name__)}): there is no report "
        "for it, and this run of it published nothing.</p>"
        + newest
        + "<p>The operator's log says what failed and what to do. Once the night is run "
        "again and succeeds, its report replaces this page.</p>"
    )
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    document = page(
        f"segmint nightly report · {as_of} · FAILED, no report",
        f"the night of {as_of} failed at stage {stage} · written {written}",
        summary,
        [],
    ).replace("<head>", "<head>" + MARKER, 1)
    with written_atomically(out) as tmp:
        tmp.write_text(document, encoding="utf-8")
    return out


def leave_failure_page(
    settings: Settings, as_of: date, stage: str, exc: BaseException, stages: list[str]
) -> None:
    """:func:`write_failure_page` when the night was to write its report and did not get
    there (``stage`` is the report stage or one before it in ``stages``); a page that could
    not be written is logged, never raised: the failure being reported matters more."""
    if "report" not in stages or stage not in stages:
        return
    if stages.index(stage) > stages.index("report"):
        return  # publish failed: tonight's report is written and stays
    out = settings.run_output_dir(as_of) / "report.html"
    if out.exists() and not is_failure_page(out):
        # An earlier run of this night drew it: it still tells what is published (a failed
        # run publishes nothing), and a mistyped flag on a rerun must not take it away.
        return
    try:
        write_failure_page(settings, as_of, stage, exc)
    except Exception as problem:
        log.info("could not write the failed night's page: %s", problem)
