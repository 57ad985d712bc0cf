"""The score stage on young and tiny shops (a few dozen customers in a real DuckDB): what
it says when it cannot train, and that a few dozen training rows still grow trees."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.io import read_frame
from ml.propensity import model as mdl
from ml.propensity import run_propensity
from segmint.config import ConfigError, PropensitySettings, Settings
from tests.ml.propensity.simshop import AS_OF, add_never_active_crowd, build_warehouse


def _settings(warehouse: Path, **propensity: object) -> Settings:
    return Settings(
        warehouse=warehouse, propensity=dataclasses.replace(PropensitySettings(), **propensity)
    )


def _shop(tmp_path: Path, customers: int) -> Path:
    wh = tmp_path / "warehouse" / "segmint.duckdb"
    wh.parent.mkdir(parents=True)
    build_warehouse(wh, n_customers=customers)
    return wh


def test_too_few_labelled_examples_names_the_counts_and_the_setting(tmp_path: Path) -> None:
    # 40 customers, 30-day windows: 4-11 buyers a window. Before, the message said "fewer
    # than 10 positives or negatives in the train, validation, holdout window": no counts,
    # no way to tell which class was short or what decides the minimum.
    wh = _shop(tmp_path, 40)
    result = run_propensity(_settings(wh), AS_OF)
    message = result.details["purchase"]["message"]
    assert message.startswith(
        "purchase: not enough labelled examples to train: each window needs at least 10 "
        "positives and 10 negatives ([propensity] min_class_examples = 10; positive = a "
        "purchase in the label window); found "
    ), message
    found = {
        name: (int(pos), int(neg))
        for name, pos, neg in re.findall(
            r"(train|validation|holdout) \(cut-off [^)]*\) (\d+) positive\(s\) and (\d+) "
            r"negative\(s\)",
            message,
        )
    }
    assert set(found) == {"train", "validation", "holdout"}, message
    # The holdout's counts, from the marts: buyers in (cut-off, cut-off + 30] among the
    # customers of the cut-off's snapshot.
    holdout = AS_OF - timedelta(days=30)
    counts = read_frame(
        wh,
        "select count(*) filter (where bought) as positives, "
        "count(*) filter (where not bought) as negatives "
        "from (select h.customer_id, coalesce(sum(a.orders), 0) >= 1 as bought "
        "from marts.customer_feature_history h left join marts.customer_daily_activity a "
        "on a.customer_id = h.customer_id and a.activity_date > ? and a.activity_date <= ? "
        "where h.as_of_date = ? and h.first_seen_at is not null group by 1)",
        [holdout, AS_OF, holdout],
    ).iloc[0]
    assert found["holdout"] == (counts["positives"], counts["negatives"])
    for name, (positives, negatives) in found.items():
        short = positives < 10 or negatives < 10
        assert re.search(rf"{name} \([^)]*\) {positives} [^;]*\(too few\)", message) or not short
    assert any(min(pair) < 10 for pair in found.values())
    assert message in result.warnings
    runs = read_frame(wh, "select model_name, message from ml.model_runs order by 1")
    assert runs["message"].str.contains("min_class_examples = 10").all()

    # The minimum is the setting: lowered below every count, the model trains.
    lowest = min(min(pair) for pair in found.values())
    retry = run_propensity(_settings(wh, min_class_examples=max(1, lowest)), AS_OF)
    assert "not enough labelled examples" not in retry.details["purchase"]["message"]
    assert "holdout AUC" in retry.details["purchase"]["message"]
    with pytest.raises(ConfigError, match="min_class_examples must be at least 1"):
        PropensitySettings(min_class_examples=0)


@pytest.fixture(scope="module")
def shop_of_80(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 customers: enough labelled examples a window, ~70 training rows."""
    return _shop(tmp_path_factory.mktemp("shop80"), 80)


def _copy(template: Path, tmp_path: Path) -> Path:
    wh = tmp_path / "warehouse" / "segmint.duckdb"
    wh.parent.mkdir(parents=True)
    wh.write_bytes(template.read_bytes())
    return wh


def test_a_few_dozen_training_rows_still_grow_trees(shop_of_80: Path, tmp_path: Path) -> None:
    # Before, every candidate's minimum leaf (40, 100, 200 rows) was larger than half of the
    # ~63 rows the trees grew on: no tree split, both models gave everyone one score, and
    # their holdout AUC was exactly 0.500 (not published, without a word of why).
    wh = _copy(shop_of_80, tmp_path)
    result = run_propensity(_settings(wh), AS_OF)
    for model in ("purchase", "churn"):
        detail = result.details[model]
        assert "not enough labelled examples" not in detail["message"], detail["message"]
        assert detail["holdout"]["model"]["roc_auc"] != 0.5, detail["message"]
        run = read_frame(
            wh, "select params, training_rows from ml.model_runs where model_name = ?", [model]
        ).iloc[0]
        params, rows = json.loads(run["params"]), int(run["training_rows"])
        assert 20 <= rows < 100
        assert 2 * params["hyper_parameters"]["min_samples_leaf"] <= rows
        assert all(2 * c["min_samples_leaf"] <= rows for c in params["search"])


def test_a_model_that_cannot_split_says_so(
    shop_of_80: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Leaf sizes as large as the rows the trees grow on (as before the cap): the fitted
    # model is a constant, and the gate's message says so instead of a bare "holdout AUC
    # 0.500 does not beat ...".
    monkeypatch.setattr(mdl, "MIN_LEAVES_POSSIBLE", 1)
    wh = _copy(shop_of_80, tmp_path)
    result = run_propensity(_settings(wh), AS_OF)
    message = result.details["purchase"]["message"]
    assert result.details["purchase"]["holdout"]["model"]["roc_auc"] == 0.5
    assert re.fullmatch(
        r"purchase: holdout AUC 0\.500 does not beat baseline_\w+ 0\.\d{3}; not published: "
        r"the model gives every customer the same score \(none of its trees splits on the "
        r"\d+ training rows, minimum leaf size \d+\): too few examples or no feature that "
        r"separates them",
        message,
    ), message


def test_leaf_sizes_are_scaled_to_small_windows_only() -> None:
    for params in mdl.PARAM_GRID:
        assert mdl.scaled_to_rows(params, 890) == params
        assert mdl.scaled_to_rows(params, 20_000) == params
        small = mdl.scaled_to_rows(params, 70)
        assert small == {**params, "min_samples_leaf": 15}


def test_a_crowd_that_never_visited_nor_ordered_is_named_beside_the_auc(tmp_path: Path) -> None:
    """A CRM of newsletter sign-ups who never visited nor ordered beside a few hundred
    customers who do: ranking the crowd last lifted the purchase model's holdout AUC to
    0.995 (0.866 among the others; generated shop, 800 customers and 15,000 sign-ups), and
    the night said only 'published (holdout AUC 0.995)'. The warning names the crowd and
    gives every scorer's AUC among the others; the metrics hold them."""
    wh = _shop(tmp_path, 300)
    add_never_active_crowd(wh, 1000)
    result = run_propensity(_settings(wh), AS_OF)
    holdout = result.details["purchase"]["holdout"]
    rows = int(holdout["model"]["rows"])
    assert holdout["model"]["never_active_rows"] >= 1000
    crowd = int(holdout["model"]["never_active_rows"])
    aucs = {s: holdout[s]["roc_auc_ever_active"] for s in holdout}
    assert all(0.0 < v < 1.0 for v in aucs.values()), aucs
    assert all(aucs[s] < holdout[s]["roc_auc"] for s in aucs), (aucs, holdout)
    note = next(w for w in result.warnings if "never visited nor ordered" in w)
    assert note == (
        f"purchase: {crowd} of {rows} holdout customers ({crowd / rows:.0%}) never visited nor "
        "ordered before the cut-off and 0 of them were positive (a purchase in the label "
        f"window): ranking them last lifts every holdout AUC; among the other {rows - crowd}: "
        f"AUC model {aucs['model']:.3f}, baseline_recency {aucs['baseline_recency']:.3f}, "
        f"baseline_bgnbd {aucs['baseline_bgnbd']:.3f}"
    )
    stored = read_frame(
        wh,
        "select scorer, value from ml.model_metrics where model_name = 'purchase' "
        "and metric = 'roc_auc_ever_active' order by scorer",
    )
    assert dict(zip(stored["scorer"], stored["value"], strict=True)) == pytest.approx(aucs)


def test_equal_scores_share_a_decile_so_a_decile_audience_never_splits_them(
    tmp_path: Path,
) -> None:
    """300 shoppers and 3,000 CRM sign-ups who never visited nor ordered: the purchase model
    gives the sign-ups one score (0.0016). Deciles were equal-sized with ties broken by
    customer_id, so deciles 1-9 all held that one score and decile 10 held it too: an
    audience on "decile >= 5" took 1,972 customers, 1,685 of them sign-ups picked by their
    id. Now equal scores share a decile (the one where their lowest rank falls) and
    "decile >= k" never holds more than (11 - k) * 10% of the customers."""
    wh = _shop(tmp_path, 300)
    add_never_active_crowd(wh, 3000)
    run_propensity(_settings(wh), AS_OF)
    scores = read_frame(
        wh,
        "select model_name, customer_id, score, decile from ml.propensity_scores "
        "where as_of_date = ?",
        [AS_OF],
    )
    for model, group in scores.groupby("model_name"):
        per_score = group.groupby("score")["decile"].nunique()
        assert (per_score == 1).all(), (model, per_score[per_score > 1])
        for k in range(2, 11):
            chosen = group[group["decile"] >= k]
            assert len(chosen) <= (11 - k) * len(group) / 10, (model, k, len(chosen))
            rest = group[group["decile"] < k]
            assert rest.empty or chosen.empty or rest["score"].max() < chosen["score"].min()
    purchase = scores[scores["model_name"] == "purchase"]
    crowd = purchase[purchase["customer_id"].str.startswith("n")]
    assert len(crowd) == 3000 and set(crowd["decile"]) == {1}
    assert purchase.loc[purchase["decile"] >= 5, "customer_id"].str.startswith("c").all()
    # The holdout table uses the same deciles: every holdout customer counted once, the
    # deciles the crowd's block spans beyond its own are empty (0 rows, no lift).
    table = read_frame(
        wh,
        "select decile, metric, value from ml.model_metrics where model_name = 'purchase' "
        "and scorer = 'model' and decile is not null",
    ).pivot(index="decile", columns="metric", values="value")
    holdout_rows = read_frame(
        wh,
        "select value from ml.model_metrics where model_name = 'purchase' "
        "and scorer = 'model' and metric = 'rows'",
    )["value"].iloc[0]
    assert table["decile_rows"].sum() == holdout_rows
    assert table.loc[1, "decile_rows"] > 0.9 * holdout_rows and table.loc[1, "lift"] < 0.2
    assert table.loc[10, "lift"] > 5
    empty = table[table["decile_rows"] == 0]
    assert len(empty) >= 5 and empty["lift"].isna().all()


def test_a_b2b_account_far_beyond_every_customer_is_named(tmp_path: Path) -> None:
    """One account ordering 40 times a day beside a few hundred shoppers (generated shop:
    4,000 orders where 99% of the customers had at most 9): the trees never saw anyone like
    it and scored it purchase 0.215 (decile 7) and churn 0.474, in silence. The night names
    it, with the feature, the shop's 99th percentile and its score."""
    from tests.ml.propensity.simshop import (
        DAYS,
        build_snapshots,
        simulate_activity,
        snapshot_dates,
        write_activity,
    )

    activity = simulate_activity(300, DAYS, AS_OF, 3)
    days = sorted(activity["activity_date"].unique())
    b2b = pd.DataFrame({column: 0 for column in activity.columns}, index=range(len(days)))
    b2b = b2b.assign(
        customer_id="b2b-account",
        activity_date=days,
        sessions=40,
        orders=40,
        revenue=200_000.0,
        session_duration_s=400.0,
    )[activity.columns]
    wh = tmp_path / "warehouse" / "segmint.duckdb"
    wh.parent.mkdir(parents=True)
    write_activity(wh, pd.concat([activity, b2b], ignore_index=True))
    build_snapshots(wh, snapshot_dates(AS_OF))
    # gate_p_value 1: both models score (the churn model's lead over the recency rule is
    # within the noise of 300 customers; this test is about the scores' warning).
    result = run_propensity(_settings(wh, gate_p_value=1.0), AS_OF)
    named = [w for w in result.warnings if "beyond any example" in w]
    assert [w.split(":")[0] for w in named] == ["purchase", "churn"], result.warnings
    scores = read_frame(
        wh,
        "select model_name, score, decile from ml.propensity_scores "
        "where customer_id = 'b2b-account' order by model_name desc",
    )
    for warning, score in zip(named, scores.itertuples(), strict=True):
        assert re.fullmatch(
            rf"{score.model_name}: 1 customer\(s\) with a feature over 100x the 99th percentile "
            r"of tonight's customers with a positive value, beyond any example the model's "
            r"trees learnt from \(a reseller or B2B account\?\); their scores are not to be "
            r"trusted: b2b-account \(\w+ [\d,]+, where 99% of those above 0 have at most "
            rf"[\d,]+; score {score.score:.3f}, decile {score.decile}\)",
            warning,
        ), warning


def test_an_account_named_far_beyond_by_its_address_is_hashed() -> None:
    """The far-beyond warning goes to the task log and the XCom: a customer id that is an
    e-mail address is named as the analysts' copy shows it, the same hash DuckDB's masking
    SQL gives (segmint.audiences.masking)."""
    import duckdb

    from ml.propensity.stage import far_beyond
    from segmint.audiences.masking import id_mask_sql

    address = "Buyer@B2B.example"
    ids = [f"c{i:03d}" for i in range(200)] + [address]
    frame = pd.DataFrame({"customer_id": ids, "order_count": [3] * 200 + [4000]})
    scores = pd.DataFrame({"customer_id": ids, "score": [0.1] * 201, "decile": [5] * 201})
    warning = far_beyond("purchase", frame, ["order_count"], scores)
    with duckdb.connect() as con:
        sql = f"select {id_mask_sql('x')} from (select ? as x)"
        hashed = con.execute(sql, [address]).fetchone()[0]
    assert address not in warning
    assert f"trusted: {hashed} (order_count 4,000" in warning
    assert (
        far_beyond(
            "purchase", frame.assign(customer_id=[*ids[:200], "b2b"]), ["order_count"], scores
        ).count("b2b (")
        == 1
    )


class _ProbabilityOfColumn:
    """A fitted classifier's interface, its probability the column ``p`` as given: the
    model returning NaN for a customer (a calibrator outside its range, a broken model
    file), which scikit-learn's own estimators here do not do on demand."""

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        p = x["p"].to_numpy(dtype=float)
        return np.column_stack([1 - p, p])


def test_a_customer_the_model_gives_nan_gets_no_score_and_no_decile() -> None:
    """NaN sorts last in numpy, so the deciles put a NaN score in decile 10 and the top
    audiences took the customer the model could not score. Now such a customer has no row
    (no decile, no score-based audience), the others keep their deciles, and the night
    says how many."""
    from ml.propensity.stage import far_beyond, score_frame, unscored_warning

    ids = [f"c{i:03d}" for i in range(200)]
    p = [*np.linspace(0.01, 0.9, 199), np.nan]
    frame = pd.DataFrame({"customer_id": ids, "p": p, "order_count": [1] * 199 + [900]})
    scores = score_frame(_ProbabilityOfColumn(), frame, ["p"], [], "purchase", AS_OF, "v", "r")
    assert list(scores["customer_id"]) == ids[:199]
    assert not scores["score"].isna().any()
    assert scores["decile"].tolist() == [1 + i * 10 // 199 for i in range(199)]
    assert unscored_warning("purchase", frame, scores) == (
        "purchase: 1 customer(s) got no score (the model returned NaN or an infinite value "
        "for them): they are in no decile and in no score-based audience"
    )
    assert unscored_warning("purchase", frame[:199], scores) is None
    # The account the trees never saw is named, with no score rather than its neighbour's.
    assert "c199 (order_count 900, where 99% of those above 0 have at most 1; no score)" in (
        far_beyond("purchase", frame, ["order_count"], scores)
    )


def test_a_higher_auc_within_the_holdout_noise_is_not_published(tmp_path: Path) -> None:
    # 100 customers, 92 holdout rows with 24 buyers: the model's AUC 0.764 beat the BG/NBD
    # rule's 0.726 and was published, a gap a pair of equal scorers shows one night in four
    # (DeLong p = 0.25). Now the gate needs p below [propensity] gate_p_value (0.05).
    wh = _shop(tmp_path, 100)
    template = wh.read_bytes()
    result = run_propensity(_settings(wh), AS_OF)
    detail = result.details["purchase"]
    holdout = detail["holdout"]
    best = max(("baseline_recency", "baseline_bgnbd"), key=lambda s: holdout[s]["roc_auc"])
    assert holdout["model"]["roc_auc"] > holdout[best]["roc_auc"]
    p_value = holdout[best]["model_better_p_value"]
    assert 0.05 < p_value < 1
    assert detail["status"] == "not_published"
    assert re.fullmatch(
        rf"purchase: holdout AUC 0\.\d{{3}} does not beat {best} 0\.\d{{3}} beyond chance "
        rf"\(p = {p_value:.2f}, needs below 0\.05, on 92 holdout customers, 24 positive\): a "
        r"gap this small is within the holdout's noise; not published",
        detail["message"],
    ), detail["message"]
    stored = read_frame(
        wh,
        "select scorer, value from ml.model_metrics where model_name = 'purchase' "
        "and metric = 'model_better_p_value'",
    ).set_index("scorer")["value"]
    assert set(stored.index) == {"baseline_recency", "baseline_bgnbd"}
    assert stored[best] == pytest.approx(p_value)
    runs = read_frame(wh, "select model_name, status from ml.model_runs")
    assert runs.set_index("model_name").loc["purchase", "status"] == "not_published"
    # No earlier model: no model's probabilities, but the rule the gate compared against
    # ranks tonight's customers (before: no purchase scores at all, and every audience on a
    # purchase decile waited). Labelled as the rule's: ranked_by, model_version, a score
    # that is a rank (the share of customers ranked below), not a probability.
    ranked = read_frame(
        wh,
        "select customer_id, score, decile, ranked_by, model_version from ml.propensity_scores "
        "where model_name = 'purchase' and as_of_date = ?",
        [AS_OF],
    )
    known = read_frame(
        wh,
        "select count(*) n from marts.customer_feature_history where as_of_date = ?",
        [AS_OF],
    ).iloc[0, 0]
    assert len(ranked) == known > 0
    assert set(ranked["ranked_by"]) == {best} and set(ranked["model_version"]) == {best}
    assert ranked["score"].between(0, 1, inclusive="left").all()
    assert (ranked["decile"] == 1 + np.floor(10 * ranked["score"] + 1e-9)).all()
    assert detail["model_version"] == best
    assert any(
        w.startswith(f"purchase: tonight's {len(ranked)} purchase scores rank customers by the ")
        and f"({best}; the best rule on the holdout, AUC {holdout[best]['roc_auc']:.3f}), not "
        "by a model"
        in w
        for w in result.warnings
    ), result.warnings
    # The ranking is the rule's: the holdout's top-decile buyers found by it, on tonight's
    # snapshot, follow its raw score (recomputed from the features).
    from ml.propensity import baselines

    features = read_frame(
        wh, "select * from marts.customer_feature_history where as_of_date = ?", [AS_OF]
    ).merge(ranked[["customer_id", "score"]], on="customer_id")
    raw = (
        baselines.recency_score(features, "purchase")
        if best == "baseline_recency"
        else baselines.bgnbd_score(features, "purchase", 30, baselines.fit_bgnbd(features))
    )
    assert pd.Series(raw).rank().corr(features["score"].rank()) > 0.999
    # gate_p_value = 1: any higher AUC publishes, as before.
    wh.write_bytes(template)
    loose = run_propensity(_settings(wh, gate_p_value=1.0), AS_OF)
    assert loose.details["purchase"]["status"] == "published"
    for wrong in (0, 1.5):
        with pytest.raises(ConfigError, match="gate_p_value must be above 0 and at most 1"):
            PropensitySettings(gate_p_value=wrong)


@pytest.mark.filterwarnings("error")
def test_a_rules_ranking_of_nobody_is_empty_without_a_warning() -> None:
    """No eligible customer tonight (a churn model with nobody active): the BG/NBD rule was
    fitted on an empty snapshot ("Mean of empty slice"); nobody to rank is no rows."""
    from ml.propensity.stage import rule_frame

    empty = pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype=object),
            **{
                c: pd.Series([], dtype=float)
                for c in ("recency_days", "order_count", "days_since_last_visit", "tenure_days")
            },
            "first_seen_at": pd.Series([], dtype="datetime64[ns]"),
            "last_order_at": pd.Series([], dtype="datetime64[ns]"),
        }
    )
    for rule in ("baseline_recency", "baseline_bgnbd"):
        ranked = rule_frame(empty, rule, "churn", 30, AS_OF, "run")
        assert ranked.empty and "ranked_by" in ranked.columns
