"""Email over SMTP, with STARTTLS (required by default, as Alertmanager's ``require_tls``).

``smtplib`` runs in a worker thread so a slow mail server never blocks the event loop. The
message is plain text: the group's title as subject, one line per alert as body.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from clearsight.notify.receivers.base import (
    DeliveryError,
    GlobalDefaults,
    Notification,
    ReceiverConfigError,
    bool_field,
    check_fields,
    duration_field,
    str_field,
)


@dataclass(frozen=True)
class Email:
    to: str
    from_: str
    host: str
    port: int
    hello: str = "localhost"
    auth_username: str = ""
    auth_password: str = ""
    require_tls: bool = True
    ca_file: str = ""
    insecure_skip_verify: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    send_resolved: bool = False
    timeout: float = 30.0
    kind: str = "email"

    def message(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = self.headers.get("Subject", n.title())
        msg["From"] = self.from_
        msg["To"] = self.to
        msg["Date"] = formatdate(n.now)
        msg["Message-Id"] = make_msgid(domain=self.hello)
        for k, v in self.headers.items():
            if k.lower() not in ("subject", "from", "to"):
                msg[k] = v
        msg.set_content(n.text() + "\n")
        return msg

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _send_blocking(self, msg: EmailMessage) -> str:
        try:
            with smtplib.SMTP(self.host, self.port, local_hostname=self.hello, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                elif self.require_tls:
                    raise DeliveryError(f"email: {self.host}:{self.port} does not offer STARTTLS and require_tls "
                                        "is true", retryable=False, reason="clientError")
                if self.auth_username:
                    smtp.login(self.auth_username, self.auth_password)
                refused = smtp.send_message(msg)
        except DeliveryError:
            raise
        except smtplib.SMTPResponseException as e:
            raise DeliveryError(f"email: SMTP {e.smtp_code} {e.smtp_error.decode(errors='replace') if isinstance(e.smtp_error, bytes) else e.smtp_error}",
                                retryable=e.smtp_code >= 400 and e.smtp_code < 500, reason="serverError") from None
        except (OSError, smtplib.SMTPException) as e:
            raise DeliveryError(f"email: {type(e).__name__}: {e}", reason="connection") from None
        if refused:
            raise DeliveryError(f"email: recipients refused: {sorted(refused)}", retryable=False, reason="clientError")
        return f"sent to {self.to}"

    async def send(self, n: Notification, http: httpx.AsyncClient) -> str:
        return await asyncio.to_thread(self._send_blocking, self.message(n))


def parse(obj: Any, where: str, g: GlobalDefaults) -> Email:
    o = check_fields(obj, where, {"to", "from", "smarthost", "hello", "auth_username", "auth_password",
                                  "require_tls", "tls_config", "headers", "send_resolved", "timeout"})
    smarthost = str_field(o, "smarthost", where, g.smtp_smarthost)
    host, sep, port = smarthost.rpartition(":")
    if not smarthost:
        raise ReceiverConfigError(f"{where}.smarthost: required (here or as global.smtp_smarthost)")
    if not sep or not port.isdigit() or not host:
        raise ReceiverConfigError(f"{where}.smarthost: expected host:port, got {smarthost!r}")
    tls = o.get("tls_config") or {}
    tls = check_fields(tls, f"{where}.tls_config", {"ca_file", "insecure_skip_verify"})
    headers = o.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ReceiverConfigError(f"{where}.headers: expected a mapping of strings")
    from_ = str_field(o, "from", where, g.smtp_from)
    if not from_:
        raise ReceiverConfigError(f"{where}.from: required (here or as global.smtp_from)")
    return Email(to=str_field(o, "to", where, required=True), from_=from_, host=host.strip("[]"), port=int(port),
                 hello=str_field(o, "hello", where, g.smtp_hello),
                 auth_username=str_field(o, "auth_username", where, g.smtp_auth_username),
                 auth_password=str_field(o, "auth_password", where, g.smtp_auth_password),
                 require_tls=bool_field(o, "require_tls", where, g.smtp_require_tls),
                 ca_file=str_field(tls, "ca_file", f"{where}.tls_config"),
                 insecure_skip_verify=bool_field(tls, "insecure_skip_verify", f"{where}.tls_config", False),
                 headers=dict(headers), send_resolved=bool_field(o, "send_resolved", where, False),
                 timeout=duration_field(o, "timeout", where, "30s"))
