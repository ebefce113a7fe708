"""Detected fields and patterns of log lines (Loki's detected_fields / patterns endpoints)."""

from __future__ import annotations

from clearsight.query.logql.discovery import detect_fields, mine_patterns, pattern_of


def test_detect_fields_types_cardinality_and_parsers() -> None:
    lines = ['{"level": "info", "status": 200, "took": "1.5s", "ok": true, "req": {"size": "10KB", "ratio": 0.5}}',
             '{"level": "error", "status": 500, "took": "20ms", "ok": false, "req": {"size": "3MB", "ratio": 1}}',
             'level=warn status=404 took=3s user="a b" flag',
             "not structured at all"]
    got = {f.label: (f.type, len(f.values), sorted(f.parsers)) for f in detect_fields(lines)}
    assert got == {
        "level": ("string", 3, ["json", "logfmt"]),
        "status": ("int", 3, ["json", "logfmt"]),
        "took": ("duration", 3, ["json", "logfmt"]),
        "ok": ("boolean", 2, ["json"]),
        "req_size": ("bytes", 2, ["json"]),
        "req_ratio": ("float", 2, ["json"]),
        "user": ("string", 1, ["logfmt"]),
    }


def test_patterns_mask_variable_tokens_and_count_per_step() -> None:
    assert pattern_of("GET /api/v1/users/42 200 12ms") == "GET <_>"
    assert pattern_of("level=info took=12ms user=bob") == "level=info took=<_> user=bob"
    assert pattern_of("connection from 10.0.0.1 port 5555 closed") == "connection from <_> port <_> closed"
    s = 1_000_000_000
    entries = [(i * s, f"connection from 10.0.0.{i} port {1000 + i} closed") for i in range(10)]
    entries += [(i * s, "cache miss for key users") for i in range(0, 10, 5)]
    found = mine_patterns(entries, 0, 5 * s)
    assert [(p, dict(c)) for p, c in found] == [("connection from <_> port <_> closed", {0: 5, 5 * s: 5}),
                                                ("cache miss for key users", {0: 1, 5 * s: 1})]
