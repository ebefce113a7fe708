"""A built engine's first queries import nothing: the function table and what numpy loads lazily
(``numpy.ma``, on ``np.unique``'s first call since numpy 2.3) are loaded with the engine, so the
first dashboard query after a (re)start does not wait ~20 ms on imports."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import clearsight.query.promql.parser  # the server's API imports it at start
from clearsight.model.labels import make_labels
from clearsight.query.promql.engine import Engine
from clearsight.store.memory import MemorySeriesSelector

sel = MemorySeriesSelector()
for i in range(3):
    sel.add(make_labels({"__name__": "up", "instance": f"h{i}"}), range(0, 600_000, 15_000), [1.0] * 40)
engine = Engine()
before = set(sys.modules)
engine.instant(sel, "up", 590_000)
engine.instant(sel, "count by (__name__) (up)", 590_000)
engine.range(sel, "sum by (instance) (rate(up[5m]))", 300_000, 590_000, 15_000)
print(sorted(set(sys.modules) - before))
"""


def test_the_first_queries_import_no_module() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
