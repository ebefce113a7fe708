"""``clearsight silence recurring add|list|delete`` against a real server (anonymous loopback access, an
editor): create (days as ranges, an overnight window in a zone), list as a table and as JSON, a refused
time zone writes nothing, a whole-day window's silence shows in ``clearsight silence list``, delete."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearsight.cli.alerts import CliError
from clearsight.cli.silence_schedules import parse_days
from tests.support.peers import Proc, start_clearsight


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("silence-schedules-cli")
    proc = start_clearsight(work)
    try:
        yield proc
    finally:
        proc.stop()


def cli(proc: Proc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clearsight", "silence", *args, "--url", proc.url],
                          capture_output=True, text=True, timeout=60)


def listed(proc: Proc) -> list[dict[str, object]]:
    r = cli(proc, "recurring", "list", "-o", "json")
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def test_parse_days() -> None:
    assert parse_days("sat,sun") == ["saturday", "sunday"]
    assert parse_days("mon-fri") == ["monday", "tuesday", "wednesday", "thursday", "friday"]
    assert parse_days("fri-mon") == ["monday", "friday", "saturday", "sunday"]  # a range across the week's end
    assert parse_days("Wednesday, wed") == ["wednesday"]
    for bad in ("sa", "funday", "mon-", ""):
        with pytest.raises(CliError, match="--days"):
            parse_days(bad)


def test_add_list_refuse_and_delete(server: Proc) -> None:
    add = cli(server, "recurring", "add", "alertname=NightlyBackup", 'job=~"db-.*"', "--days", "mon-fri",
              "--from", "22:00", "--to", "06:00", "--tz", "Europe/Berlin", "-c", "backups overnight")
    assert add.returncode == 0, add.stderr
    sid = add.stdout.strip()
    assert len(sid) == 32 and "next window:" in add.stderr
    (got,) = listed(server)
    assert got["id"] == sid and got["weekdays"] == ["monday", "tuesday", "wednesday", "thursday", "friday"]
    assert (got["startTime"], got["endTime"], got["timeZone"]) == ("22:00", "06:00", "Europe/Berlin")
    table = cli(server, "recurring", "list")
    assert table.returncode == 0 and sid in table.stdout and "22:00-06:00" in table.stdout
    assert 'job=~"db-.*"' in table.stdout
    bad = cli(server, "recurring", "add", "alertname=X", "--days", "sun", "--from", "02:00", "--to", "04:00",
              "--tz", "Mars/Olympus", "-c", "x")
    assert bad.returncode == 1 and "timeZone" in bad.stderr
    assert [s["id"] for s in listed(server)] == [sid]
    # a whole-day window: its silence is active now, an ordinary one in `clearsight silence list`
    allday = cli(server, "recurring", "add", "alertname=NightlyBackup", "--days", "mon-sun", "--from", "00:00",
                 "--to", "24:00", "-c", "all day")
    assert allday.returncode == 0, allday.stderr
    aid = allday.stdout.strip()
    silences = json.loads(cli(server, "list", "-o", "json").stdout)
    assert [s["status"]["state"] for s in silences if aid in s["comment"] and s["status"]["state"] == "active"] == [
        "active"]
    gone = cli(server, "recurring", "delete", sid, aid)
    assert gone.returncode == 0 and f"deleted {sid}" in gone.stdout
    assert listed(server) == []
    assert [s for s in json.loads(cli(server, "list", "-o", "json").stdout) if aid in s["comment"]] == []
    missing = cli(server, "recurring", "delete", sid)
    assert missing.returncode == 1 and "404" in missing.stderr
