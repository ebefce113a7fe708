"""Errors of the identity layer, each with the HTTP status it is answered with."""

from __future__ import annotations


class AuthError(Exception):
    status = 400
    error_type = "bad_data"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AuthError):
    pass


class NotFound(AuthError):
    status = 404
    error_type = "not_found"


class Conflict(AuthError):
    status = 409
    error_type = "conflict"


class Unauthenticated(AuthError):
    status = 401
    error_type = "unauthorized"


class Forbidden(AuthError):
    status = 403
    error_type = "forbidden"


class LockedOut(AuthError):
    status = 429
    error_type = "too_many_requests"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnsupportedMediaType(AuthError):
    status = 415
