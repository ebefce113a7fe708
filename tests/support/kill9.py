"""Helpers of the kill -9 tests: a remote-write sender that posts batch after batch until stopped or the
server dies, recording the ids of the batches the server acknowledged (204); and ``kill_after_acks``
for a child process writing to a store directly, whose writer threads run ``print_acks``."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]  # the children run here, so they import tests.support too
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def send_until_stopped(url: str, make_batch: Callable[[int], bytes], start_id: int, acked: list[int],
                       stop: threading.Event) -> None:
    batch_id = start_id
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                r = client.post(f"{url}/api/v1/write", content=make_batch(batch_id), headers=HEADERS)
            except httpx.HTTPError:
                return  # server died
            if r.status_code == 204:
                acked.append(batch_id)
            batch_id += 1


def print_acks(send: Callable[[int], None], firsts: Sequence[int]) -> None:
    """In the child: a thread per ``firsts`` value calls ``send(b)`` for b = first, first + 1, ... and
    prints ``b`` (one line, flushed) once it returned, i.e. once the store acknowledged batch ``b``;
    never returns."""
    lock = threading.Lock()

    def sender(first: int) -> None:
        b = first
        while True:
            send(b)
            with lock:
                print(b, flush=True)
            b += 1

    for first in firsts:
        threading.Thread(target=sender, args=(first,), daemon=True).start()
    threading.Event().wait()


def kill_after_acks(argv: list[str], acks: int, timeout: float = 120) -> list[int]:
    """Runs a child that prints the id of each batch its store acknowledged (one per line), SIGKILLs it
    after ``acks`` of them, and returns every id it printed (those that raced the kill included). A
    child that has not acknowledged ``acks`` batches after ``timeout`` seconds is killed and fails the
    test instead of hanging it."""
    acked: list[int] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT) as proc:
        assert proc.stdout is not None
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            for line in proc.stdout:
                acked.append(int(line))
                if len(acked) >= acks:
                    break
            os.kill(proc.pid, signal.SIGKILL)
            acked.extend(int(x) for x in proc.stdout.read().split())  # printed before the kill landed
            proc.wait()
        finally:
            watchdog.cancel()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= acks, f"the child acknowledged {len(acked)} batches in {timeout:g} s, expected {acks}"
    return acked
