"""`python -m segmint.airflow_env env`, as docs/operations.md uses it: evaluated in a shell
whose virtualenv is not activated, the `airflow ...` commands that follow must run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from segmint.airflow_env import airflow_bin


def test_env_exports_let_a_plain_shell_run_this_environments_airflow(tmp_path: Path) -> None:
    script = f'eval "$({sys.executable} -m segmint.airflow_env env)" && command -v airflow'
    shell_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-c", script], env=shell_env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == airflow_bin()
