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


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_place_where_no_file_can_be_created_is_refused_before_the_work() -> None:
    """`segmint audience export --out /proc/x.csv` was "unexpected IOException: ... Cannot
    open file "/proc/.x.csv.tmp"", exit code 2, once the export's queries had run; a folder
    that cannot be made there was "unexpected PermissionError". The block never runs now."""
    from segmint.stages import SegmintError

    ran = []
    for out, named in (
        (Path("/proc/segmint-test.csv"), "/proc/.segmint-test.csv.tmp"),
        (Path("/proc/self/segmint-test/x.csv"), "/proc/self/segmint-test"),
    ):
        with pytest.raises(SegmintError) as err, written_atomically(out):
            ran.append(out)
        assert str(err.value) == (
            f"cannot write {out}: No such file or directory ({named}): no file can be created "
            "there, and none was; give a path in a folder this user can create files in"
        )
    assert ran == []


def test_a_device_or_pipe_at_the_path_is_refused_not_replaced(tmp_path: Path) -> None:
    """The rename replaced whatever was at the path: run as root (a container), `segmint
    report --out /dev/null` put a 3 MB regular file in place of the device. A named pipe
    stands in for the device here."""
    import os
    import stat

    from segmint.stages import SegmintError

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(SegmintError) as err, written_atomically(pipe) as tmp:
        tmp.write_text("<html></html>")
    assert str(err.value) == (
        f"cannot write {pipe}: it is not a regular file (a device, a pipe or a socket), and the "
        "file written would replace it; give the path of a file"
    )
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_a_forbidden_folder_is_a_disk_fault_naming_the_file(tmp_path: Path) -> None:
    """A folder this user may not write: the OSError names the file asked for, not its
    temporary, so the command's line says which --out and how to fix it."""
    import errno
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = locked / "audience.csv"
    with pytest.raises(OSError) as err, written_atomically(out):
        pass
    assert (err.value.errno, err.value.filename) == (errno.EACCES, str(out))
    assert list(locked.iterdir()) == []
