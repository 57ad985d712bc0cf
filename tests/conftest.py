"""Root fixtures shared by every test folder.

Tests run from the repository root; nothing here touches the user's own warehouse or landing
zone: every test gets its own folder under pytest's tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep SEGMINT_* variables of the caller's shell (or `make`) out of the tests."""
    for key in list(os.environ):
        if key.startswith("SEGMINT_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(REPO_ROOT)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
