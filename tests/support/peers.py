"""Start and stop real processes for tests: the Clearsight server, Prometheus, node_exporter,
VictoriaMetrics. Each binds 127.0.0.1 on a free port, uses a temp dir, and is stopped by PID.

A missing peer binary is a test failure (``PeerMissing``), never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


class PeerMissing(AssertionError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if path is None:
        raise PeerMissing(f"{name} is not installed: run `make peers` (scripts/install-peers.sh)")
    return path


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return self.popen.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL, 10)


def _wait_http(proc: Proc, path: str, timeout: float, ok: Sequence[int] = (200,)) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()}")
        try:
            r = httpx.get(proc.url + path, timeout=2)
            if r.status_code in ok:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            last = str(e)
        time.sleep(0.05)
    proc.stop(signal.SIGKILL)
    raise AssertionError(f"{proc.name} not ready after {timeout}s ({last}):\n{proc.log()}")


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a spawned process: ours, ``env`` over it, and ``PYTHONPATH``'s relative
    entries made absolute. The process runs in its own directory, where ``PYTHONPATH=src`` (run from
    a worktree) names nothing: Python then imports the clearsight installed in the venv, another
    checkout's code, without a word."""
    merged = {**os.environ, **(env or {})}
    if merged.get("PYTHONPATH"):
        merged["PYTHONPATH"] = os.pathsep.join(
            str(Path(entry).resolve()) if entry else entry for entry in merged["PYTHONPATH"].split(os.pathsep)
        )
    return merged


def _spawn(name: str, argv: list[str], workdir: Path, url: str, env: dict[str, str] | None = None) -> Proc:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    logf = open(log_path, "wb")
    popen = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, cwd=workdir,
                             env=child_env(env), start_new_session=True)
    logf.close()
    return Proc(name, popen, url, log_path)


def start_clearsight(workdir: Path, *, data_dir: Path | None = None, args: Sequence[str] = (),
                     config_yaml: str | None = None, port: int | None = None, timeout: float = 60) -> Proc:
    port = port or free_port()
    data_dir = data_dir or workdir / "data"
    argv = [sys.executable, "-m", "clearsight", "server", "--data-dir", str(data_dir),
            "--listen", f"127.0.0.1:{port}", "--otlp-http-listen", "", "--otlp-grpc-listen", ""]
    if config_yaml is not None:
        cfg = workdir / "clearsight.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        cfg.write_text(config_yaml)
        argv += ["--config", str(cfg)]
    argv += list(args)
    proc = _spawn("clearsight", argv, workdir, f"http://127.0.0.1:{port}")
    _wait_http(proc, "/ready", timeout)
    return proc


def start_prometheus(workdir: Path, config_yaml: str, *, extra_args: Sequence[str] = (),
                     timeout: float = 60) -> Proc:
    binary = require_binary("prometheus")
    port = free_port()
    (workdir / "prom-data").mkdir(parents=True, exist_ok=True)
    cfg = workdir / "prometheus.yml"
    cfg.write_text(config_yaml)
    argv = [binary, f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.remote.flush-deadline=1s",
            "--web.enable-remote-write-receiver", "--web.enable-admin-api", *extra_args]
    proc = _spawn("prometheus", argv, workdir, f"http://127.0.0.1:{port}")
    _wait_http(proc, "/-/ready", timeout)
    return proc


def start_node_exporter(workdir: Path, *, timeout: float = 30) -> Proc:
    binary = require_binary("prometheus-node-exporter")
    port = free_port()
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}"]
    proc = _spawn("node_exporter", argv, workdir, f"http://127.0.0.1:{port}")
    _wait_http(proc, "/metrics", timeout)
    return proc


def start_victoria_metrics(workdir: Path, *, timeout: float = 30) -> Proc:
    binary = require_binary("victoria-metrics")
    port = free_port()
    argv = [binary, f"-storageDataPath={workdir / 'vm-data'}", f"-httpListenAddr=127.0.0.1:{port}"]
    proc = _spawn("victoria-metrics", argv, workdir, f"http://127.0.0.1:{port}")
    _wait_http(proc, "/health", timeout)
    return proc


def start_alertmanager(workdir: Path, config_yaml: str = "route:\n  receiver: none\nreceivers:\n- name: none\n",
                       *, timeout: float = 30) -> Proc:
    """Debian's Alertmanager on a free port, clustering off (no 0.0.0.0:9094 listener)."""
    binary = require_binary("prometheus-alertmanager")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "alertmanager.yml"
    cfg.write_text(config_yaml)
    argv = [binary, f"--config.file={cfg}", f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
    proc = _spawn("alertmanager", argv, workdir, f"http://127.0.0.1:{port}")
    _wait_http(proc, "/-/ready", timeout)
    return proc


OIDC_PEER_DIR = Path(__file__).resolve().parent.parent / "peers" / "oidc"


def start_oidc_provider(workdir: Path, redirect_uri: str, *, timeout: float = 30) -> Proc:
    """The real OpenID provider (npm oidc-provider, tests/peers/oidc/provider.mjs; installed by
    ``npm ci`` there, which ``make setup`` runs) with one client whose redirect URI is ``redirect_uri``."""
    node = require_binary("node")
    if not (OIDC_PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        raise PeerMissing(f"oidc-provider is not installed: run `npm ci` in {OIDC_PEER_DIR} (make setup does)")
    port = free_port()
    proc = _spawn("oidc-provider", [node, str(OIDC_PEER_DIR / "provider.mjs"), str(port), redirect_uri], workdir,
                  f"http://127.0.0.1:{port}")
    _wait_http(proc, "/.well-known/openid-configuration", timeout)
    return proc
