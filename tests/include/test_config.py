import os
import re
from datetime import date
from pathlib import Path

import pytest

from segmint import config
from segmint.config import ConfigError, Settings, load_settings, usable_cores


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
    assert settings.warehouse == tmp_path / "from_file.duckdb"  # beside the file
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
    assert settings.output == tmp_path / "elsewhere"
    assert settings.run_output_dir(date(2026, 1, 2)) == tmp_path / "elsewhere/2026-01-02"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ingest]\nmax_quarantine_shar = 0.1\n", "unknown key(s) max_quarantine_shar"),
        ('[ingest]\nmax_quarantine_share = "high"\n', "expected a number"),
        ('colour = "blue"\n', "unknown key 'colour'"),
        ("warehouse = \n", "invalid TOML"),
        # Wrong types and ranges: refused when the file is read, not mid-night as an
        # unexpected TypeError naming no setting, nor silently taken for something else.
        ('[segmentation]\nfixed_k = "6"\n', "[segmentation].fixed_k: expected a number"),
        ("warehouse = 5\n", "warehouse: expected a path"),
        ("[transform]\ncurrency_rates = 5\n", "[transform].currency_rates: expected a path"),
        ("[propensity]\nhorizon_days = 30.7\n", "horizon_days: expected a whole number"),
        ("[propensity]\nhorizon_days = 0\n", "horizon_days must be at least 1"),
        ("[segmentation]\nk_min = 8\nk_max = 3\n", "k_min (8) is larger than k_max (3)"),
        ("[ingest]\nmax_quarantine_share = 5\n", "max_quarantine_share must be at least 0 and"),
        # Each of these went through and failed late, in a library's words, or silently.
        ("[ingest]\nmax_quarantine_share = -1\n", "(a share of the rows: 0.05 = 5%)"),
        ("[ingest]\nfuture_tolerance_hours = -100\n", "future_tolerance_hours must be at least 0"),
        ("[segmentation]\noutlier_quantile = 5\n", "outlier_quantile must be at least 0.5 and"),
        ("[recommendations]\nhalf_life_days = 0\n", "half_life_days must be above 0 (days)"),
        ("[recommendations]\nholdout_days = -3\n", "holdout_days must be at least 0"),
        (
            "[recommendations]\nview_weight = 0\ncart_weight = 0\npurchase_weight = 0\n",
            "no interaction would count",
        ),
        ("[propensity]\nactive_lookback_days = 0\n", "active_lookback_days must be at least 1"),
        ("[transform]\nthreads = 0\n", "[transform] threads must be at least 1"),
        (
            "[transform]\nhistory_rebuild_minutes = -5\n",
            "[transform] history_rebuild_minutes must be at least 0",
        ),
        ('[ingest]\nfield_aliases = ["userId"]\n', "[ingest].field_aliases: expected a table"),
        ("[segmentation.pinned_names]\na = 1\n", "pinned_names.a: expected a quoted string"),
        ('[ingest]\nduckdb_memory_limit = "lots"\n', "[ingest] duckdb_memory_limit: a size"),
        ('[transform]\nduckdb_memory_limit = "3"\n', "with its unit (2GB, 512MiB)"),
        ("[ingest]\nduckdb_threads = -1\n", "[ingest] duckdb_threads must be at least 0"),
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


def test_a_config_folder_or_a_file_not_utf8_is_named(tmp_path: Path) -> None:
    """--config given a folder said the folder "does not exist"; a file saved in Latin-1
    failed with "unexpected UnicodeDecodeError", exit code 2. Each names the file and what
    to do, and where the path came from."""
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert str(err.value) == (
        f"config file {tmp_path} (--config) is a folder: give the TOML file, such as "
        f"{tmp_path / 'segmint.toml'}"
    )
    latin = tmp_path / "latin.toml"
    latin.write_bytes('landing = "/srv/donn\u00e9es"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.toml: not UTF-8 text, as TOML must be"):
        load_settings(latin, environ={})
    with pytest.raises(ConfigError, match=r"nope\.toml \(SEGMINT_CONFIG\) does not exist"):
        load_settings(None, environ={"SEGMINT_CONFIG": str(tmp_path / "nope.toml")})


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


def test_the_minimum_quarantined_count_is_at_least_one(tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text("[ingest]\nmin_quarantined_rows = 0\n")
    with pytest.raises(ConfigError, match=r"min_quarantined_rows must be at least 1, got 0"):
        load_settings(config, environ={})


def test_a_lone_value_where_a_list_is_expected_is_a_list_of_one(tmp_path: Path) -> None:
    """`repeatable_categories = "food"` used to become the categories f, o, o, d."""
    config = tmp_path / "lists.toml"
    config.write_text(
        '[recommendations]\nrepeatable_categories = "food"\nfactors = 8\n'
        '[ingest]\nignored_event_types = "Video Played"\n'
        '[ingest.field_aliases.events]\ncustomer_id = "userId"\n'
        "[propensity]\nhorizon_days = 30.0\n"
    )
    settings = load_settings(config, environ={})
    assert settings.recommendations.repeatable_categories == ("food",)
    assert settings.recommendations.factors == (8,)
    assert settings.ingest.ignored_event_types == ["Video Played"]
    assert settings.ingest.field_aliases == {"events": {"customer_id": ["userId"]}}
    assert settings.propensity.horizon_days == 30


def test_a_misspelt_settings_variable_is_refused_naming_the_one_meant() -> None:
    """SEGMINT_WAREHOSUE used to be ignored: the night ran against a new empty warehouse at
    the default path, relative to whatever folder the worker ran in."""
    with pytest.raises(ConfigError, match=r"SEGMINT_WAREHOSUE .* did you mean SEGMINT_WAREHOUSE"):
        load_settings(environ={"SEGMINT_WAREHOSUE": "/srv/segmint.duckdb"})
    with pytest.raises(ConfigError, match="did you mean SEGMINT_LANDING"):
        load_settings(environ={"SEGMINT_LANDNG": "/srv/landing"})
    # The variable meant is set too, or the name is merely a longer one: left alone.
    both = {"SEGMINT_WAREHOUSE": "/srv/w.duckdb", "SEGMINT_WAREHOSUE": "/srv/w.duckdb"}
    assert load_settings(environ=both).warehouse == Path("/srv/w.duckdb")
    other = {"SEGMINT_LANDING_BUCKET": "s3://x", "SEGMINT_DUCKDB_THREADS": "2"}
    assert load_settings(environ=other).landing == Path("data/landing")


def test_relative_paths_in_the_file_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They used to be relative to the working directory: an Airflow worker started in
    another folder than `segmint run` read the same $SEGMINT_CONFIG as another, new
    warehouse and an empty landing zone."""
    folder = tmp_path / "srv"
    folder.mkdir()
    config = folder / "segmint.toml"
    config.write_text(
        'warehouse = "wh/segmint.duckdb"\nlanding = "/data/landing"\noutput = "~/out"\n'
        '[transform]\ncurrency_rates = "fx/rates.csv"\n'
    )
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(config, environ={"SEGMINT_AUDIENCES": "aud"})
    assert settings.warehouse == folder / "wh" / "segmint.duckdb"
    assert settings.landing == Path("/data/landing")
    assert settings.output == Path.home() / "out"
    assert settings.transform.currency_rates == folder / "fx" / "rates.csv"
    assert settings.audiences == Path("aud"), "variables stay relative to the working folder"


def test_duckdb_resources_default_to_every_usable_core_and_are_set_per_stage(
    tmp_path: Path,
) -> None:
    """A production machine is not the 2-core bench: threads follow the cores the process may
    use and the memory limit unless set, and each DuckDB-heavy stage has its own limit."""
    defaults = load_settings(environ={})
    # Every usable core, at most one per GB of the memory limit (DuckDB advises 1-4 GB each).
    assert defaults.ingest.duckdb_thread_count == min(usable_cores(), 2)
    assert defaults.transform.duckdb_thread_count == min(usable_cores(), 3)
    assert (defaults.ingest.duckdb_memory_limit, defaults.transform.duckdb_memory_limit) == (
        "2GB",
        "3GB",
    )
    config = tmp_path / "big.toml"
    config.write_text(
        '[ingest]\nduckdb_threads = 16\nduckdb_memory_limit = "48GB"\n'
        '[transform]\nduckdb_threads = 12\nduckdb_memory_limit = "50%"\n'
    )
    settings = load_settings(config, environ={})
    assert settings.ingest.duckdb_thread_count == 16
    assert settings.ingest.duckdb_memory_limit == "48GB"
    assert settings.transform.duckdb_thread_count == 12
    assert settings.transform.duckdb_memory_limit == "50%"


def test_memory_limits_read_as_duckdb_reads_them_and_bound_the_default_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GB is 10^9 bytes and GiB 2^30, as in DuckDB; a share is of the machine's memory, and
    empty is DuckDB's default share (80%). With 0 threads, a 64-core machine gets one thread
    per GB of the limit: 64 threads in 2 GB would leave each 31 MB (DuckDB needs 125 MB)."""
    assert config.memory_limit_bytes("2GB") == config.memory_limit_bytes("2 gb") == 2 * 10**9
    assert config.memory_limit_bytes("512MiB") == 512 * 2**20
    assert config.memory_limit_bytes("1.5g") == 1_500_000_000
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert config.memory_limit_bytes("50%") == int(ram * 0.5)
    assert config.memory_limit_bytes("") == int(ram * 0.8)
    monkeypatch.setattr(config, "usable_cores", lambda: 64)
    assert config.duckdb_thread_count(0, "2GB") == 2
    assert config.duckdb_thread_count(0, "500MB") == 1
    assert config.duckdb_thread_count(0, "100GB") == 64
    assert config.duckdb_thread_count(8, "500MB") == 8  # set: as set


def test_every_documented_config_example_loads(tmp_path: Path) -> None:
    """The TOML examples of the README and docs/ are settings segmint accepts."""
    root = Path(__file__).resolve().parents[2]
    examples = [
        (doc, block)
        for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]
        for block in re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S)
    ]
    assert len(examples) >= 4
    for doc, block in examples:
        config = tmp_path / "segmint.toml"
        config.write_text(block)
        try:
            load_settings(config, environ={})
        except ConfigError as exc:
            raise AssertionError(f"{doc.name}: {exc}\n{block}") from exc


def test_consent_words_on_both_sides_are_refused_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "segmint.toml"
    config.write_text('[ingest]\ntrue_values = ["subscribed"]\nfalse_values = ["Subscribed"]\n')
    with pytest.raises(ConfigError, match="'subscribed' read as both true and false"):
        load_settings(config, environ={})
