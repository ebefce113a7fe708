"""At least once without duplicates (issue 12): the real agent tails a file into the real server through
a TCP proxy that can hold the server's answers. The server answers too late (the agent times out and
sends again), the agent is killed with SIGKILL after the server wrote a request and before the agent
had the answer (the restarted agent sends it again from its spool), the server is stopped while lines
keep coming and restarted on the same data. Every line arrives exactly once (counted by sequence
number through the Loki query API): the re-sent requests carry the same ``x-idempotency-key`` and the
server answers them from its idempotency store (``x-idempotent-replay: true``) without writing them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.test_agent_logs import loki_lines, start_agent
from tests.integration.test_agent_outage import wait_log
from tests.support.peers import free_port, start_clearsight

pytestmark = [pytest.mark.peer, pytest.mark.slow]


class HoldingProxy:
    """Forwards 127.0.0.1:port to the server; holds the next ``hold`` answers for ``hold_seconds``
    (the request reaches the server at once: it is the answer that comes late or never) and counts
    the replayed answers it sees."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hold = 0
        self.hold_seconds = 0.0
        self.held = threading.Event()  # set when an answer is being held (the server has answered)
        self.replays = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:  # the server is down: the agent sees the connection closed
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        try:
            while data := src.recv(65536):
                if answers:
                    with self.lock:
                        self.replays += data.count(b"x-idempotent-replay: true")
                        hold = data.startswith(b"HTTP/") and self.hold > 0
                        if hold:
                            self.hold -= 1
                    if hold:
                        self.held.set()
                        time.sleep(self.hold_seconds)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def hold_next(self, n: int, seconds: float) -> None:
        with self.lock:
            self.held.clear()
            self.hold, self.hold_seconds = n, seconds

    def close(self) -> None:
        self.closed = True
        self.listener.close()


def wait_for(what: str, cond: Callable[[], bool], procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + 90  # a guard against hanging, not a timing assertion
    while not cond():
        for p in procs:
            assert p.poll() is None, f"exited with {p.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"waiting for {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


class SeqLog:
    """``tmp/logs/app.log``, appended numbered lines ``seq=N msg=hello``."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "logs"
        self.dir.mkdir()
        self.seq = 0

    def write(self, n: int) -> None:
        with open(self.dir / "app.log", "a") as fh:
            for _ in range(n):
                self.seq += 1
                fh.write(f"seq={self.seq} msg=hello\n")


def seqs(lines: list[tuple[dict[str, str], str]]) -> list[int]:
    return sorted(int(line.split()[0].removeprefix("seq=")) for _, line in lines)


def tail_config(tmp: Path, logs: SeqLog, service: str, server: str, shipper: str = "protocol: http, ") -> Path:
    """An agent that only tails ``logs`` (polled every 200 ms) with a disk spool ``tmp/spool``."""
    cfg = tmp / "agent.yaml"
    cfg.write_text(
        f"server: {{{server}}}\n"
        f"metadata: {{instance: {service}-host}}\n"
        f"shipper: {{{shipper}backoff_min: 100ms, backoff_max: 500ms}}\n"
        f"buffer: {{dir: '{tmp / 'spool'}'}}\n"
        f"state: {{dir: '{tmp / 'state'}'}}\n"
        "heartbeat: {enabled: false}\n"
        "self_metrics: {enabled: false}\n"
        "collectors:\n"
        "  host: {enabled: false}\n"
        "  containers: {enabled: false}\n"
        f"  files: [{{path: '{logs.dir}/*.log', service: {service}, interval: 200ms, read_from: beginning}}]\n"
        "log: {level: info, format: text}\n"
    )
    return cfg


def test_timeouts_sigkill_and_outage_deliver_every_line_once(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    server = start_clearsight(tmp_path / "s1", data_dir=data, port=port)
    proxy = HoldingProxy(port)
    url = f"http://127.0.0.1:{port}"
    logs = SeqLog(tmp_path)
    write = logs.write
    spool = tmp_path / "spool"
    cfg = tail_config(tmp_path, logs, "idem", f"url: 'http://127.0.0.1:{proxy.port}', timeout: 4s")
    agent_log = tmp_path / "agent.log"

    def count() -> int:
        return len(loki_lines(url, '{service_name="idem"}'))

    def spooled() -> list[Path]:
        return list((spool / "logs").glob("*.rw"))

    agent = None
    try:
        # 1. the server answers after the agent's timeout: the agent sends again, the server replays
        proxy.hold_next(1, 6.0)
        write(100)
        agent = start_agent(cfg, agent_log)
        wait_for("the first answer held", proxy.held.is_set, [agent], agent_log)
        wait_for("a replayed answer after the timeout", lambda: proxy.replays >= 1, [agent], agent_log)
        wait_for("100 lines", lambda: count() >= 100, [agent], agent_log)
        wait_for("an empty spool", lambda: not spooled(), [agent], agent_log)
        replays_before_kill = proxy.replays

        # 2. SIGKILL after the server wrote a request, before the agent had the answer
        proxy.hold_next(1, 60.0)
        write(100)
        wait_for("the second answer held", proxy.held.is_set, [agent], agent_log)
        assert spooled(), "the request must still be in the spool (not acknowledged)"
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(30)
        assert count() == 200  # the server did write it
        agent = start_agent(cfg, agent_log)  # sends the spooled request again, with the same key
        wait_for("the spooled request replayed", lambda: proxy.replays > replays_before_kill, [agent], agent_log)
        wait_for("an empty spool", lambda: not spooled(), [agent], agent_log)

        # 3. the server stops while lines keep coming, then restarts on the same data
        outages = agent_log.read_text().count("cannot ship")
        assert server.stop() == 0
        write(100)
        wait_log(agent_log, "cannot ship", agent, outages + 1)
        write(100)
        server = start_clearsight(tmp_path / "s2", data_dir=data, port=port)
        wait_for("400 lines", lambda: count() >= 400, [agent], agent_log)
        wait_for("an empty spool", lambda: not spooled(), [agent], agent_log)
        time.sleep(1.0)  # a few more polls: anything sent twice would show up now
        got = loki_lines(url, '{service_name="idem"}')
    finally:
        if agent is not None and agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
        rc = agent.wait(60) if agent is not None else 0
        proxy.close()
        server.stop()
    assert seqs(got) == list(range(1, 401)), "a gap or a duplicate"
    assert rc == 0, agent_log.read_text()[-3000:]


def test_without_the_key_a_resent_request_would_be_written_twice(tmp_path: Path) -> None:
    """The control: the same OTLP logs request POSTed twice without a key is stored twice, with the
    agent's key once (so the test above would see duplicates if the agent sent no key)."""
    import httpx

    from clearsight.agent.buffer import batch_key
    from clearsight.agent.logrecord import LogRecord
    from clearsight.agent.otlp_logs import HEADERS, LogEncoder

    server = start_clearsight(tmp_path / "s")
    try:
        now = time.time_ns()
        for service, keyed in (("plain", False), ("keyed", True)):
            ((payload, _),) = LogEncoder({"host.name": "h"}).encode(service, [LogRecord(now, "one line")], now)
            headers = {**HEADERS, **({"x-idempotency-key": batch_key(payload)} if keyed else {})}
            answers = [httpx.post(server.url + "/v1/logs", content=payload, headers=headers, timeout=30)
                       for _ in range(2)]
            assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
            assert answers[1].headers.get("x-idempotent-replay") == ("true" if keyed else None)
        assert len(loki_lines(server.url, '{service_name="plain"}')) == 2
        assert len(loki_lines(server.url, '{service_name="keyed"}')) == 1
    finally:
        server.stop()
