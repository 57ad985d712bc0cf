import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.registry import ModelMetadata, ModelVersionError, load_model, save_model
from segmint.stages import SegmintError


def _fitted() -> object:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression(random_state=0)).fit(x, y)


def _meta(run_id: str = "r1") -> ModelMetadata:
    return ModelMetadata(
        run_id=run_id,
        model_name="toy",
        as_of_date="2026-01-01",
        features=["a", "b", "c"],
        params={"C": 1.0},
        metrics={"auc": 0.9},
    )


def test_round_trip_keeps_predictions_and_metadata(tmp_path: Path) -> None:
    model = _fitted()
    path = save_model(tmp_path, model, _meta())
    assert path.exists()
    loaded, meta = load_model(tmp_path, "toy", "r1")
    x = np.eye(3)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert meta.features == ["a", "b", "c"]
    assert meta.library_versions["scikit-learn"]
    assert meta.sha256 and len(meta.sha256) == 64


def test_other_sklearn_version_is_refused(tmp_path: Path) -> None:
    save_model(tmp_path, _fitted(), _meta())
    sidecar = tmp_path / "toy" / "r1.json"
    data = json.loads(sidecar.read_text())
    data["library_versions"]["scikit-learn"] = "0.24.2"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(ModelVersionError, match=r"saved with scikit-learn 0\.24\.2"):
        load_model(tmp_path, "toy", "r1")


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    path = save_model(tmp_path, _fitted(), _meta())
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ModelVersionError, match="checksum"):
        load_model(tmp_path, "toy", "r1")


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SegmintError, match="not found"):
        load_model(tmp_path, "toy", "nope")
