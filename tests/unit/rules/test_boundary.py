"""``rules/`` receives a query, a write and a notify function: none of its modules imports the query
engine, the store, the notifier, the API or the server (issue 11's boundary)."""

from __future__ import annotations

import ast
from pathlib import Path

import clearsight.rules

FORBIDDEN = ("clearsight.query", "clearsight.store", "clearsight.notify", "clearsight.api", "clearsight.server",
             "clearsight.pipeline", "clearsight.ingest")


def test_rules_imports_neither_the_engine_nor_the_notifier() -> None:
    found = []
    for path in sorted(Path(clearsight.rules.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [(path.name, n) for n in names if n.startswith(FORBIDDEN)]
    assert found == []
