"""The one gRPC seam: ``AuthInterceptor`` resolves the principal of every call from its metadata
(``authorization``) and peer, exactly as the HTTP middleware does, checks the method's permission,
and makes the principal current for the handler (``current_principal()``). Failures abort with
UNAUTHENTICATED or PERMISSION_DENIED before the handler runs."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import grpc

from clearsight.auth import permissions as p
from clearsight.auth.errors import AuthError, Forbidden, InvalidInput, Unauthenticated
from clearsight.auth.principal import Principal
from clearsight.auth.resolver import Authenticator, Credential, is_loopback, parse_authorization

# gRPC method -> permission (OTLP collector services).
METHODS: dict[str, str] = {
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export": p.METRICS_WRITE,
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export": p.LOGS_WRITE,
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export": p.TRACES_WRITE,
    # Clearsight's event service (api/events_grpc.py, docs/clearsight_events.proto).
    "/clearsight.events.v1.EventService/Log": p.EVENTS_WRITE,
    "/clearsight.events.v1.EventService/LogStream": p.EVENTS_WRITE,
    "/clearsight.events.v1.EventService/Query": p.EVENTS_READ,
}
_PROXY_KEYS = frozenset({"x-forwarded-for", "forwarded", "x-real-ip"})
# reads whose handler narrows them itself to a label-narrowed principal's selector (current_selector)
NARROWED_BY_HANDLER = frozenset({"/clearsight.events.v1.EventService/Query"})
_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("clearsight_principal", default=None)


def current_principal() -> Principal | None:
    """The principal of the gRPC call being handled on this thread (None outside an intercepted call)."""
    return _current.get()


def current_selector() -> str:
    """The label selector narrowing the principal of the call being handled ("" when none)."""
    principal = _current.get()
    return principal.selector if principal is not None and principal.selector else ""


def peer_host(peer: str) -> str | None:
    """The address of a gRPC peer string (``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return None


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, auth: Authenticator, tenant_header: str = "X-Scope-OrgID") -> None:
        self.auth = auth
        self.tenant_header = tenant_header.lower()

    def resolve(self, method: str, metadata: Any, peer: str) -> Principal:
        need = METHODS.get(method)
        if need is None:
            raise Forbidden(f"method {method} is not served")
        authz = org = None
        proxied = False
        for k, v in metadata or ():
            key = k.lower()
            if key == "authorization":
                authz = v if isinstance(v, str) else v.decode("latin-1")
            elif key == self.tenant_header:
                org = v if isinstance(v, str) else v.decode("latin-1")
            elif key in _PROXY_KEYS:
                proxied = True
        auth = self.auth
        host = peer_host(peer)
        if authz is None:
            if not (auth.anonymous_allowed and not proxied and is_loopback(host)):
                raise Unauthenticated("authentication required: send metadata authorization: Bearer <API key>")
            principal = auth.anonymous_principal
        else:
            cred: Credential = parse_authorization(authz)
            entry = auth.cached(cred) or auth.lookup(cred)
            principal = auth.admit(entry, host)
            if auth.flush_due():
                auth.flush_last_used()
        if org:
            principal = auth.act_in(principal, org)
        if need not in principal.permissions:
            raise Forbidden(f"permission {need} required")
        if principal.selector and need.endswith(":read") and method not in NARROWED_BY_HANDLER:
            raise Forbidden(f"reads over gRPC are not available to a role narrowed to {principal.selector}")
        return principal

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return handler
        inner = handler.unary_unary or handler.stream_unary
        method = details.method

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                principal = self.resolve(method, context.invocation_metadata(), context.peer())
            except AuthError as e:
                code = (grpc.StatusCode.UNAUTHENTICATED if isinstance(e, Unauthenticated)
                        else grpc.StatusCode.INVALID_ARGUMENT if isinstance(e, InvalidInput)
                        else grpc.StatusCode.RESOURCE_EXHAUSTED if e.status == 429
                        else grpc.StatusCode.PERMISSION_DENIED)
                context.abort(code, e.message)
            token = _current.set(principal)
            try:
                return inner(request, context)
            finally:
                _current.reset(token)

        return rewrap(handler, guarded)


def rewrap(handler: Any, wrapper: Callable[[Any, grpc.ServicerContext], Any]) -> Any:
    """A handler calling ``wrapper(request, context)`` in place of the unary or client-streaming
    ``handler`` (the request is then the iterator of messages). A server-streaming handler is
    refused (PERMISSION_DENIED): a wrapper could not hold its context while the stream is produced,
    and no served method streams responses."""
    opts = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(wrapper, **opts)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(wrapper, **opts)

    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "server-streaming methods are not served")

    return grpc.unary_unary_rpc_method_handler(refuse, **opts)
