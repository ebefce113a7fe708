"""Acknowledged log appends survive ``kill -9`` of the process that holds the store, several times
in a row (the writer resolves a future only after its group's COMMIT), with rows left in the head
and with seals (head rows moved into blocks in one transaction) every few batches: no line lost,
none twice."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from clearsight.model.matchers import Matcher
from clearsight.store.embedded.logs_schema import DAY_NS
from clearsight.store.embedded.logs_store import EmbeddedLogStore
from tests.support.kill9 import kill_after_acks

T0 = 20_000 * DAY_NS
PER_BATCH = 50

_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from clearsight.model.logs import LogBatch, LogEntry
    from clearsight.store.embedded.logs_store import EmbeddedLogStore
    from tests.support.kill9 import print_acks
    data_dir, start, T0, PER = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = EmbeddedLogStore(data_dir, seal_rows=int(sys.argv[5]))
    def send(b):
        sender = b // 10_000  # each sender thread (and round) its own stream
        entries = [LogEntry(stream=(("app", "k9"), ("sender", str(sender))), timestamp=T0 + b * PER + j,
                            body=f"batch {b} line {j}", attributes=(("b", str(b)),)) for j in range(PER)]
        store.append("default", LogBatch.from_entries(entries)).result()
    print_acks(send, [start, start + 10_000])
""")


@pytest.mark.parametrize("seal_rows", [100_000, 3 * PER_BATCH], ids=["head", "sealing"])
def test_acked_log_batches_survive_kill9(tmp_path: Path, seal_rows: int) -> None:
    acked: list[int] = []
    for round_no in range(3):  # kill after a varying number of acknowledgements
        acked += kill_after_acks([sys.executable, "-c", _CHILD, str(tmp_path), str(round_no * 100_000), str(T0),
                                  str(PER_BATCH), str(seal_rows)], 20 + 15 * round_no)
    with EmbeddedLogStore(tmp_path) as store:
        got = store.select("default", [Matcher.of("=", "app", "k9")], 0, 2**62, limit=10**6, direction="forward")
        have = set(got.body)
        missing = [b for b in acked if not all(f"batch {b} line {j}" in have for j in range(PER_BATCH))]
        assert not missing, f"{len(missing)} acknowledged batches lost, e.g. {missing[:5]}"
        assert len(got) >= len(acked) * PER_BATCH
        assert len(have) == len(got), "a line came back twice"
    con = duckdb.connect(str(tmp_path / "logs.duckdb"), read_only=True)
    try:
        sealed = [n for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall() if n.startswith("logblk_")]
    finally:
        con.close()
    assert sealed or seal_rows > 1000  # the sealing runs did seal
