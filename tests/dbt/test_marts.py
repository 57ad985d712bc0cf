"""The marts of a real ``dbt build`` against an independent pandas computation over the
same raw rows: equal to the row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmint.warehouse import connect, table_hash
from tests.dbt.oracle import attributed_events, customer_figures, orders, sessions
from tests.dbt.warehouse_data import END, settings_for

MARTS = (
    "marts.identity_map",
    "marts.identity_conflicts",
    "marts.sessions",
    "marts.orders",
    "marts.customers",
    "marts.customer_daily_activity",
    "marts.customer_features",
    "marts.customer_feature_history",
    "marts.customer_rule_segments",
)


@pytest.fixture(scope="module")
def raw_events(full_warehouse: Path) -> pd.DataFrame:
    con = connect(full_warehouse, read_only=True)
    try:
        return con.execute("SELECT * FROM raw.events").df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def events(raw_events: pd.DataFrame) -> pd.DataFrame:
    return attributed_events(raw_events)


def query(path: Path, sql: str) -> pd.DataFrame:
    con = connect(path, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def test_orders_equal_to_the_row(full_warehouse: Path, events: pd.DataFrame) -> None:
    expected = orders(events).rename(columns={"customer": "customer_id", "ts": "ordered_at"})
    actual = query(
        full_warehouse,
        "SELECT order_id, customer_id, ordered_at, CAST(revenue AS DOUBLE) AS revenue "
        "FROM marts.orders",
    )
    assert len(actual) == len(expected) > 100
    merged = expected.merge(actual, on="order_id", suffixes=("_pd", "_dbt"), validate="1:1")
    assert len(merged) == len(expected)
    assert (merged["customer_id_pd"].fillna("-") == merged["customer_id_dbt"].fillna("-")).all()
    assert (merged["ordered_at_pd"] == merged["ordered_at_dbt"]).all()
    assert np.allclose(merged["revenue_pd"], merged["revenue_dbt"])
    # The data repeats some purchase events: they must not become extra orders.
    repeated = events[events["event_type"] == "purchase"]["order_id"].duplicated().sum()
    assert repeated > 0


def test_sessions_equal_to_the_row(full_warehouse: Path, events: pd.DataFrame) -> None:
    expected = sessions(events)
    actual = query(
        full_warehouse, "SELECT customer_id, started_at, ended_at, duration_s FROM marts.sessions"
    )
    assert len(actual) == len(expected) > 1000
    key = ["customer", "started", "ended"]
    exp = expected.rename(columns={"customer": "customer"})[key].fillna({"customer": "-"})
    act = actual.rename(
        columns={"customer_id": "customer", "started_at": "started", "ended_at": "ended"}
    )[key].fillna({"customer": "-"})
    pd.testing.assert_frame_equal(
        exp.sort_values(key).reset_index(drop=True), act.sort_values(key).reset_index(drop=True)
    )
    # Both ways of sessionising are exercised, and anonymous visitors keep their sessions.
    assert expected["part"].str.startswith("i:").any()
    assert expected["part"].str.startswith("s:").any()
    assert actual["customer_id"].isna().any()
    assert (actual["duration_s"] >= 0).all()


def test_customer_features_equal_to_the_row(full_warehouse: Path, events: pd.DataFrame) -> None:
    expected = customer_figures(events, END)
    actual = query(
        full_warehouse,
        "SELECT customer_id, order_count, CAST(revenue_total AS DOUBLE) AS revenue_total, "
        "recency_days, sessions_30d FROM marts.customer_features",
    ).set_index("customer_id")
    assert actual.index.is_unique
    # Every customer with an order or a session is there; the others have zeros.
    assert set(expected.index) <= set(actual.index)
    exp = expected.reindex(actual.index)
    assert (actual["order_count"] == exp["order_count"].fillna(0)).all()
    assert np.allclose(actual["revenue_total"], exp["revenue_total"].fillna(0), atol=0.005)
    assert (
        actual["recency_days"]
        .fillna(-1)
        .astype(int)
        .equals(exp["recency_days"].fillna(-1).astype(int))
    )
    assert (actual["sessions_30d"] == exp["sessions_30d"].fillna(0)).all()
    assert (actual["order_count"] > 0).sum() > 100


def test_identity_stitching(full_warehouse: Path, raw_events: pd.DataFrame) -> None:
    links = raw_events.dropna(subset=["customer_id", "anonymous_id"])
    per_anon = links.groupby("anonymous_id")["customer_id"].nunique()
    identity = query(full_warehouse, "SELECT * FROM marts.identity_map").set_index("anonymous_id")
    conflicts = query(full_warehouse, "SELECT * FROM marts.identity_conflicts")
    assert set(identity.index) == set(per_anon.index)
    assert (identity["candidate_count"] == per_anon.reindex(identity.index)).all()
    assert len(conflicts) == (per_anon > 1).sum() > 0
    # The most recently linked customer wins.
    last = links.sort_values(["event_ts", "customer_id"]).groupby("anonymous_id").tail(1)
    latest = links.groupby(["anonymous_id", "customer_id"])["event_ts"].max().reset_index()
    latest = latest.sort_values(
        ["anonymous_id", "event_ts", "customer_id"], ascending=[True, False, True]
    )
    chosen = latest.drop_duplicates("anonymous_id").set_index("anonymous_id")["customer_id"]
    assert (identity["customer_id"] == chosen.reindex(identity.index)).all()
    assert len(last) == len(identity)
    # Never-linked anonymous ids stay anonymous visitors: not customers.
    customers = query(full_warehouse, "SELECT customer_id FROM marts.customers")
    assert not customers["customer_id"].str.startswith("V").any()


def test_rfm_scores_and_segments(full_warehouse: Path) -> None:
    features = query(full_warehouse, "SELECT * FROM marts.customer_features")
    buyers = features[features["order_count"] > 0]
    for score in ("r_score", "f_score", "m_score"):
        assert buyers[score].between(1, 5).all()
        assert features.loc[features["order_count"] == 0, score].isna().all()
    # Equal values, equal scores; better values never score lower.
    for score, value, better in (
        ("f_score", "order_count", 1),
        ("m_score", "revenue_total", 1),
        ("r_score", "recency_days", -1),
    ):
        assert (buyers.groupby(value)[score].nunique() == 1).all()
        ordered = buyers.sort_values(value, ascending=better == 1)
        assert ordered[score].is_monotonic_increasing
    assert (features.loc[features["order_count"] == 0, "rfm_segment"] == "No orders").all()
    assert buyers["rfm_segment"].notna().all()
    assert buyers["rfm_segment"].nunique() >= 5


def test_rule_segments_follow_their_definitions(full_warehouse: Path) -> None:
    features = query(full_warehouse, "SELECT * FROM marts.customer_features").set_index(
        "customer_id"
    )
    segments = query(full_warehouse, "SELECT * FROM marts.customer_rule_segments")
    today = segments[segments["as_of_date"] == pd.Timestamp(END)]
    members = today.groupby("segment")["customer_id"].apply(set)
    rules = {
        "frequent_visitor": features["sessions_7d"] > 5,
        "high_value": features["revenue_total"].astype(float) > 500,
        "repeat_buyer": features["orders_30d"] >= 3,
        "cart_abandoner": features["has_abandoned_cart"],
        "lifecycle_new": features["tenure_days"] < 30,
    }
    for name, mask in rules.items():
        assert members.get(name, set()) == set(features.index[mask.fillna(False)]), name
    lifecycle = today[today["segment"].str.startswith("lifecycle_")]
    assert lifecycle["customer_id"].is_unique
    assert set(lifecycle["customer_id"]) == set(features.index)
    assert {"high_value", "cart_abandoner", "lifecycle_active"} <= set(members.index)


def test_rerun_leaves_identical_tables(full_warehouse: Path) -> None:
    from segmint.transform import run_transform

    con = connect(full_warehouse, read_only=True)
    before = {t: table_hash(con, t) for t in MARTS}
    con.close()
    result = run_transform(settings_for(full_warehouse), END)
    con = connect(full_warehouse, read_only=True)
    after = {t: table_hash(con, t) for t in MARTS}
    con.close()
    assert before == after
    # The dbt child ends without the interpreter's teardown (segmint.process), but only after
    # dbt-duckdb closed the warehouse: checkpointed, no write-ahead log for the next stage.
    assert not full_warehouse.with_name(full_warehouse.name + ".wal").exists()
    assert result.rows_in > 10_000
    assert result.rows_out == len(query(full_warehouse, "SELECT 1 FROM marts.customer_features"))


def test_the_dbt_run_summary_counts_nodes_not_the_on_run_end_hook(full_warehouse: Path) -> None:
    """A real dbt run writes its on-run-end hook into run_results.json as a result of its
    own: the summary the task log and XCom show counts the run's models and tests only."""
    import json

    from segmint.ops import dbt_run_summary
    from segmint.transform import dbt_dirs, run_dbt

    settings = settings_for(full_warehouse)
    completed = run_dbt(settings, END, [END], select="reporting_currency", verb="test")
    assert completed.returncode == 0, completed.stdout[-3000:]
    path = dbt_dirs(settings)[0] / "run_results.json"
    ids = [r["unique_id"] for r in json.loads(path.read_text())["results"]]
    tests = [i for i in ids if i.startswith("test.")]
    assert tests and any(i.startswith("operation.") for i in ids)
    summary = dbt_run_summary(path)
    assert summary["nodes"] == len(tests)
    assert summary["by_status"] == {"pass": len(tests)}
    assert summary["hooks"] == {"success": 1}


def test_dbt_unit_tests_pass(full_warehouse: Path) -> None:
    """The dbt unit tests (RFM scoring, cart abandonment, sessionisation, stitching, every
    rule segment) run here rather than every night."""
    import json

    from segmint.transform import dbt_dirs, run_dbt

    settings = settings_for(full_warehouse)
    completed = run_dbt(settings, END, [END], select="test_type:unit", verb="test")
    assert completed.returncode == 0, completed.stdout[-3000:]
    results = json.loads((dbt_dirs(settings)[0] / "run_results.json").read_text())["results"]
    # (The project's on-run-end hook is a result of its own.)
    results = [r for r in results if r["unique_id"].startswith("unit_test.")]
    names = {r["unique_id"].split(".")[-1] for r in results if r["status"] == "pass"}
    assert len(results) == len(names) >= 18
    assert {
        "rfm_scores_quintiles_ties_and_named_segments",
        "inactivity_session_numbers",
        "sessions_group_events_and_measure_them",
        "stitching_attributes_anonymous_events_point_in_time",
        "feature_history_uses_the_crm_version_valid_at_the_snapshot",
        "rule_segment_cart_abandoner",
        "rule_segment_lifecycle_churned",
        "refunds_count_for_the_orders_customer_capped_at_its_revenue",
        "revenue_net_of_refunds_point_in_time",
    } <= names


def test_docs_generate_and_every_model_and_column_is_described(full_warehouse: Path) -> None:
    import json

    from segmint.transform import dbt_dirs, run_dbt

    settings = settings_for(full_warehouse)
    completed = run_dbt(settings, END, [END], verb="docs generate")
    assert completed.returncode == 0, completed.stdout[-3000:]
    target = dbt_dirs(settings)[0]
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    undocumented = []
    for node_id, node in manifest["nodes"].items():
        if node["resource_type"] not in ("model", "seed") or node["package_name"] != "segmint":
            continue
        if not node["description"].strip():
            undocumented.append(node_id)
        built = catalog["nodes"].get(node_id, {}).get("columns", {})
        assert built, f"{node_id} missing from the catalog"
        for column in built:
            described = node["columns"].get(column.lower(), {}).get("description", "")
            if not described.strip():
                undocumented.append(f"{node_id}.{column}")
    assert undocumented == []
    pii = {
        name
        for name, column in manifest["nodes"]["model.segmint.customers"]["columns"].items()
        if column.get("meta", {}).get("pii")
    }
    assert pii == {"email", "phone", "first_name", "last_name", "birth_date", "postal_code"}


def test_docs_for_readers_come_from_the_published_copy_read_only(
    full_warehouse: Path, tmp_path: Path
) -> None:
    """``segmint docs`` renders the dbt docs as one page from the published copy (target
    ``published``), never from the working file: any process holding that one makes the
    night's next write fail. A reader holds the copy open meanwhile, which only a read-only
    dbt can share."""
    import json
    import subprocess
    import sys

    from segmint.cli import main
    from segmint.publish import publish_warehouse

    working = tmp_path / "warehouse" / full_warehouse.name  # never created: dbt must not need it
    published = working.parent / "published" / working.name
    assert main(["docs", "--warehouse", str(working)]) == 1  # nothing published yet
    publish_warehouse(full_warehouse, published, END)
    before = published.read_bytes()
    # A --out where no file can be created is refused before dbt runs (it was refused after
    # the 25 s of `dbt docs generate`).
    if Path("/proc/self").is_dir():
        assert main(["docs", "--warehouse", str(working), "--out", "/proc/docs.html"]) == 1
        assert not (tmp_path / "warehouse" / "dbt" / "target_docs").exists()
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print('open', flush=True); sys.stdin.readline()",
            str(published),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "open"
        code = main(["docs", "--warehouse", str(working), "--output", str(tmp_path / "out")])
    finally:
        reader.kill()
        reader.wait()
    assert code == 0
    page = tmp_path / "out" / END.isoformat() / "dbt_docs" / "index.html"
    text = page.read_text()
    # One self-contained page: the manifest and the catalog inside, no other file needed.
    assert "<html" in text.lower() and "manifest" in text and "catalog" in text
    assert "Unified customer profile: one row per known customer" in text  # a description
    target = tmp_path / "warehouse" / "dbt" / "target_docs"
    catalog = json.loads((target / "catalog.json").read_text())
    columns = catalog["nodes"]["model.segmint.customer_features"]["columns"]
    assert {"customer_id", "rfm_segment", "sessions_30d"} <= set(columns)
    assert catalog["nodes"]["model.segmint.customer_features"]["metadata"]["database"] == "segmint"
    assert published.read_bytes() == before
    assert not working.exists()
    assert not published.with_name(published.name + ".wal").exists()


def test_event_ids_are_written_uncompressed_and_other_columns_as_duckdb_chooses(
    full_warehouse: Path,
) -> None:
    """raw.events (its DDL) and int_events_sessionised (meta.column_compression, through the
    project's duckdb__create_table_as) store event_id uncompressed: random ids compress
    little for what compressing them costs. The other columns keep DuckDB's choice."""
    methods = query(
        full_warehouse,
        """
        select table_name, column_name, list(distinct compression order by compression) as m
        from (
            select 'raw.events' as table_name, *
            from pragma_storage_info('raw.events')
            union all by name
            select 'int_events_sessionised' as table_name, *
            from pragma_storage_info('intermediate.int_events_sessionised')
        )
        where column_name in ('event_id', 'event_type') and segment_type = 'VARCHAR'
        group by all
        """,
    )
    found = {(r.table_name, r.column_name): list(r.m) for r in methods.itertuples()}
    assert found[("raw.events", "event_id")] == ["Uncompressed"]
    assert found[("int_events_sessionised", "event_id")] == ["Uncompressed"]
    assert "Uncompressed" not in found[("raw.events", "event_type")]
    assert "Uncompressed" not in found[("int_events_sessionised", "event_type")]


def test_docs_of_a_warehouse_path_that_is_a_link_read_the_copy_publish_wrote(
    full_warehouse: Path, tmp_path: Path
) -> None:
    """A warehouse path that is a link (``current.duckdb`` -> a release's file): ``publish``
    writes the copy beside the link, and dbt's ``published`` target must read that one, not a
    copy beside the file the link points to (there is none: ``segmint docs`` failed)."""
    from segmint.cli import main
    from segmint.config import Settings
    from segmint.publish import publish_warehouse

    real = tmp_path / "releases" / "v2" / full_warehouse.name
    real.parent.mkdir(parents=True)
    link = tmp_path / "current" / "current.duckdb"
    link.parent.mkdir()
    link.symlink_to(real)  # the working file itself is never needed by the docs
    published = Settings(warehouse=link).published_warehouse
    assert published == tmp_path / "current" / "published" / "current.duckdb"
    publish_warehouse(full_warehouse, published, END)
    code = main(["docs", "--warehouse", str(link), "--output", str(tmp_path / "out")])
    assert code == 0
    text = (tmp_path / "out" / END.isoformat() / "dbt_docs" / "index.html").read_text()
    assert "Unified customer profile: one row per known customer" in text
