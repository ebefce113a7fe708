"""``clearsight agent status``: the agent's own metrics, read from the ``status.json`` it rewrites at every
self-metrics collection (in ``state.dir``), printed as a short report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class StatusError(Exception):
    pass


def read_status(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise StatusError(f"{path} does not exist: is the agent running with this state.dir "
                          "(and self_metrics enabled)?") from None
    except (OSError, ValueError) as e:
        raise StatusError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), list):
        raise StatusError(f"{path}: not an agent status file")
    return doc


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def render(doc: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    metrics: dict[str, list[tuple[dict[str, str], float]]] = {}
    for m in doc["metrics"]:
        metrics.setdefault(str(m["name"]).removeprefix("clearsight_agent_"), []).append((m["labels"], m["value"]))

    def one(name: str) -> str:
        vals = metrics.get(name)
        return _fmt(vals[0][1]) if vals else "-"

    age = now - float(doc.get("time", 0))
    state = "running" if _alive(doc.get("pid")) else "not running"
    lines = [
        f"agent {doc.get('version', '?')}, pid {doc.get('pid', '?')} ({state}), shipping to {doc.get('url', '?')}",
        f"status written {age:.0f}s ago",
        "",
        f"samples:  collected {one('samples_collected_total')}, sent {one('samples_sent_total')}, "
        f"rejected {one('rejected_samples_total')}, dropped {one('dropped_samples_total')}",
        f"requests: sent {one('requests_sent_total')}, retries {one('retries_total')}, "
        f"replayed {one('replayed_requests_total')}, buffered {one('buffered_requests')} ({one('buffered_bytes')} bytes)",
    ]
    if "log_records_sent_total" in metrics:
        lines.append(f"logs:     sent {one('log_records_sent_total')}, retries {one('log_retries_total')}, "
                     f"replayed {one('log_replayed_requests_total')} requests, "
                     f"rejected {one('log_rejected_records_total')}, dropped {one('log_dropped_records_total')}, "
                     f"buffered {one('log_buffered_requests')} ({one('log_buffered_bytes')} bytes)")
    if "heartbeats_sent_total" in metrics:
        lines.append(f"heartbeat: sent {one('heartbeats_sent_total')}, failed {one('heartbeat_failures_total')}")
    rss = metrics.get("process_resident_memory_bytes")
    lines.append(f"process:  cpu {one('process_cpu_seconds_total')} s"
                 + (f", rss {rss[0][1] / 1048576:.1f} MiB" if rss else ""))
    lines += ["", f"{'collector':<14} {'runs':>8} {'failures':>8} {'errors':>8} {'last duration':>14}"]
    errors: dict[str, float] = {}
    for labels, v in metrics.get("collector_errors_total", []):
        errors[labels.get("collector", "")] = errors.get(labels.get("collector", ""), 0) + v
    for labels, runs in metrics.get("collector_runs_total", []):
        c = labels.get("collector", "")
        fails = next((v for lb, v in metrics.get("collector_failures_total", []) if lb.get("collector") == c), 0)
        dur = next((v for lb, v in metrics.get("collector_duration_seconds", []) if lb.get("collector") == c), 0)
        lines.append(f"{c:<14} {_fmt(runs):>8} {_fmt(fails):>8} {_fmt(errors.get(c, 0)):>8} {dur * 1000:>11.1f} ms")
    for labels, v in metrics.get("collector_errors_total", []):
        lines.append(f"  errors {labels.get('collector')}/{labels.get('part')}: {_fmt(v)}")
    return "\n".join(lines) + "\n"
