"""TLS and mutual TLS on the server's HTTP listeners (and the credentials of its OTLP/gRPC listener).

With ``server.tls_cert_file``/``tls_key_file`` the HTTP listeners speak HTTPS. With
``server.tls_client_ca_file`` every client must present a certificate issued by that CA: the handshake
is done here (an ``asyncio.sslproto.SSLProtocol`` installed on the connection) so a refused client gets one clear WARNING line
(``client certificate refused from 127.0.0.1:5555: certificate has expired``) instead of asyncio's
silence. With ``server.tls_crl_file`` (``clearsight certs revoke`` writes it) a revoked certificate is
refused after the handshake, with its CN and serial; the file is re-read when it changes, so a
revocation applies from the next connection without a restart.

The organisation (O) of an accepted client certificate is put in the request's ASGI scope
(``SCOPE_ORG``): the server files that request's data under that tenant.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import ssl
from asyncio import sslproto
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

log = logging.getLogger("clearsight.tls")

SCOPE_ORG = "clearsight.tls_org"
HANDSHAKE_TIMEOUT = 10


def server_context(cert_file: str, key_file: str, client_ca_file: str = "") -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        ctx.load_verify_locations(client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class RevocationList:
    """Serial numbers of a PEM (or DER) CRL file, re-read when its mtime or size changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._serials: frozenset[int] = frozenset()

    def serials(self) -> frozenset[int]:
        try:
            st = os.stat(self.path)
        except OSError as e:
            log.error("cannot read the CRL %s (%s): refusing every client certificate", self.path, e)
            raise
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._stamp:
            data = open(self.path, "rb").read()
            crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
            self._serials = frozenset(r.serial_number for r in crl)
            self._stamp = stamp
        return self._serials


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    v = values[0].value if values else ""
    return v if isinstance(v, str) else v.decode("utf-8", "replace")


def peer_identity(ssl_object: Any) -> tuple[str, str, int] | None:
    """(CN, O, serial) of the verified client certificate, None when the client sent none."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    return _attr(cert.subject, NameOID.COMMON_NAME), _attr(cert.subject, NameOID.ORGANIZATION_NAME), cert.serial_number


def tls_protocol(base: type[Any], ctx: ssl.SSLContext, crl: RevocationList | None) -> type[Any]:
    """``base`` (uvicorn's HTTP protocol class) behind a TLS layer installed here, so refusals are logged.

    On a new TCP connection the transport is handed, synchronously, to an ``asyncio.sslproto.SSLProtocol``
    (what ``loop.start_tls`` uses; done by hand because uvloop delivers bytes to a protocol that paused
    reading in ``connection_made``); when its handshake completes it calls ``connection_made`` again with
    the TLS transport, and only then does ``base`` see the connection.
    """

    class TlsProtocol(base):
        _started = False

        def connection_made(self, transport: Any) -> None:
            if transport.get_extra_info("ssl_object") is not None:
                self._tls_ready(transport)
                return
            loop = asyncio.get_running_loop()
            peer = transport.get_extra_info("peername")
            where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
            waiter = loop.create_future()
            proto = sslproto.SSLProtocol(loop, self, ctx, waiter, server_side=True,
                                         ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
            transport.set_protocol(proto)
            proto.connection_made(transport)
            waiter.add_done_callback(lambda f: _handshake_done(f, where))

        def _tls_ready(self, tls: Any) -> None:
            peer = tls.get_extra_info("peername")
            where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
            ident = peer_identity(tls.get_extra_info("ssl_object"))
            if ident is not None and crl is not None:
                cn, _org, serial = ident
                try:
                    revoked = serial in crl.serials()
                except (OSError, ValueError):
                    revoked = True
                if revoked:
                    log.warning("client certificate refused from %s: CN=%s serial %x is revoked", where, cn, serial,
                                extra={"peer": where})
                    tls.close()
                    return
            self._tls_org = ident[1] if ident is not None else ""
            self._started = True
            super().connection_made(tls)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._started:
                super().connection_lost(exc)

        def scope_extras(self, scope: dict[str, Any]) -> None:
            if self._tls_org:
                scope[SCOPE_ORG] = self._tls_org

        def on_headers_complete(self) -> None:
            self.scope_extras(self.scope)
            super().on_headers_complete()

    return TlsProtocol


def _handshake_done(f: asyncio.Future[Any], where: str) -> None:
    if f.cancelled():
        return
    e = f.exception()
    if e is None:
        return
    if isinstance(e, ssl.SSLCertVerificationError):
        log.warning("client certificate refused from %s: %s", where, e.verify_message or e.reason,
                    extra={"peer": where})
    else:
        reason = str(getattr(e, "reason", None) or e)
        log.warning("TLS handshake with %s failed: %s", where, _REASONS.get(reason, reason), extra={"peer": where})


_REASONS = {
    "HTTP_REQUEST": "a plain-HTTP request on the HTTPS port",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the client sent no certificate (mutual TLS is required)",
}


_GRPC_TLS_ORG: contextvars.ContextVar[str] = contextvars.ContextVar("clearsight_grpc_tls_org", default="")


def current_grpc_tls_org() -> str:
    """O of the verified client certificate of the gRPC call running in this thread ("" when none)."""
    return _GRPC_TLS_ORG.get()


def grpc_tls_interceptor(crl: RevocationList | None) -> Any:
    """A gRPC server interceptor for mutual TLS: refuses calls whose client certificate is in the CRL
    (``UNAUTHENTICATED``, and the same WARNING line as on HTTP), and makes the certificate's O the
    call's organisation (``current_grpc_tls_org``). Unary and client-streaming calls (``rewrap``)."""
    import grpc

    from clearsight.auth.grpc_interceptor import rewrap

    class TlsInterceptor(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = continuation(details)
            if handler is None:
                return handler
            inner = handler.unary_unary or handler.stream_unary

            def checked(request: Any, context: Any) -> Any:
                pem = context.auth_context().get("x509_pem_cert")
                org = ""
                if pem:
                    cert = x509.load_pem_x509_certificate(pem[0])
                    org = _attr(cert.subject, NameOID.ORGANIZATION_NAME)
                    try:
                        revoked = crl is not None and cert.serial_number in crl.serials()
                    except (OSError, ValueError):
                        revoked = True
                    if revoked:
                        cn = _attr(cert.subject, NameOID.COMMON_NAME)
                        log.warning("client certificate refused from %s: CN=%s serial %x is revoked",
                                    context.peer(), cn, cert.serial_number, extra={"peer": context.peer()})
                        context.abort(grpc.StatusCode.UNAUTHENTICATED, "client certificate revoked")
                token = _GRPC_TLS_ORG.set(org)
                try:
                    return inner(request, context)
                finally:
                    _GRPC_TLS_ORG.reset(token)

            return rewrap(handler, checked)

    return TlsInterceptor()


def grpc_credentials(cert_file: str, key_file: str, client_ca_file: str = "") -> Any:
    """Server credentials for the OTLP/gRPC listener: TLS, and client certificates required when
    ``client_ca_file`` is set (gRPC verifies them; ``grpc_tls_interceptor`` applies the CRL and the O)."""
    import grpc

    with open(key_file, "rb") as k, open(cert_file, "rb") as c:
        pair = (k.read(), c.read())
    root = open(client_ca_file, "rb").read() if client_ca_file else None
    return grpc.ssl_server_credentials([pair], root_certificates=root, require_client_auth=root is not None)
