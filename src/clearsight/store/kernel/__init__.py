"""The storage kernel: the machinery every embedded store shares (metrics now; logs, events and
traces next), each piece in its own module with its own contract tests:

- ``writer.GroupCommitWriter``: a bounded queue of items of any type drained by one writer thread
  in groups, futures resolved by the store after its commit, ``Overloaded`` when full, ordered
  commands (flush, compact, retention, barrier), an idle hook for deferred background work;
  ``run_in_groups`` (appends between commands committed as groups) and ``retry_after_estimate``;
- ``database.Database``: the store's DuckDB file, the writer's connection and a pool of reader
  cursors;
- ``record_log.RecordLog``: an append-only log of opaque records in checksummed, preallocated
  segment files (pwrite + fdatasync per append; torn tails cut, damage resynchronised and moved
  aside, full disk refused as ``LogFull``); the metrics head log uses it;
- ``publication.Publication``: the seqlock that lets readers pair in-memory state with a
  database snapshot while the writer moves data between them;
- ``retention``: time partitions (``PartitionScheme``: one table per period named
  ``<base>_YYYYMMDD``, created on demand, listed), retention by dropping whole partitions
  (``expired``, ``drop``) and a size bound (``over_size``); the log, span and metrics stores use it.
"""
