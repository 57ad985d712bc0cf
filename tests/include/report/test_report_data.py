"""The report's tolerant reading: metric names, curves, capture layouts, ROC from deciles."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmint.report.data import Missing, Reader, find_curve, parse_metrics, split_metric_name
from segmint.report.sections import roc_from_deciles, top_down_capture
from segmint.warehouse import connect


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("roc_auc", ("roc_auc", None)),
        ("average_precision", ("average_precision", None)),
        ("lift_decile_3", ("lift", 3)),
        ("capture@10", ("capture", 10)),
        ("roc_fpr_07", ("roc_fpr", 7)),
        ("calibration_observed_bin_4", ("calibration_observed", 4)),
        ("Lift_D2", ("lift", 2)),
    ],
)
def test_split_metric_name(name: str, expected: tuple) -> None:
    assert split_metric_name(name) == expected


def test_parse_metrics_uses_the_index_column_then_the_name_tail() -> None:
    frame = pd.DataFrame(
        {
            "scorer": ["model", "model", "model", "baseline", "model", "model"],
            "metric": ["roc_auc", "lift", "lift", "roc_auc", "roc_tpr_01", "brier"],
            "value": [0.8, 1.5, 0.5, 0.7, 0.4, None],
            "idx": [None, 10, 1, None, None, None],
        }
    )
    scalars, curves = parse_metrics(frame, "idx")
    assert scalars == {"model": {"roc_auc": 0.8}, "baseline": {"roc_auc": 0.7}}
    assert curves["model"]["lift"].to_dict() == {1: 0.5, 10: 1.5}
    assert curves["model"]["roc_tpr"].to_dict() == {1: 0.4}
    assert find_curve(curves["model"], ["lift"]) is curves["model"]["lift"]
    assert find_curve(curves["model"], ["capture|gain"]) is None


@pytest.mark.parametrize(
    "stored",
    [
        # ml.propensity's layout: decile 10 = top, cumulative from the top down
        {10: 0.3, 9: 0.5, 8: 0.65, 7: 0.75, 6: 0.83, 5: 0.89, 4: 0.93, 3: 0.96, 2: 0.99, 1: 1.0},
        # already "top n deciles targeted"
        {1: 0.3, 2: 0.5, 3: 0.65, 4: 0.75, 5: 0.83, 6: 0.89, 7: 0.93, 8: 0.96, 9: 0.99, 10: 1.0},
        # each decile's own share of positives, decile 10 = top
        {10: 0.3, 9: 0.2, 8: 0.15, 7: 0.1, 6: 0.08, 5: 0.06, 4: 0.04, 3: 0.03, 2: 0.03, 1: 0.01},
    ],
)
def test_capture_layouts_all_become_top_down_cumulative(stored: dict) -> None:
    out = top_down_capture(pd.Series(stored))
    assert list(out.index) == list(range(1, 11))
    assert out.iloc[0] == pytest.approx(0.3)
    assert out.iloc[1] == pytest.approx(0.5)
    assert out.iloc[-1] == pytest.approx(1.0)


def test_roc_from_deciles_matches_the_exact_curve_at_decile_cuts() -> None:
    rng = np.random.default_rng(0)
    score = rng.random(10_000)
    y = (rng.random(10_000) < score**2).astype(int)
    decile = np.ceil(pd.Series(score).rank(method="first") / 1_000).astype(int)
    table = pd.DataFrame({"d": decile, "y": y}).groupby("d")["y"].agg(["size", "mean"])
    fpr, tpr = roc_from_deciles(
        {"decile_rows": table["size"].astype(float), "decile_observed_rate": table["mean"]}
    )
    assert fpr[0] == tpr[0] == 0.0
    assert fpr[-1] == pytest.approx(1.0)
    assert tpr[-1] == pytest.approx(1.0)
    # Top decile cut: the share of all positives and negatives with the highest 10% scores.
    top = score >= np.quantile(score, 0.9)
    assert tpr[1] == pytest.approx(y[top].sum() / y.sum())
    assert fpr[1] == pytest.approx((1 - y[top]).sum() / (1 - y).sum())
    assert np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(fpr) >= 0)


def test_reader_knows_tables_and_columns(tmp_path: Path) -> None:
    con = connect(tmp_path / "w.duckdb")
    con.execute("create table ml.k_selection (k integer, Inertia double)")
    reader = Reader(con)
    assert reader.has("ml.k_selection")
    assert reader.pick("ml.k_selection", "sse", "inertia") == "inertia"
    assert reader.pick("ml.k_selection", "silhouette") is None
    with pytest.raises(Missing, match="has no column silhouette"):
        reader.require("ml.k_selection", "k", "silhouette")
    with pytest.raises(Missing, match=r"ml\.segment_drift does not exist yet"):
        reader.require("ml.segment_drift")
    con.close()


def test_readouts_match_the_audience_readout_command(sample_warehouse: Path) -> None:
    """The report's light statistics give the same figures and the same verdict as
    `segmint audience readout`."""
    import duckdb

    from segmint.audiences.readout import readout_with_connection
    from segmint.report.readouts import readouts

    as_of = date(2026, 6, 30)
    con = duckdb.connect(str(sample_warehouse), read_only=True)
    try:
        frame = readouts(con, as_of, lookback_days=28, currency="USD")
        assert len(frame) == 3
        for row in frame.itertuples(index=False):
            snapshot = row.snapshot.date() if hasattr(row.snapshot, "date") else row.snapshot
            ref = readout_with_connection(
                con, row.audience, snapshot + timedelta(days=1), as_of, snapshot, currency="USD"
            )
            assert row.target == ref.target.customers
            assert row.holdout == ref.holdout.customers
            assert row[4] == pytest.approx(ref.conversion.rate_target)  # conv. target
            assert row[7] == pytest.approx(ref.conversion.p_value, rel=1e-9)  # p conv.
            assert row[8] == pytest.approx(ref.revenue.difference)  # revenue difference
            assert row[9] == pytest.approx(ref.revenue.p_value, rel=1e-9)  # p rev.
            if ref.required_holdout and row.holdout < ref.required_holdout:
                assert f"{ref.required_holdout:,} needed" in row.verdict
            # One verdict, word for word (the command line's was statistician's jargon).
            assert row.verdict == ref.verdict and "What to do: " in row.verdict
    finally:
        con.close()


def test_capture_is_drawn_against_the_customers_targeted_when_ties_leave_deciles_empty(
    tmp_path: Path,
) -> None:
    """2,000 never-active sign-ups share one purchase score beside 1,000 shoppers: equal
    scores share a decile (ml.propensity), so decile 1 holds the 2,000 and deciles 2-6 are
    empty. Drawn against "top n deciles targeted", the capture stayed flat from 4 to 9
    deciles, as if nine tenths of the shop had been targeted; its points now sit at the
    share of customers the deciles hold, and the empty deciles are named."""
    from ml.propensity.metrics import decile_table, metric_rows
    from segmint.report import render_report
    from segmint.report.sections import capture_points

    rng = np.random.default_rng(1)
    score = np.concatenate([np.full(2_000, 0.001), rng.uniform(0.01, 1.0, 1_000)])
    y = (rng.random(3_000) < score).astype(int)
    table = decile_table(y, score, score).set_index("decile")
    assert list(table.index[table["rows"] == 0]) == [6, 5, 4, 3, 2]
    x, captured = capture_points(table["capture"], table["rows"])
    # The top four deciles (7-10) are the 1,000 shoppers: a third of the customers.
    assert x[4] == pytest.approx(1_000 / 3_000)
    assert captured[4] == pytest.approx(table.loc[7, "capture"])
    assert x[-1] == pytest.approx(1.0) and captured[-1] == pytest.approx(1.0)
    assert np.all(np.diff(x) >= 0)

    _, rows = metric_rows(y, score, score, "model")
    frame = pd.DataFrame(rows).assign(
        run_id="r", model_name="purchase", as_of_date=date(2026, 6, 30)
    )
    con = connect(tmp_path / "w.duckdb")
    con.register("rows_frame", frame)
    con.execute(
        "create table ml.model_metrics as select run_id, model_name, as_of_date, scorer, "
        "metric, value, cast(decile as integer) as decile from rows_frame"
    )
    con.close()
    html = render_report(tmp_path / "w.duckdb", date(2026, 6, 30), tmp_path / "r.html").read_text(
        encoding="utf-8"
    )
    chart = re.search(r'data-chart="lift-purchase">(.*?)</figure>', html, re.S).group(1)
    assert "share of customers targeted, top scores first" in chart
    assert chart.count(">empty<") == 5
    assert "deciles 2-6 of the model hold nobody" in chart


def test_readouts_show_the_share_of_the_target_the_export_files_reached(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """`segmint audience readout` says how many target customers were in the snapshot's
    export files; the report's readouts did not, so a campaign whose files reached half its
    target (consent withdrawn, no usable address) read as a weak effect on everyone."""
    import duckdb

    from segmint.audiences.readout import readout_with_connection
    from segmint.report import render_report
    from segmint.report.readouts import readouts

    as_of, snapshot = date(2026, 6, 30), date(2026, 6, 27)
    warehouse = tmp_path / "segmint.duckdb"
    warehouse.write_bytes(sample_warehouse.read_bytes())
    con = duckdb.connect(str(warehouse))
    try:
        # The CSV of vip_ads's snapshot held every other target customer; the Google file
        # the same ones again (a customer in two files counts once).
        con.execute(
            "create table audiences.export_members (export_id varchar, customer_id varchar)"
        )
        con.execute(
            """insert into audiences.export_members
            select e.export_id, m.customer_id
            from audiences.exports as e
            inner join audiences.members as m
                on m.audience = e.audience and m.as_of_date = e.as_of_date
            where e.audience = 'vip_ads' and e.as_of_date = ? and m."group" = 'target'
                and hash(m.customer_id) % 2 = 0""",
            [snapshot],
        )
        frame = readouts(con, as_of, lookback_days=3).set_index("audience")
        ref = readout_with_connection(con, "vip_ads", snapshot + timedelta(days=1), as_of, snapshot)
    finally:
        con.close()
    assert frame.loc["vip_ads", "snapshot"].date() == snapshot
    assert 0 < ref.exported < ref.target.customers
    assert frame.loc["vip_ads", "reached"] == pytest.approx(ref.exported / ref.target.customers)
    # No file of the other audiences' snapshots lists anyone: nobody was reached.
    assert frame.loc["winback_at_risk", "reached"] == 0
    html = render_report(warehouse, as_of, tmp_path / "r.html").read_text(encoding="utf-8")
    row = re.search(r"<tr><td[^>]*>vip_ads</td><td[^>]*>2026-06-\d\d</td>.*?</tr>", html, re.S)
    shown = f"{ref.exported / ref.target.customers:.1%}"
    assert f">{shown}</td>" in row.group(0)
    assert "Reached: the share of the target in the snapshot&#x27;s export files" in html
