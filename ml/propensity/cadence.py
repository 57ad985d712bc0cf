"""When a propensity model retrains: the one decision the score stage takes and the
transform stage asks before it, to build the cut-off snapshots a retrain reads.

Importing this module is cheap (no pandas, no scikit-learn): the transform stage imports it
before dbt starts. See docs/propensity.md, "Cadence".
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from ml.registry import Registered, cadence_reason, latest_published
from segmint.config import Settings

if TYPE_CHECKING:
    from ml.propensity.dataset import FeatureSpec


def training_settings(settings: Settings, horizon: int) -> dict[str, Any]:
    """The settings a trained model depends on: a change means the model must be retrained."""
    cfg = settings.propensity
    return {
        "horizon_days": horizon,
        "active_lookback_days": cfg.active_lookback_days,
        "training_cutoffs": cfg.training_cutoffs,
        "min_history_days": cfg.min_history_days,
        "random_state": cfg.random_state,
    }


def feature_vars(settings: Settings) -> dict[str, str] | None:
    """The dbt vars the feature history is built with (segmint.transform.feature_vars: the
    feature windows, the session gap, the device and content types), as a model records
    them; None when the dbt project cannot be read (nothing to compare)."""
    from segmint.stages import SegmintError
    from segmint.transform import feature_vars as dbt_feature_vars

    try:
        return dbt_feature_vars(settings)
    except SegmintError:
        return None


def changed_vars(settings: Settings, params: dict[str, Any]) -> str | None:
    """The feature vars whose value differs from the one a model recorded (``params``),
    in words, "favourite_category_days 90 -> 60, ..."; None when none did, or when the model
    recorded none (trained before 2026-12-07) or the dbt project cannot be read."""
    then, now = params.get("feature_vars"), feature_vars(settings)
    if not isinstance(then, dict) or now is None:
        return None
    changed = [
        f"{name} {then.get(name, 'unset')} -> {v}" for name, v in now.items() if then.get(name) != v
    ]
    return ", ".join(changed) or None


def registered_before(
    settings: Settings, model_name: str, as_of: date, horizon_days: int, load: bool = True
) -> Registered | None:
    """The newest published model of an as-of date strictly before ``as_of`` (``load=False``:
    its files checked and its sidecar read, the model not unpickled)."""
    return latest_published(
        settings.warehouse,
        settings.artifacts_dir,
        model_name,
        as_of,
        strictly_before=True,
        horizon_days=horizon_days,
        load=load,
    )


def retrain_reason(
    settings: Settings,
    as_of: date,
    model_name: str,
    horizon: int,
    spec: FeatureSpec | None,
    registered: Registered | None,
) -> str | None:
    """Why tonight must train ``model_name`` (None: score with the registered model).
    ``spec`` None leaves the feature columns out (the transform stage asks before dbt has
    built tonight's; a change of them makes dbt rebuild the feature history in full, cut-off
    snapshots included)."""
    every = settings.propensity.retrain_every_days
    missing = f"no {horizon}-day model published before {as_of}"
    reason = cadence_reason(registered, as_of, every, missing)
    if reason is not None or registered is None:
        return reason
    params = registered.meta.params if registered.meta else {}
    if spec is not None and params.get("feature_spec") != spec.columns:
        return f"feature schema changed since {registered.run_id} was trained"
    changed = changed_vars(settings, params)
    if changed:
        return (
            f"feature definition changed since {registered.run_id} was trained "
            f"(dbt vars: {changed})"
        )
    wanted = training_settings(settings, horizon)
    if {key: params.get(key) for key in wanted} != wanted:
        return f"training settings changed since {registered.run_id} was trained"
    return None


def retrain_due(settings: Settings, as_of: date) -> str | None:
    """Why a propensity model retrains tonight, as far as it is known before the marts are
    built (:func:`retrain_reason` without the feature columns; None: both score with their
    registered model unless tonight's scores drift). Nothing is unpickled."""
    prop = settings.propensity
    for name, horizon in (("purchase", prop.horizon_days), ("churn", prop.churn_horizon)):
        registered = registered_before(settings, name, as_of, horizon, load=False)
        reason = retrain_reason(settings, as_of, name, horizon, None, registered)
        if reason is not None:
            return f"{name}: {reason}"
    return None
