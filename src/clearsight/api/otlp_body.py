"""The request side of an OTLP/HTTP export (``/v1/logs``, ``/v1/traces``): the caller's tenant, the
body (within the size limit) and its media type and content encoding, read in that order.

``encoding`` is the encoding of the answer: protobuf until the request's ``Content-Type`` is known to
be a supported one, then the request's, so an error raised while reading (no tenant, an unsupported
media type, a body over the limit) is answered in the right shape by ``otlp_http.error_response``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from clearsight.api.common import TenantOf, read_body
from clearsight.ingest.otlp_common import Encoding, encoding_of


@dataclass
class OtlpHttpBody:
    encoding: Encoding = "protobuf"
    tenant: str = ""
    content_type: str = ""
    body: bytes = b""
    content_encoding: str | None = None

    async def read(self, request: Request, tenant_of: TenantOf, max_body_bytes: int) -> None:
        """Fills the fields; raises ``IngestError`` (those read before it stay set)."""
        self.tenant = tenant_of(request)
        self.content_type = request.headers.get("content-type", "")
        self.encoding = encoding_of(self.content_type)
        self.body = await read_body(request, max_body_bytes)
        self.content_encoding = request.headers.get("content-encoding")
