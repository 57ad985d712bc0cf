"""Output files are replaced whole, and a failed write leaves neither a half-written file
nor its temporary behind (exports, reports, the docs page, models, generated data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmint.outputs import written_atomically


def test_the_file_appears_only_when_written_whole(tmp_path: Path) -> None:
    out = tmp_path / "exports" / "audience.csv"
    with written_atomically(out) as tmp:
        assert tmp.parent == out.parent and tmp.name == ".audience.csv.tmp"
        tmp.write_text("email\na@example.com\n")
        assert not out.exists()  # readers see nothing until the write ends
    assert out.read_text() == "email\na@example.com\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["audience.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "audience.csv"
    out.write_text("email\nold@example.com\n")
    with pytest.raises(OSError, match="disk full"), written_atomically(out) as tmp:
        tmp.write_text("email\nhalf")
        raise OSError("disk full")
    assert out.read_text() == "email\nold@example.com\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audience.csv"]


def test_a_write_that_failed_before_creating_the_temporary_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with pytest.raises(ValueError, match="bad template"), written_atomically(out):
        raise ValueError("bad template")
    assert not out.exists() and list(tmp_path.iterdir()) == []
