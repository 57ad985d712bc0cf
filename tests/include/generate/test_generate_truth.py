"""The ground truth beside the landing zone: types, future outcomes, identities, metadata."""

from __future__ import annotations

import json
from datetime import UTC, date

import pyarrow.parquet as pq
import pytest

from segmint.generate import generate
from segmint.generate import params as P
from segmint.stages import SegmintError


def test_every_customer_has_a_type_and_all_types_are_present(jsonl_zone) -> None:
    truth = pq.read_table(jsonl_zone.truth / "customers.parquet").to_pandas()
    assert len(truth) == jsonl_zone.summary.customers
    assert truth["customer_id"].is_unique and truth["customer_id"].notna().all()
    assert set(truth["latent_type"]) == set(P.TYPES)
    assert truth["latent_type"].notna().all()


def test_future_outcomes_are_consistent_counts(jsonl_zone) -> None:
    t = pq.read_table(jsonl_zone.truth / "customers.parquet").to_pandas()
    counts = [
        "sessions_history", "orders_history", "visits_next_30d", "purchases_next_30d",
        "visits_next_90d", "purchases_next_90d",
    ]  # fmt: skip
    assert (t[counts] >= 0).all().all()
    assert (t["purchases_next_30d"] <= t["purchases_next_90d"]).all()
    assert (t["visits_next_30d"] <= t["visits_next_90d"]).all()
    assert (t["purchases_next_90d"] <= t["visits_next_90d"]).all()
    assert (t["will_purchase_30d"] == (t["purchases_next_30d"] > 0)).all()
    assert 0.05 < t["will_purchase_30d"].mean() < 0.8
    # types behave differently: loyal customers buy more than window shoppers
    by_type = t.groupby("latent_type")["purchases_next_90d"].mean()
    assert by_type["loyal_high_spender"] > 5 * by_type["window_shopper"]
    assert by_type["lapsing_customer"] < by_type["bargain_hunter"]


def test_ground_truth_is_beside_the_landing_zone_and_no_future_event_lands(jsonl_zone, con) -> None:
    assert jsonl_zone.truth.parent == jsonl_zone.landing.parent
    names = {p.name for p in jsonl_zone.truth.iterdir()}
    assert names == {"customers.parquet", "identities.parquet", "dirt.json", "metadata.json",
                     "README.md"}  # fmt: skip
    assert not list(jsonl_zone.landing.rglob("*.parquet"))
    root = jsonl_zone.landing.as_posix()
    latest = con.execute(
        f"""
        select max(try_cast(event_ts as timestamptz)) from read_json(
            '{root}/events/*/*.jsonl', format = 'newline_delimited', ignore_errors = true,
            columns = {{event_ts: 'VARCHAR'}})
        """
    ).fetchone()[0]
    assert latest.astimezone(UTC).date() == date(2026, 6, 30)


def test_identities_cover_every_anonymous_id_and_mark_shared_devices(jsonl_zone, con) -> None:
    root = jsonl_zone.landing.as_posix()
    ids = pq.read_table(jsonl_zone.truth / "identities.parquet").to_pandas()
    missing = con.execute(
        f"""
        select count(distinct anonymous_id) from read_json('{root}/events/*/*.jsonl',
            format = 'newline_delimited', ignore_errors = true,
            columns = {{anonymous_id: 'VARCHAR'}}) e
        where anonymous_id is not null
            and anonymous_id not in (select anonymous_id from ids)
        """
    ).fetchone()[0]
    assert missing == 0
    shared = ids[ids["is_shared"]]
    assert len(shared) > 0 and (shared.groupby("anonymous_id").size() == 2).all()
    assert ids["customer_id"].isna().any(), "visitors who never log in"


def test_metadata_records_parameters_and_totals(jsonl_zone) -> None:
    meta = json.loads((jsonl_zone.truth / "metadata.json").read_text())
    assert meta["parameters"]["customers"] == 500 and meta["parameters"]["seed"] == 3
    assert sum(meta["latent_types"].values()) == 500
    readme = (jsonl_zone.truth / "README.md").read_text()
    assert all(f"`{t}`" in readme for t in P.TYPES)
    assert meta["event_rows_written"] == jsonl_zone.summary.events_written
    assert "ground truth" in str(jsonl_zone.summary) and str(jsonl_zone.truth) in str(
        jsonl_zone.summary
    )


def test_refuses_truth_inside_landing_and_a_non_empty_landing(tmp_path, jsonl_zone) -> None:
    landing = tmp_path / "landing"
    with pytest.raises(SegmintError, match="must not be inside"):
        generate(landing, customers=10, days=2, truth_dir=landing / "truth")
    with pytest.raises(SegmintError, match="not empty"):
        generate(jsonl_zone.landing, customers=10, days=2, truth_dir=tmp_path / "t")
    with pytest.raises(SegmintError, match="format"):
        generate(landing, customers=10, days=2, fmt="csv")


def test_cli_generate_prints_a_summary(tmp_path, capsys) -> None:
    from segmint.cli import main

    code = main(
        ["generate", "--landing", str(tmp_path / "l"), "--customers", "50", "--days", "3",
         "--format", "parquet"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "event rows" in out and str(tmp_path / "ground_truth") in out
    assert (tmp_path / "ground_truth" / "customers.parquet").exists()
