"""Acceptance on real data: two nights of ``segmint run`` on a small generated landing zone,
then the second night's report in headless Chromium: no errors, every chart drawn.

Slow (a few minutes: GX validation, dbt, model training), so marked ``slow`` like the other
end-to-end tests; skipped with the reason while a stage of the pipeline is missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from segmint.pipeline import STAGES
from tests.include.report.browser import BrowserUnavailable, chromium_path, open_in_chromium

AS_OF = date(2026, 6, 30)
ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "output" / "test-artifacts"


def _missing_modules() -> list[str]:
    modules = {target.split(":")[0] for target in STAGES.values()} | {"segmint.generate"}
    return sorted(m for m in modules if importlib.util.find_spec(m) is None)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        bool(_missing_modules()), reason=f"stages not implemented yet: {_missing_modules()}"
    ),
]


def _segmint(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "segmint.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, f"segmint {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def test_report_of_a_generated_run_opens_in_chromium(tmp_path: Path) -> None:
    try:
        chromium_path()
    except BrowserUnavailable as exc:
        pytest.fail(str(exc))
    landing, warehouse, output = tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "out"
    # 100 days: the propensity models need two labelled 30-day windows of history.
    _segmint("generate", "--landing", str(landing), "--customers", "2000", "--days", "100",
             "--end-date", AS_OF.isoformat())  # fmt: skip
    stages = ",".join(s for s in STAGES if s != "publish")
    for night in ("2026-06-29", AS_OF.isoformat()):
        out = _segmint("run", "--landing", str(landing), "--warehouse", str(warehouse),
                       "--output", str(output), "--as-of", night, "--stages", stages)  # fmt: skip
        assert f"report     wrote {output / night / 'report.html'}" in out

    page = output / AS_OF.isoformat() / "report.html"
    report = open_in_chromium(page, tmp_path / "browser", full_page_width=1440)
    assert report.errors == [] and report.console == []
    names = {c["name"] for c in report.charts}
    # Two nights of every stage: every picture of the page exists.
    assert {"segment-sizes", "segment-rfm", "segment-transitions", "k-selection"} <= names
    assert {"audience-sizes", "loads", "quarantine-reasons", "drift-psi"} <= names
    assert {"drift-centroid", "drift-scores"} <= names
    assert {f"{k}-purchase" for k in ("lift", "roc", "calibration", "scores", "drivers")} <= names
    for chart in report.charts:
        assert chart["width"] >= 300 and chart["height"] >= 150 and chart["marks"] > 5, chart
    html = page.read_text(encoding="utf-8")
    assert "Could not be drawn" not in html
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot, name in zip(report.screenshots, ("first-screen", "full-page"), strict=True):
        shutil.copy2(shot, ARTIFACTS / f"generated-run-report-{name}.png")
    shutil.copy2(page, ARTIFACTS / "generated-run-report.html")
