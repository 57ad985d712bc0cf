"""The nightly report: every section from a full warehouse, graceful notes from a partial or
empty one, plain-language numbers, the stage, the CLI, offline and read-only."""

from __future__ import annotations

import re
from datetime import date
from html import escape as html_escape
from pathlib import Path

import duckdb
import pytest

from segmint.cli import main
from segmint.config import Settings
from segmint.ingest.contract import OPS_DDL
from segmint.pipeline import STAGES
from segmint.report import render_report, write_report
from segmint.stages import SegmintError
from segmint.warehouse import connect
from tests.include.report.conftest import quarantine_only

AS_OF = date(2026, 6, 30)  # the sample's and the hand-made warehouse's as-of date

# Every chart the report draws when all its inputs exist (two propensity models).
EXPECTED_CHARTS = {
    "segment-sizes",
    "segment-rfm",
    "segment-transitions",
    "k-selection",
    "audience-sizes",
    "loads",
    "quarantine-reasons",
    "drift-psi",
    "drift-centroid",
    "drift-scores",
} | {
    f"{kind}-{model}"
    for kind in ("lift", "roc", "calibration", "scores", "drivers")
    for model in ("purchase", "churn")
}


def charts_in(html: str) -> set[str]:
    return set(re.findall(r'data-chart="([^"]+)"', html))


@pytest.fixture(scope="module")
def full_run(sample_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("report-output")
    docs = output / AS_OF.isoformat() / "data_docs" / "local_site"
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html>GX</html>")
    settings = Settings(warehouse=sample_warehouse, output=output)
    result = write_report(settings, AS_OF)
    return settings, result, Path(result.details["path"]).read_text(encoding="utf-8")


def test_stage_writes_the_run_output_and_draws_every_chart(full_run) -> None:
    settings, result, html = full_run
    assert result.stage == "report"
    assert result.details["path"] == str(settings.output / "2026-06-30" / "report.html")
    assert result.warnings == []
    assert result.details["not_available"] == []
    assert charts_in(html) == EXPECTED_CHARTS
    assert "Not available yet" not in html
    for section in ("summary", "segments", "propensity", "audiences", "data-quality", "drift"):
        assert f'<section id="{section}"' in html


def test_summary_speaks_plainly(full_run) -> None:
    _, result, html = full_run
    summary = result.details["summary"]
    assert summary[0].startswith("1,500 customers in 6 segments")
    # The baseline in words: "beats baseline_bgnbd" told a marketer nothing.
    purchase = "Purchase model: holdout AUC 0.81 (beats the BG/NBD model at 0.74)"
    assert any(s.startswith(purchase) for s in summary)
    assert not any("baseline_" in s for s in summary)
    assert "against the best simple rule, the BG/NBD model (<code>baseline_bgnbd</code>)" in html
    assert "the recency rule (baseline_recency) ranks customers by the days since" in html
    lift = re.search(r'data-chart="lift-purchase">(<svg.*?</svg>)', html, re.S).group(1)
    legend = re.findall(r"<text[^>]*>([^<]+)</text>", lift)
    assert "recency rule" in legend and "BG/NBD model" in legend
    assert not any("baseline_" in t for t in legend)
    quarantine = (
        "6 quarantined rows in the 2026-06-30 partition, most often event ts in future (3)."
    )
    assert quarantine in summary
    assert any(s.startswith("3 audiences with") for s in summary)
    assert any(
        "of the segmentation shifted beyond the warning level (PSI above 0.2)" in s for s in summary
    )
    assert summary[0] in html.replace("&#x27;", "'")


def test_targeted_customers_are_counted_once_however_many_audiences_hold_them(full_run) -> None:
    """A customer in two audiences is one customer to reach: the tile and the summary said
    623 targeted customers, the sum of the audiences' targets, where 571 were."""
    settings, result, html = full_run
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        distinct, memberships = con.execute(
            "select count(distinct customer_id), count(*) from audiences.members "
            "where as_of_date = ? and \"group\" = 'target'",
            [AS_OF],
        ).fetchone()
    finally:
        con.close()
    assert distinct < memberships  # the sample's audiences overlap
    sentence = (
        f"3 audiences with {distinct:,} targeted customers ({memberships:,} memberships: "
        "a customer can be in several audiences)."
    )
    assert sentence in result.details["summary"]
    tile = f'<div class="kpi-value">{distinct:,}</div><div class="kpi-label">customers targeted'
    assert tile in html


def test_the_churn_charts_speak_of_churners_not_buyers(full_run) -> None:
    """The churn model's lift and capture said "buyer rate in the decile" and "share of
    buyers captured" of the customers who left: a marketer read the churn chart as buyers."""
    _, _, html = full_run

    def lift_block(model: str) -> str:
        return re.search(rf'data-chart="lift-{model}">(.*?)</figure>', html, re.S).group(1)

    churn, purchase = lift_block("churn"), lift_block("purchase")
    assert "buyer" not in churn
    assert "share of churners captured" in churn
    assert "Positives: churners, customers with no purchase and no visit" in churn
    assert "share of buyers captured" in purchase


def test_the_readouts_say_what_their_columns_mean(full_run) -> None:
    """The readouts were headed "conv. target", "uplift", "p conv.", "p rev." with nothing
    on the page saying what a p-value is or which one counts: a marketer's question."""
    _, _, html = full_run
    caption = re.search(r"<caption>(Orders from the day after each snapshot[^<]*)</caption>", html)
    assert caption is not None
    assert (
        "p conv., p rev.: how likely a difference this large would be if the campaign did "
        "nothing (below 0.05 it is taken as real)"
    ) in caption.group(1)
    assert "Conv.: the share who ordered" in caption.group(1)


def test_readouts_and_data_docs_link(full_run) -> None:
    _, _, html = full_run
    # Readouts are computed with the audiences module's statistics, one row per audience.
    for audience in ("likely_buyers_email", "winback_at_risk", "vip_ads"):
        assert f"<b>{audience}</b>:" in html
    # The GX Data Docs link is relative to the report, so the run folder can be moved.
    assert 'href="data_docs/local_site/index.html"' in html


def test_a_report_whose_data_docs_were_pruned_says_so_instead_of_linking(
    full_run, tmp_path: Path
) -> None:
    """`[outputs] keep_nights` deletes an old night's Data Docs and keeps its report, which
    still linked to them: a dead link. The prune now replaces the link with a note saying
    when and by what they were removed; the rest of the report is unchanged."""
    import shutil
    from datetime import timedelta

    from segmint.outputs import prune_run_outputs

    settings, _, html = full_run
    output = tmp_path / "output"
    shutil.copytree(settings.output, output)
    night = output / AS_OF.isoformat()
    later = AS_OF + timedelta(days=3)
    pruned = prune_run_outputs(output, later, keep_nights=2)
    assert pruned.nights == [AS_OF.isoformat()]
    assert not (night / "data_docs").exists()
    assert pruned.reports == [str(night / "report.html")]
    after = (night / "report.html").read_text(encoding="utf-8")
    assert "data_docs/" not in after and "Great Expectations Data Docs</a>" not in after
    note = (
        "Full validation results: the Great Expectations Data Docs of this night were removed "
        f"when the night {later} was published ([outputs] keep_nights = 2)"
    )
    assert note in after
    link = re.search(r"<p>Full validation results: <a .*?</p>", html).group(0)
    assert (
        after.replace(
            re.search(r'<p class="note info">Full validation.*?</p>', after).group(0), link
        )
        == html
    )
    # A report written after the pruning says where the Data Docs would be, and why not.
    rewritten = Path(
        write_report(Settings(warehouse=settings.warehouse, output=output), AS_OF).details["path"]
    ).read_text(encoding="utf-8")
    assert (
        f"Great Expectations Data Docs: none in {night / 'data_docs'} (not generated for this "
        "run, or removed since by [outputs] keep_nights = 30)."
    ) in rewritten


def test_the_load_table_speaks_words_and_keeps_the_codes_in_its_caption(full_run) -> None:
    """The rows per source and day were headed by the manifest's columns, "rows_read",
    "rows_duplicate", "failed_files"; they are words now, the codes in the caption."""
    _, _, html = full_run
    block = html[html.index("Table: rows per source and partition day") :]
    block = block[: block.index("</table>")]
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", block)
    assert headers[:7] == [
        "day",
        "source",
        "files",
        "rows read",
        "loaded",
        "duplicates dropped",
        "quarantined",
    ]
    assert not any("_" in h for h in headers)
    assert (
        "Sums per source and day of ops.load_manifest&#x27;s rows_read, rows_loaded, "
        "rows_duplicate, rows_quarantined"
    ) in block


def test_page_is_self_contained_and_script_free(full_run) -> None:
    _, _, html = full_run
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert not re.search(r"url\((?!#)", html)  # only in-page references (SVG clip paths)
    assert "@import" not in html
    assert html.count("<svg") == len(EXPECTED_CHARTS)


def test_summary_says_mostly_only_of_a_reason_holding_most_rows(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    """A hand-written night with five rows quarantined for five reasons, one each, said
    "5 quarantined rows in the 2026-06-01 partition, mostly event ts is before 2000-01-01":
    no reason held most rows, and the field event_ts was spelt "event ts", a name the
    data and ops.quarantine do not have."""
    reasons = [
        "event_ts is before 2000-01-01 (got '1970-01-01T00:00:00Z')",
        "event_ts is not an ISO-8601 timestamp (got epoch)",
        "purchase without revenue",
        "revenue is negative (got -5.0)",
        "updated_at is not an ISO-8601 timestamp (got not-a-date)",
    ]
    quarantine_only(handmade_warehouse, reasons)
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "out")
    summary = write_report(settings, AS_OF).details["summary"]
    assert summary[1] == (
        "5 quarantined rows in the 2026-06-30 partition, "
        "most often event_ts is before 2000-01-01 (1)."
    )


def test_a_psi_within_a_small_shops_sampling_noise_is_not_reported_as_a_change(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    """The segment stage does not warn of a PSI over 0.2 that sampling alone reaches with the
    shop's customer counts (150 customers: days_since_last_visit at 0.243); the report
    compared the values with 0.2 itself and said "The customers changed since the previous
    run ... check that the segments still read as before". It follows the stage's
    is_warning."""
    con = connect(handmade_warehouse)
    try:
        con.execute(
            """
            create table ml.segment_drift (
                run_id varchar, as_of_date date, previous_as_of_date date, kind varchar,
                segment_id integer, feature varchar, value double, is_warning boolean
            )"""
        )
        con.execute(
            "insert into ml.segment_drift values "
            "('r', ?, ?, 'feature_psi', null, 'days_since_last_visit', 0.243, false), "
            "('r', ?, ?, 'feature_psi', null, 'recency_days', 0.09, false)",
            [AS_OF, date(2026, 6, 29)] * 2,
        )
    finally:
        con.close()
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "out")
    summary = write_report(settings, AS_OF).details["summary"]
    assert (
        "The customers' features shifted no more than usual since the previous run (PSI "
        "above 0.2 only where a shop this size moves that much by chance)."
    ) in summary
    assert not [line for line in summary if "changed since the previous run" in line]
    con = connect(handmade_warehouse)
    try:
        con.execute("update ml.segment_drift set is_warning = value > 0.2")
    finally:
        con.close()
    summary = write_report(settings, AS_OF).details["summary"]
    assert [line for line in summary if "beyond the warning level" in line] == [
        "The customers changed since the previous run: 1 feature of the segmentation shifted "
        "beyond the warning level (PSI above 0.2): days_since_last_visit; check that the "
        "segments still read as before."
    ]


def test_handmade_numbers(handmade_warehouse: Path, tmp_path: Path) -> None:
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "out")
    result = write_report(settings, AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert result.warnings == []
    assert result.details["summary"][:2] == [
        "21 customers in 2 segments; since the run of 2026-06-29, Alpha grew 20% (10 → 12); "
        "90% of customers kept their segment.",
        "6 quarantined rows in the 2026-06-30 partition, most often event ts in future (3).",
    ]
    assert "18 customers kept their segment, 2 moved to another, 1 are new and 0 left" in html
    assert "money in USD" in html  # the reporting currency, [transform] reporting_currency
    # The tile said "quarantined rows today" on a report of 2026-06-30 drawn months later.
    tile = '<div class="kpi-value">6</div><div class="kpi-label">quarantined rows of 2026-06-30'
    assert tile in html and "today" not in html
    assert "computed from ml.customer_segments, 2026-06-29 to 2026-06-30" in html
    # Reasons ranked by rows: future timestamps (3), bad timestamps (2, whatever the
    # offending value), then the single ones.
    names = "event_ts_in_future|bad timestamp|missing_identity|invalid_json"
    reasons = re.findall(rf'<td class="">({names})<', html)
    assert reasons == ["event_ts_in_future", "bad timestamp", "invalid_json", "missing_identity"]
    # The tables that do not exist yet are named, and nothing crashed.
    assert "Not available yet: table ops.load_manifest does not exist yet" in html
    assert "Not available yet: table ml.propensity_scores does not exist yet" in html
    assert charts_in(html) == {"segment-sizes", "segment-transitions", "quarantine-reasons"}


def test_a_night_after_a_gap_names_the_run_it_compares_with(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    """The night before ran 20 days ago: the summary said "New customers grew 189% (82 →
    237)" as if in one night, the transition chart "segment last run". Every comparison
    now names the run it is measured from and how long before it was."""
    con = connect(handmade_warehouse)
    con.execute(
        "update ml.customer_segments set as_of_date = date '2026-06-10' "
        "where as_of_date = date '2026-06-29'"
    )
    con.close()
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "out")
    result = write_report(settings, AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert result.details["summary"][0] == (
        "21 customers in 2 segments; since the run of 2026-06-10 (20 days before), Alpha grew "
        "20% (10 → 12); 90% of customers kept their segment."
    )
    assert "Since the run of 2026-06-10 (20 days before): 18 customers kept their segment" in html
    chart = re.search(r'data-chart="segment-transitions">(.*?)</figure>', html, re.S).group(1)
    assert "segment on 2026-06-10" in chart and "segment on 2026-06-30" in chart
    assert "segment last run" not in chart


def _same_segments_the_night_before(warehouse: Path, extra_alpha: int = 0) -> None:
    """The previous run holds tonight's customers and segments, less the new c20, plus
    ``extra_alpha`` customers in Alpha on both nights."""
    con = connect(warehouse)
    con.execute("delete from ml.customer_segments where as_of_date = date '2026-06-29'")
    con.execute(
        "insert into ml.customer_segments select * replace (date '2026-06-29' as as_of_date) "
        "from ml.customer_segments where customer_id <> 'c20'"
    )
    if extra_alpha:
        con.execute(
            "insert into ml.customer_segments select 'x' || i, d, 0, 'Alpha', 0.5, false, 'r' "
            "from range(?) r(i), (values (date '2026-06-29'), (date '2026-06-30')) v(d)",
            [extra_alpha],
        )
    con.close()


@pytest.mark.parametrize(
    ("c20", "extra_alpha", "expected"),
    [
        # c20 joins Beta tonight: Beta 8 → 9 is the biggest move
        (None, 0, "Beta grew 12% (8 → 9)"),
        # c20 joins Alpha among 312: "grew 0%" read as no change
        ("Alpha", 300, "Alpha grew 0.3% (312 → 313)"),
    ],
)
def test_the_summary_never_says_a_segment_grew_0_percent(
    handmade_warehouse: Path, tmp_path: Path, c20: str | None, extra_alpha: int, expected: str
) -> None:
    """A second night with the same segments said "Never visited grew 0% (93 → 93)", and
    1,000 → 1,002 read "grew 0%": a marketer read a change where there was none, or none
    where there was one."""
    _same_segments_the_night_before(handmade_warehouse, extra_alpha)
    if c20:
        con = connect(handmade_warehouse)
        con.execute(
            "update ml.customer_segments set segment_id = 0, segment_name = ? "
            "where customer_id = 'c20'",
            [c20],
        )
        con.close()
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "out")
    summary = write_report(settings, AS_OF).details["summary"][0]
    assert f"since the run of 2026-06-29, {expected};" in summary
    assert " 0% (" not in summary


def test_the_summary_says_no_segment_changed_size(handmade_warehouse: Path, tmp_path: Path) -> None:
    """The second night of a shop whose segments kept their sizes said "Never visited grew
    0% (93 → 93)"."""
    _same_segments_the_night_before(handmade_warehouse)
    con = connect(handmade_warehouse)
    con.execute("delete from ml.customer_segments where customer_id = 'c20'")
    con.close()
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "out")
    summary = write_report(settings, AS_OF).details["summary"][0]
    assert summary.startswith(
        "20 customers in 2 segments; since the run of 2026-06-29, no segment changed size;"
    )
    assert "grew" not in summary


@pytest.mark.parametrize(
    ("failed_tonight", "expected"),
    [
        (
            0,
            "2 data-quality expectation results failed in 2026-06-17 .. 2026-06-30, none in "
            "the 2026-06-30 partition.",
        ),
        (
            1,
            "3 data-quality expectation results failed in 2026-06-17 .. 2026-06-30, 1 in the "
            "2026-06-30 partition.",
        ),
    ],
)
def test_failed_expectations_and_files_name_their_window(
    handmade_warehouse: Path, tmp_path: Path, failed_tonight: int, expected: str
) -> None:
    """A night with no new file said "9 data-quality expectation results failed." right
    under "No quarantined rows in the 2026-12-01 partition": the failures were of earlier
    days of the 14-day window, read as tonight's."""
    con = connect(handmade_warehouse)
    con.execute(OPS_DDL)
    failures = ["2026-06-25", "2026-06-26"] + ["2026-06-30"] * failed_tonight
    for day, success in [*((d, False) for d in failures), ("2026-06-30", True)]:
        con.execute(
            "insert into ops.validation_runs (source_file, source, partition_date, sha256, "
            "suite, rule, expectation_type, level, description, success, validated_at) values "
            "(?, 'events', ?, 'x', 'events', 'has_identity', "
            "'expect_column_values_to_not_be_null', 'record', 'd', ?, now())",
            [f"events/dt={day}/a.jsonl", day, success],
        )
    con.execute(
        "insert into ops.load_manifest (path, size_bytes, sha256, source, partition_date, "
        "rows_read, rows_loaded, rows_quarantined, rows_duplicate, rows_warned, status, "
        "updated_at) values ('crm/dt=2026-06-20/c.csv', 1, 'x', 'crm', date '2026-06-20', "
        "0, 0, 0, 0, 0, 'failed', now())"
    )
    con.close()
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "out")
    result = write_report(settings, AS_OF)
    summary = result.details["summary"]
    assert expected in summary
    assert "1 landing file failed to load in 2026-06-17 .. 2026-06-30." in summary
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert f"results in 2026-06-17 .. 2026-06-30, {2 + failed_tonight} failed " in html
    assert f"({failed_tonight} in the 2026-06-30 partition)." in html


def test_a_night_that_kept_k_shows_the_last_search(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    """Six nights in seven keep the previous k without a search and write one row to
    ml.k_selection: the chart was a single dot captioned "Candidates k = 4..4 (run of
    2026-12-01); red marks the k the rule chose". It now shows the last search and says
    tonight kept its k."""
    con = connect(handmade_warehouse)
    con.execute(
        "create table ml.k_selection (run_id varchar, as_of_date date, k integer, "
        "inertia double, silhouette double, is_chosen boolean, search_rows bigint, "
        "silhouette_rows bigint)"
    )
    con.execute(
        "insert into ml.k_selection values "
        "('s1', date '2026-06-29', 2, 30, 0.5, true, 20, 20), "
        "('s1', date '2026-06-29', 3, 20, 0.4, false, 20, 20), "
        "('s1', date '2026-06-29', 4, 15, 0.3, false, 20, 20), "
        "('s2', date '2026-06-30', 2, 31, 0.5, true, 21, 21)"
    )
    con.close()
    settings = Settings(warehouse=handmade_warehouse, output=tmp_path / "out")
    html = Path(write_report(settings, AS_OF).details["path"]).read_text(encoding="utf-8")
    assert (
        "Candidates k = 2..4 (search of 2026-06-29); the dashed line labelled &quot;chosen "
        "k&quot; marks the k the rule chose. The run of 2026-06-30 kept k = 2 without a new "
        "search" in html
    )
    assert "k = 2..2" not in html


def test_a_first_night_says_why_drift_and_audiences_are_missing_in_words(
    handmade_warehouse: Path, tmp_path: Path
) -> None:
    """A shop's first night said "Not available yet: ml.segment_drift has no rows on or
    before 2026-06-30" (three times, with ml.score_drift and audiences.members): a marketer
    could not tell a first night from a broken pipeline."""
    con = connect(handmade_warehouse)
    con.execute("delete from ml.customer_segments where as_of_date = date '2026-06-29'")
    con.execute("create table ml.segment_drift (as_of_date date, metric varchar, value double)")
    con.execute("create table ml.score_drift (as_of_date date, model_name varchar, psi double)")
    con.execute(
        "create table audiences.members (audience varchar, as_of_date date, "
        'customer_id varchar, "group" varchar)'
    )
    con.close()
    html = render_report(handmade_warehouse, AS_OF, tmp_path / "r.html").read_text("utf-8")
    notes = re.findall(r"Not available yet: ([^<]*)", html)
    assert notes.count("this is the first segmentation run: nothing to compare with yet") == 3
    assert "no audience built up to 2026-06-30 (no rows in audiences.members)" in notes
    # The summary said nothing of audiences: nobody could tell from it that none was built.
    summary = html[html.index('id="summary"') : html.index('id="segments"')]
    assert "No audience built up to 2026-06-30: no customer is targeted yet." in summary
    assert (
        "no two nights of propensity scores to compare yet (score drift compares a night&#x27;s "
        "scores with the previous night&#x27;s; no rows in ml.score_drift up to 2026-06-30)"
    ) in notes
    assert "has no rows on or before" not in html


def test_empty_warehouse_renders_notes_not_errors(tmp_path: Path) -> None:
    warehouse = tmp_path / "empty.duckdb"
    connect(warehouse).close()
    out = render_report(warehouse, date(2026, 6, 30), tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    assert charts_in(html) == set()
    assert "Could not be drawn" not in html
    assert html.count("Not available yet") >= 10
    assert "No segmentation for this date yet." in html


def test_empty_warehouse_without_date_says_what_to_do(tmp_path: Path) -> None:
    warehouse = tmp_path / "empty.duckdb"
    connect(warehouse).close()
    with pytest.raises(SegmintError, match="pass --as-of or run `segmint run` first"):
        render_report(warehouse, None, tmp_path / "r.html")


def test_other_table_layouts_are_understood(tmp_path: Path) -> None:
    """Metric names with numeric tails and no scorer column, stored ROC points, wide drift."""
    warehouse = tmp_path / "w.duckdb"
    con = connect(warehouse)
    con.execute(
        "create table ml.model_metrics (model_name varchar, as_of_date date, metric varchar, "
        "value double)"
    )
    rows = [("purchase", AS_OF, "auc", 0.77)]
    rows += [("purchase", AS_OF, f"lift_decile_{d}", 0.2 * d) for d in range(1, 11)]
    rows += [("purchase", AS_OF, f"roc_fpr_{i}", i / 4) for i in range(5)]
    rows += [("purchase", AS_OF, f"roc_tpr_{i}", (i / 4) ** 0.5) for i in range(5)]
    # Another kind of model sharing the table is not a propensity model.
    rows += [("recommendations", AS_OF, "recall_at_10", 0.05)]
    con.executemany("insert into ml.model_metrics values (?, ?, ?, ?)", rows)
    con.execute(
        "create table ml.segment_drift (as_of_date date, feature varchar, psi double, "
        "segment_id integer, centroid_shift double)"
    )
    con.execute(
        "insert into ml.segment_drift values (date '2026-06-29', 'recency_days', 0.05, null, "
        "null), (date '2026-06-30', 'recency_days', 0.31, null, null), "
        "(date '2026-06-30', null, null, 1, 0.4)"
    )
    con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    assert charts_in(html) == {"lift-purchase", "roc-purchase", "drift-psi", "drift-centroid"}
    assert "Holdout ROC curves." in html
    assert "Model: recommendations" not in html
    assert (
        "The customers changed since the previous run: 1 feature of the segmentation shifted "
        "beyond the warning level (PSI above 0.2): recency_days; check that the segments still "
        "read as before."
    ) in html
    assert "Could not be drawn" not in html


def test_report_leaves_the_warehouse_closed(sample_warehouse: Path, tmp_path: Path) -> None:
    render_report(sample_warehouse, AS_OF, tmp_path / "r.html")
    con = duckdb.connect(str(sample_warehouse))  # a writer can open it right away
    con.execute("create or replace table ops.report_probe as select 1 as x")
    con.execute("drop table ops.report_probe")
    con.close()


def test_cli_report(sample_warehouse: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "nightly.html"
    code = main(["report", "--warehouse", str(sample_warehouse), "--out", str(out)])
    assert code == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert f"report for 2026-06-30 written to {out}" in printed
    assert "1,500 customers in 6 segments" in printed
    # Default destination: <output>/<as-of>/report.html
    code = main(
        [
            "report",
            "--warehouse",
            str(sample_warehouse),
            "--as-of",
            "2026-06-29",
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    assert code == 0
    assert (tmp_path / "runs" / "2026-06-29" / "report.html").is_file()


def test_cli_report_of_a_night_never_run_is_refused(
    sample_warehouse: Path, tmp_path: Path, capsys
) -> None:
    """`segmint report --as-of 2025-06-30` (a typo for 2026) wrote a report of nothing, "No
    segmentation for this date yet", exit code 0."""
    out = tmp_path / "typo.html"
    code = main(["report", "--warehouse", str(sample_warehouse), "--as-of", "2025-06-30",
                 "--out", str(out)])  # fmt: skip
    assert code == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert "segmint report: error: no night of 2025-06-30 was run in the warehouse " in err
    assert "check --as-of for a typo" in err


def test_cli_report_of_a_loaded_day_no_night_ran_for_names_the_nights_that_ran(
    sample_warehouse: Path, tmp_path: Path, capsys
) -> None:
    """A day whose partition was loaded but that no night processed (the sample ran the
    nights of 06-27..06-30 over a fortnight of loads) passed as a night: `segmint report
    --as-of 2026-06-20` wrote a page of "No segmentation for this date yet", exit code 0,
    and made <output>/2026-06-20/ as if that night had run."""
    code = main(["report", "--warehouse", str(sample_warehouse), "--as-of", "2026-06-20",
                 "--output", str(tmp_path / "runs")])  # fmt: skip
    assert code == 1
    assert not (tmp_path / "runs").exists()
    assert capsys.readouterr().err == (
        f"segmint report: error: no night of 2026-06-20 was run in the warehouse "
        f"{sample_warehouse} (its partition dt=2026-06-20 is loaded, but no night as of that "
        "date got as far as its features or segments: skipped, or failed before them): the "
        "nights run there are 2026-06-27..2026-06-30 (without --as-of, the newest); check "
        "--as-of for a typo\n"
    )


def test_cli_report_before_any_night_got_to_its_transform_takes_the_newest_load(
    tmp_path: Path, capsys
) -> None:
    """After `segmint run --stages ingest,validate` the report of the newest load (data
    quality only) is written, with --as-of as without; an older load is refused."""
    from segmint.warehouse import connect, ensure_raw_tables

    warehouse = tmp_path / "segmint.duckdb"
    con = connect(warehouse)
    ensure_raw_tables(con)
    con.execute(
        "create table ops.load_manifest as select 'events/dt=' || d || '/a.jsonl' as path, "
        "'events' as source, d::date as partition_date from (values ('2026-06-29'), "
        "('2026-06-30')) as t(d)"
    )
    con.close()
    argv = ["report", "--warehouse", str(warehouse), "--output", str(tmp_path / "runs")]
    assert main(argv) == 0
    assert main([*argv, "--as-of", "2026-06-30"]) == 0
    assert (tmp_path / "runs" / "2026-06-30" / "report.html").is_file()
    capsys.readouterr()
    assert main([*argv, "--as-of", "2026-06-29"]) == 1
    assert (
        "no night there got as far as its features yet (without --as-of, the newest "
        "partition loaded, 2026-06-30); check --as-of for a typo"
    ) in capsys.readouterr().err


def test_report_stage_runs_just_before_publish() -> None:
    names = list(STAGES)
    assert STAGES["report"] == "segmint.report:write_report"
    assert names.index("report") == names.index("publish") - 1


def test_the_report_names_the_currency_the_marts_were_built_in(tmp_path: Path) -> None:
    """marts.reporting_currency (written by dbt) wins over today's setting; a warehouse built
    before that table existed falls back to the setting."""
    import duckdb

    from segmint.config import TransformSettings
    from segmint.report.build import reporting_currency
    from segmint.report.data import Reader

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    settings = Settings(transform=TransformSettings(reporting_currency="GBP"))
    assert reporting_currency(Reader(con), settings) == "GBP"
    con.execute("create schema marts")
    con.execute("create table marts.reporting_currency as select 'EUR' as currency_code")
    assert reporting_currency(Reader(con), settings) == "EUR"
    con.close()


def test_audiences_that_failed_or_emptied_are_named_not_left_out(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A night whose audiences all failed or emptied: the summary gave the night before's
    audiences and targeted customers as tonight's, and never named the failures."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        con.execute("delete from audiences.members where as_of_date = ?", [AS_OF])
        con.execute(
            "update audiences.summary set status = 'failed', target = null, holdout = null, "
            "error = 'ml.propensity_scores is empty <did the score stage publish?>' "
            "where as_of_date = ? and audience <> 'vip_ads'",
            [AS_OF],
        )
        con.execute(
            "update audiences.summary set target = 0, holdout = 0 "
            "where as_of_date = ? and audience = 'vip_ads'",
            [AS_OF],
        )
    finally:
        con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    summary = result.details["summary"]
    assert not any("targeted customers" in line for line in summary)
    assert 'kpi-label">customers targeted' not in html  # no headline tile from an older night
    assert "No audience has members for 2026-06-30 (the newest are of 2026-06-29)." in summary
    assert "2 audiences failed to build: likely_buyers_email, winback_at_risk." in summary
    assert "Built with no members: vip_ads." in summary
    assert "ml.propensity_scores is empty &lt;did the score stage publish?&gt;" in html
    assert "Snapshot of 2026-06-29 (no snapshot on 2026-06-30)" in html


def test_an_audience_a_rules_ranking_emptied_says_why(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """An audience on propensity deciles, empty on a night a baseline rule ranked (no model
    published): the page said "built with no members" only. It now gives the build's note
    (``audiences.summary.note``) and says in the summary that a rule, not a model, ranked."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        con.execute("alter table audiences.summary add column if not exists note varchar")
        con.execute(
            "delete from audiences.members where as_of_date = ? and audience = 'vip_ads'", [AS_OF]
        )
        con.execute(
            "update audiences.summary set target = 0, holdout = 0, note = ? "
            "where as_of_date = ? and audience = 'vip_ads'",
            [
                "audience 'vip_ads' is empty on 2026-06-30: no purchase model is published, "
                "so tonight's purchase scores are the ranking of the rule baseline_recency",
                AS_OF,
            ],
        )
    finally:
        con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    summary = result.details["summary"]
    assert "Built with no members: vip_ads." in summary
    assert (
        "vip_ads: empty because a baseline rule, not a model, ranks tonight's propensity "
        "deciles (no model published); Audiences says why."
    ) in summary
    assert (
        "<b>vip_ads</b> was built with no members: no purchase model is published, so "
        "tonight&#x27;s purchase scores are the ranking of the rule baseline_recency</li>"
    ) in html


def test_a_feature_redefinition_night_says_segment_drift_was_not_measured(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A dbt var the features are built with changed: the segment stage writes no drift
    row that night. The summary read the previous run's PSI as tonight's ("shifted no
    more than usual since the previous run"); it now says drift was not measured, and why."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    reason = (
        "the feature definition changed since segmentation-2026-06-29 (dbt vars: "
        'mobile_device_types ["mobile", "tablet"] -> ["tablet"])'
    )
    con = connect(warehouse)
    try:
        con.execute("delete from ml.segment_drift where as_of_date = ?", [AS_OF])
        con.execute(
            "update ml.model_runs set metrics = json_object('drift_not_measured', ?) "
            "where model_name = 'segmentation' and as_of_date = ?",
            [reason, AS_OF],
        )
    finally:
        con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    summary = result.details["summary"]
    assert f"Segment drift is not measured tonight: {reason}, so" in " ".join(summary)
    assert not [line for line in summary if "shifted no more than usual" in line]
    assert not [line for line in summary if "The customers changed since" in line]
    assert "Not measured on 2026-06-30: the feature definition changed since" in html


def test_count_axes_of_a_tiny_shop_tick_whole_numbers(tmp_path: Path) -> None:
    """One customer, one CRM row: the count axes ticked 0, 0, 0, 1, 1, 1 (ticks at 0.2, 0.4,
    ... drawn without decimals). A count axis ticks whole numbers only."""
    from datetime import timedelta

    from segmint.report import charts

    def ticks(svg: str) -> list[str]:
        return [t for t in re.findall(r"<text[^>]*>([^<]+)</text>", svg) if t.isdigit()]

    warehouse = tmp_path / "one.duckdb"
    con = connect(warehouse)
    con.execute(
        "create table ml.customer_segments as select 'c1' as customer_id, "
        f"date '{AS_OF}' as as_of_date, 0 as segment_id, 'All customers' as segment_name, "
        "0.0 as distance, false as is_outlier, 'r' as run_id"
    )
    con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    svg = re.search(r'data-chart="segment-sizes">(<svg.*?</svg>)', html, re.S).group(1)
    days = [AS_OF - timedelta(days=1), AS_OF]
    for drawn in (
        svg,
        charts.stacked_by_day("loads", "t", {"crm": {"loaded": [0, 1]}}, days, {}),
        charts.audience_sizes(["a"], {"target": [2], "holdout": [0]}),
    ):
        labels = ticks(drawn)
        assert len(labels) >= 2
        assert len(labels) == len(set(labels)), labels


def test_a_young_shops_propensity_section_says_why_there_are_no_scores(tmp_path: Path) -> None:
    """The score stage ran on 40 customers and could not train either model (too few
    labelled examples). The section said only "Not available yet: no propensity scores or
    metrics on or before 2026-06-30"; the stage's reason sat unread in ml.model_runs."""
    from ml.propensity import run_propensity
    from tests.ml.propensity.simshop import AS_OF as SHOP_AS_OF
    from tests.ml.propensity.simshop import build_warehouse

    warehouse = tmp_path / "wh" / "segmint.duckdb"
    warehouse.parent.mkdir()
    build_warehouse(warehouse, n_customers=40)
    settings = Settings(warehouse=warehouse, output=tmp_path / "out")
    scored = run_propensity(settings, SHOP_AS_OF)
    # No model: the recency rule ranks tonight's customers (ml.propensity_scores.ranked_by).
    ranked = {m: scored.details[m]["model_version"] for m in ("purchase", "churn")}
    assert ranked == {"purchase": "baseline_recency", "churn": "baseline_recency"}
    result = write_report(settings, SHOP_AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert "no propensity scores or metrics" not in html
    for model in ("purchase", "churn"):
        reason = scored.details[model]["message"]
        assert reason.startswith(f"{model}: not enough labelled examples to train")
        assert f"Model: {model}" in html
        # the status line too, under the section's "Model: purchase"
        assert html_escape(reason.removeprefix(f"{model}: ")) in html
        assert html_escape(reason) not in html
        # the summary quotes the reason without the model's name it already gave
        line = next(x for x in result.details["summary"] if x.startswith(model.capitalize()))
        # (after a colon: the reason has brackets of its own)
        assert f": {reason.removeprefix(f'{model}: ')}" in line and f"({model}:" not in line
        # The rule's ranking is said as such, in the section and the summary.
        assert re.search(
            rf"No {model} model is published yet: tonight's [\d,]+ {model} scores and the "
            r"audiences built on them rank customers by the recency rule \(<code>"
            r"baseline_recency</code>\), not by a model: its deciles, and a score that is the "
            r"share of customers it ranks below, a rank, not a probability\.",
            html,
        ), html
        assert line.endswith(
            "scores rank customers by the recency rule, not by a model (no probability)."
        )
    # No charts of models without an evaluation: the status line is the whole block.
    assert "ml.model_metrics has no" not in html
    # The summary tiles say whose ranking tonight's list is (no "AUC" tile at all).
    for model in ("purchase", "churn"):
        assert (
            '<div class="kpi-value">recency rule</div>'
            f'<div class="kpi-label">ranks tonight&#x27;s {model} list: no model published</div>'
        ) in html, html
    assert " AUC" not in " ".join(re.findall(r'kpi-label">([^<]*)<', html))
    # The drift block says why no score drift (not "no two nights of scores").
    assert "no two nights of propensity scores" not in html
    assert (
        "tonight&#x27;s scores are a rule&#x27;s ranking (purchase by the recency rule, churn "
        "by the recency rule; no model published), and a rank has no score distribution to "
        "drift"
    ) in html or (
        "tonight&#x27;s scores are a rule&#x27;s ranking (churn by the recency rule, purchase "
        "by the recency rule; no model published), and a rank has no score distribution to "
        "drift"
    ) in html, html[html.index("Propensity scores") :][:600]


def test_a_rule_night_with_a_candidate_says_the_list_is_the_rules_ranking(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """Churn's first candidate lost and the recency rule ranked tonight's customers
    (ml.propensity_scores.ranked_by): the tile read "0.784 churn AUC, not published" and
    the section opened on the candidate's AUC, the rule's ranking said last. The tile now
    names the rule that ranks tonight's list, with the candidate's AUC in brackets, and
    the section says so first."""
    warehouse = _churn_not_published(
        sample_warehouse, tmp_path, "churn: holdout AUC does not beat baseline_recency"
    )
    con = connect(warehouse)
    con.execute(
        "alter table ml.propensity_scores add column if not exists ranked_by varchar "
        "default 'model'"
    )
    con.execute(
        "insert into ml.propensity_scores select * replace ('churn' as model_name, "
        "'baseline_recency' as model_version, 'baseline_recency' as ranked_by) "
        "from ml.propensity_scores where model_name = 'purchase' and as_of_date = ?",
        [AS_OF],
    )
    con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    tiles = dict(
        (label, value)
        for value, label in re.findall(
            r'kpi-value">([^<]*)</div><div class="kpi-label">([^<]*)<', html
        )
    )
    churn = next(k for k in tiles if "churn" in k)
    assert re.fullmatch(
        r"ranks tonight&#x27;s churn list: no model published \(candidate&#x27;s AUC "
        r"0\.\d{3}\)",
        churn,
    ), tiles
    assert tiles[churn] == "recency rule"
    assert "purchase AUC" in tiles  # the published purchase model keeps its AUC tile
    section = html[html.index("Model: churn") :]
    first = section.index("<b>Tonight's churn list is the recency rule's ranking.</b>")
    assert first < section.index("Holdout ROC-AUC"), section[:2000]
    assert "The AUC and the charts below evaluate tonight's candidate" in section


def test_a_report_the_disk_has_no_room_for_names_the_file(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A full disk or a file-size limit met while writing report.html: the command ended
    with "unexpected OSError: [Errno 27] File too large" (no file named), exit code 2. It
    names the report, says what to do, exit code 1; no half-written report is left."""
    from tests.include.test_cli import cli_with_file_size_limit

    out = tmp_path / "nightly.html"
    done = cli_with_file_size_limit(
        32 * 1024, "report", "--warehouse", sample_warehouse, "--out", out
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"segmint report: error: cannot write {out}: File too large;")
    assert "file-size limit of 32.0 KiB (ulimit -f)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_night_without_its_days_events_says_so_first(
    sample_warehouse: Path, full_run, tmp_path: Path
) -> None:
    """A late or missing delivery runs the night without its own day (the default): the
    validate task's log warned, and the report said "No quarantined rows in the 2026-06-30
    partition" as on a good night. Its summary now opens with it, and the loads block too."""
    assert not any("No events file" in line for line in full_run[1].details["summary"])
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        con.execute(
            "delete from ops.load_manifest where source = 'events' and partition_date = ?",
            [AS_OF],
        )
        newest = con.execute(
            "select max(partition_date) from ops.load_manifest where source = 'events'"
        ).fetchone()[0]
    finally:
        con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    expected = (
        f"No events file for {AS_OF} was loaded (the newest events partition is dt={newest}, "
        f"{(AS_OF - newest).days} day{'s' if (AS_OF - newest).days != 1 else ''} before it): "
        "tonight's features, segments, scores and audiences are computed without that day"
    )
    assert result.details["summary"][0].startswith(expected)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert html.count(html_escape(expected)) == 2  # the summary and the loads block
    assert 'class="note warning"' in html


def test_an_auc_lifted_by_a_never_active_crowd_is_given_beside_the_auc_among_the_others(
    tmp_path: Path,
) -> None:
    """1,000 CRM sign-ups who never visited nor ordered beside 300 shoppers: ranking them
    last lifts every AUC, and the page gave only the holdout's (0.965 against 0.920 on a
    generated shop where the shoppers were told apart at 0.880 against 0.811). The score
    stage warned; the report now says it too, with the AUCs among the others."""
    from ml.propensity import run_propensity
    from tests.ml.propensity.simshop import add_never_active_crowd, build_warehouse

    warehouse = tmp_path / "segmint.duckdb"
    build_warehouse(warehouse, n_customers=300)
    add_never_active_crowd(warehouse, 1000)
    settings = Settings(warehouse=warehouse, output=tmp_path / "out")
    run_propensity(settings, AS_OF)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        stored = {
            (scorer, metric): value
            for scorer, metric, value in con.execute(
                "select scorer, metric, value from ml.model_metrics where model_name = "
                "'purchase' and decile is null"
            ).fetchall()
        }
    finally:
        con.close()
    crowd, rows = int(stored["model", "never_active_rows"]), int(stored["model", "rows"])
    assert crowd >= rows / 2
    active = stored["model", "roc_auc_ever_active"]
    recency = stored["baseline_recency", "roc_auc_ever_active"]
    bgnbd = stored["baseline_bgnbd", "roc_auc_ever_active"]
    best, best_auc = max(
        (("baseline_recency", recency), ("baseline_bgnbd", bgnbd)), key=lambda x: x[1]
    )
    name = {"baseline_recency": "recency rule", "baseline_bgnbd": "BG/NBD model"}[best]
    result = write_report(settings, AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert (
        f"{crowd:,} of {rows:,} holdout customers ({crowd / rows:.0%}) never visited nor "
        f"ordered before the cut-off: ranking them last lifts every AUC; among the other "
        f"{rows - crowd:,}: ROC-AUC <b>{active:.3f}</b> against the {name} {best_auc:.3f}."
    ) in html
    purchase = next(s for s in result.details["summary"] if s.startswith("Purchase model"))
    assert (
        f", lifted by {crowd:,} holdout customers who never visited nor ordered; "
        f"{active:.2f} among the other {rows - crowd:,} (the {name} {best_auc:.2f})"
    ) in purchase


def test_a_lead_within_chance_and_a_top_decile_of_a_few_customers_are_said_in_words(
    tmp_path: Path,
) -> None:
    """100 customers, 92 holdout rows: the purchase model's AUC 0.764 against the BG/NBD
    model's 0.726 was published and shown green ("beats the BG/NBD model"), a lead equal
    rankings show one night in four; its lift chart rested on a top decile of a handful of
    customers and nothing said so, nor what an AUC is."""
    from ml.propensity import run_propensity
    from tests.ml.propensity.simshop import build_warehouse

    warehouse = tmp_path / "segmint.duckdb"
    build_warehouse(warehouse, n_customers=100)
    settings = Settings(warehouse=warehouse, output=tmp_path / "out")
    detail = run_propensity(settings, AS_OF).details["purchase"]
    holdout = detail["holdout"]
    best = max(("baseline_recency", "baseline_bgnbd"), key=lambda s: holdout[s]["roc_auc"])
    name = {"baseline_recency": "recency rule", "baseline_bgnbd": "BG/NBD model"}[best]
    p_value = holdout[best]["model_better_p_value"]
    assert detail["status"] == "not_published" and p_value >= 0.05
    result = write_report(settings, AS_OF)
    purchase = next(s for s in result.details["summary"] if s.startswith("Purchase model"))
    assert (
        f"(above the {name} at {holdout[best]['roc_auc']:.2f}, but not beyond chance, "
        f"p = {p_value:.2f}); not published; tonight's 95 scores rank customers by the "
        f"{name}, not by a model (no probability)."
    ) in purchase
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert (
        f'<span class="bad">{holdout[best]["roc_auc"]:.3f}</span>, a lead chance alone gives '
        f"with p = {p_value:.2f} (below 0.05 counts as real: not beyond chance)"
    ) in html
    assert (
        '<span class="bad">not published</span> (does not beat the '
        f"{name} beyond chance, p = {p_value:.2f})."
    ) in html
    assert "ROC-AUC, in words: how often the scores rank one of the holdout's buyers" in html
    # Tonight's purchase scores are the rule's ranking (no model published): not drawn as a
    # model's probabilities.
    assert (
        html_escape(
            f"tonight's purchase scores are the {name}'s ranking, not probabilities: no "
            "distribution to draw"
        )
        in html
    )
    top = re.search(
        r"The model&#x27;s top decile \(decile (\d+)\) holds (\d+) of the 92 holdout customers, "
        r"(\d+) of them buyers\. Too few to read: one of them more or fewer moves its lift by "
        r"[0-9.]+, so take the lift as a rough guide, not a promise\.",
        html,
    )
    assert top, html
    assert int(top.group(2)) < 30


def test_the_lead_beyond_chance_follows_the_gate_p_value_the_run_used(tmp_path: Path) -> None:
    """The page called a lead chance at p >= 0.05 whatever ``[propensity] gate_p_value``
    judged it: a gate set to 0.5 published the 100-customer shop's purchase model (p = 0.25)
    and the summary said "above the BG/NBD model, but not beyond chance; published" (and a
    gate at 0.01 refusing a lead at p = 0.03 read as "beats"). It now reads the threshold
    from the run (``ml.model_runs.params.gate_p_value``)."""
    import dataclasses

    from ml.propensity import run_propensity
    from segmint.config import PropensitySettings
    from tests.ml.propensity.simshop import build_warehouse

    warehouse = tmp_path / "segmint.duckdb"
    build_warehouse(warehouse, n_customers=100)
    loose = dataclasses.replace(PropensitySettings(), gate_p_value=0.5)
    settings = Settings(warehouse=warehouse, output=tmp_path / "out", propensity=loose)
    detail = run_propensity(settings, AS_OF).details["purchase"]
    holdout = detail["holdout"]
    best = max(("baseline_recency", "baseline_bgnbd"), key=lambda s: holdout[s]["roc_auc"])
    name = {"baseline_recency": "recency rule", "baseline_bgnbd": "BG/NBD model"}[best]
    p_value = holdout[best]["model_better_p_value"]
    assert detail["status"] == "published" and 0.05 <= p_value < 0.5
    result = write_report(settings, AS_OF)
    purchase = next(s for s in result.details["summary"] if s.startswith("Purchase model"))
    assert f"(beats the {name} at {holdout[best]['roc_auc']:.2f}); published" in purchase
    assert "beyond chance" not in purchase
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert (
        f'<span class="good">{holdout[best]["roc_auc"]:.3f}</span>, a lead chance alone gives '
        f"with p = {p_value:.2f};"
    ) in html
    # The same holdout judged by the default gate (a rerun at 0.05): chance, as before.
    strict = Settings(warehouse=warehouse, output=tmp_path / "out")
    assert run_propensity(strict, AS_OF).details["purchase"]["status"] == "not_published"
    html = Path(write_report(strict, AS_OF).details["path"]).read_text(encoding="utf-8")
    assert f"with p = {p_value:.2f} (below 0.05 counts as real: not beyond chance)" in html


def _churn_not_published(sample_warehouse: Path, tmp_path: Path, reason: str) -> Path:
    """A copy of the sample warehouse whose churn candidates all lost (``reason``, then
    "; not published") and scored nobody."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    con.execute(
        "update ml.model_runs set status = 'not_published', message = ? where model_name = 'churn'",
        [f"{reason}; not published"],
    )
    con.execute("delete from ml.propensity_scores where model_name = 'churn'")
    con.close()
    return warehouse


def test_a_first_candidate_that_lost_is_not_shown_as_the_churn_auc(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A 90-day shop's first churn candidate lost to the recency baseline and nothing was
    published nor scored; the summary tile still read "churn AUC 0.784", a working churn
    model to a marketer."""
    warehouse = _churn_not_published(
        sample_warehouse, tmp_path, "churn: holdout AUC does not beat baseline_recency"
    )
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'kpi-label">churn AUC, not published<' in html
    assert 'kpi-label">churn AUC<' not in html
    assert 'kpi-label">purchase AUC<' in html


def test_the_summary_does_not_repeat_the_model_and_its_status(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """ "Churn model: holdout AUC 0.78 (...); not published (churn: holdout AUC 0.784 does
    not beat baseline_recency 0.844; not published)": the run's message, quoted whole, said
    the model and "not published" a second time."""
    warehouse = _churn_not_published(
        sample_warehouse, tmp_path, "churn: holdout AUC 0.784 does not beat baseline_recency 0.844"
    )
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    churn = next(s for s in result.details["summary"] if s.startswith("Churn model"))
    # The sentence gives the AUC against the best rule already ("holdout AUC 0.81 (...)"):
    # the message's own comparison was the same thing said twice.
    assert churn.endswith(" at 0.74); not published.")
    assert churn.count("not published") == 1
    assert "0.784" not in churn
    # The section's status line likewise: "Run churn-… of 2026-06-30: not published —
    # churn: holdout AUC 0.784 does not beat the recency rule 0.844; not published".
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert (
        f'Run <code>churn-{AS_OF}</code> of {AS_OF}: <span class="bad">not published</span> '
        "(does not beat the recency rule).<"
    ) in html
    assert "0.784" not in html
    assert html.count("not published</span>") == 1


def test_a_run_message_other_than_the_comparison_is_kept_whole(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A reason the page does not give elsewhere (too few labelled examples) stays, without
    the model's name and the status the line gives already."""
    warehouse = _churn_not_published(
        sample_warehouse, tmp_path, "churn: cannot train: 40 labelled examples, 200 needed"
    )
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    churn = next(s for s in result.details["summary"] if s.startswith("Churn model"))
    assert churn.endswith("; not published (cannot train: 40 labelled examples, 200 needed).")
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert (
        '<span class="bad">not published</span> (cannot train: 40 labelled examples, 200 needed).<'
    ) in html


def test_a_refused_candidate_is_not_taken_for_the_model_that_scored_tonight(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A night whose churn candidate lost to the baseline: the page gave its AUC as the
    churn AUC and said "not published", while tonight's scores (and the audiences on them)
    came from the model published 21 nights before. It now says which model scored."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        con.execute(
            "update ml.model_runs set status = 'not_published', message = 'churn: holdout "
            "AUC does not beat baseline_recency; not published' "
            "where model_name = 'churn' and as_of_date = ?",
            [AS_OF],
        )
        con.execute(
            "update ml.propensity_scores set model_version = 'churn-2026-06-09-74742c9c' "
            "where model_name = 'churn' and as_of_date = ?",
            [AS_OF],
        )
        scored = con.execute(
            "select count(*) from ml.propensity_scores where model_name = 'churn' "
            "and as_of_date = ?",
            [AS_OF],
        ).fetchone()[0]
    finally:
        con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    churn = next(s for s in result.details["summary"] if s.startswith("Churn model"))
    assert churn.endswith(
        f"; tonight's {scored:,} scores come from the last published model "
        "churn-2026-06-09-74742c9c."
    )
    assert (
        f"tonight's candidate, which was not published: tonight's {scored:,} scores (the score "
        "distribution below) and the audiences built on them come from the last published "
        "model <code>churn-2026-06-09-74742c9c</code>."
    ) in html
    assert 'kpi-label">churn AUC, not published<' in html
    assert 'kpi-label">purchase AUC<' in html
    # the run's status in words, not its code
    assert '<span class="bad">not published</span>' in html and "not_published" not in html


def test_a_night_the_score_stage_did_not_run_says_there_are_no_scores_tonight(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """`segmint run --stages ingest,validate,transform,segment,report` (or a night failed
    before the score stage): the summary said "Churn model: holdout AUC 0.86 ...;
    published." and the tile "churn AUC", last night's run read as tonight's scores."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:  # the sample's runs of 2026-06-29 stay (with the metrics), tonight's are gone
        con.execute(
            "update ml.model_metrics set as_of_date = ? where as_of_date = ?",
            [date(2026, 6, 29), AS_OF],
        )
        for table in ("ml.model_runs", "ml.propensity_scores"):
            con.execute(
                f"delete from {table} where as_of_date = ? and model_name in ('purchase', 'churn')",
                [AS_OF],
            )
    finally:
        con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    for model in ("churn", "purchase"):
        sentence = next(s for s in result.details["summary"] if s.startswith(model.capitalize()))
        assert sentence.startswith(
            f"{model.capitalize()} model: no scores for 2026-06-30, the newest run is of "
            "2026-06-29; "
        ), sentence
        assert (
            f"No {model} scores for 2026-06-30</span>: the score stage did not run for it; "
            "the newest run, below, is of 2026-06-29."
        ) in html
    assert 'kpi-label">purchase AUC (run of 2026-06-29)<' in html


def test_a_persona_median_over_the_few_who_have_a_value_says_how_few(tmp_path: Path) -> None:
    """A segment of CRM sign-ups, 2 of 10 ever ordered: the card said "median days since
    order: 97" (3.3x the shop) and "top categories: books 50%" as if of the segment; they
    are of the 2 who ordered, and the card now says so."""
    warehouse = tmp_path / "w.duckdb"
    con = connect(warehouse)
    con.execute(
        "create table ml.customer_segments as select 'c' || i as customer_id, "
        f"date '{AS_OF}' as as_of_date, 1 as segment_id, 'Never visited' as segment_name, "
        "0.0 as distance, false as is_outlier, 'r' as run_id from range(10) t(i)"
    )
    con.execute(
        "create table marts.customer_features as select 'c' || i as customer_id, "
        f"date '{AS_OF}' as as_of_date, "
        "case when i < 2 then 90 + i end as recency_days, "
        "case when i < 2 then 1 else 0 end as order_count, "
        "200 + i as tenure_days, "
        "case when i < 2 then 'books' end as favourite_category from range(10) t(i)"
    )
    con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    assert (
        "median days since last order: <b>90</b> <small>(the 2 of 10 who ordered)</small>" in html
    )
    assert "median orders to date: <b>0.0</b><" in html  # every customer has a count: no base
    assert "median days since first seen: <b>204</b><" in html
    assert "top categories: books 100% (of the 2 of 10 with one)" in html


def test_a_failed_files_error_never_puts_a_customers_record_in_the_report(
    tmp_path: Path,
) -> None:
    """A CRM export delivered without its header row: ingest refuses it with "(header is:
    'C9999999,...,anna.smith@example.com,555-1234,Anna,Smith,1980-01-01,...')", and the
    report's table of failed files copied a customer's record into a page sent round by
    e-mail. The page names the fault, not the content."""
    from segmint.ingest import run_ingest

    crm = tmp_path / "landing" / "crm" / "dt=2026-06-30"
    crm.mkdir(parents=True)
    (crm / "customers.csv").write_text(
        "C9999999,2026-06-30T10:00:00Z,anna.smith@example.com,555-1234,Anna,Smith,"
        "1980-01-01,F,US,Phoenix,80593,2026-06-30,gold,true,true\n",
        encoding="utf-8",
    )
    settings = Settings(
        warehouse=tmp_path / "segmint.duckdb",
        landing=tmp_path / "landing",
        output=tmp_path / "out",
    )
    with pytest.raises(SegmintError, match=r"anna\.smith@example\.com"):
        run_ingest(settings, AS_OF)  # the data engineer's error keeps the detail
    html = render_report(settings.warehouse, AS_OF, tmp_path / "r.html", settings=settings)
    html = html.read_text(encoding="utf-8")
    assert "crm/dt=2026-06-30/customers.csv" in html
    assert "CSV header lacks required column(s)" in html
    assert "its first line is not shown here: it may be a customer&#x27;s record" in html
    for personal in ("anna.smith", "555-1234", "Smith", "1980-01-01"):
        assert personal not in html


def test_every_export_file_of_an_audience_is_listed_with_its_rows(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """An audience exported as a CSV and to Google showed one format (whichever came first
    among the night's files) and its rows: the other file went unmentioned, and so did a
    Google file smaller than the target (ads consent is checked again at export)."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        con.execute(
            "update audiences.exports set row_count = 70 where audience = 'vip_ads' "
            "and format = 'google_customer_match' and as_of_date = ?",
            [AS_OF],
        )
        csv_rows = con.execute(
            "select row_count from audiences.exports where audience = 'vip_ads' "
            "and format = 'csv' and as_of_date = ?",
            [AS_OF],
        ).fetchone()[0]
    finally:
        con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    row = re.search(r"<tr><td[^>]*>vip_ads</td>.*?</tr>", html, re.S).group(0)
    assert f"CSV file: {csv_rows:,} · Google Customer Match: 70" in row
    assert "2026-06-30" in row


def test_export_formats_are_named_in_words(sample_warehouse: Path, tmp_path: Path) -> None:
    """The audience table listed the exporter's codes, "diff: 315 · google_customer_match:
    315 · meta_custom_audience: 315", and a diff's rows (customers who joined or left the
    list) read as the list's size."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        con.execute(
            """insert into audiences.exports
            select md5(audience || f), audience, f, as_of_date, n, md5(f), 'x', null,
                exported_at
            from audiences.exports,
                (values ('diff', 12), ('meta_custom_audience', 101)) as t(f, n)
            where audience = 'vip_ads' and format = 'csv' and as_of_date = ?""",
            [AS_OF],
        )
    finally:
        con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    row = re.search(r"<tr><td[^>]*>vip_ads</td>.*?</tr>", html, re.S).group(0)
    assert (
        "changes since the last export (diff): 12 joined or left · Google Customer Match: "
    ) in row
    assert "Meta Custom Audience: 101" in row
    assert "meta_custom_audience" not in row and "google_customer_match" not in row


def test_money_on_the_cards_and_readouts_names_its_currency(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """ "median order value: 312" and "Δ revenue/cust. +12.70" said not which money (the
    page header did, far above); a shop reporting in EUR read them as anything."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    con.execute("create or replace table marts.reporting_currency as select 'EUR' as currency_code")
    con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "median revenue per customer to date (EUR): <b>" in html
    assert "median order value (EUR): <b>" in html
    assert ">Δ revenue/cust. (EUR)</th>" in html
    assert "median orders to date: <b>" in html  # counts name no currency


def test_a_readout_without_a_single_order_gives_no_verdict(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """vip_thank_you, 14 targets and 1 held out, none of whom had ordered since the
    snapshot, read "No detectable difference in conversion (p = 1)": a marketer took the
    campaign for one that does not work, when there was nothing to compare yet."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    con.execute(
        "delete from marts.orders where order_date > "
        "(select min(as_of_date) from audiences.summary)"
    )
    con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    verdicts = re.findall(r"<b>(\w+)</b>: ([^<]*)", html)
    assert len(verdicts) == 3
    for _, verdict in verdicts:
        assert verdict.startswith("No verdict yet: none of the ")
        assert verdict.endswith(" customers (target and holdout) has ordered since the snapshot.")
    assert "No detectable difference" not in html


def test_the_audiences_table_shows_who_was_left_out_for_want_of_consent(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """The table gave the members only: 212 matched VIPs of whom 26 had no e-mail consent
    showed as 186, and nothing on the page said consent had been applied. It now gives the
    consent, the matched customers and those left out, and the columns add up."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        con.execute(
            "update audiences.summary set matched = matched + 5, without_consent = 5 "
            "where audience = 'vip_ads' and as_of_date = ?",
            [AS_OF],
        )
        stored = con.execute(
            "select audience, consent, matched, without_consent, suppressed "
            "+ claimed_by_higher_priority + over_size_limit, target + holdout "
            "from audiences.summary where as_of_date = ? and status = 'built'",
            [AS_OF],
        ).fetchall()
    finally:
        con.close()
    html = render_report(warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    table_ = html[html.index('data-chart="audience-sizes"') :]
    assert ">consent</th>" in table_ and ">without consent</th>" in table_
    for audience, consent, matched, no_consent, other, total in stored:
        assert matched - no_consent - other == total
        row = re.search(rf"<tr><td[^>]*>{audience}</td>(.*?)</tr>", table_, re.S).group(1)
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
        assert cells[:4] == [consent, f"{matched:,}", f"{no_consent:,}", f"{other:,}"]
        assert int(cells[4].replace(",", "")) + int(cells[5].replace(",", "")) == total
    vip = next(s for s in stored if s[0] == "vip_ads")
    assert vip[3] == 5


def test_an_audience_without_holdout_customers_is_said_to_be_unmeasurable(tmp_path: Path) -> None:
    """A 5% holdout of an audience of a few customers rounds to none (and an audience
    defined without a holdout has none): the campaign can never be read out, but the report
    showed a bare 0 and 0.0% and said nothing, and weeks later the readout had no verdict."""
    from segmint.audiences import build_audiences
    from tests.include.audiences.conftest import AS_OF as AUDIENCE_AS_OF
    from tests.include.audiences.conftest import make_warehouse, write_defs

    settings = Settings(
        warehouse=make_warehouse(tmp_path / "segmint.duckdb"),
        audiences=tmp_path / "audiences",
        output=tmp_path / "out",
    )
    every = "consent: email\nwhere: {feature: order_count, gte: 0}\n"
    write_defs(
        settings.audiences,
        small_holdout=f"name: small_holdout\n{every}holdout: {{percent: 5, salt: s}}\n",
        no_holdout=f"name: no_holdout\n{every}",
        measured=f"name: measured\n{every}holdout: {{percent: 50, salt: s}}\n",
    )
    build_audiences(settings, AUDIENCE_AS_OF)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    groups = dict(
        con.execute(
            """select audience, list_sort(list(distinct "group")) from audiences.members
            group by 1"""
        ).fetchall()
    )
    con.close()
    assert groups == {
        "small_holdout": ["target"],
        "no_holdout": ["target"],
        "measured": ["holdout", "target"],
    }
    result = write_report(settings, AUDIENCE_AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert (
        "No holdout, so no readout possible: no_holdout, small_holdout."
        in (result.details["summary"])
    )
    assert (
        "<b>small_holdout</b> has no holdout customers (its 5% holdout of 10 customers rounded "
        "to none; a larger audience or holdout percent gives it one): whether its campaign "
        "works can never be measured"
    ) in html
    assert "<b>no_holdout</b> has no holdout customers (its definition sets no holdout)" in html
    assert "<b>measured</b> has no holdout" not in html


@pytest.mark.parametrize("relative", [False, True])
def test_an_audience_that_failed_is_named_with_its_file_not_the_servers_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool
) -> None:
    """A definition with an unknown feature: the page said "bad failed to build: audience
    'bad' is invalid: /srv/.../audiences/bad.yml:3: where.feature: ...", the server's folders
    in a page sent to marketers. The file's name and line say which file to fix. A relative
    folder (`segmint run --audiences ../../audiences`) was left whole."""
    from segmint.audiences import build_audiences
    from tests.include.audiences.conftest import AS_OF as AUDIENCE_AS_OF
    from tests.include.audiences.conftest import make_warehouse, write_defs

    folder = tmp_path / "definitions" / "audiences"
    if relative:
        (tmp_path / "cwd").mkdir()
        monkeypatch.chdir(tmp_path / "cwd")
        folder = Path("..") / "definitions" / "audiences"
    settings = Settings(
        warehouse=make_warehouse(tmp_path / "segmint.duckdb"),
        audiences=folder,
        output=tmp_path / "out",
    )
    write_defs(
        settings.audiences,
        bad="name: bad\nconsent: email\nwhere: {feature: no_such_feature, gte: 0}\n",
        good="name: good\nconsent: email\nwhere: {feature: order_count, gte: 0}\n",
    )
    built = build_audiences(settings, AUDIENCE_AS_OF)
    assert str(settings.audiences / "bad.yml") in built.details["failed"]["bad"]
    result = write_report(settings, AUDIENCE_AS_OF)
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert (
        "<b>bad</b> failed to build: audience &#x27;bad&#x27; is invalid: bad.yml:3: "
        "where.feature: unknown feature &#x27;no_such_feature&#x27;"
    ) in html
    assert str(tmp_path) not in html
    assert "definitions" not in html


def test_readout_verdicts_say_in_plain_words_what_happened_how_sure_and_what_to_do(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """likely_buyers_email read "No detectable difference in conversion (p = 0.0598).
    Targets spent more per customer (p = 0.00323). Holdout too small to see a 10% uplift:
    57 customers, 12,512 needed; treat as indicative.": a marketer could not tell from it
    that 16.6% of the targets had ordered against 7.0% of the holdout, nor what to do."""
    html = render_report(sample_warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    verdicts = dict(re.findall(r"<li><b>(\w+)</b>: ([^<]*)</li>", html))
    assert verdicts["likely_buyers_email"] == (
        "Targets ordered more often than the holdout (16.6% of the targets ordered, 7.0% of "
        "the holdout), but a gap this size could be chance (p = 0.06): not proven. They spent "
        "12.70 USD more per customer, unlikely to be chance (p = 0.0032). What to do: it looks "
        "like it works; keep it, but the holdout is too small (57 customers, 12,512 needed to "
        "see a 10% uplift) for a firm answer: hold out more customers to confirm."
    )
    assert verdicts["winback_at_risk"].endswith(
        "What to do: the holdout is too small to prove a 10% uplift (12 customers, 10,048 "
        "needed), so take this as a hint only; hold out more customers to measure the campaign."
    )
    for verdict in verdicts.values():
        assert "What to do: " in verdict
        for jargon in ("detectable", "indicative", "conversion"):
            assert jargon not in verdict


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (
            (2400, 8000, 1600, 8000),
            "Targets ordered more often than the holdout (30.0% of the targets ordered, 20.0% "
            "of the holdout), and a gap this size is unlikely to be chance (p < 0.001). "
            "What to do: the campaign works; keep it.",
        ),
        (
            (1600, 8000, 2000, 8000),
            "Targets ordered less often than the holdout (20.0% of the targets ordered, 25.0% "
            "of the holdout), and a gap this size is unlikely to be chance (p < 0.001). What "
            "to do: the campaign seems to put customers off; review it.",
        ),
        (
            (1000, 2000, 1000, 2000),
            "Targets ordered as often as the holdout (50.0% of the targets ordered, 50.0% of "
            "the holdout; p = 1). What to do: the holdout was large enough to see a 10% uplift "
            "and none showed; rethink the campaign.",
        ),
        (  # expected counts of 2: Fisher's exact p (0.087), not the z-test's 0.025
            (4, 10, 0, 10),
            "Targets ordered more often than the holdout (40.0% of the targets ordered, 0.0% "
            "of the holdout), but a gap this size could be chance (p = 0.087): not proven. "
            "What to do: the holdout is too small to prove a 10% uplift (10 customers, 6,510 "
            "needed), so take this as a hint only; hold out more customers to measure the "
            "campaign.",
        ),
        (  # beyond chance, on a holdout too small to see a 10% uplift: a hint
            (300, 1000, 20, 100),
            "Targets ordered more often than the holdout (30.0% of the targets ordered, 20.0% "
            "of the holdout), and a gap this size is unlikely to be chance (p = 0.036). What "
            "to do: it looks like it works; keep it, but the holdout is too small (100 "
            "customers, 3,620 needed to see a 10% uplift) for a firm answer: hold out more "
            "customers to confirm.",
        ),
    ],
)
def test_a_readout_verdict_advises_by_what_it_measured(counts, expected) -> None:
    from segmint.audiences.readout import plain_verdict
    from segmint.report.readouts import _needed, conversion_test

    x_t, n_t, x_h, n_h = counts
    row = {"target": n_t, "holdout": n_h}
    conv = conversion_test(x_t, n_t, x_h, n_h)
    needed = _needed(conv, row, 0.05)
    assert plain_verdict(conv, None, n_t, n_h, needed, 0.05, currency="USD") == expected


def test_an_audience_waiting_for_a_model_says_why_in_words() -> None:
    """A real night's line read "churn_risk_winback waits for a first propensity model:
    audience 'churn_risk_winback' (../../audiences/churn_risk_winback.yml) not built yet: no
    published propensity model yet: churn: holdout AUC 0.856 does not beat baseline_recency
    0.872; not published"."""
    from segmint.audiences.compile import NO_MODEL_YET, WAITING
    from segmint.report.sections import _waiting_reason

    gate = "holdout AUC 0.856 does not beat baseline_recency 0.872; not published"
    error = (
        f"audience 'winback' (../../audiences/winback.yml) {WAITING}: churn: {gate}; "
        f"{NO_MODEL_YET}: purchase: cannot train: 40 labelled examples"
    )
    assert _waiting_reason(error) == (
        "no churn model published yet (holdout AUC 0.856 does not beat the recency rule "
        "0.872); no purchase model published yet (cannot train: 40 labelled examples)"
    )


def test_the_summary_says_in_words_that_a_models_scores_shifted(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """ "Score drift warning for: churn." said neither what had moved nor what to do."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    con.execute(
        "update ml.score_drift set psi = 0.35 where model_name = 'churn' and as_of_date = ?",
        [AS_OF],
    )
    con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    assert (
        "The scores of the churn model shifted since the previous run beyond the warning level "
        "(PSI above 0.2): check them before targeting on them."
    ) in result.details["summary"]


def test_the_audiences_table_says_what_each_count_is_of(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """The table's columns were bare: "entered 242, exited 0" on an audience's first
    snapshot read as 242 customers joining tonight (everyone enters on the first), and
    nothing said how matched, the exclusions and the total add up."""
    html = render_report(sample_warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    caption = re.search(r"<caption>(Customers per audience[^<]*)</caption>", html).group(1)
    assert caption.startswith(f"Customers per audience in the snapshot of {AS_OF}; ")
    assert "matched = without consent + other exclusions (" in caption
    assert caption.endswith(
        "entered, exited: customers who joined or left the audience since its previous "
        "snapshot (on its first snapshot, everyone entered)."
    )


def test_a_reused_models_reason_is_not_wrapped_in_a_second_pair_of_brackets(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A night between retrainings read "reused (scored with the registered model
    purchase-2026-01-01-a516f123 (trained as of 2026-01-01, 1 days ago; retrain every 7
    days))", in the summary and in the status line."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    message = (
        "scored with the registered model purchase-2026-06-29 (trained as of 2026-06-29; "
        "retrain every 7 days)"
    )
    con = connect(warehouse)
    con.execute(
        "update ml.model_runs set status = 'reused', message = ? "
        "where model_name = 'purchase' and as_of_date = ?",
        [message, AS_OF],
    )
    con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    purchase = next(s for s in result.details["summary"] if s.startswith("Purchase model"))
    assert purchase.endswith(f"; reused: {message}.")
    html = Path(result.details["path"]).read_text(encoding="utf-8")
    assert f'<span class="good">reused</span>: {message}.<' in html
    assert "))" not in purchase


def test_one_targeted_customer_is_one_customer(sample_warehouse: Path, tmp_path: Path) -> None:
    """A small shop's night with a single member read "1 audience with 1 targeted
    customers."."""
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = connect(warehouse)
    try:
        keep = con.execute(
            "select audience, customer_id from audiences.members where as_of_date = ? "
            "and \"group\" = 'target' order by audience, customer_id limit 1",
            [AS_OF],
        ).fetchone()
        con.execute(
            "delete from audiences.members where as_of_date = ? "
            "and (audience, customer_id) <> (?, ?)",
            [AS_OF, *keep],
        )
    finally:
        con.close()
    result = write_report(Settings(warehouse=warehouse, output=tmp_path / "out"), AS_OF)
    assert "1 audience with 1 targeted customer." in result.details["summary"]


def test_charts_whose_figures_are_nowhere_else_carry_them_as_a_table(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """The R/F/M and transition heatmaps, lift and capture, calibration, the drivers and the
    drift lines had an ``aria-label`` of their title and no figure in text anywhere: a
    screen reader, a reader who cannot tell the lines' colours apart or someone copying a
    figure into a slide got nothing. Each now folds its figures under the chart."""
    page = render_report(sample_warehouse, AS_OF, tmp_path / "r.html").read_text(encoding="utf-8")
    figures = dict(
        re.findall(r'<figure class="[^"]*" data-chart="([^"]+)">(.*?)</figure>', page, re.S)
    )
    with_data = {n for n, body in figures.items() if "Figures of this chart" in body}
    assert with_data == {
        "segment-rfm",
        "segment-transitions",
        "lift-churn",
        "lift-purchase",
        "calibration-churn",
        "calibration-purchase",
        "drivers-churn",
        "drivers-purchase",
        "drift-psi",
        "drift-centroid",
        "drift-scores",
    }
    rfm = figures["segment-rfm"]
    assert "<th>segment</th>" in rfm.replace(' class=""', "")
    assert rfm.count("<tr>") == 1 + 6  # header + one row per segment
    lift = figures["lift-churn"]
    assert "lift, BG/NBD model" in lift and "capture, recency rule" in lift
    drivers = figures["drivers-churn"]
    assert '<td class="">recency_days</td>' in drivers
    assert re.search(r'<td class="num">0\.\d{4}</td>', drivers)
