"""Live tails per tenant are bounded (Loki's max_concurrent_tail_requests, 10): an 11th is refused at the
handshake and accepted again once one closes, so open tails cannot crowd the shared query pool."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.peers import start_clearsight


def test_eleventh_tail_is_refused_until_one_closes(tmp_path: Path) -> None:
    cs = start_clearsight(tmp_path / "cs")
    url = cs.url.replace("http://", "ws://") + "/loki/api/v1/tail?" + urlencode(
        {"query": '{app="x"}', "start": str(time.time_ns())})
    try:
        with contextlib.ExitStack() as stack:
            tails = [stack.enter_context(connect(url, open_timeout=30)) for _ in range(10)]
            with pytest.raises(InvalidStatus) as ei, connect(url, open_timeout=30):
                pass
            assert ei.value.response.status_code == 403
            tails[0].close()
            deadline = time.monotonic() + 30
            while True:  # the server notices the close asynchronously
                try:
                    with connect(url, open_timeout=30) as again:
                        again.close()
                    break
                except InvalidStatus:
                    assert time.monotonic() < deadline, "a closed tail's place was not given back"
                    time.sleep(0.2)
    finally:
        cs.stop()
