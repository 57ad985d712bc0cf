"""Readout statistics checked against scipy.stats on known data, and end to end."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date

import numpy as np
import pytest
from scipy import stats

from segmint.audiences import build_audiences
from segmint.audiences.readout import (
    fisher_exact_p,
    plain_verdict,
    readout,
    required_holdout_size,
    two_proportion_test,
    welch_test,
)
from segmint.stages import SegmintError

AS_OF = date(2026, 6, 30)


def _built(settings, holdout_percent: int):
    """Audience ``a`` (every customer, ``holdout_percent`` held out) built for AS_OF."""
    settings.audiences.mkdir(parents=True, exist_ok=True)
    (settings.audiences / "a.yml").write_text(
        "name: a\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
        f"holdout: {{percent: {holdout_percent}, salt: r}}\n"
    )
    build_audiences(settings, AS_OF)
    return settings


def test_two_proportion_test_equals_chi_square_without_correction():
    x_t, n_t, x_h, n_h = 230, 2000, 40, 500
    res = two_proportion_test(x_t, n_t, x_h, n_h)
    table = np.array([[x_t, n_t - x_t], [x_h, n_h - x_h]])
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    assert res.chi2 == pytest.approx(chi2, rel=1e-9)
    assert res.p_value == pytest.approx(p, rel=1e-9)
    assert dof == 1
    assert res.difference == pytest.approx(0.115 - 0.08)
    assert res.relative_uplift == pytest.approx(0.035 / 0.08)
    assert res.ci_low == pytest.approx(0.0048288, abs=1e-7)  # Newcombe's interval
    assert res.ci_high == pytest.approx(0.0604050, abs=1e-7)


def _wald(x_t: int, n_t: int, x_h: int, n_h: int) -> tuple[float, float]:
    """The unpooled Wald interval the readout gave before (95%)."""
    p_t, p_h = x_t / n_t, x_h / n_h
    half = stats.norm.ppf(0.975) * np.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h)
    return p_t - p_h - half, p_t - p_h + half


# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score
# interval without continuity correction): the worked examples' 95% limits to 4 places.
@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((6, 7, 2, 7), 0.0582, 0.8062),
        ((5, 56, 0, 29), -0.0381, 0.1926),
        ((0, 10, 0, 20), -0.1611, 0.2775),
        ((0, 10, 0, 10), -0.2775, 0.2775),
        ((10, 10, 0, 20), 0.6791, 1.0000),
        ((10, 10, 0, 10), 0.6075, 1.0000),
    ],
)
def test_the_conversion_interval_is_newcombes_on_his_worked_examples(counts, low, high):
    res = two_proportion_test(*counts)
    assert (res.ci_low, res.ci_high) == (
        pytest.approx(low, abs=5e-5),
        pytest.approx(high, abs=5e-5),
    )
    # The Wald interval gave 0 to 0 for no conversion in either group.
    if counts[0] == counts[2] == 0:
        assert _wald(*counts) == (0.0, 0.0)


def _coverage(interval, n_t: int, n_h: int, rate: float) -> float:
    """The exact probability that ``interval`` holds the true difference 0 when both
    groups convert at ``rate``, summed over every outcome of the two binomials."""
    pmf_t, pmf_h = (
        stats.binom.pmf(range(n_t + 1), n_t, rate),
        stats.binom.pmf(range(n_h + 1), n_h, rate),
    )
    return sum(
        pmf_t[x_t] * pmf_h[x_h]
        for x_t in range(n_t + 1)
        for x_h in range(n_h + 1)
        if interval(x_t, n_t, x_h, n_h)[0] <= 0 <= interval(x_t, n_t, x_h, n_h)[1]
    )


def _newcombe(x_t: int, n_t: int, x_h: int, n_h: int) -> tuple[float, float]:
    res = two_proportion_test(x_t, n_t, x_h, n_h)
    return res.ci_low, res.ci_high


@pytest.mark.parametrize(
    ("n_t", "n_h", "rate", "wald"), [(200, 20, 0.03, 0.535), (400, 40, 0.05, 0.866)]
)
def test_the_conversion_interval_covers_95_percent_on_a_small_holdout(n_t, n_h, rate, wald):
    """A small holdout of a rare order: the Wald interval held the true difference (none)
    54% of the time with 20 held out and 3% converting, being of width 0 whenever the holdout
    had no order; Newcombe's holds it 95% of the time. On large groups they agree."""
    assert _coverage(_wald, n_t, n_h, rate) == pytest.approx(wald, abs=0.001)
    assert _coverage(_newcombe, n_t, n_h, rate) >= 0.95
    big = two_proportion_test(2000, 20000, 400, 5000)
    assert (big.ci_low, big.ci_high) == pytest.approx(_wald(2000, 20000, 400, 5000), abs=5e-4)


@pytest.mark.parametrize(
    "counts",
    [(4, 10, 0, 10), (0, 7, 3, 5), (12, 400, 0, 8), (1, 1, 0, 1), (30, 900, 4, 20), (5, 5, 0, 3)],
)
def test_fisher_exact_p_equals_scipy(counts):
    x_t, n_t, x_h, n_h = counts
    ref = stats.fisher_exact([[x_t, n_t - x_t], [x_h, n_h - x_h]]).pvalue
    assert fisher_exact_p(x_t, n_t, x_h, n_h) == pytest.approx(ref, rel=1e-9)


def test_a_tiny_holdout_gets_fishers_exact_p_not_the_z_tests():
    """4 of 10 targets ordered, none of 10 held out: the z-test said p = 0.025, "unlikely to
    be chance", on expected counts of 2; Fisher's exact test says 0.087: not proven."""
    res = two_proportion_test(4, 10, 0, 10)
    assert res.test == "fisher"
    assert res.p_value == pytest.approx(stats.fisher_exact([[4, 6], [0, 10]]).pvalue)
    assert res.z == pytest.approx(2.2360679)  # the statistic itself is still shown
    verdict = plain_verdict(
        {"rate_target": 0.4, "rate_holdout": 0.0, "difference": 0.4, "p_value": res.p_value},
        None,
        10,
        10,
        None,
    )
    assert "could be chance (p = 0.087): not proven" in verdict
    # The same 4 orders of 50.00 made Welch's t-test on revenue per customer say p = 0.037,
    # "spent more, unlikely to be chance": revenue is 0 for all but those 4, so with too few
    # orders for the z-test the t-test is not used in the verdict either.
    spend = welch_test(20.0, 4 * 30.0**2 / 9 + 6 * 20.0**2 / 9, 10, 0.0, 0.0, 10)
    assert spend.p_value < 0.05
    conversion = {**asdict(res)}
    verdict = plain_verdict(conversion, asdict(spend), 10, 10, None, currency="USD")
    assert "spent" not in verdict
    assert "could be chance (p = 0.087): not proven" in verdict
    assert "it looks like it works" not in verdict
    # Every expected count 5 or more: the z-test, as before (the chi-square test's p).
    big = two_proportion_test(20, 100, 10, 100)
    assert big.test == "z"
    _, p, _, _ = stats.chi2_contingency([[20, 80], [10, 90]], correction=False)
    assert big.p_value == pytest.approx(p, rel=1e-9)


def test_welch_matches_scipy_ttest_ind():
    rng = np.random.default_rng(3)
    a = rng.gamma(2.0, 30.0, size=900)
    b = rng.gamma(2.0, 25.0, size=120)
    res = welch_test(a.mean(), a.var(ddof=1), len(a), b.mean(), b.var(ddof=1), len(b))
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res.t == pytest.approx(ref.statistic, rel=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.df == pytest.approx(ref.df, rel=1e-9)
    assert (res.ci_low, res.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_required_sample_size_known_value():
    # 10% baseline, detect 12% (20% relative), alpha 0.05 two-sided, power 0.8, equal
    # groups: the textbook normal-approximation answer is 3841 per group.
    assert required_holdout_size(0.10, 0.20, ratio=1.0) == 3841
    # A 9:1 target/holdout split needs a smaller holdout than equal groups, not larger.
    assert required_holdout_size(0.10, 0.20, ratio=9.0) < 3841
    assert required_holdout_size(0.0, 0.2) is None


def test_readout_end_to_end_against_scipy(big_settings):
    s = _built(big_settings, holdout_percent=20)
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 31))

    # Independent per-customer outcomes, computed here from the same tables.
    import duckdb

    con = duckdb.connect(str(s.warehouse), read_only=True)
    per = con.execute(
        """select m."group", coalesce(sum(o.revenue), 0)::double, count(o.order_id) > 0
        from audiences.members as m
        left join marts.orders as o on o.customer_id = m.customer_id
        group by m."group", m.customer_id"""
    ).fetchall()
    con.close()
    rev = {g: np.array([r for gg, r, _ in per if gg == g]) for g in ("target", "holdout")}
    conv = {g: sum(c for gg, _, c in per if gg == g) for g in ("target", "holdout")}
    assert res.target.customers == len(rev["target"]) and res.holdout.customers == len(
        rev["holdout"]
    )
    assert res.target.converted == conv["target"]
    table = [
        [conv["target"], len(rev["target"]) - conv["target"]],
        [conv["holdout"], len(rev["holdout"]) - conv["holdout"]],
    ]
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert res.conversion.chi2 == pytest.approx(chi2, rel=1e-9)
    assert res.conversion.p_value == pytest.approx(p, rel=1e-9)
    ref = stats.ttest_ind(rev["target"], rev["holdout"], equal_var=False)
    assert res.revenue.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.revenue.t == pytest.approx(ref.statistic, rel=1e-9)
    # No real effect in this data (orders are a function of the id only).
    assert "could be chance" in res.verdict and "not proven" in res.verdict
    assert res.required_holdout is not None
    # A holdout too small is said by the verdict, not again by a warning beside it.
    assert ("holdout is too small" in res.verdict) == (res.holdout.customers < res.required_holdout)
    assert not any("holdout too small" in w for w in res.warnings)
    text = "\n".join(res.lines())
    assert "verdict:" in text and "Welch t" in text


def test_readout_verdict_when_target_buys_more(big_settings):
    s = _built(big_settings, holdout_percent=30)
    import duckdb

    con = duckdb.connect(str(s.warehouse))
    # Every target customer buys once more in July: a large, real effect.
    con.execute(
        """insert into marts.orders
        select 'X' || customer_id, customer_id, timestamp '2026-07-10 09:00:00',
            date '2026-07-10', 50.00, 'EUR', 1
        from audiences.members where "group" = 'target'"""
    )
    # The money is named as the marts were built, as in the report.
    con.execute("create table marts.reporting_currency as select 'EUR' as currency_code")
    con.close()
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 31))
    assert res.conversion.difference > 0 and res.conversion.p_value < 1e-6
    assert res.verdict.startswith("Targets ordered more often than the holdout (")
    assert "a gap this size is unlikely to be chance (p < 0.001)" in res.verdict
    assert re.search(
        r" They spent [\d,.]+ EUR more per customer, unlikely to be chance", res.verdict
    )
    assert res.revenue.difference > 0 and res.revenue.p_value < 1e-6


def test_a_window_the_data_do_not_reach_is_no_verdict(big_settings):
    """The warehouse's orders reach 2026-07-05 (the fixture's last order; the newest night
    built is 2026-06-30): a later window has nothing to compare, a longer one is cut."""
    from segmint.stages import SegmintError

    s = _built(big_settings, holdout_percent=20)
    with pytest.raises(SegmintError, match=r"no data yet for the window 2026-07-10 to 2026-07-31"):
        readout(s, "a", date(2026, 7, 10), date(2026, 7, 31))
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 31))
    assert any("data reach 2026-07-05: only 5 of its 31 days" in w for w in res.warnings)
    full = readout(s, "a", date(2026, 7, 1), date(2026, 7, 5))
    assert not any("data reach" in w for w in full.warnings)
    # A snapshot date with no built snapshot is an error, not an empty audience.
    with pytest.raises(SegmintError, match=r"no built snapshot for --snapshot 2026-05-01 "):
        readout(s, "a", date(2026, 7, 1), date(2026, 7, 5), snapshot=date(2026, 5, 1))
    # The night of the window's first day was built after that day's orders: the list a
    # campaign starting that day was sent to is an earlier one.
    with pytest.raises(SegmintError, match=r"no built snapshot before 2026-06-30"):
        readout(s, "a", date(2026, 6, 30), date(2026, 7, 5))


def test_the_readout_says_how_many_target_customers_the_files_reached(big_settings, tmp_path):
    """A quarter of the shop withdrew e-mail consent after the snapshot: the Mailchimp file
    left them out, but the readout's target still counted them as sent to, with nothing to
    tell its "target: N customers" from the file's rows. It now shows both, and warns that
    the measured difference is diluted by those never reached."""
    import duckdb

    from segmint.audiences.export import export_audience

    s = _built(big_settings, holdout_percent=20)
    before = readout(s, "a", date(2026, 7, 1), date(2026, 7, 5))
    assert before.exported is None
    assert "(no export of this snapshot recorded)" in before.lines()[1]
    assert not any("no export file" in w for w in before.warnings)
    con = duckdb.connect(str(s.warehouse))
    con.execute(
        "update marts.customers set email_opt_in = false "
        "where cast(substr(customer_id, 2) as integer) % 4 = 1"
    )
    withdrawn = con.execute(
        """select count(*) from audiences.members where "group" = 'target'
        and cast(substr(customer_id, 2) as integer) % 4 = 1"""
    ).fetchone()[0]
    con.close()
    export = export_audience(s, "a", "mailchimp", tmp_path / "a.csv")
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 5))
    assert res.exported == export.rows == res.target.customers - withdrawn
    assert (
        f"{res.target.customers} customers ({res.exported} of them in the snapshot's "
        in (res.lines()[1])
    )
    assert (
        f"{withdrawn} of the {res.target.customers} target customers were in no export file "
        "of the 2026-06-30 snapshot"
    ) in " ".join(res.warnings)
    reached = res.exported / res.target.customers
    assert f"among the {reached:.0%} reached it is about " in " ".join(res.warnings)


def test_a_window_in_which_nobody_ordered_has_no_verdict_yet(big_settings, capsys):
    """The fixture's orders are all on 2026-07-05: in the window 07-01..07-04 nobody of
    either group ordered. The command said "No detectable difference in conversion
    (p = 1)", read as a campaign that does not work, where the report said there was no
    verdict yet."""
    from segmint.cli import main

    s = _built(big_settings, holdout_percent=20)
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 4))
    customers = res.target.customers + res.holdout.customers
    assert res.target.converted == res.holdout.converted == 0 and customers == 4000
    assert res.verdict == (
        "No verdict yet: none of the 4,000 customers (target and holdout) has ordered from "
        "2026-07-01 to 2026-07-04."
    )
    wh = ["--warehouse", str(s.warehouse), "--audiences", str(s.audiences)]
    window = ["--from", "2026-07-01", "--to", "2026-07-04"]
    assert main(["audience", "readout", "a", *wh, *window]) == 0
    text = capsys.readouterr().out
    assert "verdict: No verdict yet" in text and "could be chance" not in text
    # A window with orders keeps its verdict.
    assert "could be chance" in readout(s, "a", date(2026, 7, 1), date(2026, 7, 5)).verdict


@pytest.mark.parametrize(
    ("option", "value", "usage", "message"),
    [
        ("--alpha", "5", "above 0 and below 1 (0.05 for 5%)", "--alpha 5 must be above 0 and"),
        ("--alpha", "0", "above 0 and below 1", "--alpha 0 must be above 0 and below 1 (0.05"),
        ("--power", "0", "above 0 and below 1 (0.8 for 80%)", "--power 0 must be above 0 and"),
        ("--power", "80", "above 0 and below 1", "--power 80 must be above 0 and below 1 (0.8"),
        ("--mde", "0", "above 0 (0.1 for 10%)", "--mde 0 must be above 0 (0.1 for 10%)"),
        ("--mde", "-0.1", "above 0", "--mde -0.1 must be above 0 (0.1 for 10%)"),
        ("--mde", "inf", "above 0 (0.1 for 10%)", "--mde inf must be above 0 (0.1 for 10%)"),
        ("--alpha", "nan", "above 0 and below 1", "--alpha nan must be above 0 and below 1"),
    ],
)
def test_the_readout_refuses_a_level_power_or_uplift_out_of_range(
    big_settings, capsys, option, value, usage, message
):
    """``--alpha 5`` (meant as 5%) called every difference significant and ``--power 0``
    asked for a holdout of a handful of customers, in silence. The command line refuses
    them with its usage (exit code 2), the function with a SegmintError."""
    from segmint.cli import main

    s = _built(big_settings, holdout_percent=20)
    wh = ["--warehouse", str(s.warehouse), "--audiences", str(s.audiences)]
    window = ["--from", "2026-07-01", "--to", "2026-07-05"]
    with pytest.raises(SystemExit) as exit_:
        main(["audience", "readout", "a", *wh, *window, option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: segmint audience readout ")
    assert f"segmint audience readout: error: argument {option}: must be {usage}" in err
    with pytest.raises(SegmintError, match=re.escape(message)):
        readout(s, "a", date(2026, 7, 1), date(2026, 7, 5), **{option[2:]: float(value)})
    # In range, the same command reads out.
    assert main(["audience", "readout", "a", *wh, *window, option, "0.5"]) == 0
    assert "verdict:" in capsys.readouterr().out


def test_the_command_line_and_the_readout_share_one_table_of_ranges() -> None:
    """The ranges were written twice, argparse's in cli.py and the readout's, in two
    wordings: a range changed in one place would have let the other pass or refuse what it
    should not. Both read segmint.audiences.readout_parameters, which the CLI imports at
    start-up without DuckDB."""
    import subprocess
    import sys

    from segmint.audiences.readout_parameters import PARAMETERS
    from segmint.cli import build_parser

    readout_parser = build_parser()._subparsers._group_actions[0].choices["audience"]
    readout_parser = readout_parser._subparsers._group_actions[0].choices["readout"]
    actions = {a.dest: a for a in readout_parser._actions}
    for name, parameter in PARAMETERS.items():
        assert actions[name].default == parameter.default
        assert actions[name].option_strings == [parameter.option]
    code = (
        "import sys, segmint.cli; "
        "print(sorted(m for m in ('duckdb', 'pandas', 'segmint.audiences.readout') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_command_line_verdict_is_the_reports_in_plain_words_with_the_numbers_in_json(
    big_settings, capsys
):
    """`segmint audience readout` said "No detectable difference in conversion between
    target and holdout (p = 0.412); the observed +0.52 points may be chance." where the
    report, for the same result, said what happened, how sure and what to do: two texts.
    Both now come from one function; --json keeps every figure (p-values, intervals)."""
    import json

    from segmint.audiences.readout import plain_verdict
    from segmint.cli import main

    s = _built(big_settings, holdout_percent=20)
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 5))
    assert "What to do: " in res.verdict
    for jargon in ("detectable", "indicative", "conversion", "points"):
        assert jargon not in res.verdict
    c, r = res.conversion, res.revenue
    assert res.verdict == plain_verdict(
        {"rate_target": c.rate_target, "rate_holdout": c.rate_holdout,
         "difference": c.difference, "p_value": c.p_value},
        {"difference": r.difference, "p_value": r.p_value},
        res.target.customers,
        res.holdout.customers,
        res.required_holdout,
        window="from 2026-07-01 to 2026-07-05",
    )  # fmt: skip
    wh = ["--warehouse", str(s.warehouse), "--audiences", str(s.audiences)]
    window = ["--from", "2026-07-01", "--to", "2026-07-05"]
    assert main(["audience", "readout", "a", *wh, *window, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == res.verdict
    assert out["conversion"]["p_value"] == pytest.approx(c.p_value)
    assert out["revenue"]["p_value"] == pytest.approx(r.p_value)
    assert out["conversion"]["z"] == pytest.approx(c.z) and out["required_holdout"] > 0


def _orders_by_group(settings, target_per_5: int, holdout_orders: int) -> None:
    """July's orders replaced: ``target_per_5`` target customers in 5 order once, and the
    first ``holdout_orders`` holdout customers."""
    import duckdb

    con = duckdb.connect(str(settings.warehouse))
    con.execute("delete from marts.orders")
    con.execute(
        f"""insert into marts.orders
        select 'X' || customer_id, customer_id, timestamp '2026-07-10 09:00:00',
            date '2026-07-10', 50.00, 'EUR', 1
        from (
            select customer_id, "group",
                row_number() over (partition by "group" order by customer_id) as k
            from audiences.members
        )
        where ("group" = 'target' and k % 5 < {target_per_5})
            or ("group" = 'holdout' and k <= {holdout_orders})"""
    )
    con.close()


def test_a_tiny_holdout_with_a_decisive_gap_gets_plain_advice_said_once(big_settings, capsys):
    """40% of the targets ordered against 2.5% of a holdout of 80 (p < 0.001). The verdict
    said "it looks like it works; keep it, but the holdout is too small ... for a firm
    answer: hold out more customers to confirm", and a warning beside it repeated "holdout
    too small: 80 customers, but 67559 are needed ...; treat the result as indicative only".
    A gap that size is no chance, however few were held out: the advice is plain, and the
    small holdout is said once, in the verdict."""
    from segmint.cli import main

    s = _built(big_settings, holdout_percent=2)
    _orders_by_group(s, target_per_5=2, holdout_orders=2)
    wh = ["--warehouse", str(s.warehouse), "--audiences", str(s.audiences)]
    window = ["--from", "2026-07-01", "--to", "2026-07-10"]
    assert main(["audience", "readout", "a", *wh, *window]) == 0
    out = capsys.readouterr().out
    assert "holdout: 80 customers, 2 converted" in out
    (verdict,) = [line for line in out.splitlines() if line.startswith("  verdict: ")]
    assert verdict.endswith(
        "What to do: the campaign works; keep it. The holdout is small (80 customers, "
        "33,322 needed to see a 10% uplift), but a gap this large is not chance; only how "
        "large it really is stays uncertain."
    )
    assert "(40.0% of the targets ordered, 2.5% of the holdout)" in verdict
    assert "p < 0.001" in verdict and "confirm" not in verdict
    assert "warning:" not in out  # the small holdout is said once, in the verdict
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 10))
    assert res.warnings == [] and res.required_holdout == 33322

    # The same small holdout with a gap that could be a fluke keeps its caution.
    _orders_by_group(s, target_per_5=1, holdout_orders=8)
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 10))
    assert 0.001 < res.conversion.p_value < 0.05
    assert res.verdict.endswith("for a firm answer: hold out more customers to confirm.")
    assert res.warnings == []
    # And a decisive gap the other way: the campaign puts customers off, plainly.
    _orders_by_group(s, target_per_5=0, holdout_orders=20)
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 10))
    assert res.conversion.p_value < 0.001
    assert "What to do: the campaign puts customers off; review it. The holdout is small" in (
        res.verdict
    )


def test_an_audience_without_a_holdout_is_said_once(big_settings, capsys):
    """With nobody held out, the verdict says "Cannot be measured: nobody was held out of
    this audience ... Give the audience a holdout", and a warning beside it said it again:
    "the snapshot has no holdout customers: uplift cannot be measured"."""
    from segmint.cli import main

    s = _built(big_settings, holdout_percent=0)
    wh = ["--warehouse", str(s.warehouse), "--audiences", str(s.audiences)]
    assert (
        main(["audience", "readout", "a", *wh, "--from", "2026-07-01", "--to", "2026-07-05"]) == 0
    )
    out = capsys.readouterr().out
    assert "  verdict: Cannot be measured: nobody was held out of this audience" in out
    assert "holdout" not in "".join(line for line in out.splitlines() if "warning:" in line)
    res = readout(s, "a", date(2026, 7, 1), date(2026, 7, 5))
    assert res.holdout.customers == 0 and res.warnings == []


def test_a_holdout_without_orders_gets_an_interval_that_holds_no_difference(big_settings, capsys):
    """1% of 3961 targets ordered, none of the 39 held out. The line said "95% CI [+0.68,
    +1.29] points" (the Wald interval: the holdout's 0 of 39 taken as exactly 0%) beside
    Fisher's exact p = 1: a sure gain and no evidence in one line. Newcombe's interval holds
    0 and says how much higher the holdout's rate may be."""
    import duckdb

    from segmint.cli import main

    s = _built(big_settings, holdout_percent=1)
    con = duckdb.connect(str(s.warehouse))
    con.execute("delete from marts.orders")
    con.execute(
        """insert into marts.orders
        select 'X' || customer_id, customer_id, timestamp '2026-07-10 09:00:00',
            date '2026-07-10', 50.00, 'EUR', 1
        from (
            select customer_id, "group",
                row_number() over (partition by "group" order by customer_id) as k
            from audiences.members
        )
        where "group" = 'target' and k % 100 = 0"""
    )
    con.close()
    wh = ["--warehouse", str(s.warehouse), "--audiences", str(s.audiences)]
    assert (
        main(["audience", "readout", "a", *wh, "--from", "2026-07-01", "--to", "2026-07-10"]) == 0
    )
    out = capsys.readouterr().out
    assert "holdout: 39 customers, 0 converted" in out
    assert "95% CI [-7.99, +1.34] points" in out and "Fisher's exact p = 1.0000" in out
    c = readout(s, "a", date(2026, 7, 1), date(2026, 7, 10)).conversion
    assert c.ci_low < 0 < c.ci_high
    assert _wald(39, 3961, 0, 39)[0] > 0  # what the line said before
