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


def test_an_output_path_that_is_a_folder_or_beneath_a_file_is_named(tmp_path: Path) -> None:
    """`segmint report --out reports/` ended in "unexpected IsADirectoryError: ... '.reports.tmp'
    -> 'reports'", and `--out report.html/x.html` in "unexpected FileExistsError: ... File
    exists: 'report.html'", exit code 2, after the page was drawn."""
    from segmint.stages import SegmintError

    folder = tmp_path / "reports"
    folder.mkdir()
    with pytest.raises(SegmintError) as err, written_atomically(folder):
        pass
    assert str(err.value) == f"cannot write {folder}: it is a folder; give the path of a file in it"
    a_file = tmp_path / "report.html"
    a_file.write_text("<html></html>")
    with pytest.raises(SegmintError) as err, written_atomically(a_file / "sub" / "x.html"):
        pass
    assert str(err.value) == (
        f"cannot write {a_file / 'sub' / 'x.html'}: {a_file} is a file, not a folder"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "reports"]
