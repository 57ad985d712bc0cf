"""A rule segment is an entry of ``vars.rule_segments`` in dbt_project.yml (docs/models.md):
a new one builds into marts.customer_rule_segments with no new SQL, and a mistake in an entry
stops dbt before any node runs, with an error naming the entry (never a segment that
silently means something else)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from segmint.config import Settings
from tests.dbt.warehouse_data import END, new_warehouse, settings_for

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"

WINDOW_SHOPPER = {
    "name": "window_shopper",
    "description": "At least 10 product views and no order in the last 30 days.",
    "all": [
        {"column": "product_views_30d", "op": ">=", "value": 10},
        {"column": "orders_30d", "op": "=", "value": 0},
    ],
}


def _settings(tmp_path: Path, *extra: dict[str, Any]) -> Settings:
    """A copy of the dbt project with ``extra`` appended to vars.rule_segments, and a
    warehouse beside it."""
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    path = project / "dbt_project.yml"
    data = yaml.safe_load(path.read_text())
    data["vars"]["rule_segments"].extend(extra)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    settings = settings_for(new_warehouse(tmp_path / "warehouse" / "segmint.duckdb", after=True))
    transform = dataclasses.replace(settings.transform, dbt_project_dir=project)
    return dataclasses.replace(settings, transform=transform)


def test_a_new_entry_is_a_new_segment(tmp_path: Path) -> None:
    from segmint.transform import rule_segment_names, run_transform
    from segmint.warehouse import connect

    settings = _settings(tmp_path, WINDOW_SHOPPER)
    run_transform(settings, END)
    con = connect(settings.warehouse, read_only=True)
    try:
        features = con.execute("select * from marts.customer_features").df()
        members = con.execute(
            "select customer_id from marts.customer_rule_segments "
            "where segment = 'window_shopper' and as_of_date = ?",
            [END],
        ).df()
    finally:
        con.close()
    mask = (features["product_views_30d"] >= 10) & (features["orders_30d"] == 0)
    assert mask.any()
    assert set(members["customer_id"]) == set(features.loc[mask, "customer_id"])
    assert "window_shopper" in rule_segment_names(settings)


def _entry(**changes: Any) -> dict[str, Any]:
    return {**WINDOW_SHOPPER, **changes}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        # A group the macro does not read was ignored: everyone `all` matched was in.
        (
            [_entry(all=WINDOW_SHOPPER["all"][:1], none=[WINDOW_SHOPPER["all"][1]])],
            "rule segment window_shopper (vars.rule_segments[10] in dbt_project.yml): "
            "unknown key none (keys: name, description, all, any)",
        ),
        # Two entries of one name were one segment (or a failed uniqueness test).
        (
            [WINDOW_SHOPPER, _entry(all=[{"column": "orders_30d", "op": "=", "value": 5}])],
            "rule segment window_shopper (vars.rule_segments[11] in dbt_project.yml): "
            "the name is given twice (also vars.rule_segments[10])",
        ),
        # The database's error named the column but pointed at another entry's SQL.
        (
            [_entry(all=[{"column": "product_viewz_30d", "op": ">=", "value": 10}])],
            "rule segment window_shopper (vars.rule_segments[10] in dbt_project.yml): all[0]: "
            "column product_viewz_30d is not a column of customer_features (columns: ",
        ),
        (
            [_entry(any=[{"column": "orders_30d", "op": ">="}])],
            "rule segment window_shopper (vars.rule_segments[10] in dbt_project.yml): any[0]: "
            "op >= needs a value",
        ),
        (
            [_entry(all=[{"column": "orders_30d", "operator": "=", "value": 0}])],
            "all[0]: unknown key operator (keys: column, op, value)",
        ),
        (
            [_entry(name=None)],
            "rule segment ? (vars.rule_segments[10] in dbt_project.yml): no name",
        ),
    ],
)
def test_a_mistake_in_an_entry_stops_dbt_naming_the_entry(
    tmp_path: Path, entries: list[dict[str, Any]], message: str
) -> None:
    from segmint.transform import run_dbt

    settings = _settings(tmp_path, *entries)
    completed = run_dbt(settings, END, [END], verb="parse")
    assert completed.returncode != 0
    assert message in " ".join(completed.stdout.split()), completed.stdout[-3000:]


def test_a_changed_threshold_applies_to_the_snapshots_built_from_then_on(tmp_path: Path) -> None:
    """docs/models.md: past dates keep the rule they were computed with until
    customer_rule_segments is rebuilt in full."""
    from segmint.transform import project_dir, run_dbt, run_transform
    from segmint.warehouse import connect

    settings = _settings(tmp_path)
    run_transform(settings, END)
    path = project_dir(settings) / "dbt_project.yml"
    text = path.read_text()
    assert text.count("value: 500") == 1
    path.write_text(text.replace("value: 500", "value: 1000"))
    run_transform(settings, END)

    def lowest() -> dict:
        con = connect(settings.warehouse, read_only=True)
        try:
            rows = con.execute(
                "select s.as_of_date, min(f.revenue_total) from marts.customer_rule_segments s "
                "join marts.customer_feature_history f using (customer_id, as_of_date) "
                "where s.segment = 'high_value' group by all"
            ).fetchall()
        finally:
            con.close()
        return {d: float(v) for d, v in rows}

    before = lowest()
    past = [d for d in before if d != END]
    assert past and before[END] > 1000
    assert all(500 < before[d] <= 1000 for d in past)
    completed = run_dbt(
        settings, END, [END], select="customer_rule_segments", verb="run", full_refresh=True
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert all(v > 1000 for v in lowest().values())
