"""The container collector: every container of a Docker or Podman engine, through the Engine API.

One ``GET /containers/json?all=true``, then per running container ``/containers/{id}/json`` (start
time, restarts, health) and ``/containers/{id}/stats?stream=false&one-shot=true``. Names and units
follow cAdvisor (``container_cpu_usage_seconds_total``, ``container_memory_usage_bytes``,
``container_network_receive_bytes_total{interface}``, ``container_fs_reads_bytes_total``, ...) so
dashboards written for it work; the CPU share between two collections, the state, health and
restarts are Clearsight's own families (``clearsight_container_*``). Every series carries ``id``
(the full container id), ``name``, ``image`` and the container's labels as ``container_label_<name>``
(cAdvisor's convention, invalid characters replaced by ``_``).

The engine's ``precpu_stats`` is not used (Podman leaves it zero): the CPU share is computed from this
collector's own previous sample of the same container, as Docker's CLI does with its two samples:
``delta(cpu_usage.total_usage) / delta(system_cpu_usage) * online_cpus`` (1.0 = one core busy).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from clearsight.agent.engine_api import EngineError
from clearsight.agent.sample import Sample

log = logging.getLogger("clearsight.agent.containers")

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_FRACTION = re.compile(r"\.(\d+)")

# stats "networks" keys -> cAdvisor family suffix
_NET_FIELDS = (
    ("rx_bytes", "receive_bytes"), ("rx_packets", "receive_packets"), ("rx_errors", "receive_errors"),
    ("rx_dropped", "receive_packets_dropped"), ("tx_bytes", "transmit_bytes"),
    ("tx_packets", "transmit_packets"), ("tx_errors", "transmit_errors"), ("tx_dropped", "transmit_packets_dropped"),
)


class Engine(Protocol):
    def get(self, path: str) -> Any: ...


class ContainerInfo(NamedTuple):
    id: str
    name: str
    image: str
    state: str


def parse_engine_time(text: str) -> float | None:
    """``2026-12-04T21:02:14.014321744Z`` -> unix seconds; None for Go's zero time or junk."""
    if not text or text.startswith("0001-"):
        return None
    t = _FRACTION.sub(lambda m: "." + m.group(1)[:6], text.replace("Z", "+00:00"), count=1)
    try:
        return datetime.fromisoformat(t).timestamp()
    except ValueError:
        return None


def _s(family: str, value: float, base: Mapping[str, str], **extra: str) -> Sample:
    """A sample (its labels include ``name``, which ``sample()`` takes as the family)."""
    return Sample(family, tuple(sorted({**base, **extra}.items())), float(value))


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


class ContainerCollector:
    name = "containers"

    def __init__(self, engine: Engine, *, include_stopped: bool = True) -> None:
        self.engine = engine
        self.include_stopped = include_stopped
        self.errors: dict[str, int] = {}
        self._warned: set[str] = set()
        self.last_containers: list[ContainerInfo] = []  # for the inventory heartbeat
        self._prev_cpu: dict[str, tuple[float, float]] = {}  # id -> (total_usage ns, system_cpu_usage ns)

    def _error(self, part: str, e: Exception) -> None:
        """Counted always; logged as a WARNING once until the engine answers a listing again."""
        self.errors[part] = self.errors.get(part, 0) + 1
        log.log(logging.DEBUG if part in self._warned else logging.WARNING, "container collector: %s: %s", part, e)
        self._warned.add(part)

    def collect(self) -> list[Sample]:
        try:
            listing = self.engine.get("/containers/json?all=true")
        except EngineError as e:
            self._error("list", e)
            self.last_containers = []
            return []
        if not isinstance(listing, list):
            self._error("list", EngineError(f"expected a JSON array, got {type(listing).__name__}"))
            return []
        self._warned.discard("list")
        out: list[Sample] = []
        seen: list[ContainerInfo] = []
        for c in listing:
            if not isinstance(c, Mapping) or not isinstance(c.get("Id"), str):
                continue
            names = c.get("Names") or []
            name = str(names[0]).lstrip("/") if names else c["Id"][:12]
            info = ContainerInfo(c["Id"], name, str(c.get("Image", "")), str(c.get("State", "")).lower())
            seen.append(info)
            if info.state != "running" and not self.include_stopped:
                continue
            base = {"id": info.id, "name": info.name, "image": info.image}
            labels = c.get("Labels") or {}
            if isinstance(labels, Mapping):
                for k, v in labels.items():
                    base[f"container_label_{_INVALID.sub('_', str(k))}"] = str(v)
            out.append(_s("clearsight_container_state", 1, base, state=info.state))
            if info.state == "running":
                out.extend(self._running(info.id, base))
        live = {i.id for i in seen}
        for cid in list(self._prev_cpu):
            if cid not in live:
                del self._prev_cpu[cid]
        self.last_containers = seen
        return out

    def _running(self, cid: str, base: dict[str, str]) -> list[Sample]:
        out: list[Sample] = []
        try:
            inspect = self.engine.get(f"/containers/{cid}/json")
        except EngineError as e:
            self._error("inspect", e)
            inspect = None
        if isinstance(inspect, Mapping):
            st = inspect.get("State") or {}
            started = parse_engine_time(str(st.get("StartedAt", "")))
            if started is not None:
                out.append(_s("container_start_time_seconds", started, base))
            restarts = _num(inspect.get("RestartCount"))
            if restarts is not None:
                out.append(_s("clearsight_container_restarts_total", restarts, base))
            health = (st.get("Health") or {}).get("Status") if isinstance(st, Mapping) else None
            if health:
                out.append(_s("clearsight_container_health", 1, base, status=str(health)))
        try:
            stats = self.engine.get(f"/containers/{cid}/stats?stream=false&one-shot=true")
        except EngineError as e:
            self._error("stats", e)
            return out
        if not isinstance(stats, Mapping):
            return out
        out.extend(self._cpu(cid, stats.get("cpu_stats") or {}, base))
        mem = stats.get("memory_stats") or {}
        for key, family in (("usage", "container_memory_usage_bytes"), ("limit", "container_spec_memory_limit_bytes")):
            v = _num(mem.get(key))
            if v is not None:
                out.append(_s(family, v, base))
        pids = _num((stats.get("pids_stats") or {}).get("current"))
        if pids is not None:
            out.append(_s("container_threads", pids, base))
        for iface, counters in sorted((stats.get("networks") or {}).items()):
            if not isinstance(counters, Mapping):
                continue
            for key, suffix in _NET_FIELDS:
                v = _num(counters.get(key))
                if v is not None:
                    out.append(_s(f"container_network_{suffix}_total", v, base, interface=str(iface)))
        out.extend(self._blkio(stats.get("blkio_stats") or {}, base))
        return out

    def _cpu(self, cid: str, cpu: Mapping[str, Any], base: dict[str, str]) -> list[Sample]:
        out: list[Sample] = []
        usage = cpu.get("cpu_usage") or {}
        total = _num(usage.get("total_usage"))
        if total is None:
            return out
        out.append(_s("container_cpu_usage_seconds_total", total / 1e9, base))
        for key, family in (("usage_in_usermode", "container_cpu_user_seconds_total"),
                            ("usage_in_kernelmode", "container_cpu_system_seconds_total")):
            v = _num(usage.get(key))
            if v is not None:
                out.append(_s(family, v / 1e9, base))
        system = _num(cpu.get("system_cpu_usage"))
        online = _num(cpu.get("online_cpus")) or float(len(usage.get("percpu_usage") or ()) or 1)
        if system is None:
            return out
        prev = self._prev_cpu.get(cid)
        self._prev_cpu[cid] = (total, system)
        if prev is not None and system > prev[1] and total >= prev[0]:
            ratio = (total - prev[0]) / (system - prev[1]) * online
            out.append(_s("clearsight_container_cpu_usage_ratio", ratio, base))
        return out

    @staticmethod
    def _blkio(blkio: Mapping[str, Any], base: dict[str, str]) -> list[Sample]:
        sums: dict[str, float] = {}
        for key, kind in (("io_service_bytes_recursive", "bytes"), ("io_serviced_recursive", "ops")):
            for e in blkio.get(key) or ():
                if not isinstance(e, Mapping):
                    continue
                op = str(e.get("op", "")).lower()
                v = _num(e.get("value"))
                if op in ("read", "write") and v is not None:
                    sums[f"{op}_{kind}"] = sums.get(f"{op}_{kind}", 0.0) + v
        if not blkio.get("io_service_bytes_recursive") and blkio.get("io_service_bytes_recursive") is not None:
            sums.setdefault("read_bytes", 0.0)
            sums.setdefault("write_bytes", 0.0)
        families = {"read_bytes": "container_fs_reads_bytes_total", "write_bytes": "container_fs_writes_bytes_total",
                    "read_ops": "container_fs_reads_total", "write_ops": "container_fs_writes_total"}
        return [_s(families[k], v, base) for k, v in sorted(sums.items())]
