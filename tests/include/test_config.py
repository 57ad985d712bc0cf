from datetime import date
from pathlib import Path

import pytest

from segmint.config import ConfigError, Settings, load_settings


def test_defaults_without_file_or_env(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert settings.warehouse == Path("warehouse/segmint.duckdb")
    assert settings.landing == Path("data/landing")
    assert settings.ingest.max_quarantine_share == 0.05
    assert settings.published_warehouse == Path("warehouse/published/segmint.duckdb")
    assert settings.artifacts_dir == Path("warehouse/artifacts")


def test_file_then_env_then_flags_override(tmp_path: Path) -> None:
    config = tmp_path / "segmint.toml"
    config.write_text(
        'warehouse = "from_file.duckdb"\nlanding = "file_landing"\n'
        "[ingest]\nmax_quarantine_share = 0.1\n"
        "[segmentation]\nfixed_k = 5\n"
    )
    settings = load_settings(config, environ={"SEGMINT_LANDING": "env_landing"})
    assert settings.warehouse == Path("from_file.duckdb")
    assert settings.landing == Path("env_landing")
    assert settings.ingest.max_quarantine_share == 0.1
    assert settings.segmentation.fixed_k == 5

    flagged = settings.with_overrides(warehouse="flag.duckdb", landing=None)
    assert flagged.warehouse == Path("flag.duckdb")
    assert flagged.landing == Path("env_landing")


def test_config_file_from_env_variable(tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text('output = "elsewhere"\n')
    settings = load_settings(environ={"SEGMINT_CONFIG": str(config)})
    assert settings.output == Path("elsewhere")
    assert settings.run_output_dir(date(2026, 1, 2)) == Path("elsewhere/2026-01-02")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ingest]\nmax_quarantine_shar = 0.1\n", "unknown key(s) max_quarantine_shar"),
        ('[ingest]\nmax_quarantine_share = "high"\n', "expected a number"),
        ('colour = "blue"\n', "unknown key 'colour'"),
        ("warehouse = \n", "invalid TOML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.toml") as err:
        load_settings(config, environ={})
    assert message in str(err.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_propensity_cutoffs_are_horizon_apart() -> None:
    settings = Settings()
    cutoffs = settings.propensity.cutoff_dates(date(2026, 6, 30), horizon_days=30)
    assert cutoffs == [date(2026, 5, 31), date(2026, 5, 1), date(2026, 4, 1)]
    assert settings.propensity.churn_horizon == settings.propensity.horizon_days


def test_inconsistent_row_bounds_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "rows.toml"
    config.write_text("[ingest]\nmin_rows_per_partition = 100\nmax_rows_per_partition = 10\n")
    with pytest.raises(ConfigError, match="min_rows_per_partition"):
        load_settings(config, environ={})
