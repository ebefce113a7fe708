"""Syslog receivers: RFC 5424 / RFC 3164 over UDP, TCP and TLS (RFC 6587 octet counting or newline
framing), into the log store.

Messages from every connection and datagram go into one bounded queue; a flusher takes up to
``max_batch`` of them (or what arrived within ``flush_interval``), decodes them off the event loop
(``ingest.syslog.decode_messages``, peer address as the ``host`` fallback) and commits them through
the ``LogIngestor``. Syslog has no acknowledgement: a sender learns nothing of what was stored, so

- a full queue stops reading from TCP/TLS connections (the sender's socket buffer fills: TCP's own
  back-pressure) and drops UDP datagrams (counted, as any UDP receiver must);
- a message the pipeline refuses (over ``max_line_bytes``, a timestamp outside the accepted window)
  is dropped alone and counted by reason, never its whole batch; a batch the store refuses for
  overload is retried after the store's ``Retry-After``;
- a TCP stream that cannot be framed (a bad octet count, a frame over the limit) is closed with a
  warning naming the peer (the stream cannot be resynchronised).

What sits in the queue when the process is killed is lost (at most ``flush_interval`` of traffic in
steady state): syslog offers nothing to replay from. Every message is stored for one tenant
(``syslog.tenant``): the transport carries no credentials, which is why the listeners are off by
default and bind where configured (docs/logs.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from clearsight.config import parse_listen
from clearsight.ingest.log_common import LogLimits
from clearsight.ingest.syslog import SyslogFramer, SyslogFramingError, decode_messages
from clearsight.pipeline.errors import IngestError, Overloaded
from clearsight.pipeline.log_ingestor import LogIngestor
from clearsight.selfmetrics import SelfMetrics

log = logging.getLogger("clearsight.api.syslog")

_READ_CHUNK = 65536
_MAX_RETRIES = 20


@dataclass(frozen=True)
class _Item:
    raw: bytes
    peer: str
    protocol: str  # syslog_udp | syslog_tcp | syslog_tls


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SyslogListener) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.owner.offer_datagram(data, str(addr[0]))


class SyslogListener:
    """The UDP, TCP and TLS syslog listeners of one server (each optional: "" disables it)."""

    def __init__(self, ingestor: LogIngestor, tenant: str, metrics: SelfMetrics, *, udp_listen: str = "",
                 tcp_listen: str = "", tls_listen: str = "", tls: ssl.SSLContext | None = None,
                 limits: LogLimits | None = None, executor: Executor | None = None,
                 queue_messages: int = 50_000, max_batch: int = 2_000, flush_interval: float = 0.2,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        if tls_listen and tls is None:
            raise ValueError("a TLS syslog listener needs a TLS context (server.tls_cert_file/tls_key_file)")
        self.ingestor = ingestor
        self.tenant = tenant
        self.metrics = metrics
        self.limits = limits or LogLimits()
        self.executor = executor
        self.max_batch = min(max_batch, self.limits.max_entries_per_request)
        self.flush_interval = flush_interval
        self.clock_ns = clock_ns
        self._listen = {"udp": udp_listen, "tcp": tcp_listen, "tls": tls_listen}
        self._tls = tls
        self._queue: asyncio.Queue[_Item] | None = None
        self._queue_messages = queue_messages
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._conns: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self.ports: dict[str, int] = {}  # bound ports by kind, once started

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(self._queue_messages)
        if self._listen["udp"]:
            host, port = parse_listen(self._listen["udp"])
            transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), local_addr=(host, port))
            self._udp = transport
            self.ports["udp"] = transport.get_extra_info("sockname")[1]
        for kind in ("tcp", "tls"):
            if not self._listen[kind]:
                continue
            host, port = parse_listen(self._listen[kind])
            server = await asyncio.start_server(
                functools.partial(self._connection, kind=kind), host, port,
                ssl=self._tls if kind == "tls" else None, limit=_READ_CHUNK)
            self._servers.append(server)
            self.ports[kind] = server.sockets[0].getsockname()[1]
        self._flusher = asyncio.create_task(self._flush_loop())
        log.info("syslog listening", extra={"ports": dict(self.ports)})

    async def stop(self) -> None:
        """Stops accepting, then stores what is queued."""
        if self._udp is not None:
            self._udp.close()
        for server in self._servers:
            server.close()
        for task in list(self._conns):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._queue is not None:
            rest: list[_Item] = []
            while not self._queue.empty():
                rest.append(self._queue.get_nowait())
            if rest:
                await self._store(rest)

    # --- receiving --------------------------------------------------------------------------------

    def offer_datagram(self, data: bytes, peer: str) -> None:
        assert self._queue is not None
        payload = data.rstrip(b"\r\n\x00")
        if not payload:
            return
        try:
            self._queue.put_nowait(_Item(payload, peer, "syslog_udp"))
        except asyncio.QueueFull:
            self.metrics.rejected.labels("syslog_udp", "queue_full").inc()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str) -> None:
        task = asyncio.current_task()
        assert task is not None and self._queue is not None
        self._conns.add(task)
        peername = writer.get_extra_info("peername")
        peer = peername[0] if peername else ""
        protocol = f"syslog_{kind}"
        framer = SyslogFramer(self.limits.max_line_bytes)
        try:
            while True:
                data = await reader.read(_READ_CHUNK)
                frames = framer.feed(data) if data else framer.close()
                for raw in frames:
                    await self._queue.put(_Item(raw, peer, protocol))  # waits while full: back-pressure
                if not data:
                    break
        except SyslogFramingError as e:
            self.metrics.rejected.labels(protocol, e.reason).inc()
            log.warning("syslog %s connection from %s closed: %s", kind, peer, e.message)
        except (ConnectionError, ssl.SSLError, OSError) as e:
            log.info("syslog %s connection from %s ended: %s", kind, peer, e)
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- storing ----------------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            items = [await queue.get()]
            deadline = loop.time() + self.flush_interval
            while len(items) < self.max_batch:
                if queue.empty():
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        items.append(await asyncio.wait_for(queue.get(), left))
                    except TimeoutError:
                        break
                else:
                    items.append(queue.get_nowait())
            try:
                await self._store(items)
            except Exception:
                log.exception("syslog batch of %d message(s) lost", len(items))

    async def _store(self, items: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(_MAX_RETRIES):
            try:
                await loop.run_in_executor(self.executor, self._commit, items)
                return
            except Overloaded as e:
                if attempt == _MAX_RETRIES - 1:
                    raise
                await asyncio.sleep(e.retry_after or 1.0)

    def _commit(self, items: list[_Item]) -> None:
        """Decodes and commits ``items`` (worker thread); a refused message is dropped alone."""
        now = self.clock_ns()
        limit = self.limits.max_line_bytes
        by_peer: dict[str, list[_Item]] = {}
        for it in items:
            if len(it.raw) > limit:
                self.metrics.rejected.labels(it.protocol, "line_too_long").inc()
                continue
            by_peer.setdefault(it.peer, []).append(it)
        for peer, group in by_peer.items():
            try:
                self._ingest(group, peer, now)
            except Overloaded:
                raise
            except IngestError:
                if len(group) == 1:
                    raise
                for one in group:  # find the refused ones; keep the others
                    try:
                        self._ingest([one], peer, now)
                    except Overloaded:
                        raise
                    except IngestError as e:
                        self.metrics.rejected.labels(one.protocol, e.reason).inc()

    def _ingest(self, group: list[_Item], peer: str, now: int) -> None:
        batch = decode_messages([it.raw for it in group], now_ns=now, peer_host=peer, limits=self.limits)
        result = self.ingestor.ingest_blocking(self.tenant, batch)
        counts: dict[str, int] = {}
        for it in group:
            counts[it.protocol] = counts.get(it.protocol, 0) + 1
        for protocol, n in counts.items():
            self.metrics.log_lines_ingested.labels(protocol).inc(n)
        if result.bytes_written:
            self.metrics.log_bytes_ingested.labels(group[0].protocol).inc(result.bytes_written)
