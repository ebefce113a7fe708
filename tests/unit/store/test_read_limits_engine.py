"""The engine hands the query's remaining sample budget to the store (store.interface.ReadLimits):
the embedded store refuses an oversized read before assembling it, and the error names the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.model.samples import SampleBatch
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.values import QueryLimitExceeded
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.storetest import workload


def test_an_oversized_select_is_refused_by_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = workload.series_labels(40)
    ts = workload.timestamps(50)
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**12, out_of_order_window_ms=3_600_000,
                                 compact_min_rows=10**9)
    try:
        for b in workload.scrape_batches(labels, ts, workload.values_matrix(40, 50), batch_series=40):
            store.append("t", b).result()
        store.compact()
        store.append("t", SampleBatch.from_series([(labels[0], [(int(ts[-1]) + 15_000, 1.0)])])).result()
        end = int(ts[-1]) + 15_000
        ok = Engine(max_samples=10_000).instant(store.querier("t"), '{job="node"}[1h]', end)
        assert len(ok.series) == 40

        assembled = []
        original = store._assemble
        monkeypatch.setattr(store, "_assemble", lambda *a: assembled.append(1) or original(*a))
        with pytest.raises(QueryLimitExceeded, match=r"too many samples.*query\.max_samples=1,000"):
            Engine(max_samples=1_000).instant(store.querier("t"), '{job="node"}[1h]', end)
        assert assembled == []  # refused before the samples were assembled
    finally:
        monkeypatch.undo()
        store.close()
