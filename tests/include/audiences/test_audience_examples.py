"""The example definitions in audiences/ (used by `make run`) build on a warehouse with the
contract's columns, the dbt project's rule segments and both propensity models."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from segmint.audiences import build_audiences
from segmint.audiences.definitions import load_definitions
from segmint.config import Settings
from segmint.warehouse import connect

AS_OF = date(2026, 6, 30)

# marts.customer_features as in docs/tables.md.
FEATURE_COLUMNS = """
customer_id varchar, as_of_date date, first_seen_at timestamp, first_order_at timestamp,
last_order_at timestamp, order_count bigint, revenue_total decimal(18, 2),
avg_order_value decimal(18, 2), recency_days integer, tenure_days integer, r_score integer,
f_score integer, m_score integer, rfm_segment varchar, orders_30d bigint, orders_90d bigint,
revenue_30d decimal(18, 2), revenue_90d decimal(18, 2), sessions_7d bigint, sessions_30d bigint,
sessions_90d bigint, page_views_7d bigint, page_views_30d bigint, page_views_90d bigint,
product_views_7d bigint, product_views_30d bigint, product_views_90d bigint,
searches_7d bigint, searches_30d bigint, searches_90d bigint, cart_adds_7d bigint,
cart_adds_30d bigint, cart_adds_90d bigint, cart_abandonment_rate_90d double,
avg_session_duration_s_30d double, pages_per_session_30d double, email_opens_30d bigint,
email_clicks_30d bigint, email_opens_90d bigint, email_clicks_90d bigint,
days_since_last_visit integer, favourite_category varchar, mobile_session_share_90d double,
email_opt_in boolean, ads_opt_in boolean
"""


def test_example_definitions_build_and_export_every_format(repo_root: Path, tmp_path: Path):
    folder = repo_root / "audiences"
    defs = load_definitions(folder)  # strict: the examples have no problem at all
    assert len(defs.audiences) >= 3 and defs.groups and defs.suppressions
    formats = {f for a in defs.audiences.values() for f in a.exports}
    assert formats == {"csv", "parquet", "google_customer_match", "meta_custom_audience", "diff"}

    project = yaml.safe_load((repo_root / "dbt_project" / "dbt_project.yml").read_text())
    rule_names = [r["name"] for r in project["vars"]["rule_segments"]]
    wh = tmp_path / "segmint.duckdb"
    con = connect(wh)
    con.execute(f"create table marts.customer_features ({FEATURE_COLUMNS})")
    con.execute(
        """insert into marts.customer_features (customer_id, as_of_date, order_count,
            recency_days, email_opens_90d, email_clicks_90d, email_opt_in, ads_opt_in)
        select printf('C%04d', i), date '2026-06-30', i % 6, (i * 7) % 120, i % 3, i % 2,
            i % 4 <> 0, i % 3 <> 0
        from range(400) as t(i)"""
    )
    con.execute(
        """create table marts.customers as
        select customer_id, customer_id || '@example.com' as email,
            '+4915112345' || right(customer_id, 3) as phone,
            'Alex' as first_name, 'Doe' as last_name, 'DE' as country_code, '10115' as postal_code,
            email_opt_in, ads_opt_in
        from marts.customer_features"""
    )
    con.execute(
        "create table marts.customer_rule_segments "
        "(customer_id varchar, as_of_date date, segment varchar)"
    )
    for k, name in enumerate(rule_names):
        con.execute(
            "insert into marts.customer_rule_segments select customer_id, as_of_date, ? "
            "from marts.customer_features where hash(customer_id, ?) % 3 = 0",
            [name, k],
        )
    con.execute(
        """create table ml.propensity_scores as
        select customer_id, as_of_date, m as model_name,
            (hash(customer_id, m) % 1000) / 1000.0 as score,
            cast(1 + (hash(customer_id, m) % 10) as integer) as decile
        from marts.customer_features, (values ('purchase'), ('churn')) as t(m)"""
    )
    con.close()
    settings = Settings(warehouse=wh, audiences=folder, output=tmp_path / "out")
    result = build_audiences(settings, AS_OF)
    assert result.details["failed"] == {}, result.details["failed"]
    assert all(size > 0 for size in result.details["sizes"].values()), result.details["sizes"]
    written = sorted(Path(p).name for p in result.details["exports"])
    assert len(written) == 6
    # marts.customers names the country `country_code` (dbt model): phones still get E.164.
    google = next(Path(p) for p in result.details["exports"] if "at_risk" in p and "google" in p)
    first = google.read_text().splitlines()[1].split(",")
    assert len(first[1]) == 64 and first[4] == "DE"

    # On a night without propensity scores, every format is still written.
    con = connect(wh)
    con.execute("delete from ml.propensity_scores")
    con.close()
    result = build_audiences(settings, AS_OF)
    assert set(result.details["failed"]) == {"likely_buyers_lapsed", "churn_risk_winback"}
    assert sorted(Path(p).name for p in result.details["exports"]) == [
        "at_risk_high_value_ads_diff.csv",
        "at_risk_high_value_ads_google_customer_match.csv",
        "at_risk_high_value_ads_meta_custom_audience.csv",
        "cart_recovery_email.parquet",
        "vip_thank_you.csv",
    ]
