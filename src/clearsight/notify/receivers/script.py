"""Script/runbook action: runs a command with the notification as JSON on stdin.

The command is a list (no shell). It gets the webhook v4 payload on stdin and
``CLEARSIGHT_ALERT_STATUS``, ``CLEARSIGHT_RECEIVER`` and ``CLEARSIGHT_GROUP_KEY`` in its
environment. It is killed after ``timeout``; a non-zero exit or a timeout is a failed delivery
(retried). The first 4 KiB of its output (stdout and stderr) are recorded in the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from clearsight.notify.receivers.base import (
    DeliveryError,
    GlobalDefaults,
    Notification,
    ReceiverConfigError,
    bool_field,
    check_fields,
    duration_field,
)
from clearsight.notify.receivers.webhook import payload

OUTPUT_LIMIT = 4096


@dataclass(frozen=True)
class Script:
    command: Sequence[str]
    timeout: float = 30.0
    send_resolved: bool = True
    kind: str = "script"

    async def send(self, n: Notification, http: httpx.AsyncClient) -> str:
        env = {**os.environ, "CLEARSIGHT_ALERT_STATUS": n.status, "CLEARSIGHT_RECEIVER": n.receiver,
               "CLEARSIGHT_GROUP_KEY": n.group_key}
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True)
        except OSError as e:
            raise DeliveryError(f"script: cannot run {self.command[0]!r}: {e.strerror or e}", retryable=False,
                                reason="clientError") from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(orjson.dumps(payload(n))), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise DeliveryError(f"script: {self.command[0]} timed out after {self.timeout:g}s", reason="timeout") from None
        text = out[:OUTPUT_LIMIT].decode(errors="replace")
        if proc.returncode != 0:
            raise DeliveryError(f"script: {self.command[0]} exited with {proc.returncode}: {text.strip()[-500:]}",
                                reason="exitCode")
        return text


def parse(obj: Any, where: str, g: GlobalDefaults) -> Script:
    o = check_fields(obj, where, {"command", "timeout", "send_resolved"})
    cmd = o.get("command")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) and c for c in cmd):
        raise ReceiverConfigError(f"{where}.command: expected a non-empty list of strings (program and arguments)")
    return Script(command=tuple(cmd), timeout=duration_field(o, "timeout", where, "30s"),
                  send_resolved=bool_field(o, "send_resolved", where, True))
