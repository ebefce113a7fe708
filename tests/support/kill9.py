"""A remote-write sender for kill -9 tests: posts batch after batch until stopped or the server dies,
recording the ids of the batches the server acknowledged (204)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

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
