"""``clearsight alerts`` against a real server's Alertmanager API: --severity, --since and --state
select the alerts the notifier holds (the table and JSON outputs)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from clearsight.cli.main import app
from clearsight.notify.alert import format_time
from tests.support.peers import start_clearsight


def test_alerts_filtered_by_severity_since_and_state(tmp_path: Path) -> None:
    cs = start_clearsight(tmp_path / "cs")
    try:
        now = time.time()
        alerts = [
            {"labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
             "annotations": {"summary": "disk at 99%"}, "startsAt": format_time(now - 3 * 3600)},
            {"labels": {"alertname": "HighLoad", "instance": "web-1", "severity": "warning"},
             "startsAt": format_time(now - 600)},
            {"labels": {"alertname": "Down", "instance": "web-2", "severity": "critical"},
             "startsAt": format_time(now - 120)},
        ]
        assert httpx.post(cs.url + "/api/v2/alerts", json=alerts, timeout=10).status_code == 200
        silence = {"matchers": [{"name": "instance", "value": "web-2", "isRegex": False, "isEqual": True}],
                   "startsAt": format_time(now), "endsAt": format_time(now + 3600), "createdBy": "ops",
                   "comment": "maintenance"}
        assert httpx.post(cs.url + "/api/v2/silences", json=silence, timeout=10).status_code == 200
        cli = CliRunner()

        def names(*args: str) -> list[str]:
            out = cli.invoke(app, ["alerts", *args, "-o", "json", "--url", cs.url])
            assert out.exit_code == 0, out.output
            return [a["labels"]["alertname"] for a in json.loads(out.stdout)]

        assert names() == ["DiskFull", "Down", "HighLoad"]
        assert names("--severity", "critical") == ["DiskFull", "Down"]
        assert names("--since", "1h") == ["Down", "HighLoad"]
        assert names("--severity", "critical", "--since", "1h") == ["Down"]
        assert names("--state", "suppressed") == ["Down"]
        assert names("--state", "active", "--severity", "critical") == ["DiskFull"]
        table = cli.invoke(app, ["alerts", "--severity", "critical", "--url", cs.url])
        assert table.exit_code == 0 and "DiskFull" in table.stdout and "disk at 99%" in table.stdout
        assert "HighLoad" not in table.stdout
        bad = cli.invoke(app, ["alerts", "--since", "lately", "--url", cs.url])
        assert bad.exit_code == 1 and "--since" in bad.output
    finally:
        cs.stop()
