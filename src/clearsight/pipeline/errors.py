"""Errors raised on the write path, each with the HTTP status an API surface answers with.

Decoders (ingest/) raise ``InvalidInput``/``PayloadTooLarge``/``UnsupportedMediaType`` and
``LimitExceeded`` (series/samples per request, checked inside the walk); the pipeline raises
``InvalidInput``/``LimitExceeded``; the store's ``Overloaded`` maps to 429.
Nothing of a request that ends in one of these errors is written.
"""

from __future__ import annotations


class IngestError(Exception):
    status: int = 400
    reason: str = "bad_data"  # label value of the rejected-requests metric

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(IngestError):
    """Malformed or semantically invalid input (HTTP 400, clients must not retry)."""

    status = 400
    reason = "invalid"

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class PayloadTooLarge(IngestError):
    status = 413
    reason = "too_large"


class UnsupportedMediaType(IngestError):
    status = 415
    reason = "unsupported_media_type"


class LimitExceeded(IngestError):
    """A configured limit (series per request, labels per series, cardinality...) (HTTP 400)."""

    status = 400

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.reason = f"limit_{limit}"


class Overloaded(IngestError):
    """Too much in flight (HTTP 429 with Retry-After; 503 when the store is not ready)."""

    status = 429
    reason = "overloaded"

    def __init__(self, message: str, retry_after: float = 1.0, status: int = 429) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
