"""Root fixtures shared by every test folder.

Tests run from the repository root; nothing here touches the user's own warehouse or landing
zone: every test gets its own folder under pytest's tmp_path. A test that writes into the
checkout's ./output (the default output folder of a stage run from here) fails.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The default run outputs folder (Settings.output) of a stage run from the checkout. A test
# that leaves files here forgot its own output folder: GX Data Docs, reports and exports of
# its as-of date land among the developer's own (and get mistaken for them).
CHECKOUT_OUTPUT = REPO_ROOT / "output"
# ... except this folder, where the report tests keep their screenshots and pages on purpose,
# for a person to look at (tests/include/report).
TEST_ARTIFACTS = CHECKOUT_OUTPUT / "test-artifacts"
_OUTPUT_BEFORE = pytest.StashKey[dict[str, int]]()


def _output_files() -> dict[str, int]:
    """Every file under the checkout's ./output with its modification time (ns)."""
    found = {}
    for folder, subfolders, files in os.walk(CHECKOUT_OUTPUT):
        if Path(folder) == CHECKOUT_OUTPUT and TEST_ARTIFACTS.name in subfolders:
            subfolders.remove(TEST_ARTIFACTS.name)
        for name in files:
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):  # removed while we looked
                found[path] = os.stat(path).st_mtime_ns
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test's fixtures (a session fixture set up for it included), note ./output."""
    item.stash[_OUTPUT_BEFORE] = _output_files()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Fail the test (at teardown, after its fixtures ended) that wrote into the checkout's
    ./output: tests give every stage an output folder under tmp_path. Files the developer
    had there before are left alone and not counted."""
    report = yield
    if call.when != "teardown" or _OUTPUT_BEFORE not in item.stash:
        return report
    before = item.stash[_OUTPUT_BEFORE]
    after = _output_files()
    written = sorted(p for p, mtime in after.items() if before.get(p) != mtime)
    # ... or removed the developer's files (publish deletes old nights' outputs).
    written += sorted(p for p in before if p not in after)
    if written and report.outcome != "failed":
        shown = "\n  ".join(os.path.relpath(p, REPO_ROOT) for p in written[:10])
        more = f"\n  ... and {len(written) - 10} more" if len(written) > 10 else ""
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} wrote or removed {len(written)} file(s) in the checkout's "
            "./output (the default output folder): give its settings an output folder under "
            f"tmp_path (Settings(output=...), --output or SEGMINT_OUTPUT)\n  {shown}{more}"
        )
    return report


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
