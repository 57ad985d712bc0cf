"""segmint.transform.check_vars: a dbt var of the wrong form fails the transform stage at
once, naming the var, its value, what it must be and where it is set (real dbt project)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from segmint.config import Settings
from segmint.stages import SegmintError
from segmint.transform import REPO_ROOT, VAR_RULES, check_vars, run_transform
from segmint.warehouse import connect, table_hash
from tests.include.test_transform import _own_project, _synthetic_june, _with_vars


def test_every_var_of_the_project_has_a_rule_and_the_shipped_values_pass(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    assert set(data["vars"]) == set(VAR_RULES)
    check_vars(Settings(warehouse=tmp_path / "w.duckdb"))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("session_inactivity_minutes", "thirty", "a number greater than 0"),
        ("session_inactivity_minutes", 0, "a number greater than 0"),
        ("session_inactivity_minutes", "30", "without quotes"),
        ("favourite_category_days", -5, "a whole number greater than 0"),
        ("favourite_category_days", 7.5, "a whole number greater than 0"),
        ("cart_abandonment_hours", "24h", "without quotes or unit"),
        ("cart_abandonment_hours", True, "a whole number greater than 0"),
        ("cart_lookback_days", -1, "a whole number, 0 or more"),
        ("rfm_min_customers", None, "a whole number, 0 or more"),
        ("content_page_types", "content", "a list of one or more texts"),
        ("mobile_device_types", [], "a list of one or more texts"),
        ("mobile_device_types", ["mobile", 3], "a list of one or more texts"),
        ("cart_scope", "sesion", "customer or session"),
        ("reporting_currency", "euro", "three-letter ISO 4217 code"),
        ("as_of_date", date(2026, 6, 30), "segmint sets it for each night"),
        ("rule_segments", "cart_abandoner", "a list of segments"),
    ],
)
def test_a_var_of_the_wrong_form_is_named_with_its_value_and_file(
    tmp_path: Path, name: str, value: object, expected: str
) -> None:
    project = _own_project(tmp_path)
    settings = _with_vars(Settings(warehouse=tmp_path / "w.duckdb"), project, **{name: value})
    with pytest.raises(SegmintError) as raised:
        check_vars(settings)
    message = str(raised.value)
    assert f"dbt var {name} is " in message
    assert f"(vars.{name} in {project / 'dbt_project.yml'})" in message
    assert expected in message
    assert message.count("\n") == 1  # that var alone


def test_the_projects_own_vars_section_is_checked_and_every_wrong_var_named(
    tmp_path: Path,
) -> None:
    """dbt reads vars.segmint.<name> for this project too; both wrong vars in one message."""
    project = _own_project(tmp_path)
    settings = _with_vars(
        Settings(warehouse=tmp_path / "w.duckdb"),
        project,
        segmint={"cart_abandonment_hours": "24h"},
        content_page_types="content",
    )
    with pytest.raises(SegmintError) as raised:
        check_vars(settings)
    message = str(raised.value)
    assert 'dbt var cart_abandonment_hours is "24h" (vars.segmint.cart_abandonment_hours' in message
    assert 'dbt var content_page_types is "content" (vars.content_page_types' in message


def test_a_misspelt_var_is_named_as_missing_with_the_name_it_was_given(tmp_path: Path) -> None:
    """session_inactivity_minute: 10 (the s lost): the models read the var they know, unset,
    and dbt failed on "unsupported operand type(s) for *: 'NoneType' and 'int'" after segmint
    had decided a full refresh (30 -> null); now the missing var is named with the misspelt
    one. A var the models have a default for (cart_scope) may be left out."""
    project = _own_project(tmp_path)
    path = project / "dbt_project.yml"
    data = yaml.safe_load(path.read_text())
    data["vars"]["session_inactivity_minute"] = 10
    del data["vars"]["session_inactivity_minutes"], data["vars"]["cart_scope"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    settings = _with_vars(Settings(warehouse=tmp_path / "w.duckdb"), project)
    with pytest.raises(SegmintError) as raised:
        check_vars(settings)
    message = str(raised.value)
    name = "session_inactivity_minutes"
    assert f"dbt var {name} is not set (no vars.{name} in {path})" in message
    assert "vars.session_inactivity_minute is set: a misspelling?" in message
    assert message.count("\n") == 1  # cart_scope is not named


def test_a_project_file_that_is_not_yaml_or_whose_vars_are_no_mapping_is_named(
    tmp_path: Path,
) -> None:
    """A tab in dbt_project.yml raised YAML's ScannerError citing "<unicode string>", line
    N: no file named, and under Airflow not a SegmintError (a bug, to the operator)."""
    project = _own_project(tmp_path)
    path = project / "dbt_project.yml"
    settings = _with_vars(Settings(warehouse=tmp_path / "w.duckdb"), project)
    text = path.read_text()
    path.write_text(text + "\tcart_scope: session\n")
    with pytest.raises(SegmintError, match="is not valid YAML, nothing built") as raised:
        check_vars(settings)
    assert f"{path} is not valid YAML" in str(raised.value)
    assert f'in "{path}", line ' in str(raised.value)
    path.write_text(text.replace("\nvars:\n", "\nvars:\n  - cart_scope\nno_vars:\n"))
    with pytest.raises(SegmintError) as raised:
        check_vars(settings)
    assert f"vars in {path} is list, not a mapping" in str(raised.value)


def test_a_wrong_var_fails_the_stage_before_any_full_refresh(tmp_path: Path) -> None:
    """A built warehouse, then session_inactivity_minutes: thirty. The var is part of what
    decides a full refresh (it changed), and dbt failed only after rebuilding every model
    (minutes on the demo), with a Binder Error quoting "thirtythirty..." and naming no var.
    Now the stage fails before dbt starts, naming the var, and leaves the warehouse as it
    was; with the var fixed the next run is the usual incremental one."""
    project = _own_project(tmp_path)
    settings = _with_vars(_synthetic_june(tmp_path), project)
    as_of = date(2026, 6, 30)
    run_transform(settings, as_of)
    con = connect(settings.warehouse, read_only=True)
    before = [table_hash(con, t) for t in ("marts.sessions", "ops.model_vars")]
    con.close()
    run_results = settings.warehouse.parent / "dbt" / "target" / "run_results.json"
    built = run_results.stat().st_mtime_ns

    wrong = _with_vars(settings, project, session_inactivity_minutes="thirty")
    with pytest.raises(SegmintError, match='dbt var session_inactivity_minutes is "thirty"'):
        run_transform(wrong, as_of)
    assert run_results.stat().st_mtime_ns == built  # dbt did not run
    con = connect(settings.warehouse, read_only=True)
    assert [table_hash(con, t) for t in ("marts.sessions", "ops.model_vars")] == before
    con.close()

    fixed = _with_vars(settings, project, session_inactivity_minutes=30)
    assert run_transform(fixed, as_of).details["logic_full_refresh"] is None


def test_a_whole_number_written_with_a_fraction_is_no_change_of_the_var(tmp_path: Path) -> None:
    """``session_inactivity_minutes: 30.0`` against the 30 a warehouse was built with: the
    same var (no full refresh of every model); 30.5 is another."""
    from segmint.transform import row_shaping_vars

    project = _own_project(tmp_path)
    base = Settings(warehouse=tmp_path / "w.duckdb")
    stored = row_shaping_vars(_with_vars(base, project, session_inactivity_minutes=30))
    same = row_shaping_vars(_with_vars(base, project, session_inactivity_minutes=30.0))
    other = row_shaping_vars(_with_vars(base, project, session_inactivity_minutes=30.5))
    assert same == stored
    assert other["session_inactivity_minutes"] != stored["session_inactivity_minutes"]
