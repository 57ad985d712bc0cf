"""`python -m segmint.airflow_env env`, as docs/operations.md uses it: evaluated in a shell
whose virtualenv is not activated, the `airflow ...` commands that follow must run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from segmint.airflow_env import airflow_bin, settings_file_overridden


def test_env_exports_let_a_plain_shell_run_this_environments_airflow(tmp_path: Path) -> None:
    script = f'eval "$({sys.executable} -m segmint.airflow_env env)" && command -v airflow'
    shell_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-c", script], env=shell_env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == airflow_bin()


def test_make_airflow_says_which_paths_of_the_settings_file_the_makefile_overrides(
    tmp_path: Path,
) -> None:
    """`make airflow` and `make backfill` export the demo's SEGMINT_* paths, and a variable
    wins over the settings file: with their own landing zone and warehouse in segmint.toml,
    a data engineer had every night run on the demo's without a word. Now said, naming each
    path; a variable naming the file's own path, or a key the file does not set, is none."""
    config = tmp_path / "conf" / "segmint.toml"
    config.parent.mkdir()
    config.write_text(
        'landing = "shop/landing"\nwarehouse = "/srv/segmint/segmint.duckdb"\n'
        "[ingest]\nrequire_as_of_events = true\n"
    )
    demo = tmp_path / "demo"
    env = {
        "SEGMINT_CONFIG": str(config),
        "SEGMINT_LANDING": str(demo / "landing"),
        "SEGMINT_WAREHOUSE": "/srv/segmint/segmint.duckdb",  # the file's own
        "SEGMINT_OUTPUT": str(demo / "output"),  # not in the file
    }
    said = settings_file_overridden(env)
    assert said == (
        f"Warning: the environment overrides 1 path(s) of the settings file {config}: "
        f"landing = 'shop/landing' by SEGMINT_LANDING={demo / 'landing'}. The DAG's tasks "
        "use the variables (`make` exports the demo's paths unless they are set: README, "
        '"Configuration"); to use your own, set them on the command line too (make airflow '
        "SEGMINT_LANDING=... SEGMINT_WAREHOUSE=... SEGMINT_OUTPUT=... SEGMINT_AUDIENCES=...)."
    )
    same = {**env, "SEGMINT_LANDING": str(config.parent / "shop" / "landing")}
    assert settings_file_overridden(same) == ""
    assert settings_file_overridden({**env, "SEGMINT_CONFIG": str(tmp_path / "none.toml")}) == ""
