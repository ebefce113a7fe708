"""What waking a sleeping thread costs on this machine, and what polling before sleeping saves.

Two processes answer each other over loopback TCP (300-byte messages, one at a time): the parent
sends and blocks in ``recv``; the child answers, then, in the ``spin N`` rounds, polls its socket
for up to N us before it blocks in ``recv`` again (as the server's event loop does after a fast-lane
answer, docs/api.md "The idle spin"). Prints the round trip's p50 per mode, rounds alternated.

    .venv/bin/python bench/wakeup_cost.py [--messages 20000] [--rounds 3]

On a machine whose idle cores sleep deeply (a VM whose idle vCPUs halt) the spinning rounds are
much faster; where wake-ups are cheap the difference is small.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import sys
import time


def _child(port: int, spin_us: float) -> None:
    c = socket.create_connection(("127.0.0.1", port))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    p = select.poll()
    p.register(c, select.POLLIN)
    answer = b"y" * 300
    while True:
        d = c.recv(4096)
        if not d:
            break
        c.sendall(answer)
        if spin_us:
            end = time.perf_counter() + spin_us / 1e6
            while time.perf_counter() < end and not p.poll(0):
                pass
    os._exit(0)


def round_trip_p50(spin_us: float, messages: int) -> float:
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        lsock.close()
        _child(port, spin_us)
    s, _ = lsock.accept()
    lsock.close()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"x" * 300
    times = []
    for i in range(messages):
        t0 = time.perf_counter()
        s.sendall(msg)
        s.recv(4096)
        if i >= messages // 10:  # warm-up left out
            times.append(time.perf_counter() - t0)
    s.close()
    os.waitpid(pid, 0)
    return statistics.median(times) * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"bench/wakeup_cost.py: ignoring {' '.join(unknown)}")
    modes = (0.0, 50.0, 100.0)
    got: dict[float, list[float]] = {m: [] for m in modes}
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for m in modes:
            got[m].append(round_trip_p50(m, args.messages))
    print(f"loopback round trip p50, us ({args.rounds} rounds x {args.messages} messages; load {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after)")
    for m in modes:
        name = "answering side sleeps" if not m else f"answering side polls {m:.0f} us first"
        print(f"  {name:<38} " + " / ".join(f"{x:.1f}" for x in got[m]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
