"""api/security_headers.py: the headers added to a response, as a list (the ASGI layer) and as
encoded header lines (the fast lane, api/fast_lane.py), the same for every kind of response."""

from __future__ import annotations

import itertools

import pytest

from clearsight.api.security_headers import (
    CSP_API,
    CSP_DOCS,
    CSP_UI,
    HSTS,
    security_lines,
    with_security_headers,
)

KINDS = [(b"content-type", b"application/json"), (b"Content-Type", b"text/html; charset=utf-8"),
         (b"x-frame-options", b"SAMEORIGIN"), (b"Content-Security-Policy", b"default-src 'self'"),
         (b"Referrer-Policy", b"origin"), (b"content-length", b"3")]
HEADER_SETS = [list(hs) for k in range(4) for hs in itertools.permutations(KINDS, k)]


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("path", ["/api/v1/query", "/docs", "/redoc/x", "/"])
def test_lines_are_the_added_headers_encoded(path: str, tls: bool) -> None:
    for headers in HEADER_SETS:
        full = with_security_headers(headers, path, tls)
        assert full[:len(headers)] == headers
        added = full[len(headers):]
        assert security_lines(headers, path, tls) == b"".join(b"%s: %s\r\n" % h for h in added)


def test_policy_by_kind_of_answer() -> None:
    def csp(headers: list[tuple[bytes, bytes]], path: str = "/api/v1/query") -> bytes:
        return dict(with_security_headers(headers, path, False))[b"content-security-policy"]

    assert csp([(b"content-type", b"application/json")]) == CSP_API
    assert csp([(b"content-type", b"text/html")], "/") == CSP_UI
    assert csp([(b"content-type", b"text/html")], "/docs") == CSP_DOCS
    own = with_security_headers([(b"X-Frame-Options", b"SAMEORIGIN")], "/", True)  # the handler's own kept
    assert [n for n, _ in own].count(b"x-frame-options") == 0 and HSTS in own
    assert b"x-frame-options" not in security_lines([(b"X-Frame-Options", b"SAMEORIGIN")], "/", False)
