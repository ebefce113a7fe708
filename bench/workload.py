"""A node_exporter-like remote-write workload, encoded once into snappy WriteRequests.

``node_exporter_series(n)`` builds ``n`` series the way a fleet of node_exporter 1.x hosts exposes
them (CPU per core and mode, network per device, filesystems per mount, disks, memory, vmstat,
netstat, schedstat, softnet, hwmon, systemd unit states, collector timings, Go/process metrics),
about 1,000 series per host with ``instance`` and ``job`` labels. Counters increase by a positive
amount each scrape (integers for bytes/packets, centiseconds for CPU time), gauges vary, and
info/state/size series stay constant, as they do in real scrapes.

``build_payloads`` lays the scrapes out like Prometheus' remote-write queue manager does: series
are sharded by a hash of their labels over the senders, each shard's samples are sent in time order
(so no sender ever goes back in time on a series), and each request carries ``samples_per_request``
samples with the samples of one series in a request grouped in one TimeSeries.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

import numpy as np

from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy

Labels = tuple[tuple[str, str], ...]
SCRAPE_INTERVAL_MS = 15_000

CPU_MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
NET_DEVICES = ["eth0", "eth1", "lo", "docker0", "veth3f2a1b"]
NET_RX = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"]
NET_TX = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"]
FILESYSTEMS = [
    ("/dev/sda1", "ext4", "/"),
    ("/dev/sda2", "ext4", "/var"),
    ("/dev/sdb1", "xfs", "/data"),
    ("tmpfs", "tmpfs", "/run"),
    ("tmpfs", "tmpfs", "/run/lock"),
    ("tmpfs", "tmpfs", "/run/user/1000"),
    ("/dev/nvme0n1p1", "vfat", "/boot/efi"),
    ("overlay", "overlay", "/var/lib/docker/overlay2/merged"),
]
FS_METRICS = [
    ("avail_bytes", "gauge"),
    ("free_bytes", "gauge"),
    ("size_bytes", "const"),
    ("files", "const"),
    ("files_free", "gauge"),
    ("readonly", "const"),
    ("device_error", "const"),
]
DISKS = ["sda", "sdb", "nvme0n1", "dm-0"]
DISK_METRICS = [
    "reads_completed_total",
    "reads_merged_total",
    "read_bytes_total",
    "read_time_seconds_total",
    "writes_completed_total",
    "writes_merged_total",
    "written_bytes_total",
    "write_time_seconds_total",
    "io_time_seconds_total",
    "io_time_weighted_seconds_total",
    "discards_completed_total",
    "discarded_sectors_total",
    "flush_requests_total",
]
MEMORY = [
    "Active",
    "Active_anon",
    "Active_file",
    "AnonHugePages",
    "AnonPages",
    "Bounce",
    "Buffers",
    "Cached",
    "CommitLimit",
    "Committed_AS",
    "DirectMap1G",
    "DirectMap2M",
    "DirectMap4k",
    "Dirty",
    "HugePages_Free",
    "HugePages_Rsvd",
    "HugePages_Surp",
    "HugePages_Total",
    "Hugepagesize",
    "Inactive",
    "Inactive_anon",
    "Inactive_file",
    "KernelStack",
    "Mapped",
    "MemAvailable",
    "MemFree",
    "MemTotal",
    "Mlocked",
    "NFS_Unstable",
    "PageTables",
    "Percpu",
    "SReclaimable",
    "SUnreclaim",
    "Shmem",
    "ShmemHugePages",
    "ShmemPmdMapped",
    "Slab",
    "SwapCached",
    "SwapFree",
    "SwapTotal",
    "Unevictable",
    "VmallocChunk",
    "VmallocTotal",
    "VmallocUsed",
    "Writeback",
    "WritebackTmp",
]
VMSTAT = ["pgfault", "pgmajfault", "pgpgin", "pgpgout", "pswpin", "pswpout", "oom_kill"]
NETSTAT = [
    "Icmp6_InErrors",
    "Icmp6_InMsgs",
    "Icmp6_OutMsgs",
    "Icmp_InErrors",
    "Icmp_InMsgs",
    "Icmp_OutMsgs",
    "Ip6_InOctets",
    "Ip6_OutOctets",
    "IpExt_InOctets",
    "IpExt_OutOctets",
    "Ip_Forwarding",
    "TcpExt_ListenDrops",
    "TcpExt_ListenOverflows",
    "TcpExt_SyncookiesFailed",
    "TcpExt_SyncookiesRecv",
    "TcpExt_SyncookiesSent",
    "TcpExt_TCPSynRetrans",
    "TcpExt_TCPTimeouts",
    "Tcp_ActiveOpens",
    "Tcp_CurrEstab",
    "Tcp_InErrs",
    "Tcp_InSegs",
    "Tcp_OutRsts",
    "Tcp_OutSegs",
    "Tcp_PassiveOpens",
    "Tcp_RetransSegs",
    "Udp6_InDatagrams",
    "Udp6_InErrors",
    "Udp6_NoPorts",
    "Udp6_OutDatagrams",
    "Udp6_RcvbufErrors",
    "Udp6_SndbufErrors",
    "UdpLite6_InErrors",
    "UdpLite_InErrors",
    "Udp_InDatagrams",
    "Udp_InErrors",
    "Udp_NoPorts",
    "Udp_OutDatagrams",
    "Udp_RcvbufErrors",
    "Udp_SndbufErrors",
]
COLLECTORS = [
    "arp",
    "bcache",
    "bonding",
    "btrfs",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "dmi",
    "edac",
    "entropy",
    "fibrechannel",
    "filefd",
    "filesystem",
    "hwmon",
    "infiniband",
    "ipvs",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "nfs",
    "nfsd",
    "nvme",
    "os",
    "powersupplyclass",
    "pressure",
    "rapl",
    "schedstat",
    "selinux",
    "sockstat",
    "softnet",
    "stat",
    "systemd",
    "tapestats",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "udp_queues",
    "uname",
    "vmstat",
    "xfs",
    "zfs",
]
UNITS = [
    "accounts-daemon",
    "apparmor",
    "apt-daily",
    "apt-daily-upgrade",
    "containerd",
    "cron",
    "dbus",
    "docker",
    "getty@tty1",
    "haveged",
    "irqbalance",
    "keyboard-setup",
    "kmod-static-nodes",
    "networkd-dispatcher",
    "node_exporter",
    "polkit",
    "rsyslog",
    "serial-getty@ttyS0",
    "snapd",
    "ssh",
    "systemd-journald",
    "systemd-logind",
    "systemd-networkd",
    "systemd-resolved",
    "systemd-timesyncd",
    "systemd-udevd",
    "udisks2",
    "ufw",
    "unattended-upgrades",
    "user@1000",
    "chrony",
    "fwupd",
    "multipathd",
    "nginx",
    "postgresql",
    "redis-server",
    "rpcbind",
    "smartmontools",
    "thermald",
    "upower",
]
UNIT_STATES = ["activating", "active", "deactivating", "failed", "inactive"]
GO_METRICS = [
    "go_gc_duration_seconds_sum",
    "go_goroutines",
    "go_memstats_alloc_bytes",
    "go_memstats_alloc_bytes_total",
    "go_memstats_buck_hash_sys_bytes",
    "go_memstats_frees_total",
    "go_memstats_gc_sys_bytes",
    "go_memstats_heap_alloc_bytes",
    "go_memstats_heap_idle_bytes",
    "go_memstats_heap_inuse_bytes",
    "go_memstats_heap_objects",
    "go_memstats_heap_released_bytes",
    "go_memstats_heap_sys_bytes",
    "go_memstats_last_gc_time_seconds",
    "go_memstats_lookups_total",
    "go_memstats_mallocs_total",
    "go_memstats_mcache_inuse_bytes",
    "go_memstats_mspan_inuse_bytes",
    "go_memstats_next_gc_bytes",
    "go_memstats_stack_inuse_bytes",
    "go_memstats_sys_bytes",
    "go_threads",
    "process_cpu_seconds_total",
    "process_max_fds",
    "process_open_fds",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_virtual_memory_bytes",
    "promhttp_metric_handler_requests_in_flight",
]


@dataclass(frozen=True)
class SeriesDef:
    labels: Labels  # sorted by name, as Prometheus sends them
    kind: str  # counter | gauge | const
    base: float
    step: float  # counters: mean increase per scrape; gauges: relative amplitude
    decimals: int  # values are rounded to this many decimals (0: integers)


def _host(i: int, rng: random.Random, ncpu: int) -> list[tuple[str, dict[str, str], str, float, float, int]]:
    """(metric, extra labels, kind, base, step, decimals) for one node_exporter host."""
    out: list[tuple[str, dict[str, str], str, float, float, int]] = []
    add = out.append
    for cpu in range(ncpu):
        for mode in CPU_MODES:
            busy = {"idle": 13.0, "user": 1.2, "system": 0.5, "iowait": 0.1}.get(mode, 0.01)
            add(
                (
                    "node_cpu_seconds_total",
                    {"cpu": str(cpu), "mode": mode},
                    "counter",
                    rng.uniform(1e4, 1e6),
                    busy,
                    2,
                )
            )
        for mode in ("nice", "user"):
            add(("node_cpu_guest_seconds_total", {"cpu": str(cpu), "mode": mode}, "const", 0.0, 0, 2))
        add(("node_cpu_scaling_frequency_hertz", {"cpu": str(cpu)}, "gauge", 2.4e9, 0.2, -6))
        for m in ("running_seconds_total", "waiting_seconds_total"):
            add((f"node_schedstat_{m}", {"cpu": str(cpu)}, "counter", rng.uniform(1e4, 1e6), 2.0, 6))
        add(("node_schedstat_timeslices_total", {"cpu": str(cpu)}, "counter", rng.uniform(1e7, 1e9), 3000, 0))
        for m in ("processed_total", "dropped_total", "times_squeezed_total"):
            add(
                (
                    f"node_softnet_{m}",
                    {"cpu": str(cpu)},
                    "counter",
                    rng.uniform(1e3, 1e7),
                    200 if m[0] == "p" else 0.01,
                    0,
                )
            )
    for dev in NET_DEVICES:
        traffic = 0.0 if dev == "lo" else 1.0
        for m in NET_RX:
            rate = {"bytes": 2e6, "packets": 3000}.get(m, 0.02) * (traffic or 0.1)
            add(
                (
                    f"node_network_receive_{m}_total",
                    {"device": dev},
                    "counter",
                    rng.uniform(1e6, 1e11),
                    rate,
                    0,
                )
            )
        for m in NET_TX:
            rate = {"bytes": 1e6, "packets": 2000}.get(m, 0.02) * (traffic or 0.1)
            add(
                (
                    f"node_network_transmit_{m}_total",
                    {"device": dev},
                    "counter",
                    rng.uniform(1e6, 1e11),
                    rate,
                    0,
                )
            )
        for m, v in (
            ("up", 1.0),
            ("mtu_bytes", 1500.0),
            ("speed_bytes", 1.25e8),
            ("carrier", 1.0),
            ("transmit_queue_length", 1000.0),
            ("flags", 4099.0),
            ("iface_id", 2.0),
        ):
            add((f"node_network_{m}", {"device": dev}, "const", v, 0, 0))
        add(
            (
                "node_network_info",
                {
                    "device": dev,
                    "address": f"02:42:ac:11:{i % 256:02x}:{len(dev):02x}",
                    "broadcast": "ff:ff:ff:ff:ff:ff",
                    "duplex": "full",
                    "operstate": "up",
                },
                "const",
                1.0,
                0,
                0,
            )
        )
    for device, fstype, mount in FILESYSTEMS:
        size = rng.choice([1e10, 5e10, 2e11, 1e12])
        for m, kind in FS_METRICS:
            base = {"readonly": 0.0, "device_error": 0.0, "files": 6.5e6}.get(m, size * rng.uniform(0.2, 0.9))
            add(
                (
                    f"node_filesystem_{m}",
                    {"device": device, "fstype": fstype, "mountpoint": mount},
                    kind,
                    base,
                    0.001,
                    0,
                )
            )
    for disk in DISKS:
        for m in DISK_METRICS:
            rate = 5e5 if "bytes" in m else (0.3 if "seconds" in m else 40.0)
            dec = 3 if "seconds" in m else 0
            add((f"node_disk_{m}", {"device": disk}, "counter", rng.uniform(1e4, 1e9), rate, dec))
        add(("node_disk_io_now", {"device": disk}, "gauge", 1.0, 1.0, 0))
        add(
            (
                "node_disk_info",
                {
                    "device": disk,
                    "major": "8",
                    "minor": str(DISKS.index(disk) * 16),
                    "model": "",
                    "path": f"pci-0000:00:1f.2-ata-{DISKS.index(disk) + 1}",
                    "revision": "1.0",
                    "serial": f"S{i:05d}{disk}",
                },
                "const",
                1.0,
                0,
                0,
            )
        )
    for m in MEMORY:
        add((f"node_memory_{m}_bytes", {}, "gauge", rng.uniform(1e6, 3.2e10), 0.01, 0))
    for m in VMSTAT:
        add(
            (
                f"node_vmstat_{m}",
                {},
                "counter",
                rng.uniform(1e5, 1e9),
                500.0 if m.startswith("pg") else 0.01,
                0,
            )
        )
    for m in NETSTAT:
        rate = 1e4 if "Octets" in m else (50.0 if "Segs" in m or "Datagrams" in m else 0.05)
        add((f"node_netstat_{m}", {}, "counter", rng.uniform(1e3, 1e10), rate, 0))
    for m, v, s in (("load1", 0.8, 0.5), ("load5", 0.7, 0.2), ("load15", 0.6, 0.1)):
        add((f"node_{m}", {}, "gauge", v, s, 2))
    for m, kind, base, step in (
        ("context_switches_total", "counter", 1e9, 4e4),
        ("forks_total", "counter", 1e7, 30.0),
        ("intr_total", "counter", 1e9, 2e4),
        ("boot_time_seconds", "const", 1.69e9, 0),
        ("time_seconds", "counter", 1.7e9, 15.0),
        ("procs_running", "gauge", 2.0, 1.0),
        ("procs_blocked", "gauge", 0.0, 0.0),
        ("entropy_available_bits", "gauge", 3500.0, 0.05),
        ("filefd_allocated", "gauge", 4000.0, 0.02),
        ("filefd_maximum", "const", 9.2e18, 0),
        ("nf_conntrack_entries", "gauge", 300.0, 0.1),
        ("nf_conntrack_entries_limit", "const", 262144.0, 0),
        ("sockstat_TCP_inuse", "gauge", 40.0, 0.1),
        ("sockstat_TCP_tw", "gauge", 10.0, 0.3),
        ("sockstat_UDP_inuse", "gauge", 5.0, 0.0),
        ("sockstat_sockets_used", "gauge", 300.0, 0.05),
        ("timex_offset_seconds", "gauge", 0.0002, 0.5),
        ("timex_sync_status", "const", 1.0, 0),
        ("pressure_cpu_waiting_seconds_total", "counter", 1e4, 0.2),
        ("pressure_io_waiting_seconds_total", "counter", 1e4, 0.1),
        ("pressure_memory_waiting_seconds_total", "counter", 1e3, 0.01),
    ):
        add((f"node_{m}", {}, kind, base, step, 0 if kind == "const" or base > 1e3 else 4))
    for chip in ("platform_coretemp_0", "pci0000:00_0000:00:18_3"):
        for sensor in ("temp1", "temp2", "temp3", "temp4"):
            add(("node_hwmon_temp_celsius", {"chip": chip, "sensor": sensor}, "gauge", 45.0, 0.05, 1))
            add(("node_hwmon_temp_crit_celsius", {"chip": chip, "sensor": sensor}, "const", 100.0, 0, 0))
    for c in COLLECTORS:
        add(("node_scrape_collector_duration_seconds", {"collector": c}, "gauge", 0.002, 0.5, 6))
        add(("node_scrape_collector_success", {"collector": c}, "const", 1.0, 0, 0))
    for unit in UNITS:
        for state in UNIT_STATES:
            add(
                (
                    "node_systemd_unit_state",
                    {"name": f"{unit}.service", "state": state, "type": "simple"},
                    "const",
                    1.0 if state == "active" else 0.0,
                    0,
                    0,
                )
            )
    for m in GO_METRICS:
        kind = (
            "counter"
            if m.endswith("_total")
            else ("const" if "start_time" in m or "max_fds" in m else "gauge")
        )
        add((m, {}, kind, rng.uniform(1e3, 1e7), 1e3 if kind == "counter" else 0.02, 0))
    add(
        (
            "node_uname_info",
            {
                "domainname": "(none)",
                "machine": "x86_64",
                "nodename": f"host-{i:04d}",
                "release": "6.1.0-13-amd64",
                "sysname": "Linux",
                "version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)",
            },
            "const",
            1.0,
            0,
            0,
        )
    )
    add(
        (
            "node_os_info",
            {
                "id": "debian",
                "name": "Debian GNU/Linux",
                "pretty_name": "Debian GNU/Linux 12 (bookworm)",
                "version": "12 (bookworm)",
                "version_id": "12",
            },
            "const",
            1.0,
            0,
            0,
        )
    )
    add(
        (
            "node_exporter_build_info",
            {"branch": "debian/sid", "goversion": "go1.19.8", "revision": "1.5.0-1", "version": "1.5.0"},
            "const",
            1.0,
            0,
            0,
        )
    )
    for m in (
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_series_added",
        "scrape_samples_post_metric_relabeling",
    ):
        add(
            (
                m,
                {},
                "const" if m == "up" else "gauge",
                1.0 if m == "up" else 900.0,
                0.01,
                0 if m != "scrape_duration_seconds" else 4,
            )
        )
    return out


def node_exporter_series(n_series: int, seed: int = 1) -> list[SeriesDef]:
    rng = random.Random(seed)
    out: list[SeriesDef] = []
    host = 0
    while len(out) < n_series:
        ncpu = rng.choice([2, 4, 8, 16])
        instance = f"10.{host // 250}.{host % 250}.{rng.randrange(2, 250)}:9100"
        for name, extra, kind, base, step, dec in _host(host, rng, ncpu):
            labels = {"__name__": name, "instance": instance, "job": "node", **extra}
            labels = {k: v for k, v in labels.items() if v != ""}
            out.append(SeriesDef(tuple(sorted(labels.items())), kind, base, step, dec))
            if len(out) == n_series:
                break
        host += 1
    return out


HISTOGRAM_LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf")


def http_histogram_series(handlers: int, instance: str = "127.0.0.1:9090") -> list[SeriesDef]:
    """A Prometheus-style request-duration histogram (``prometheus_http_request_duration_seconds``
    with ``_bucket{le}``, ``_count`` and ``_sum`` per handler), as Prometheus' self-scrape sends
    it: what dashboards' ``histogram_quantile`` panels read. Bucket counters grow with ``le``."""
    out: list[SeriesDef] = []
    name = "prometheus_http_request_duration_seconds"
    for h in range(handlers):
        handler = f"/api/v1/endpoint{h}"
        common = {"instance": instance, "job": "prometheus", "handler": handler}
        rate = 2.0 + h
        for k, le in enumerate(HISTOGRAM_LE):
            frac = (k + 1) / len(HISTOGRAM_LE)
            labels = {"__name__": f"{name}_bucket", "le": le, **common}
            out.append(SeriesDef(tuple(sorted(labels.items())), "counter", 0.0, rate * frac, 0))
        for suffix, step, dec in (("_count", rate, 0), ("_sum", rate * 0.05, 4)):
            labels = {"__name__": name + suffix, **common}
            out.append(SeriesDef(tuple(sorted(labels.items())), "counter", 0.0, step, dec))
    return out


def sample_values(defs: list[SeriesDef], scrapes: int, seed: int = 1) -> np.ndarray:
    """values[scrape, series] (float64)."""
    rng = np.random.default_rng(seed)
    n = len(defs)
    kind = np.array([d.kind for d in defs])
    base = np.array([d.base for d in defs])
    step = np.array([d.step for d in defs])
    dec = np.array([d.decimals for d in defs])
    counters = base + np.cumsum(step * rng.uniform(0.5, 1.5, size=(scrapes, n)), axis=0)
    walk = (
        np.cumsum(rng.normal(0.0, 1.0, size=(scrapes, n)), axis=0)
        / np.sqrt(np.arange(1, scrapes + 1))[:, None]
    )
    gauges = np.abs(base * (1.0 + step * 0.3 * walk))
    vals = np.where(kind == "counter", counters, np.where(kind == "gauge", gauges, base))
    out = np.empty_like(vals)
    for d in np.unique(dec):
        cols = dec == d
        out[:, cols] = np.round(vals[:, cols], int(d))
    return out


@dataclass
class Payloads:
    bodies: list[list[bytes]]  # per sender, in send order
    n_series: int
    scrapes: int
    total_samples: int
    uncompressed_bytes: int
    compressed_bytes: int
    first_ms: int
    last_ms: int
    samples_per_sender: list[int] = field(default_factory=list)


def build_payloads(
    n_series: int,
    scrapes: int,
    *,
    senders: int = 4,
    samples_per_request: int = 2000,
    end_ms: int,
    seed: int = 1,
    extra: list[SeriesDef] | None = None,
) -> Payloads:
    """Encodes the workload ending at ``end_ms`` (the last scrape) into snappy WriteRequests;
    ``extra`` series are scraped along with the node_exporter ones."""
    defs = node_exporter_series(n_series, seed) + list(extra or [])
    values = sample_values(defs, scrapes, seed)
    rng = np.random.default_rng(seed + 1)
    start = end_ms - (scrapes - 1) * SCRAPE_INTERVAL_MS
    host_offset = {}
    offsets = np.empty(len(defs), dtype=np.int64)
    for i, d in enumerate(defs):
        inst = dict(d.labels)["instance"]
        if inst not in host_offset:
            host_offset[inst] = int(rng.integers(0, SCRAPE_INTERVAL_MS // 3))
        offsets[i] = host_offset[inst]
    jitter = rng.integers(-2, 3, size=(scrapes, len(defs)))
    ts = (
        start
        - SCRAPE_INTERVAL_MS // 3
        + offsets[None, :]
        + np.arange(scrapes)[:, None] * SCRAPE_INTERVAL_MS
        + jitter
    )
    label_bytes = [encode_labels(d.labels) for d in defs]
    shard_of = [zlib.crc32(lb) % senders for lb in label_bytes]
    shards = [[i for i in range(len(defs)) if shard_of[i] == s] for s in range(senders)]
    bodies: list[list[bytes]] = []
    per_sender: list[int] = []
    raw_total = 0
    comp_total = 0
    ts_list = ts.tolist()
    val_list = values.tolist()
    for members in shards:
        stream = [(k, i) for k in range(scrapes) for i in members]
        out: list[bytes] = []
        for a in range(0, len(stream), samples_per_request):
            grouped: dict[int, list[bytes]] = {}
            for k, i in stream[a : a + samples_per_request]:
                grouped.setdefault(i, []).append(len_field(2, encode_sample(ts_list[k][i], val_list[k][i])))
            pb = b"".join(len_field(1, label_bytes[i] + b"".join(s)) for i, s in grouped.items())
            body = snappy(pb)
            raw_total += len(pb)
            comp_total += len(body)
            out.append(body)
        bodies.append(out)
        per_sender.append(len(stream))
    return Payloads(
        bodies,
        len(defs),
        scrapes,
        len(defs) * scrapes,
        raw_total,
        comp_total,
        int(ts.min()),
        int(ts.max()),
        per_sender,
    )
