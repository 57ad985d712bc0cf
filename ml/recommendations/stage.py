"""The ``recommend`` stage: evaluate on a time-based holdout, gate, fit, write top-N lists.

1. Read customers, products and interactions up to ``as_of`` (:mod:`ml.recommendations.data`).
2. Holdout: the purchases of the last ``holdout_days`` days are hidden; the model and the
   popularity baseline are built from the earlier interactions only (ages re-measured from
   the cut-off) and their top lists are scored against the hidden purchases of products
   the customer had not bought before (precision@k, recall@k, MAP@k, catalogue coverage).
3. Gate: the model (collaborative filtering with its cold-start chain) is published only
   when its recall@10 beats popularity's; otherwise popularity is published and the run
   says so in its warnings.
4. The published lists are rebuilt from every interaction up to ``as_of`` and written to
   ``ml.recommendations`` with the metrics and the ``ml.model_runs`` row in one transaction,
   replacing the same as-of date's rows.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.io import MODEL_METRICS_DDL, TableWrite, json_safe, new_run_id, write_outputs
from ml.recommendations import interactions as ix
from ml.recommendations import rank
from ml.recommendations.als import Factors, fit_als, fit_svd
from ml.recommendations.data import Inputs, Segments, load_inputs, load_segments
from ml.recommendations.metrics import ranking_metrics
from ml.registry import (
    ModelMetadata,
    Registered,
    cadence_reason,
    git_revision,
    latest_published,
    library_versions,
    load_model,
    save_model,
)
from segmint.config import RecommendationSettings, Settings
from segmint.stages import SegmintError, StageResult, plural

log = logging.getLogger(__name__)

MODEL_NAME = "recommendations"
GATE_K = 10

RECOMMENDATIONS_DDL = """
create table if not exists ml.recommendations (
    customer_id varchar not null,
    as_of_date date not null,
    rank integer not null,
    product_id varchar not null,
    score double not null,
    source varchar not null,
    run_id varchar not null
)
"""


@dataclass
class Context:
    """What the lists need besides the interactions: catalogue, tastes, segments."""

    n_customers: int
    n_products: int
    n_categories: int
    product_category: np.ndarray
    repeatable: np.ndarray
    favourite: np.ndarray  # category code per customer (-1: none)
    segment: np.ndarray | None  # segment code per customer (-1: none); None: no segments
    n_segments: int = 0
    visits: ix.Visits | None = None  # products seen by visitors who never logged in, by age


@dataclass
class Built:
    lists: rank.Lists
    factors: Factors | None
    warm_customers: int
    matrix_nnz: int


def repeatable_products(
    product_ids: np.ndarray,
    product_category: np.ndarray,
    categories: np.ndarray,
    cfg: RecommendationSettings,
) -> np.ndarray:
    """True for products that may be recommended again after a purchase."""
    by_id = np.isin(product_ids.astype(str), np.asarray(cfg.repeatable_product_ids, dtype=str))
    wanted = np.flatnonzero(np.isin(categories.astype(str), list(cfg.repeatable_categories)))
    return by_id | np.isin(product_category, wanted)


def fit_factors(
    matrix,
    cfg: RecommendationSettings,
    factors: int,
    method: str = "als",
    init: Factors | None = None,
) -> Factors:
    """Fit the factor model; with ``init`` (ALS only), ``refit_iterations`` sweeps from it."""
    if method == "svd":
        return fit_svd(matrix, factors, cfg.random_state)
    return fit_als(
        matrix,
        factors=factors,
        regularization=cfg.regularization,
        alpha=cfg.alpha,
        iterations=cfg.iterations if init is None else cfg.refit_iterations,
        cg_steps=cfg.cg_steps,
        random_state=cfg.random_state,
        init=init,
    )


def _als(matrix, cfg: RecommendationSettings, factors: int, sweeps: int, init=None) -> Factors:
    return fit_als(
        matrix,
        factors=factors,
        regularization=cfg.regularization,
        alpha=cfg.alpha,
        iterations=sweeps,
        cg_steps=cfg.cg_steps,
        random_state=cfg.random_state,
        init=init,
    )


@dataclass
class Prepared:
    """What every list built from one set of interactions shares."""

    inter: ix.Interactions
    excluded: np.ndarray  # sorted purchased keys not to recommend again
    sold: np.ndarray  # decayed sales per product
    order: np.ndarray  # products, best sellers first
    interest: np.ndarray  # all interaction weight per product (tie-break)
    matrix: Any  # CSR customer x product weights
    candidates: np.ndarray  # products that may be picked collaboratively (ix.candidates)
    active: np.ndarray  # products that may be recommended at all (ix.active_products)
    shared: np.ndarray  # products at least two customers interacted with (the factors' columns)

    def fit(self, fit, init: Factors | None = None) -> Factors:
        """``fit(matrix, init)`` on the ``shared`` products' columns only; the other products
        get zero factors. A product one customer touched co-occurs with nothing, yet its
        factors entered every customer's normal equations (the Gram matrix Y'Y): a crawler's
        200k single-viewer products took the generated shop's holdout recall@10 from 0.0744
        to 0.0700 and changed the factor count chosen."""
        if self.shared.all():
            return fit(self.matrix, init)
        columns = np.flatnonzero(self.shared)
        start = None if init is None else Factors(init.user, init.item[columns])
        got = fit(self.matrix[:, columns], start)
        item = np.zeros((self.matrix.shape[1], got.item.shape[1]), dtype=got.item.dtype)
        item[columns] = got.item
        return Factors(got.user, item)


def prepare(inter: ix.Interactions, ctx: Context, cfg: RecommendationSettings) -> Prepared:
    weights = ix.interaction_weights(
        inter, cfg.view_weight, cfg.cart_weight, cfg.purchase_weight, cfg.half_life_days
    )
    sold, order = ix.popularity(inter, ctx.n_products, cfg.half_life_days, weights)
    interest = np.bincount(inter.product, weights=weights, minlength=ctx.n_products)
    matrix = ix.build_matrix(
        inter.customer, inter.product, weights, (ctx.n_customers, ctx.n_products)
    )
    active = ix.active_products(inter, ctx.n_products, cfg.active_product_days, ctx.visits)
    return Prepared(
        inter=inter,
        excluded=ix.purchased_keys(inter, ctx.n_products, ctx.repeatable),
        sold=sold,
        order=order,
        interest=interest,
        matrix=matrix,
        candidates=ix.candidates(matrix, interest, cfg.max_candidate_products, active),
        active=active,
        shared=ix.shared_products(matrix),
    )


def build_lists(
    prep: Prepared,
    ctx: Context,
    customers: np.ndarray,
    cfg: RecommendationSettings,
    n: int,
    factors: Factors | None,
    allowed: np.ndarray | None = None,
) -> Built:
    """Top-``n`` lists for ``customers`` (codes).

    With ``factors``: collaborative picks for warm customers, then content, segment-popular
    and popular; without: popular only (the baseline). Purchased, non-repeatable products are
    never recommended.

    Each fallback block offers a customer the first ``n + b`` candidates of its ranking,
    ``b`` being the number of products the customer may not get again: enough for ``n``
    picks whatever was bought or already picked by an earlier block, so the lists are the
    ones a block of any greater width gives. Customers are merged in groups of equal width
    (``n + b`` rounded up to a power of two), not at the width of the heaviest buyer.
    """
    n_products = max(ctx.n_products, 1)
    per_customer = np.bincount(prep.excluded // n_products, minlength=ctx.n_customers)
    need = n + per_customer[customers]
    widest = min(int(need.max()) if len(customers) else n, ctx.n_products)
    sold = prep.sold
    # Best sellers, then the products nobody bought yet by interest (views, cart adds): a
    # shop where little or nothing has sold still fills its lists, with score 0.
    ranked = prep.order[prep.active[prep.order]][:widest]
    top = ranked[(sold[ranked] > 0) | (prep.interest[ranked] > 0)]
    popular_table = np.full((1, widest), -1, dtype=np.int32)
    popular_table[0, : len(top)] = top
    popular_scores = np.where(popular_table >= 0, sold[np.maximum(popular_table, 0)], 0.0)
    tables = [("popular", np.zeros(ctx.n_customers, dtype=np.int32), popular_table, popular_scores)]
    collaborative = None
    warm = np.zeros(len(customers), dtype=bool)
    if factors is not None:
        warm = np.diff(prep.matrix.indptr)[customers] >= cfg.min_interactions
        allowed = prep.candidates if allowed is None else prep.candidates & allowed
        collaborative = rank.collaborative_block(
            factors.user, factors.item, customers, warm, prep.excluded, n, allowed=allowed
        )
        content_table = ix.top_by_group(
            np.where(prep.active, ctx.product_category, -1),
            sold,
            prep.interest,
            ctx.n_categories,
            widest,
        )
        content_scores = np.where(content_table >= 0, sold[np.maximum(content_table, 0)], 0.0)
        fallbacks = [("content", ctx.favourite, content_table, content_scores)]
        if ctx.segment is not None and ctx.n_segments:
            seg_table, seg_scores = ix.group_popularity(
                ctx.segment,
                prep.inter,
                ctx.n_segments,
                ctx.n_products,
                cfg.half_life_days,
                widest,
                prep.interest,
                prep.active,
            )
            fallbacks.append(("segment-popular", ctx.segment, seg_table, seg_scores))
        tables = fallbacks + tables

    width = np.minimum(2 ** np.ceil(np.log2(np.maximum(need, 16))).astype(np.int64), widest)
    parts = []
    for w in np.unique(width):
        idx = np.flatnonzero(width == w)
        who = customers[idx]
        blocks = []
        if collaborative is not None:
            blocks.append(
                rank.Block("collaborative", collaborative.products[idx], collaborative.scores[idx])
            )
        for source, group, table, scores in tables:
            g = group[who] if source != "popular" else np.zeros(len(who), dtype=np.int32)
            blocks.append(rank.table_block(source, g, table[:, :w], scores[:, :w]))
        part = rank.merge(blocks, who, prep.excluded, ctx.n_products, n)
        part.customer = idx[part.customer]
        parts.append(part)
    lists = rank.concat(parts)
    if factors is None:
        return Built(lists, None, 0, 0)
    return Built(lists, factors, int(warm.sum()), int(prep.matrix.nnz))


@dataclass
class Evaluation:
    customers: int
    metrics: dict[str, dict[str, float]]  # scorer -> metric -> value
    warm_share: float
    cutoff: date
    training_rows: int
    factors: Factors | None = None
    chosen_factors: int = 0
    # factors -> recall@10 on the selection half (empty with a single candidate)
    selection: dict[int, float] = dataclasses.field(default_factory=dict)
    selection_customers: int = 0


def evaluate(
    inputs: Inputs,
    ctx: Context,
    segments: Segments | None,
    cfg: RecommendationSettings,
    as_of: date,
    method: str = "als",
) -> Evaluation:
    """Both scorers on the holdout: trained on interactions up to ``as_of - holdout_days``.

    With several ``factors`` candidates the evaluated customers are split in two by customer
    (alternate codes): the candidates are compared on one half (recall@10), and the chosen
    one and popularity are measured on the other half only, so the gate is not judged on the
    customers the choice was made on.
    """
    inter = inputs.interactions
    days = cfg.holdout_days
    cutoff = as_of - timedelta(days=days)
    in_training = inter.age_days >= days
    train = inter.where(in_training).shifted(days)
    hidden = inter.where(~in_training & (inter.purchases > 0))
    excluded = ix.purchased_keys(train, ctx.n_products, ctx.repeatable)
    held = ix.unique_sorted(hidden.customer.astype(np.int64) * ctx.n_products + hidden.product)
    relevant = np.setdiff1d(held, excluded, assume_unique=True)
    customers = ix.unique_sorted(relevant // max(ctx.n_products, 1)).astype(np.int32)
    weights = ix.interaction_weights(
        train, cfg.view_weight, cfg.cart_weight, cfg.purchase_weight, cfg.half_life_days
    )
    # Tastes as they were at the cut-off: customer_features (as of as_of) would leak the
    # holdout, so the favourite category comes from the training interactions.
    eval_ctx = dataclasses.replace(
        ctx,
        favourite=ix.favourite_from_interactions(
            train, weights, ctx.product_category, ctx.n_customers, ctx.n_categories
        ),
        segment=None if segments is None else segments.of_customer,
        n_segments=0 if segments is None else len(segments.names),
        visits=None if ctx.visits is None else ctx.visits.shifted(days),
    )
    prep = prepare(train, eval_ctx, cfg)
    catalogue = int(np.count_nonzero(np.bincount(train.product, minlength=ctx.n_products)))

    def measure(who: np.ndarray, factors: Factors | None, ks: list[int]) -> tuple[dict, Built]:
        n = max(ks)
        built = build_lists(prep, eval_ctx, who, cfg, n, factors)
        recommended = built.lists.as_matrix(len(who), n)
        values: dict[str, float] = {}
        for k in ks:
            values.update(ranking_metrics(recommended, relevant, who, ctx.n_products, catalogue, k))
        values["evaluated_customers"] = float(len(who))
        return values, built

    candidates = list(cfg.factors)
    selection: dict[int, float] = {}
    judged = customers
    select = customers[:0]
    if len(candidates) > 1:
        select, judged = customers[customers % 2 == 0], customers[customers % 2 == 1]
    fitted: dict[int, Factors] = {}
    if len(candidates) == 1 or method != "als":
        for k in candidates:
            fitted[k] = prep.fit(lambda m, _, k=k: fit_factors(m, cfg, k, method))
            if len(candidates) > 1:
                values, _ = measure(select, fitted[k], [GATE_K])
                selection[k] = values[f"recall_at_{GATE_K}"]
        chosen = max(candidates, key=lambda k: (np.nan_to_num(selection.get(k, 0.0)), -k))
    else:
        # Candidates are compared after half the sweeps, smallest first, and the search stops
        # at the first one that does worse than the one before (recall over factor counts has
        # been unimodal on every shop measured); the chosen one then continues to the full
        # number of sweeps, which gives exactly the factors a full fit gives.
        half = max(1, cfg.iterations // 2)
        for k in sorted(candidates):
            fitted[k] = prep.fit(lambda m, _, k=k: _als(m, cfg, k, half))
            values, _ = measure(select, fitted[k], [GATE_K])
            selection[k] = values[f"recall_at_{GATE_K}"]
            if len(selection) > 1 and selection[k] < max(selection.values()):
                break
        # Best recall on the selection half; ties (and an empty half) go to fewer factors.
        chosen = max(selection, key=lambda k: (np.nan_to_num(selection[k]), -k))
        if cfg.iterations > half:
            fitted[chosen] = prep.fit(
                lambda m, init: _als(m, cfg, chosen, cfg.iterations - half, init), fitted[chosen]
            )
    k_values = sorted({GATE_K, cfg.top_n})
    model, built = measure(judged, fitted[chosen], k_values)
    popularity, _ = measure(judged, None, k_values)
    warm_share = built.warm_customers / len(judged) if len(judged) else float("nan")
    return Evaluation(
        customers=len(judged),
        metrics={"model": model, "popularity": popularity},
        warm_share=warm_share,
        cutoff=cutoff,
        training_rows=len(train),
        factors=fitted[chosen],
        chosen_factors=chosen,
        selection=selection,
        selection_customers=len(select),
    )


def gate(evaluation: Evaluation, min_customers: int = 1) -> tuple[bool, str]:
    """Publish the model only when its recall@10 beats popularity's on the holdout, or equals
    it with a better MAP@10 (a shop of a few products, where both lists hold every product),
    judged on at least ``min_customers`` customers (a shop with a handful of buyers published
    the model on a recall of 0.5 against 0.0 over one to three customers: no proof of
    anything)."""
    key = f"recall_at_{GATE_K}"
    if evaluation.customers == 0:
        return False, (
            f"no purchases of new products in the {evaluation.cutoff} holdout to evaluate on; "
            "popularity published instead of the model"
        )
    if evaluation.customers < min_customers:
        return False, (
            f"only {evaluation.customers} customers to judge the model on (buyers of new "
            f"products in the holdout after {evaluation.cutoff}"
            + ("; the other half chose the number of factors" if evaluation.selection else "")
            + f"), fewer than [recommendations] min_evaluated_customers = {min_customers}: "
            "too few to show it beats best sellers; popularity published instead of the model"
        )
    model = evaluation.metrics["model"][key]
    baseline = evaluation.metrics["popularity"][key]
    if model > baseline:
        return True, f"model recall@{GATE_K} {model:.4f} beats popularity {baseline:.4f}; published"
    # A shop with about top_n products on sale: both lists hold nearly every product a
    # customer can still buy, both recalls are 1, and only the order tells them apart.
    model_map = evaluation.metrics["model"][f"map_at_{GATE_K}"]
    baseline_map = evaluation.metrics["popularity"][f"map_at_{GATE_K}"]
    if model == baseline and model_map > baseline_map:
        return True, (
            f"model recall@{GATE_K} {model:.4f} equals popularity's, and its order is better "
            f"(MAP@{GATE_K} {model_map:.4f} against {baseline_map:.4f}); published"
        )
    return False, (
        f"model recall@{GATE_K} {model:.4f} does not beat popularity {baseline:.4f}; "
        "popularity published instead"
    )


def _context(inputs: Inputs, cfg: RecommendationSettings, favourite, segments) -> Context:
    return Context(
        n_customers=len(inputs.customer_ids),
        n_products=len(inputs.product_ids),
        n_categories=len(inputs.categories),
        product_category=inputs.product_category,
        repeatable=repeatable_products(
            inputs.product_ids, inputs.product_category, inputs.categories, cfg
        ),
        favourite=favourite,
        segment=None if segments is None else segments.of_customer,
        n_segments=0 if segments is None else len(segments.names),
        visits=inputs.visits,
    )


def recommendations_frame(
    lists: rank.Lists, customers: np.ndarray, inputs: Inputs, as_of: date, run_id: str
):
    """The lists as an Arrow table in the ``ml.recommendations`` layout.

    Ids are dictionary-encoded (codes into tonight's id arrays): DuckDB writes 2M rows of
    them several times faster than pandas object columns.
    """
    import pyarrow as pa

    def coded(codes: np.ndarray, values: np.ndarray) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(
            pa.array(np.asarray(codes, dtype=np.int32)), pa.array(values.astype(str))
        )

    n = len(lists.product)
    return pa.table(
        {
            "customer_id": coded(customers[lists.customer], inputs.customer_ids),
            "as_of_date": pa.array(np.full(n, np.datetime64(as_of, "D"))),
            "rank": pa.array(lists.rank.astype(np.int32)),
            "product_id": coded(lists.product, inputs.product_ids),
            "score": pa.array(lists.score.astype(np.float64)),
            "source": coded(lists.source, np.asarray(rank.SOURCES, dtype=object)),
            "run_id": coded(np.zeros(n, dtype=np.int32), np.asarray([run_id], dtype=object)),
        }
    )


def list_stats(
    lists: rank.Lists, n: int, customers: int, n_products: int | None = None
) -> tuple[dict[str, int], str | None]:
    """Rows per source, and a warning when some of the ``customers`` the lists were built
    for got fewer than ``n`` recommendations (saying how many got none: a customer without a
    single row was not counted, so a shop where nothing has sold yet published 0 rows for
    every customer without a word). ``n_products``: the catalogue the lists drew from; when
    it is smaller than ``n`` the warning says so (a one-product shop was told about best
    sellers and collaborative picks instead)."""
    counts = np.bincount(lists.source.astype(np.int64), minlength=len(rank.SOURCES))
    sources = {s: int(c) for s, c in zip(rank.SOURCES, counts, strict=True) if c}
    per_customer = np.bincount(lists.customer.astype(np.int64), minlength=customers)
    short = int((per_customer < n).sum())
    empty = int((per_customer == 0).sum())
    if not short:
        return sources, None
    warning = f"{short} customers got fewer than {n} recommendations"
    if empty:
        warning += f", {empty} of them none"
    if n_products is not None and n_products < n:
        warning += (
            f": marts.customer_product_daily holds only {n_products} product(s), fewer than "
            f"[recommendations] top_n = {n}, and a product a customer bought is not "
            "recommended again unless repeatable"
        )
    elif empty:
        warning += " (a product a customer bought is not recommended again unless repeatable)"
    return sources, warning


def inactive_warning(prep: Prepared, cfg: RecommendationSettings, as_of: date) -> str | None:
    """Why lists come out short when fewer than ``top_n`` products are recent enough."""
    active = int(prep.active.sum())
    if active >= cfg.top_n:
        return None
    return (
        f"only {active} of {len(prep.active)} products had an interaction in the "
        f"{plural(cfg.active_product_days, 'day')} up to {as_of} "
        "([recommendations] active_product_days); "
        "older products are not recommended"
    )


def metrics_frame(evaluation: Evaluation, run_id: str, as_of: date) -> pd.DataFrame:
    rows = [
        {"scorer": scorer, "metric": metric, "value": value}
        for scorer, values in evaluation.metrics.items()
        for metric, value in values.items()
    ]
    # The factor-count candidates, as measured on the selection half of the customers.
    rows += [
        {"scorer": f"model_factors_{k}", "metric": f"recall_at_{GATE_K}", "value": value}
        for k, value in evaluation.selection.items()
    ]
    frame = pd.DataFrame(rows, columns=["scorer", "metric", "value"])
    frame.insert(0, "as_of_date", as_of)
    frame.insert(0, "model_name", MODEL_NAME)
    frame.insert(0, "run_id", run_id)
    frame["value"] = frame["value"].astype(float)
    frame["decile"] = pd.array([None] * len(frame), dtype="Int32")
    return frame


def _nothing_to_recommend(
    warehouse, as_of: date, run_id: str, cfg: RecommendationSettings, warnings: list[str]
) -> StageResult:
    """No product interaction up to ``as_of``: replace the date's lists by none, say so."""
    message = (
        f"marts.customer_product_daily has no product views, cart adds or purchases up to "
        f"{as_of}; no recommendations written"
    )
    empty = pd.DataFrame(
        {
            "customer_id": pd.Series(dtype=object),
            "as_of_date": pd.Series(dtype="datetime64[s]"),
            "rank": pd.Series(dtype="int32"),
            "product_id": pd.Series(dtype=object),
            "score": pd.Series(dtype=float),
            "source": pd.Series(dtype=object),
            "run_id": pd.Series(dtype=object),
        }
    )
    write_outputs(
        warehouse,
        [TableWrite("ml.recommendations", empty, "as_of_date = ?", [as_of], RECOMMENDATIONS_DDL)],
        {
            "run_id": run_id,
            "model_name": MODEL_NAME,
            "as_of_date": as_of,
            "training_rows": 0,
            "params": json_safe(dataclasses.asdict(cfg)),
            "metrics": {},
            "library_versions": library_versions(),
            "git_revision": git_revision(),
            "status": "not_published",
            "message": message,
        },
    )
    return StageResult(
        stage="recommend",
        summary=message,
        details={"run_id": run_id, "published": None, "message": message},
        warnings=[*warnings, message],
    )


# Settings a fitted model depends on: a change means retraining.
FIT_SETTINGS = (
    "view_weight",
    "cart_weight",
    "purchase_weight",
    "half_life_days",
    "alpha",
    "factors",
    "regularization",
    "iterations",
    "cg_steps",
    "refit_iterations",
    "random_state",
    "holdout_days",
    "min_interactions",
    "repeatable_product_ids",
    "repeatable_categories",
    "active_product_days",
)


def fit_settings(cfg: RecommendationSettings) -> dict[str, Any]:
    return json_safe({k: getattr(cfg, k) for k in FIT_SETTINGS})


def metrics_write(metric_frame: pd.DataFrame, as_of: date) -> TableWrite:
    """Tonight's rows of ``ml.model_metrics`` for the recommender (replacing a rerun's)."""
    return TableWrite(
        "ml.model_metrics",
        metric_frame,
        "as_of_date = ? and model_name = ?",
        [as_of, MODEL_NAME],
        MODEL_METRICS_DDL,
    )


def registered_before(settings: Settings, as_of: date) -> Registered | None:
    """The newest model published on an earlier night (reruns of a night therefore decide as
    the night did)."""
    return latest_published(
        settings.warehouse, settings.artifacts_dir, MODEL_NAME, as_of, strictly_before=True
    )


def retrain_reason(
    cfg: RecommendationSettings, as_of: date, registered: Registered | None
) -> str | None:
    """Why tonight must evaluate and fit (None: rank with the registered model)."""
    missing = f"no model published before {as_of}"
    reason = cadence_reason(registered, as_of, cfg.retrain_every_days, missing)
    if reason is not None or registered is None:
        return reason
    saved = (registered.meta.params if registered.meta else {}).get("fit_settings")
    if saved != fit_settings(cfg):
        return f"settings changed since {registered.run_id} was trained"
    return None


def previous_lists(warehouse, as_of: date, model_version: str) -> tuple[date, datetime] | None:
    """The newest earlier as-of date whose lists the same model built, and when they were
    built (None: none)."""
    from segmint.warehouse import connect, table_exists

    con = connect(warehouse, read_only=True)
    try:
        if not table_exists(con, "ml.recommendations"):
            return None
        row = con.execute(
            "select as_of_date, params->>'model_version', created_at from ml.model_runs "
            "where model_name = ? and as_of_date < ? "
            "order by as_of_date desc, created_at desc limit 1",
            [MODEL_NAME, as_of],
        ).fetchone()
        if row is None or row[1] != model_version:
            return None
        present = con.execute(
            "select count(*) from ml.recommendations where as_of_date = ?", [row[0]]
        ).fetchone()[0]
    finally:
        con.close()
    return (pd.Timestamp(row[0]).date(), row[2]) if present else None


def run_recommendations(settings: Settings, as_of: date) -> StageResult:
    from threadpoolctl import threadpool_limits

    cfg = settings.recommendations
    wh = settings.warehouse
    began = time.perf_counter()
    # Visitors' days up to the evaluation's cut-off's own window too.
    visit_days = cfg.active_product_days + cfg.holdout_days if cfg.active_product_days > 0 else 0
    inputs = load_inputs(wh, as_of, visit_days)
    run_id = new_run_id(MODEL_NAME, as_of)
    warnings: list[str] = []
    if inputs.dropped_rows:
        warnings.append(
            f"{inputs.dropped_rows} interaction rows of customers missing from "
            f"marts.customer_features on {as_of} were left out"
        )
    if len(inputs.interactions) == 0:
        return _nothing_to_recommend(wh, as_of, run_id, cfg, warnings)
    cutoff = as_of - timedelta(days=cfg.holdout_days)
    segments = load_segments(wh, as_of, inputs.customer_ids)
    if segments is None:
        warnings.append("ml.customer_segments has no snapshot; segment-popular fallback skipped")
    # Production tastes: customer_features.favourite_category, else the interactions' own.
    weights = ix.interaction_weights(
        inputs.interactions,
        cfg.view_weight,
        cfg.cart_weight,
        cfg.purchase_weight,
        cfg.half_life_days,
    )
    derived = ix.favourite_from_interactions(
        inputs.interactions,
        weights,
        inputs.product_category,
        len(inputs.customer_ids),
        len(inputs.categories),
    )
    favourite = np.where(inputs.favourite >= 0, inputs.favourite, derived)
    ctx = _context(inputs, cfg, favourite, segments)
    customers = np.arange(ctx.n_customers, dtype=np.int32)

    registered = registered_before(settings, as_of)
    reason = retrain_reason(cfg, as_of, registered)
    if reason is None:
        assert registered is not None
        with threadpool_limits(limits=cfg.threads or None):
            return _reuse_night(settings, as_of, inputs, ctx, registered, run_id, warnings, began)

    eval_segments = load_segments(wh, cutoff, inputs.customer_ids)
    with threadpool_limits(limits=cfg.threads or None):
        evaluation = evaluate(inputs, ctx, eval_segments, cfg, as_of)
        publish, message = gate(evaluation, cfg.min_evaluated_customers)
        evaluated_at = time.perf_counter()
        # The published model continues from the evaluated one, with a few sweeps over all
        # interactions (the holdout days included); see docs/recommendations.md.
        prep = prepare(inputs.interactions, ctx, cfg)
        log.info(
            "collaborative candidates: %d of %d products (at least two customers, at most %d)",
            int(prep.candidates.sum()),
            ctx.n_products,
            cfg.max_candidate_products,
        )
        factors = None
        if publish and evaluation.factors is not None:
            factors = prep.fit(
                lambda m, init: fit_factors(m, cfg, evaluation.chosen_factors, init=init),
                evaluation.factors,
            )
        built = build_lists(prep, ctx, customers, cfg, cfg.top_n, factors)
    if not publish:
        warnings.append(message)

    params = json_safe(
        {
            **dataclasses.asdict(cfg),
            "method": "als",
            "chosen_factors": evaluation.chosen_factors,
            "factor_selection_recall_at_10": evaluation.selection,
            "selection_customers": evaluation.selection_customers,
            "holdout_cutoff": evaluation.cutoff,
            "customers": ctx.n_customers,
            "products": ctx.n_products,
            # Products the collaborative lists were scored on (ix.candidates).
            "collaborative_candidates": int(prep.candidates.sum()),
            "segments_as_of": None if segments is None else segments.as_of_date,
            "evaluation_segments_as_of": (
                None if eval_segments is None else eval_segments.as_of_date
            ),
            "fit_settings": fit_settings(cfg),
            "retrained": True,
            "retrain_reason": reason,
            # The model whose factors built tonight's lists (none: popularity lists).
            "model_version": run_id if publish and built.factors is not None else None,
        }
    )
    metric_frame = metrics_frame(evaluation, run_id, as_of)
    artifact_path = None
    if publish and built.factors is not None:
        meta = ModelMetadata(
            run_id=run_id,
            model_name=MODEL_NAME,
            as_of_date=as_of.isoformat(),
            features=["product_views", "cart_adds", "purchases"],
            params=params,
            metrics=json_safe(evaluation.metrics),
            training_window={"through": as_of.isoformat(), "holdout_cutoff": str(cutoff)},
            evaluation=json_safe(
                {"metric_rows": metric_frame[["scorer", "metric", "value"]].to_dict("records")}
            ),
        )
        model = {
            # Fixed-width strings: an object array of 200k ids unpickles ~10x slower.
            "customer_ids": inputs.customer_ids.astype(str),
            "product_ids": inputs.product_ids.astype(str),
            "user_factors": built.factors.user,
            "item_factors": built.factors.item,
        }
        artifact_path = str(save_model(settings.artifacts_dir, model, meta))

    recs = recommendations_frame(built.lists, customers, inputs, as_of, run_id)
    where = "as_of_date = ?"
    writes = [
        TableWrite("ml.recommendations", recs, where, [as_of], RECOMMENDATIONS_DDL),
        metrics_write(metric_frame, as_of),
    ]
    sources, shortfall = list_stats(built.lists, cfg.top_n, len(customers), ctx.n_products)
    if inactive := inactive_warning(prep, cfg, as_of):
        warnings.append(inactive)
    model_run = {
        "run_id": run_id,
        "model_name": MODEL_NAME,
        "as_of_date": as_of,
        "training_rows": built.matrix_nnz or len(inputs.interactions),
        "params": params,
        "metrics": json_safe({**evaluation.metrics, "published_sources": sources}),
        "library_versions": library_versions(),
        "git_revision": git_revision(),
        "artifact_path": artifact_path,
        "status": "published" if publish else "not_published",
        "message": message,
    }
    write_outputs(wh, writes, model_run)

    model_recall = evaluation.metrics["model"].get(f"recall_at_{GATE_K}", float("nan"))
    pop_recall = evaluation.metrics["popularity"].get(f"recall_at_{GATE_K}", float("nan"))
    if shortfall:
        warnings.append(shortfall)
    state = "model published" if publish else "popularity published"
    # Without a customer to evaluate the recalls are NaN: say so rather than print "nan".
    holdout = (
        f"holdout recall@{GATE_K} model {model_recall:.3f} vs popularity {pop_recall:.3f} "
        f"({evaluation.customers} customers)"
        if evaluation.customers
        else f"no new purchases in the {evaluation.cutoff} holdout to evaluate on"
    )
    summary = f"{state}: {recs.num_rows} recommendations for {ctx.n_customers} customers; {holdout}"
    return StageResult(
        stage="recommend",
        rows_in=len(inputs.interactions),
        rows_out=recs.num_rows,
        summary=summary,
        details=json_safe(
            {
                "run_id": run_id,
                "published": "model" if publish else "popularity",
                "message": message,
                "holdout": evaluation.metrics,
                "holdout_cutoff": evaluation.cutoff,
                "evaluated_customers": evaluation.customers,
                "evaluated_warm_share": evaluation.warm_share,
                "chosen_factors": evaluation.chosen_factors,
                "factor_selection_recall_at_10": evaluation.selection,
                "sources": sources,
                "warm_customers": built.warm_customers,
                "collaborative_candidates": int(prep.candidates.sum()),
                "evaluate_s": round(evaluated_at - began, 2),
                "total_s": round(time.perf_counter() - began, 2),
            }
        ),
        warnings=warnings,
    )


def _reuse_night(
    settings: Settings,
    as_of: date,
    inputs: Inputs,
    ctx: Context,
    registered: Registered,
    run_id: str,
    warnings: list[str],
    began: float,
) -> StageResult:
    """Rank with the registered model: fold in and re-rank only the customers whose lists
    may have changed; carry the others' lists over from the model's previous night.

    Re-ranked: customers with an interaction after the previous lists' date or loaded since
    those lists were built (a late event of an earlier day: a purchase delivered two days
    late must still leave their list), customers whose list holds a product no longer
    active (``active_product_days``), customers without a previous list, and every cold
    customer (their fallback lists follow tonight's best sellers and cost a table look-up).
    A warm customer with no new interaction keeps the list the same model gave them (no new
    purchase to exclude, same factors).
    """
    from ml.recommendations import foldin

    cfg = settings.recommendations
    model, meta = registered.model, registered.meta
    assert model is not None and meta is not None
    n_customers = ctx.n_customers
    item, known = foldin.align(model, inputs.product_ids)
    prep = prepare(inputs.interactions, ctx, cfg)
    warm = np.diff(prep.matrix.indptr) >= cfg.min_interactions
    previous_night = previous_lists(settings.warehouse, as_of, registered.run_id)
    previous = previous_night[0] if previous_night else None
    rerank = np.ones(n_customers, dtype=bool)
    if previous_night is not None:
        listed_ids, late_ids = _listed_and_late(
            settings.warehouse, as_of, *previous_night, inputs.product_ids[~prep.active]
        )
        listed = np.zeros(n_customers, dtype=bool)
        pos = foldin.positions(inputs.customer_ids, listed_ids)
        listed[pos[pos >= 0]] = True
        changed = np.zeros(n_customers, dtype=bool)
        inter = inputs.interactions
        changed[inter.customer[inter.age_days < (as_of - previous).days]] = True
        late = foldin.positions(inputs.customer_ids, late_ids)
        changed[late[late >= 0]] = True
        rerank = changed | ~listed | ~warm
    rows = np.flatnonzero(rerank).astype(np.int32)
    warm_rows = rows[warm[rows]]
    k = item.shape[1]
    start = foldin.user_start(model, inputs.customer_ids[warm_rows], k)
    user_rows = foldin.fold_in(
        prep.matrix, warm_rows, item, known, start, cfg.alpha, cfg.regularization
    )
    factors = foldin.as_factors(n_customers, warm_rows, user_rows, item)
    built = build_lists(prep, ctx, rows, cfg, cfg.top_n, factors, allowed=known)
    recs = recommendations_frame(built.lists, rows, inputs, as_of, run_id)

    carried_ids = inputs.customer_ids[~rerank]
    write = TableWrite("ml.recommendations", recs, "as_of_date = ?", [as_of], RECOMMENDATIONS_DDL)
    if previous is not None and len(carried_ids):
        write.then_sql = """
            insert into ml.recommendations
                (customer_id, as_of_date, rank, product_id, score, source, run_id)
            select r.customer_id, ?, r.rank, r.product_id, r.score, r.source, ?
            from ml.recommendations as r
            inner join {then} as carried on r.customer_id = carried.customer_id
            where r.as_of_date = ?
        """
        write.then_params = [as_of, run_id, previous]
        write.then_frame = pd.DataFrame({"customer_id": carried_ids})
    stored = (meta.evaluation or {}).get("metric_rows", [])
    metric_frame = pd.DataFrame(
        [{**r, "value": np.nan if r.get("value") is None else r["value"]} for r in stored],
        columns=["scorer", "metric", "value"],
    )
    metric_frame.insert(0, "as_of_date", as_of)
    metric_frame.insert(0, "model_name", MODEL_NAME)
    metric_frame.insert(0, "run_id", run_id)
    metric_frame["value"] = metric_frame["value"].astype(float)
    metric_frame["decile"] = pd.array([None] * len(metric_frame), dtype="Int32")
    age = (as_of - registered.as_of_date).days
    message = (
        f"ranked with the registered model {registered.run_id} (trained as of "
        f"{registered.as_of_date}, {plural(age, 'day')} ago; retrain every "
        f"{plural(cfg.retrain_every_days, 'day')})"
    )
    sources, shortfall = list_stats(built.lists, cfg.top_n, len(rows), ctx.n_products)
    if inactive := inactive_warning(prep, cfg, as_of):
        warnings.append(inactive)
    params = json_safe(
        {
            **dataclasses.asdict(cfg),
            "fit_settings": fit_settings(cfg),
            "retrained": False,
            "model_version": registered.run_id,
            "model_trained_as_of": registered.as_of_date,
            "model_age_days": age,
            "previous_lists_as_of": previous,
            "reranked_customers": len(rows),
            "folded_in_customers": len(warm_rows),
            "carried_customers": len(carried_ids) if previous is not None else 0,
            "customers": n_customers,
            "products": ctx.n_products,
            "products_unknown_to_model": int((~known).sum()),
            "collaborative_candidates": int((prep.candidates & known).sum()),
        }
    )
    write_outputs(
        settings.warehouse,
        [
            write,
            metrics_write(metric_frame, as_of),
        ],
        {
            "run_id": run_id,
            "model_name": MODEL_NAME,
            "as_of_date": as_of,
            "training_rows": 0,
            "params": params,
            "metrics": json_safe({**meta.metrics, "reranked_sources": sources}),
            "library_versions": library_versions(),
            "git_revision": git_revision(),
            "artifact_path": str(
                settings.artifacts_dir / MODEL_NAME / f"{registered.run_id}.joblib"
            ),
            "status": "reused",
            "message": message,
        },
    )
    total = _count_lists(settings.warehouse, as_of)
    if shortfall:
        warnings.append(shortfall)
    summary = (
        f"model reused: {total} recommendations for {n_customers} customers "
        f"({len(rows)} re-ranked, {len(carried_ids) if previous is not None else 0} carried "
        f"over from {previous}); {message}"
    )
    return StageResult(
        stage="recommend",
        rows_in=len(inputs.interactions),
        rows_out=total,
        summary=summary,
        details=json_safe(
            {
                "run_id": run_id,
                "published": "model",
                "retrained": False,
                "model_version": registered.run_id,
                "message": message,
                "holdout": meta.metrics,
                "previous_lists_as_of": previous,
                "reranked_customers": len(rows),
                "sources_reranked": sources,
                "warm_customers": built.warm_customers,
                "total_s": round(time.perf_counter() - began, 2),
            }
        ),
        warnings=warnings,
    )


def _listed_and_late(
    warehouse, as_of: date, previous: date, built_at: datetime, inactive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Customers with a list on ``previous``, and customers to re-rank: with an interaction
    row up to ``as_of`` loaded after ``built_at`` whatever its day (``_loaded_at`` is the
    newest load of the raw rows behind the row), or whose list holds one of the
    ``inactive`` product ids (no interaction in [recommendations] active_product_days)."""
    from segmint.warehouse import connect

    con = connect(warehouse, read_only=True)
    try:
        con.register("_inactive", pd.DataFrame({"product_id": inactive.astype(str)}))
        listed, late = (
            np.asarray(con.execute(sql, params).fetchnumpy()["customer_id"], dtype=object)
            for sql, params in (
                (
                    "select distinct customer_id from ml.recommendations where as_of_date = ?",
                    [previous],
                ),
                (
                    "select customer_id from marts.customer_product_daily "
                    "where activity_date <= ? and _loaded_at > ? "
                    "union "
                    "select customer_id from ml.recommendations "
                    "where as_of_date = ? and product_id in (select product_id from _inactive)",
                    [as_of, built_at, previous],
                ),
            )
        )
    finally:
        con.close()
    return listed, late


def _count_lists(warehouse, as_of: date) -> int:
    from segmint.warehouse import connect

    con = connect(warehouse, read_only=True)
    try:
        return int(
            con.execute(
                "select count(*) from ml.recommendations where as_of_date = ?", [as_of]
            ).fetchone()[0]
        )
    finally:
        con.close()


def erase_from_models(artifacts_dir: Path, ids: list[str]) -> tuple[list[str], list[str]]:
    """Rewrite each saved recommendations model without the rows of ``ids``.

    The model keeps a factor row per customer it was fitted on (behaviour-derived personal
    data) and is reused for days; the other models keep no per-customer rows. Returns the
    model files rewritten and those that could not be checked (not loadable: another
    scikit-learn, a checksum that does not match), which the caller names.
    """
    folder = Path(artifacts_dir) / MODEL_NAME
    rewritten: list[str] = []
    unchecked: list[str] = []
    for path in sorted(folder.glob("*.joblib")) if folder.is_dir() else []:
        try:
            model, meta = load_model(artifacts_dir, MODEL_NAME, path.stem)
        except SegmintError:
            unchecked.append(str(path))
            continue
        keep = ~np.isin(np.asarray(model["customer_ids"], dtype=str), np.asarray(ids, dtype=str))
        if keep.all():
            continue
        model["customer_ids"] = model["customer_ids"][keep]
        model["user_factors"] = model["user_factors"][keep]
        save_model(artifacts_dir, model, meta)
        rewritten.append(str(path))
    return rewritten, unchecked
