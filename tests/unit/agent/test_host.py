"""The host collector on the fake /proc and /sys trees in fixtures/: exact values, node_exporter's names."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from clearsight.agent.collectors.host import HostCollector, HostOptions
from clearsight.agent.sample import Sample

FIXTURES = Path(__file__).parent / "fixtures"
MS = 0.001  # node_exporter multiplies milliseconds by this (so 700 ms is 0.7000000000000001 s there too)


class FakeStatVfs(NamedTuple):
    f_bsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int


VFS = {
    "/": FakeStatVfs(4096, 1000, 400, 300, 5000, 4000),
    "/srv/my data": FakeStatVfs(1024, 2048, 1024, 512, 100, 10),
    "/tmp": FakeStatVfs(4096, 10, 10, 10, 7, 6),
}


def fake_statvfs(path: str) -> FakeStatVfs:
    try:
        return VFS[path]
    except KeyError:
        raise OSError(5, "Input/output error", path) from None


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(proc: Path = FIXTURES / "proc", clock: Clock | None = None, **options: object) -> HostCollector:
    return HostCollector(proc, FIXTURES / "sys", clock=clock or Clock(1700000100.5), rootfs="/",
                         statvfs=fake_statvfs, udev_data=FIXTURES / "udev", options=HostOptions(**options),  # type: ignore[arg-type]
                         page_size=4096)


def by_name(samples: list[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {s.labels: s.value for s in samples if s.name == name}


def one(samples: list[Sample], name: str) -> float:
    (v,) = by_name(samples, name).values()
    return v


def test_cpu_per_core_and_mode_in_seconds() -> None:
    s = make().collect()
    cpu = by_name(s, "node_cpu_seconds_total")
    assert len(cpu) == 16  # 2 cores x 8 modes; the "cpu" total line is not a core
    assert cpu[(("cpu", "0"), ("mode", "user"))] == 10.0
    assert cpu[(("cpu", "0"), ("mode", "nice"))] == 0.2
    assert cpu[(("cpu", "0"), ("mode", "idle"))] == 450.0
    assert cpu[(("cpu", "1"), ("mode", "iowait"))] == 2.0
    assert cpu[(("cpu", "1"), ("mode", "softirq"))] == 0.25
    assert cpu[(("cpu", "1"), ("mode", "steal"))] == 0.05
    guest = by_name(s, "node_cpu_guest_seconds_total")
    assert guest == {(("cpu", "0"), ("mode", "user")): 0.0, (("cpu", "0"), ("mode", "nice")): 0.0,
                     (("cpu", "1"), ("mode", "user")): 0.07, (("cpu", "1"), ("mode", "nice")): 0.03}


def test_cpu_counter_never_goes_back(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", proc)
    c = make(proc)
    c.collect()
    stat = (proc / "stat").read_text().replace("cpu0 1000 20 500 45000", "cpu0 990 20 500 44900")
    (proc / "stat").write_text(stat)
    cpu = by_name(c.collect(), "node_cpu_seconds_total")
    assert cpu[(("cpu", "0"), ("mode", "user"))] == 10.0  # kept, as node_exporter does
    assert cpu[(("cpu", "0"), ("mode", "idle"))] == 450.0  # 1 s back: below the hot-plug threshold
    # idle back by >= 3 s: a hot-plugged CPU, its counters restart
    (proc / "stat").write_text(stat.replace("cpu0 990 20 500 44900", "cpu0 5 0 1 100"))
    cpu = by_name(c.collect(), "node_cpu_seconds_total")
    assert cpu[(("cpu", "0"), ("mode", "idle"))] == 1.0
    assert cpu[(("cpu", "0"), ("mode", "user"))] == 0.05


def test_stat_load_time_uname() -> None:
    s = make().collect()
    assert one(s, "node_boot_time_seconds") == 1700000000
    assert one(s, "node_procs_running") == 3
    assert one(s, "node_procs_blocked") == 1
    assert one(s, "node_context_switches_total") == 987654
    assert one(s, "node_forks_total") == 4321
    assert one(s, "node_intr_total") == 123456
    assert (one(s, "node_load1"), one(s, "node_load5"), one(s, "node_load15")) == (0.52, 0.34, 0.25)
    assert one(s, "node_time_seconds") == 1700000100.5
    assert by_name(s, "node_uname_info") == {
        (("domainname", "(none)"), ("machine", "x86_64"), ("nodename", "testhost"), ("release", "6.1.0-test"),
         ("sysname", "Linux"), ("version", "#1 SMP Debian 6.1.0")): 1.0}


def test_meminfo_as_node_exporter() -> None:
    s = make().collect()
    mem = {x.name: x.value for x in s if x.name.startswith("node_memory_")}
    assert mem == {
        "node_memory_MemTotal_bytes": 2048000 * 1024,
        "node_memory_MemFree_bytes": 512000 * 1024,
        "node_memory_MemAvailable_bytes": 1024000 * 1024,
        "node_memory_Active_anon_bytes": 10000 * 1024,
        "node_memory_SwapTotal_bytes": 100000 * 1024,
        "node_memory_SwapFree_bytes": 75000 * 1024,
        "node_memory_HugePages_Total": 0,
        "node_memory_Hugepagesize_bytes": 2048 * 1024,
    }


def test_filesystems_with_default_exclusions() -> None:
    s = make().collect()
    root = (("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/"))
    srv = (("device", "/dev/sda2"), ("fstype", "xfs"), ("mountpoint", "/srv/my data"))
    tmp = (("device", "tmpfs"), ("fstype", "tmpfs"), ("mountpoint", "/tmp"))
    broken = (("device", "/dev/sdb1"), ("fstype", "ext4"), ("mountpoint", "/broken"))
    # /proc, /sys, /run, /mnt/..., cgroup2 and docker's overlay are excluded; "/" listed twice counts once
    assert by_name(s, "node_filesystem_device_error") == {root: 0, srv: 0, tmp: 0, broken: 1}
    assert by_name(s, "node_filesystem_size_bytes") == {root: 4096000, srv: 2097152, tmp: 40960}
    assert by_name(s, "node_filesystem_free_bytes") == {root: 1638400, srv: 1048576, tmp: 40960}
    assert by_name(s, "node_filesystem_avail_bytes") == {root: 1228800, srv: 524288, tmp: 40960}
    assert by_name(s, "node_filesystem_files") == {root: 5000, srv: 100, tmp: 7}
    assert by_name(s, "node_filesystem_files_free") == {root: 4000, srv: 10, tmp: 6}
    assert by_name(s, "node_filesystem_readonly") == {root: 0, srv: 1, tmp: 0}


def test_filesystem_exclusions_are_options() -> None:
    s = make(mount_points_exclude="^/(proc|sys)($|/)", fs_types_exclude="^(ext4|xfs|proc|sysfs|cgroup2)$").collect()
    assert {dict(k)["mountpoint"] for k in by_name(s, "node_filesystem_device_error")} == {
        "/run", "/mnt/scratch", "/var/lib/docker/overlay2/abc/merged", "/tmp"}


def test_diskstats_with_default_exclusions() -> None:
    s = make().collect()
    sda, nvme = (("device", "sda"),), (("device", "nvme0n1"),)
    assert by_name(s, "node_disk_reads_completed_total") == {sda: 1000, nvme: 100}
    assert by_name(s, "node_disk_reads_merged_total") == {sda: 50, nvme: 1}
    assert by_name(s, "node_disk_read_bytes_total") == {sda: 80000 * 512, nvme: 200 * 512}
    assert by_name(s, "node_disk_read_time_seconds_total") == {sda: 1234 * MS, nvme: 300 * MS}
    assert by_name(s, "node_disk_writes_completed_total") == {sda: 2000, nvme: 400}
    assert by_name(s, "node_disk_written_bytes_total") == {sda: 160000 * 512, nvme: 600 * 512}
    assert by_name(s, "node_disk_write_time_seconds_total") == {sda: 5678 * MS, nvme: 700 * MS}
    assert by_name(s, "node_disk_io_now") == {sda: 2, nvme: 0}
    assert by_name(s, "node_disk_io_time_seconds_total") == {sda: 3000 * MS, nvme: 800 * MS}
    assert by_name(s, "node_disk_io_time_weighted_seconds_total") == {sda: 7000 * MS, nvme: 900 * MS}
    # the kernel gave nvme0n1 only 11 columns: the discard and flush families exist for sda alone
    assert by_name(s, "node_disk_discards_completed_total") == {sda: 10}
    assert by_name(s, "node_disk_discarded_sectors_total") == {sda: 800}
    assert by_name(s, "node_disk_discard_time_seconds_total") == {sda: 20 * MS}
    assert by_name(s, "node_disk_flush_requests_total") == {sda: 30}
    assert by_name(s, "node_disk_flush_requests_time_seconds_total") == {sda: 40 * MS}
    assert by_name(s, "node_disk_info") == {
        (("device", "sda"), ("major", "8"), ("minor", "0"), ("model", "QEMU_HARDDISK"),
         ("path", "pci-0000:00:05.0"), ("revision", "2.5+"), ("serial", "QM0001"), ("wwn", "0x5000c500")): 1,
        (("device", "nvme0n1"), ("major", "259"), ("minor", "0"), ("model", ""), ("path", ""),
         ("revision", ""), ("serial", ""), ("wwn", "")): 1,
    }


def test_network_devices() -> None:
    s = make().collect()
    eth0 = (("device", "eth0"),)
    expected = dict(zip(
        ["receive_bytes", "receive_packets", "receive_errs", "receive_drop", "receive_fifo", "receive_frame",
         "receive_compressed", "receive_multicast", "transmit_bytes", "transmit_packets", "transmit_errs",
         "transmit_drop", "transmit_fifo", "transmit_colls", "transmit_carrier", "transmit_compressed"],
        [123456789, 1000, 1, 2, 3, 4, 5, 6, 987654321, 2000, 7, 8, 9, 10, 11, 12], strict=True))
    for key, value in expected.items():
        assert by_name(s, f"node_network_{key}_total") == {eth0: value}, key  # lo is excluded by default
    assert by_name(s, "node_network_up") == {eth0: 1, (("device", "lo"),): 0}
    assert by_name(s, "node_network_mtu_bytes") == {eth0: 1500, (("device", "lo"),): 65536}
    with_lo = make(netdev_device_exclude="^$").collect()
    assert by_name(with_lo, "node_network_receive_bytes_total")[(("device", "lo"),)] == 5000


def test_processes_and_top_n(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", proc)
    clock = Clock(1000.0)
    c = make(proc, clock, top_processes=2)
    s = c.collect()
    assert one(s, "node_processes_pids") == 3
    assert one(s, "node_processes_threads") == 6
    assert by_name(s, "node_processes_state") == {(("state", "I"),): 1, (("state", "R"),): 1, (("state", "S"),): 1}
    assert by_name(s, "clearsight_top_process_resident_memory_bytes") == {
        (("comm", "my (app) x"), ("pid", "42")): 5000 * 4096, (("comm", "init"), ("pid", "1")): 1000 * 4096}
    assert by_name(s, "clearsight_top_process_cpu_usage_ratio") == {}  # a rate needs two reads
    # 10 s later: pid 42 used 300 more ticks (3 s of CPU), pid 77 50 ticks, pid 1 none
    stat42 = (proc / "42" / "stat").read_text().replace(" 300 100 ", " 500 200 ")
    (proc / "42" / "stat").write_text(stat42)
    (proc / "77" / "stat").write_text((proc / "77" / "stat").read_text().replace(" 0 5 0 0 ", " 0 55 0 0 "))
    clock.t = 1010.0
    s = c.collect()
    assert by_name(s, "clearsight_top_process_cpu_usage_ratio") == {
        (("comm", "my (app) x"), ("pid", "42")): 0.3, (("comm", "kworker/0:1"), ("pid", "77")): 0.05}
    assert not by_name(make(proc, clock, top_processes=0).collect(), "clearsight_top_process_resident_memory_bytes")


def test_a_failing_part_is_counted_and_the_rest_still_collected(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", proc)
    os.remove(proc / "diskstats")
    c = make(proc)
    s = c.collect()
    assert c.errors == {"diskstats": 1}
    assert not by_name(s, "node_disk_reads_completed_total")
    assert one(s, "node_load1") == 0.52


@pytest.mark.parametrize("name", ["node_memory_MemTotal_bytes", "node_boot_time_seconds"])
def test_reads_the_real_host(name: str) -> None:
    """The defaults point at this machine's /proc and /sys and find its CPUs and the family."""
    s = HostCollector().collect()
    assert by_name(s, name) and one(s, name) > 0
    assert {dict(k)["cpu"] for k in by_name(s, "node_cpu_seconds_total")} == {str(i) for i in range(len(
        [ln for ln in Path("/proc/stat").read_text().splitlines() if ln.startswith("cpu") and not ln.startswith("cpu ")]))}


def test_a_hung_statvfs_marks_the_mount_stuck_until_it_returns() -> None:
    release = threading.Event()
    entered = threading.Event()

    def statvfs(path: str) -> FakeStatVfs:
        if path == "/tmp":
            entered.set()
            release.wait()  # a dead NFS server
        return fake_statvfs(path)

    c = HostCollector(FIXTURES / "proc", FIXTURES / "sys", clock=Clock(0.0), statvfs=statvfs,
                      udev_data=FIXTURES / "udev", options=HostOptions(mount_timeout=0.2), page_size=4096)
    tmp = (("device", "tmpfs"), ("fstype", "tmpfs"), ("mountpoint", "/tmp"))
    root = (("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/"))
    s = c.collect()
    assert entered.is_set()
    assert by_name(s, "node_filesystem_device_error")[tmp] == 1
    assert tmp not in by_name(s, "node_filesystem_size_bytes")
    assert by_name(s, "node_filesystem_size_bytes")[root] == 4096000  # the other mounts still report
    assert one(s, "node_load1") == 0.52
    entered.clear()
    s = c.collect()  # still stuck: not called again
    assert not entered.is_set() and by_name(s, "node_filesystem_device_error")[tmp] == 1
    release.set()
    deadline = time.monotonic() + 30  # a guard against hanging, not a timing assertion
    while by_name(c.collect(), "node_filesystem_device_error")[tmp] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert by_name(c.collect(), "node_filesystem_size_bytes")[tmp] == 40960
