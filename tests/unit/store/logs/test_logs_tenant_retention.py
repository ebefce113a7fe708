"""Per-tenant log retention: days are dropped past the longest retention, each tenant's older
rows are deleted inside the days that are kept; reads, counts and a reopen agree."""

from __future__ import annotations

from pathlib import Path

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.store.embedded.logs_schema import DAY_NS
from clearsight.store.embedded.logs_store import EmbeddedLogStore

T0 = 20_000 * DAY_NS
ALL = (0, T0 + 100 * DAY_NS)


def _batch(app: str, days: range) -> LogBatch:
    return LogBatch.from_entries([LogEntry((("app", app),), T0 + d * DAY_NS + 5, f"{app} day {d}") for d in days])


def _bodies(store: EmbeddedLogStore, tenant: str) -> list[str]:
    return store.select(tenant, [], *ALL, limit=100, direction="forward").body


def test_each_tenant_keeps_its_own_retention(tmp_path: Path) -> None:
    store = EmbeddedLogStore(tmp_path, retention_ns=2 * DAY_NS, tenant_retention_ns={"long": 5 * DAY_NS,
                                                                                      "short": 1 * DAY_NS})
    try:
        for tenant in ("long", "short", "default"):
            store.append(tenant, _batch(tenant, range(8))).result()
        now = T0 + 8 * DAY_NS  # cutoffs: long day 3, default day 6, short day 7
        removed = store.apply_retention(now)
        assert _bodies(store, "long") == [f"long day {d}" for d in range(3, 8)]
        assert _bodies(store, "default") == [f"default day {d}" for d in range(6, 8)]
        assert _bodies(store, "short") == ["short day 7"]
        assert removed == 3 * 3 + 3 + 4  # days 0-2 of all, days 3-5 of default, days 3-6 of short
        assert store.apply_retention(now) == 0
        # the stream bounds follow: a range over the deleted days finds no stream of "short"
        assert store.series("short", [], T0, T0 + 6 * DAY_NS) == []
        assert store.series("long", [], T0, T0 + 6 * DAY_NS) == [(("app", "long"),)]
    finally:
        store.close()
    reopened = EmbeddedLogStore(tmp_path, retention_ns=2 * DAY_NS)
    try:
        assert _bodies(reopened, "short") == ["short day 7"]
        assert reopened.select_sizes("default", [], *ALL).timestamps.shape == (2,)
    finally:
        reopened.close()


def test_without_overrides_nothing_changes(tmp_path: Path) -> None:
    store = EmbeddedLogStore(tmp_path, retention_ns=2 * DAY_NS)
    try:
        store.append("t", _batch("a", range(5))).result()
        assert store.apply_retention(T0 + 5 * DAY_NS) == 3  # whole days 0-2 (cutoff: day 3 starts)
        assert _bodies(store, "t") == [f"a day {d}" for d in range(3, 5)]
    finally:
        store.close()
