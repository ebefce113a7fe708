"""The host collector: node_exporter's names, labels and units, read straight from /proc and /sys.

Everything the OS provides comes in as a parameter (``proc_root``, ``sys_root``, ``rootfs``, a clock,
``statvfs``, the udev data directory), so tests read fake trees committed to the repository.

Families and their node_exporter 1.5 collector (same arithmetic, so values agree exactly):
cpu (``node_cpu_seconds_total{cpu,mode}``, ``node_cpu_guest_seconds_total``), stat (boot time,
context switches, forks, interrupts, ``node_procs_running/blocked``), loadavg, meminfo, filesystem,
diskstats, netdev (``/proc/net/dev`` columns), netclass (``node_network_up``, ``mtu``), time, uname,
processes (``node_processes_pids/threads/state``). Top-N processes are Clearsight's own families
(``clearsight_top_process_*``, see docs/agent.md).

Default exclusions are those of Debian's ``prometheus-node-exporter`` 1.5 package (its build changes
upstream's mount-point default to also drop /run, /mnt and /media, and drops ``lo`` from netdev).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clearsight.agent.sample import Sample, sample

log = logging.getLogger("clearsight.agent.host")

DEFAULT_MOUNT_POINTS_EXCLUDE = r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
DEFAULT_FS_TYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs"
    r"|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$"
)
DEFAULT_DISK_DEVICE_EXCLUDE = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"
DEFAULT_NETDEV_DEVICE_EXCLUDE = r"^lo$"

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_JUMP_BACK_SECONDS = 3.0  # node_exporter: idle going back this much means a CPU was hot-plugged

# /proc/diskstats columns after major, minor, name -> (family, multiplier); node_exporter's order
_DISK_FIELDS: tuple[tuple[str, float], ...] = (
    ("node_disk_reads_completed_total", 1.0),
    ("node_disk_reads_merged_total", 1.0),
    ("node_disk_read_bytes_total", 512.0),
    ("node_disk_read_time_seconds_total", 0.001),
    ("node_disk_writes_completed_total", 1.0),
    ("node_disk_writes_merged_total", 1.0),
    ("node_disk_written_bytes_total", 512.0),
    ("node_disk_write_time_seconds_total", 0.001),
    ("node_disk_io_now", 1.0),
    ("node_disk_io_time_seconds_total", 0.001),
    ("node_disk_io_time_weighted_seconds_total", 0.001),
    ("node_disk_discards_completed_total", 1.0),
    ("node_disk_discards_merged_total", 1.0),
    ("node_disk_discarded_sectors_total", 1.0),
    ("node_disk_discard_time_seconds_total", 0.001),
    ("node_disk_flush_requests_total", 1.0),
    ("node_disk_flush_requests_time_seconds_total", 0.001),
)

# /proc/net/dev columns -> node_exporter's legacy netdev names
_NETDEV_FIELDS = (
    "receive_bytes", "receive_packets", "receive_errs", "receive_drop", "receive_fifo", "receive_frame",
    "receive_compressed", "receive_multicast",
    "transmit_bytes", "transmit_packets", "transmit_errs", "transmit_drop", "transmit_fifo", "transmit_colls",
    "transmit_carrier", "transmit_compressed",
)

_PARENS = re.compile(r"\((.*)\)")


class StatVfs(Protocol):
    @property
    def f_bsize(self) -> int: ...
    @property
    def f_blocks(self) -> int: ...
    @property
    def f_bfree(self) -> int: ...
    @property
    def f_bavail(self) -> int: ...
    @property
    def f_files(self) -> int: ...
    @property
    def f_ffree(self) -> int: ...


@dataclass(frozen=True)
class HostOptions:
    mount_points_exclude: str = DEFAULT_MOUNT_POINTS_EXCLUDE
    fs_types_exclude: str = DEFAULT_FS_TYPES_EXCLUDE
    disk_device_exclude: str = DEFAULT_DISK_DEVICE_EXCLUDE
    netdev_device_exclude: str = DEFAULT_NETDEV_DEVICE_EXCLUDE
    top_processes: int = 5  # N for the top-N by CPU and by memory; 0 turns both off
    mount_timeout: float = 5.0  # seconds; a statvfs slower than this marks the mount stuck (device_error 1)


@dataclass(frozen=True)
class _ProcStat:
    pid: str
    comm: str
    state: str
    ticks: int  # utime + stime
    threads: int
    start: int
    rss_pages: int


class HostCollector:
    """Reads the host once per ``collect()``; keeps only what rates need (previous CPU counters)."""

    name = "host"

    def __init__(
        self,
        proc_root: str | Path = "/proc",
        sys_root: str | Path = "/sys",
        *,
        clock: Callable[[], float] = time.time,
        rootfs: str | Path = "/",
        statvfs: Callable[[str], StatVfs] = os.statvfs,
        udev_data: str | Path = "/run/udev/data",
        options: HostOptions | None = None,
        user_hz: int = 100,
        page_size: int | None = None,
    ) -> None:
        self.proc = Path(proc_root)
        self.sys = Path(sys_root)
        self.rootfs = str(rootfs)
        self.clock = clock
        self.statvfs = statvfs
        self.udev_data = Path(udev_data)
        self.options = options or HostOptions()
        self.user_hz = user_hz
        self.page_size = page_size if page_size is not None else os.sysconf("SC_PAGE_SIZE")
        self._mount_exclude = re.compile(self.options.mount_points_exclude)
        self._fstype_exclude = re.compile(self.options.fs_types_exclude)
        self._disk_exclude = re.compile(self.options.disk_device_exclude)
        self._netdev_exclude = re.compile(self.options.netdev_device_exclude)
        self._cpu: dict[str, list[float]] = {}
        self._proc_prev: dict[tuple[str, int], int] = {}
        self._proc_prev_time: float | None = None
        self.parts: tuple[tuple[str, Callable[[], Iterator[Sample]]], ...] = (
            ("stat", self.stat), ("loadavg", self.loadavg), ("meminfo", self.meminfo),
            ("filesystem", self.filesystem), ("diskstats", self.diskstats), ("netdev", self.netdev),
            ("netclass", self.netclass), ("time", self.time), ("uname", self.uname),
            ("processes", self.processes),
        )
        self.errors: dict[str, int] = {}
        self._stuck: set[str] = set()  # mount points whose statvfs has not returned yet
        self._stuck_lock = threading.Lock()

    def collect(self) -> list[Sample]:
        """All families; a part that fails (unreadable file) is logged, counted in ``errors`` and skipped."""
        out: list[Sample] = []
        for part, fn in self.parts:
            try:
                out.extend(fn())
            except (OSError, ValueError, IndexError) as e:
                self.errors[part] = self.errors.get(part, 0) + 1
                log.warning("host collector part %s failed: %s", part, e, extra={"part": part})
        return out

    def _read(self, *parts: str) -> str:
        return self.proc.joinpath(*parts).read_text()

    # -- /proc/stat: cpu, boot time, procs, context switches, forks, interrupts ---------------------
    def stat(self) -> Iterator[Sample]:
        for line in self._read("stat").splitlines():
            key, _, rest = line.partition(" ")
            if key.startswith("cpu") and key != "cpu":
                yield from self._cpu_line(key[3:], rest.split())
            elif key == "btime":
                yield sample("node_boot_time_seconds", float(rest))
            elif key == "procs_running":
                yield sample("node_procs_running", float(rest))
            elif key == "procs_blocked":
                yield sample("node_procs_blocked", float(rest))
            elif key == "ctxt":
                yield sample("node_context_switches_total", float(rest))
            elif key == "processes":
                yield sample("node_forks_total", float(rest))
            elif key == "intr":
                yield sample("node_intr_total", float(rest.split()[0]))

    def _cpu_line(self, cpu: str, fields: list[str]) -> Iterator[Sample]:
        new = [int(f) / self.user_hz for f in fields[:10]]
        new += [0.0] * (10 - len(new))
        old = self._cpu.get(cpu)
        if old is None or old[3] - new[3] >= _JUMP_BACK_SECONDS:
            old = [0.0] * 10
        # counters never go backwards (node_exporter keeps the previous value when one does)
        cur = [max(a, b) for a, b in zip(old, new, strict=True)]
        self._cpu[cpu] = cur
        for mode, value in zip(CPU_MODES, cur, strict=False):
            yield sample("node_cpu_seconds_total", value, cpu=cpu, mode=mode)
        yield sample("node_cpu_guest_seconds_total", cur[8], cpu=cpu, mode="user")
        yield sample("node_cpu_guest_seconds_total", cur[9], cpu=cpu, mode="nice")

    # -- /proc/loadavg ---------------------------------------------------------------------------
    def loadavg(self) -> Iterator[Sample]:
        f = self._read("loadavg").split()
        for name, value in zip(("node_load1", "node_load5", "node_load15"), f, strict=False):
            yield sample(name, float(value))

    # -- /proc/meminfo ---------------------------------------------------------------------------
    def meminfo(self) -> Iterator[Sample]:
        for line in self._read("meminfo").splitlines():
            parts = line.split()
            if not parts:
                continue
            key = _PARENS.sub(r"_\1", parts[0].rstrip(":"))  # Active(anon) -> Active_anon
            value = float(parts[1])
            if len(parts) == 3:  # a unit: always kB
                value *= 1024
                key += "_bytes"
            elif len(parts) != 2:
                raise ValueError(f"invalid line in meminfo: {line!r}")
            yield sample(f"node_memory_{key}", value)

    # -- mounts + statvfs ------------------------------------------------------------------------
    def filesystem(self) -> Iterator[Sample]:
        try:
            text = self._read("1", "mounts")
        except FileNotFoundError:  # hidepid: fall back to our own view, as node_exporter does
            text = self._read("mounts")
        seen: set[tuple[str, str, str]] = set()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 4:
                raise ValueError(f"malformed mount line: {line!r}")
            device, fstype, options = parts[0], parts[2], parts[3]
            mountpoint = parts[1].replace("\\040", " ").replace("\\011", "\t")
            if self._mount_exclude.search(mountpoint) or self._fstype_exclude.search(fstype):
                continue
            key = (device, mountpoint, fstype)
            if key in seen:
                continue
            seen.add(key)
            labels = {"device": device, "mountpoint": mountpoint, "fstype": fstype}
            try:
                st = self._statvfs(os.path.join(self.rootfs, mountpoint.lstrip("/")))
            except OSError:
                st = None
            if st is None:
                yield sample("node_filesystem_device_error", 1, **labels)
                continue
            yield sample("node_filesystem_device_error", 0, **labels)
            yield sample("node_filesystem_size_bytes", float(st.f_blocks) * float(st.f_bsize), **labels)
            yield sample("node_filesystem_free_bytes", float(st.f_bfree) * float(st.f_bsize), **labels)
            yield sample("node_filesystem_avail_bytes", float(st.f_bavail) * float(st.f_bsize), **labels)
            yield sample("node_filesystem_files", float(st.f_files), **labels)
            yield sample("node_filesystem_files_free", float(st.f_ffree), **labels)
            yield sample("node_filesystem_readonly", 1.0 if "ro" in options.split(",") else 0.0, **labels)

    def _statvfs(self, path: str) -> StatVfs | None:
        """``statvfs`` on its own thread: None when it takes longer than ``mount_timeout`` (a dead NFS
        server). Such a mount is skipped (device_error 1) until that call returns, as node_exporter does."""
        with self._stuck_lock:
            if path in self._stuck:
                return None
        done = threading.Event()
        result: list[StatVfs] = []
        error: list[OSError] = []

        def call() -> None:
            try:
                result.append(self.statvfs(path))
            except OSError as e:
                error.append(e)
            finally:
                with self._stuck_lock:
                    self._stuck.discard(path)
                    done.set()

        threading.Thread(target=call, name="clearsight-agent-statvfs", daemon=True).start()
        if not done.wait(self.options.mount_timeout):
            with self._stuck_lock:
                if not done.is_set():
                    self._stuck.add(path)
                    log.warning("statvfs(%s) did not return within %gs: the mount is marked stuck until it does",
                                path, self.options.mount_timeout)
                    return None
        if error:
            raise error[0]
        return result[0]

    # -- /proc/diskstats (+ udev data for node_disk_info) -----------------------------------------
    def diskstats(self) -> Iterator[Sample]:
        for line in self._read("diskstats").splitlines():
            f = line.split()
            if len(f) < 4:
                continue
            major, minor, dev = f[0], f[1], f[2]
            if self._disk_exclude.search(dev):
                continue
            udev = self._udev(major, minor)
            yield sample("node_disk_info", 1, device=dev, major=major, minor=minor, path=udev.get("ID_PATH", ""),
                         wwn=udev.get("ID_WWN", ""), model=udev.get("ID_MODEL", ""),
                         serial=udev.get("ID_SERIAL_SHORT", ""), revision=udev.get("ID_REVISION", ""))
            for (name, mult), raw in zip(_DISK_FIELDS, f[3:], strict=False):
                yield sample(name, float(int(raw)) * mult, device=dev)

    def _udev(self, major: str, minor: str) -> dict[str, str]:
        try:
            text = (self.udev_data / f"b{major}:{minor}").read_text()
        except OSError:
            return {}
        out: dict[str, str] = {}
        for line in text.splitlines():
            if line.startswith("E:"):
                k, _, v = line[2:].partition("=")
                out[k] = v
        return out

    # -- /proc/net/dev and /sys/class/net ----------------------------------------------------------
    def netdev(self) -> Iterator[Sample]:
        for line in self._read("net", "dev").splitlines()[2:]:
            dev, sep, rest = line.partition(":")
            dev = dev.strip()
            if not sep or self._netdev_exclude.search(dev):
                continue
            for key, raw in zip(_NETDEV_FIELDS, rest.split(), strict=False):
                yield sample(f"node_network_{key}_total", float(raw), device=dev)

    def netclass(self) -> Iterator[Sample]:
        base = self.sys / "class" / "net"
        for entry in sorted(base.iterdir()):
            dev = entry.name
            try:
                operstate = (entry / "operstate").read_text().strip()
            except OSError:
                continue
            yield sample("node_network_up", 1.0 if operstate == "up" else 0.0, device=dev)
            try:
                yield sample("node_network_mtu_bytes", float((entry / "mtu").read_text()), device=dev)
            except (OSError, ValueError):
                pass

    # -- time, uname --------------------------------------------------------------------------------
    def time(self) -> Iterator[Sample]:
        yield sample("node_time_seconds", self.clock())

    def uname(self) -> Iterator[Sample]:
        def kernel(name: str) -> str:
            return self._read("sys", "kernel", name).rstrip("\n")

        try:
            machine = kernel("arch")
        except OSError:
            machine = os.uname().machine
        yield sample("node_uname_info", 1, sysname=kernel("ostype"), release=kernel("osrelease"),
                     version=kernel("version"), machine=machine, nodename=kernel("hostname"),
                     domainname=kernel("domainname"))

    # -- /proc/<pid>/stat: process counts and the top-N -------------------------------------------
    def _procs(self) -> list[_ProcStat]:
        out = []
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            try:
                with open(os.path.join(entry.path, "stat"), "rb") as fh:
                    raw = fh.read().decode("utf-8", "replace")
            except OSError:  # the process exited meanwhile
                continue
            head, _, tail = raw.rpartition(")")
            comm = head.partition("(")[2]
            f = tail.split()
            out.append(_ProcStat(entry.name, comm, f[0], int(f[11]) + int(f[12]), int(f[17]), int(f[19]),
                                 int(f[21])))
        return out

    def processes(self) -> Iterator[Sample]:
        procs = self._procs()
        now = self.clock()
        yield sample("node_processes_pids", len(procs))
        yield sample("node_processes_threads", sum(p.threads for p in procs))
        states: dict[str, int] = {}
        for p in procs:
            states[p.state] = states.get(p.state, 0) + 1
        for state, n in sorted(states.items()):
            yield sample("node_processes_state", n, state=state)
        n = self.options.top_processes
        prev, prev_time = self._proc_prev, self._proc_prev_time
        self._proc_prev = {(p.pid, p.start): p.ticks for p in procs}
        self._proc_prev_time = now
        if n <= 0:
            return
        by_rss = sorted(procs, key=lambda p: (-p.rss_pages, int(p.pid)))[:n]
        for p in by_rss:
            yield sample("clearsight_top_process_resident_memory_bytes", p.rss_pages * self.page_size,
                         pid=p.pid, comm=p.comm)
        if prev_time is None or now <= prev_time:
            return  # a rate needs two reads
        elapsed = now - prev_time
        usage = [((p.ticks - prev.get((p.pid, p.start), 0)) / self.user_hz / elapsed, p)
                 for p in procs if (p.pid, p.start) in prev]
        usage.sort(key=lambda t: (-t[0], int(t[1].pid)))
        for ratio, p in usage[:n]:
            yield sample("clearsight_top_process_cpu_usage_ratio", ratio, pid=p.pid, comm=p.comm)
