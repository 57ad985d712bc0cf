"""Acceptance: the segmentation recovers the generator's latent customer types.

Generated landing zone -> ingest -> dbt -> segment, then the adjusted Rand index of the
segments against the generator's ground truth (``<landing>/../ground_truth/customers.parquet``,
``customer_id, latent_type``) must be at least 0.6 at the default settings. The full-size
figure is in ``make bench``.
"""

from __future__ import annotations

import importlib
from datetime import date
from pathlib import Path

import pytest

from segmint.config import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

END = date(2026, 6, 30)
CUSTOMERS = 3000
DAYS = 90  # 60 days give too little behaviour per customer to tell the types apart


def _stage(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"{module}.{name} is not available yet: {exc}")


def test_segments_recover_the_latent_types(tmp_path: Path) -> None:
    generate = _stage("segmint.generate", "generate")
    run_ingest = _stage("segmint.ingest", "run_ingest")
    run_transform = _stage("segmint.transform", "run_transform")
    import duckdb
    from sklearn.metrics import adjusted_rand_score

    from ml.segmentation import run_segmentation

    landing = tmp_path / "data" / "landing"
    generate(landing, customers=CUSTOMERS, days=DAYS, end_date=END, seed=7)
    truth = landing.parent / "ground_truth" / "customers.parquet"
    assert truth.exists(), f"the generator wrote no ground truth at {truth}"
    settings = Settings(
        warehouse=tmp_path / "warehouse" / "segmint.duckdb",
        landing=landing,
        output=tmp_path / "output",
    )
    run_ingest(settings, END)
    run_transform(settings, END)
    result = run_segmentation(settings, END)

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        joined = con.execute(
            "select t.latent_type, s.segment_id from ml.customer_segments s "
            "join read_parquet(?) t using (customer_id) where s.as_of_date = ?",
            [str(truth), END],
        ).df()
        truth_rows = con.execute("select count(*) from read_parquet(?)", [str(truth)]).fetchone()
    finally:
        con.close()
    assert len(joined) >= 0.95 * truth_rows[0], "most known customers must be segmented"
    ari = adjusted_rand_score(joined["latent_type"], joined["segment_id"])
    assert ari >= 0.6, f"ARI {ari:.3f} against the latent types ({result.details['k_reason']})"
