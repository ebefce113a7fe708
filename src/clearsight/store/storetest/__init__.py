"""Backend-agnostic tests and tools for ``store.interface.MetricsStore`` implementations.

- ``contract``: ``ALL_CHECKS``, functions ``check_x(factory, data_dir)`` any backend runs (see
  tests/unit/store/test_contract_embedded.py for the embedded store's wiring);
- ``workload``: a deterministic node_exporter-like workload;
- ``bench``: ``python -m clearsight.store.storetest.bench`` (embedded store ingest, size, selects).
"""
