"""The file source on real files in a temp dir: rotation (rename + create, copytruncate), offsets
persisted across restarts, first start at the end, unterminated lines, multiline joining, long lines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearsight.agent.sources.files import FileSource
from clearsight.agent.sources.state import StateFile

OPEN: list[FileSource] = []


@pytest.fixture(autouse=True)
def _close_sources() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def src(tmp_path: Path, pattern: str = "*.log", **kw: object) -> FileSource:
    s = FileSource([str(tmp_path / "logs" / pattern)], StateFile(tmp_path / "state.json"),
                   **kw)  # type: ignore[arg-type]
    OPEN.append(s)
    return s


def bodies(s: FileSource) -> list[str]:
    out = [r.body for r in s.read()]
    s.commit()
    return out


def append(p: Path, text: str) -> None:
    with open(p, "a") as fh:
        fh.write(text)


def setup(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    return tmp_path / "logs" / "app.log"


def test_tail_and_attributes(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("a\nb\n")
    s = src(tmp_path, read_from="beginning", labels={"app": "shop"}, service="shop")
    recs = s.read()
    assert [r.body for r in recs] == ["a", "b"]
    assert dict(recs[0].attributes) == {"log_file_path": str(log), "log_file_name": "app.log", "app": "shop"}
    assert recs[0].time_ns == 0
    append(log, "c\r\nunterminated")
    assert bodies(s) == ["c"]
    append(log, " now\n")
    assert bodies(s) == ["unterminated now"]


def test_first_start_at_the_end_new_files_from_their_start(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("old 1\nold 2\n")
    s = src(tmp_path)  # read_from: end
    assert bodies(s) == []
    append(log, "new 1\n")
    (tmp_path / "logs" / "other.log").write_text("other 1\n")  # appeared after the first start
    assert sorted(bodies(s)) == ["new 1", "other 1"]


def test_rename_and_create(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("1\n")
    s = src(tmp_path, read_from="beginning")
    assert bodies(s) == ["1"]
    append(log, "2\n3")  # written just before the rotation, the last line unterminated
    os.rename(log, tmp_path / "logs" / "app.log.1")  # not matched by *.log
    log.write_text("4\n")
    assert bodies(s) == ["2", "3", "4"]  # the old file is read to its end first, then the new one
    append(log, "5\n")
    assert bodies(s) == ["5"]


def test_renamed_file_that_still_matches_is_followed(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("1\n")
    s = src(tmp_path, pattern="app.log*", read_from="beginning")
    assert bodies(s) == ["1"]
    append(log, "2\n")
    os.rename(log, tmp_path / "logs" / "app.log.1")
    log.write_text("3\n")
    assert sorted(bodies(s)) == ["2", "3"]  # nothing twice, nothing lost


def test_copytruncate(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("1\n2\n")
    s = src(tmp_path, read_from="beginning")
    assert bodies(s) == ["1", "2"]
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, "3\n")
    assert bodies(s) == ["3"]


def test_offsets_survive_a_restart(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("1\n2\n")
    s = src(tmp_path, read_from="beginning")
    assert bodies(s) == ["1", "2"]
    s.close()
    append(log, "3\n")
    s2 = src(tmp_path, read_from="beginning")  # a restart: resumes at the committed offset
    recs = s2.read()
    assert [r.body for r in recs] == ["3"]
    s2.close()  # killed before commit: read again after the next start (at least once)
    s3 = src(tmp_path, read_from="beginning")
    assert bodies(s3) == ["3"]
    s3.close()
    # rotated while the agent was away: the rest of the old file (found by its inode), then the new
    # file (unknown inode) from its start
    append(log, "3b\n")
    os.rename(log, tmp_path / "logs" / "app.log.1")
    log.write_text("4\n")
    s4 = src(tmp_path)
    assert sorted(bodies(s4)) == ["3b", "4"]
    append(tmp_path / "logs" / "app.log.1", "late\n")
    assert bodies(s4) == []  # the rotated file was read to its end and dropped


def test_truncated_while_away(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("1\n2\n")
    s = src(tmp_path, read_from="beginning")
    assert bodies(s) == ["1", "2"]
    s.close()
    log.write_text("3\n")  # shorter than the stored offset
    assert bodies(src(tmp_path)) == ["3"]


def test_multiline(tmp_path: Path) -> None:
    log = setup(tmp_path)
    s = src(tmp_path, read_from="beginning", multiline_start=r"^\d{4}-")
    log.write_text("2026-01-01 ERROR boom\nTraceback:\n  File x\n2026-01-01 INFO ok\n  more")
    assert bodies(s) == ["2026-01-01 ERROR boom\nTraceback:\n  File x"]
    # the second record waits: a restart now rebuilds it whole from the committed offset
    s.close()
    s = src(tmp_path, read_from="beginning", multiline_start=r"^\d{4}-")
    append(log, " lines\n")
    assert bodies(s) == []  # nothing after it yet: complete after one idle poll
    assert bodies(s) == ["2026-01-01 INFO ok\n  more lines"]


def test_long_lines_are_cut(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("x" * 100 + "\nshort\n")
    s = src(tmp_path, read_from="beginning", max_line_bytes=10)
    assert bodies(s) == ["x" * 10, "short"]


def test_unreadable_file_is_counted(tmp_path: Path) -> None:
    log = setup(tmp_path)
    log.write_text("1\n")
    os.chmod(log, 0)
    s = src(tmp_path, read_from="beginning")
    if os.access(log, os.R_OK):  # root reads anything: nothing to count
        assert bodies(s) == ["1"]
    else:
        assert bodies(s) == [] and s.errors == {"open": 1}
