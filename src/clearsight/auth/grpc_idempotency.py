"""``x-idempotency-key`` on the OTLP/gRPC Export calls, with the HTTP middleware's ``IdempotencyStore``
(auth/idempotency.py): a call repeated with the same key (per organisation) within
``auth.idempotency_window`` is answered with the first call's response and the trailing metadata
``x-idempotent-replay: true``, and not written again. A second call with a key whose first call is still
being handled ends with ABORTED (retry later, as HTTP's 409); a malformed key with INVALID_ARGUMENT.
Only calls that ended OK are remembered. Runs after the auth and TLS interceptors (last in the list), so
the call's organisation is known.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from clearsight.auth.errors import AuthError
from clearsight.auth.idempotency import IdempotencyStore, Stored, _valid_key
from clearsight.auth.signing import IDEMPOTENCY_HEADER

GRPC_CONTENT_TYPE = "application/grpc"
_KEY = IDEMPOTENCY_HEADER.decode()
REPLAY_METADATA = (("x-idempotent-replay", "true"),)
# the organisation of the call being handled (the server's tenant of the call's metadata)
OrgOfCall = Callable[[Sequence[tuple[str, str | bytes]]], str]


class IdempotencyInterceptor(grpc.ServerInterceptor):
    def __init__(self, store: IdempotencyStore, org_of_call: OrgOfCall) -> None:
        self.store = store
        self.org_of_call = org_of_call
        self._inflight: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def keyed(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = [(m[0], m[1]) for m in (context.invocation_metadata() or ())]
            raw = next((v for k, v in metadata if k.lower() == _KEY), None)
            if raw is None:
                return inner(request, context)
            try:
                key = _valid_key(raw if isinstance(raw, bytes) else raw.encode("latin-1"))
            except AuthError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
            org = self.org_of_call(metadata)
            with self._lock:
                busy = (org, key) in self._inflight
                if not busy:
                    self._inflight.add((org, key))
            if busy:
                context.abort(grpc.StatusCode.ABORTED,
                              "a request with this x-idempotency-key is being handled: retry later")
            try:
                stored = self.store.get(org, key)
                if stored is not None:
                    context.set_trailing_metadata(REPLAY_METADATA)
                    # an answer stored by the HTTP path is not a gRPC message: an empty response (OK)
                    return stored.body if stored.content_type == GRPC_CONTENT_TYPE else b""
                response = inner(request, context)  # raises when the call is aborted: not remembered
                body = response if isinstance(response, bytes) else handler.response_serializer(response)
                self.store.put(org, key, Stored(200, GRPC_CONTENT_TYPE, body))
                return response
            finally:
                with self._lock:
                    self._inflight.discard((org, key))

        return grpc.unary_unary_rpc_method_handler(keyed, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)
