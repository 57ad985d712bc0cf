"""Saving and loading fitted pipelines with their metadata.

A model is two files under the artifacts folder: ``<name>/<run_id>.joblib`` and a JSON
sidecar ``<name>/<run_id>.json`` (run id, as-of date, training window, feature list,
parameters, metrics, library versions). Loading checks the sidecar first: a model saved by
another scikit-learn version is refused, and only files segmint itself wrote (listed with
their sha256 in the sidecar) are unpickled.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from segmint.outputs import written_atomically
from segmint.stages import SegmintError, plural


class ModelVersionError(SegmintError):
    """The artifact was written by other library versions and is not loaded."""


def library_versions() -> dict[str, str]:
    """Installed versions, read from the package metadata (importing scikit-learn only to
    read its version would cost a stage that does not use it about a second)."""
    from importlib.metadata import version

    return {name: version(name) for name in ("scikit-learn", "numpy", "pandas", "duckdb")}


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@dataclass
class ModelMetadata:
    run_id: str
    model_name: str
    as_of_date: str
    features: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training_window: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=library_versions)
    git_revision: str | None = field(default_factory=git_revision)
    sha256: str | None = None
    # What the training night measured (holdout metric rows, importance), repeated by the
    # nights that score with this model without retraining. Empty in older sidecars.
    evaluation: dict[str, Any] = field(default_factory=dict)


def _paths(artifacts_dir: Path, model_name: str, run_id: str) -> tuple[Path, Path]:
    folder = Path(artifacts_dir) / model_name
    return folder / f"{run_id}.joblib", folder / f"{run_id}.json"


def save_model(artifacts_dir: Path, model: Any, meta: ModelMetadata) -> Path:
    """Write the model and its sidecar; return the model file's path."""
    import joblib

    model_path, meta_path = _paths(artifacts_dir, meta.model_name, meta.run_id)
    with written_atomically(model_path) as tmp:
        joblib.dump(model, tmp)
        meta.sha256 = hashlib.sha256(tmp.read_bytes()).hexdigest()
    with written_atomically(meta_path) as tmp:
        tmp.write_text(json.dumps(asdict(meta), indent=2, default=str))
    return model_path


def read_metadata(artifacts_dir: Path, model_name: str, run_id: str) -> ModelMetadata:
    """The sidecar of a saved model (no unpickling); unknown keys are ignored."""
    _, meta_path = _paths(artifacts_dir, model_name, run_id)
    if not meta_path.exists():
        raise SegmintError(f"model {model_name}/{run_id} not found under {artifacts_dir}")
    raw = json.loads(meta_path.read_text())
    known = {f.name for f in fields(ModelMetadata)}
    return ModelMetadata(**{k: v for k, v in raw.items() if k in known})


def load_model(artifacts_dir: Path, model_name: str, run_id: str) -> tuple[Any, ModelMetadata]:
    """Load a model saved by :func:`save_model`, refusing foreign or mismatched files."""
    import joblib

    meta = verify_model(artifacts_dir, model_name, run_id)
    return joblib.load(_paths(artifacts_dir, model_name, run_id)[0]), meta


def verify_model(artifacts_dir: Path, model_name: str, run_id: str) -> ModelMetadata:
    """The sidecar of a model :func:`load_model` would load, checked as it checks it (files
    present, same scikit-learn, checksum), without unpickling: raises what it would raise."""
    model_path, meta_path = _paths(artifacts_dir, model_name, run_id)
    if not meta_path.exists() or not model_path.exists():
        raise SegmintError(f"model {model_name}/{run_id} not found under {artifacts_dir}")
    meta = read_metadata(artifacts_dir, model_name, run_id)
    current = library_versions()
    saved = meta.library_versions.get("scikit-learn")
    if saved != current["scikit-learn"]:
        raise ModelVersionError(
            f"{model_path} was saved with scikit-learn {saved}, this is "
            f"{current['scikit-learn']}; retrain instead of loading it"
        )
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if digest != meta.sha256:
        raise ModelVersionError(f"{model_path} does not match the checksum in its sidecar")
    return meta


@dataclass
class Registered:
    """A model that ``ml.model_runs`` records as published, loaded from the registry.

    ``refused`` holds the reason when its files cannot be trusted (another scikit-learn,
    a checksum that does not match, files gone): the caller retrains instead of using it.
    """

    run_id: str
    as_of_date: date
    model: Any = None
    meta: ModelMetadata | None = None
    refused: str | None = None


def latest_published(
    warehouse: Path,
    artifacts_dir: Path,
    model_name: str,
    as_of: date,
    *,
    strictly_before: bool,
    horizon_days: int | None = None,
    load: bool = True,
) -> Registered | None:
    """The newest published model of ``model_name`` of an as-of date before ``as_of`` (or on
    it, unless ``strictly_before``), for ``horizon_days`` when given; None when there is none.
    ``load=False`` checks its files and reads its sidecar without unpickling the model
    (``model`` stays None): enough to decide whether it may score.

    Looking strictly before tonight makes a rerun of a night decide as the night did.
    """
    from segmint.warehouse import connect, table_exists

    if not Path(warehouse).exists():
        return None
    con = connect(warehouse, read_only=True)
    try:
        if not table_exists(con, "ml.model_runs"):
            return None
        horizon = "and try_cast(params->>'horizon_days' as integer) = ? " if horizon_days else ""
        row = con.execute(
            "select run_id, as_of_date from ml.model_runs where model_name = ? "
            f"and status = 'published' and as_of_date {'<' if strictly_before else '<='} ? "
            f"{horizon}order by as_of_date desc, created_at desc limit 1",
            [model_name, as_of, *([horizon_days] if horizon_days else [])],
        ).fetchone()
    finally:
        con.close()
    if row is None:
        return None
    found = Registered(run_id=row[0], as_of_date=row[1])
    try:
        if load:
            found.model, found.meta = load_model(artifacts_dir, model_name, row[0])
        else:
            found.meta = verify_model(artifacts_dir, model_name, row[0])
    except SegmintError as exc:  # ModelVersionError included
        found.refused = str(exc)
    return found


def cadence_reason(
    registered: Registered | None, as_of: date, every_days: int, missing: str
) -> str | None:
    """Why a model trained on a cadence must be retrained tonight, as far as the registered
    model's age and files tell (None: it may score tonight). ``missing`` is the reason when
    there is no registered model."""
    if every_days <= 0:
        return "retrain_every_days = 0 (train every night)"
    if registered is None:
        return missing
    if registered.refused:
        return f"registered model {registered.run_id} refused ({registered.refused})"
    age = (as_of - registered.as_of_date).days
    if age >= every_days:
        return (
            f"registered model {registered.run_id} is {plural(age, 'day')} old (retrain every "
            f"{plural(every_days, 'day')})"
        )
    return None


@dataclass
class Pruned:
    """What :func:`prune_models` deleted: the model runs and the bytes their files held."""

    run_ids: list[str] = field(default_factory=list)
    bytes: int = 0
    oldest_kept_night: date | None = None


def prune_models(warehouse: Path, artifacts_dir: Path, keep_nights: int) -> Pruned:
    """Delete the model files no night still needs; ``keep_nights = 0`` deletes nothing.

    A file is deleted only when ``ml.model_runs`` names its run (a file it does not know,
    such as one a failed stage left or another warehouse's, stays) and no row of the newest
    ``keep_nights`` nights in ``ml.model_runs`` uses it (fitted there, or scored with it:
    its ``artifact_path``), and it is not the newest published model of its kind and
    propensity horizon (the one the next night scores with, whatever its age). The rows of
    ``ml.model_runs`` stay: the report and the registry's history read them, not the files.
    """
    from segmint.warehouse import connect, table_exists

    pruned = Pruned()
    folder = Path(artifacts_dir)
    if keep_nights <= 0 or not folder.is_dir() or not Path(warehouse).exists():
        return pruned
    con = connect(warehouse, read_only=True)
    try:
        if not table_exists(con, "ml.model_runs"):
            return pruned
        oldest = con.execute(
            "select min(as_of_date) from (select distinct as_of_date from ml.model_runs "
            "order by as_of_date desc limit ?)",
            [keep_nights],
        ).fetchone()[0]
        known = {r[0] for r in con.execute("select run_id from ml.model_runs").fetchall()}
        needed = con.execute(
            """
            select run_id, artifact_path from ml.model_runs where as_of_date >= ?
            union all
            select run_id, artifact_path from ml.model_runs where status = 'published'
            qualify row_number() over (
                partition by model_name, coalesce(params->>'horizon_days', '')
                order by as_of_date desc, created_at desc
            ) = 1
            """,
            [oldest],
        ).fetchall()
    finally:
        con.close()
    keep = {run_id for run_id, _ in needed} | {Path(p).stem for _, p in needed if p}
    pruned.oldest_kept_night = oldest
    for path in sorted(folder.glob("*/*")):
        if path.suffix not in (".joblib", ".json") or path.stem not in known - keep:
            continue
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        pruned.bytes += size
        if path.stem not in pruned.run_ids:
            pruned.run_ids.append(path.stem)
    return pruned
