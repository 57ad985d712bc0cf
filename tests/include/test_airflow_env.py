"""`python -m segmint.airflow_env env`, as docs/operations.md uses it: evaluated in a shell
whose virtualenv is not activated, the `airflow ...` commands that follow must run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from segmint.airflow_env import (
    REPO_ROOT,
    airflow_bin,
    demo_paths_yield,
    settings_file_overridden,
)


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
        "use the variables; unset them to use the file's paths."
    )
    same = {**env, "SEGMINT_LANDING": str(config.parent / "shop" / "landing")}
    assert settings_file_overridden(same) == ""
    assert settings_file_overridden({**env, "SEGMINT_CONFIG": str(tmp_path / "none.toml")}) == ""


def _make_env(*args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The SEGMINT_* variables the Makefile exports to its recipes."""
    recipe = "print-env: ; @env | grep '^SEGMINT_' || true"
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", f"--eval={recipe}", "print-env", *args],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_make_airflow_lets_the_settings_files_own_paths_win_over_the_demos(
    tmp_path: Path,
) -> None:
    """The Makefile exports the demo's paths, and a variable wins over the settings file:
    with their own landing zone and warehouse in segmint.toml, `make airflow` and `make
    backfill` ran every night on the demo's (warned of since, not fixed). Now the demo's
    defaults yield to the file's own paths; a path the caller set (command line or shell)
    still wins, and a key the file does not set keeps the demo's."""
    config = tmp_path / "segmint.toml"
    config.write_text('landing = "shop/landing"\nwarehouse = "/srv/segmint/segmint.duckdb"\n')
    made = _make_env("SEGMINT_WAREHOUSE=/mine/segmint.duckdb", env={"SEGMINT_OUTPUT": "/out"})
    assert made["SEGMINT_DEMO_DEFAULTS"].split() == ["SEGMINT_LANDING", "SEGMINT_AUDIENCES"]
    env, said = demo_paths_yield({**made, "SEGMINT_CONFIG": str(config)})
    assert "SEGMINT_LANDING" not in env  # the file's shop/landing wins over the demo's
    assert env["SEGMINT_WAREHOUSE"] == "/mine/segmint.duckdb"  # the caller's wins
    assert env["SEGMINT_OUTPUT"] == "/out"
    assert env["SEGMINT_AUDIENCES"] == made["SEGMINT_AUDIENCES"]  # not in the file
    assert "SEGMINT_DEMO_DEFAULTS" not in env
    assert said == [
        f"landing = 'shop/landing' from {config} (not the demo's {made['SEGMINT_LANDING']})"
    ]
    # The tasks then read the file's landing zone: settings as a task loads them.
    from segmint.config import load_settings

    assert load_settings(environ=env).landing == tmp_path / "shop" / "landing"
    # Without a settings file every demo path stays.
    alone, none_said = demo_paths_yield({**made, "SEGMINT_CONFIG": str(tmp_path / "no.toml")})
    assert alone["SEGMINT_LANDING"] == made["SEGMINT_LANDING"] and none_said == []


def test_make_backfill_checks_the_landing_zone_its_tasks_will_read(tmp_path: Path) -> None:
    """make backfill says which nights have no events file; it read the landing zone of the
    process's own environment (the Makefile's demo path) even where the settings file's own
    landing zone now wins for the tasks."""
    from segmint.airflow_env import nights_without_events

    config = tmp_path / "segmint.toml"
    config.write_text('landing = "shop"\n')
    day = tmp_path / "shop" / "events" / "dt=2026-06-28"
    day.mkdir(parents=True)
    (day / "e.jsonl").write_text('{"event_id": "e1"}\n')
    demo = tmp_path / "demo"
    (demo / "events").mkdir(parents=True)
    assert nights_without_events("2026-06-28", "2026-06-28", {"SEGMINT_CONFIG": str(config)}) == ""
    said = nights_without_events(
        "2026-06-28", "2026-06-28", {"SEGMINT_CONFIG": str(config), "SEGMINT_LANDING": str(demo)}
    )
    assert said.startswith(f"1 of the 1 night(s) have no events file in {demo / 'events'}")
