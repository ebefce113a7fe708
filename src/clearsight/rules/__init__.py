"""Recording and alerting rules with Prometheus' semantics.

``rules/`` imports neither the query engine nor the store nor the notifier: it receives a
``QueryFunc`` (PromQL text and a time -> a vector), a ``WriteFunc`` (recording results, ALERTS,
stale markers) and a ``NotifyFunc`` (Alertmanager API v2 postable alerts); ``server.py`` wires them.
"""
