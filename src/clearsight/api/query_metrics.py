"""``/metrics`` about query admission: slots, queue, admitted/refused/canceled reads."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clearsight.query.governor import QueryGovernor


class GovernorCollector(Collector):
    def __init__(self, governor: QueryGovernor) -> None:
        self._gov = governor

    def collect(self) -> Iterator[Metric]:
        g = self._gov
        st = g.stats()
        yield GaugeMetricFamily("clearsight_query_max_concurrency",
                                "Queries and heavy reads allowed to run at once (query.max_concurrency).",
                                value=g.max_concurrency)
        yield GaugeMetricFamily("clearsight_query_running", "Queries and heavy reads running now.", value=st.running)
        yield GaugeMetricFamily("clearsight_query_queue_length", "Queries and heavy reads waiting for a slot.",
                                value=st.queued)
        yield CounterMetricFamily("clearsight_query_admitted", "Queries and heavy reads given a slot.",
                                  value=st.admitted)
        refused = CounterMetricFamily("clearsight_query_refused",
                                      "Queries and heavy reads refused for lack of capacity (503), by reason.",
                                      labels=["reason"])
        refused.add_metric(["queue_full"], st.rejected_full)
        refused.add_metric(["max_queue_duration"], st.rejected_wait)
        refused.add_metric(["timeout_in_queue"], st.timed_out_in_queue)
        yield refused
        yield CounterMetricFamily("clearsight_query_client_canceled",
                                  "Queries and heavy reads whose client went away (the query was stopped).",
                                  value=st.canceled)


__all__ = ["GovernorCollector"]
