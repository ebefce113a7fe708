"""The TOTP enrolment QR code: the ``otpauth://`` URI drawn as an SVG document (segno), which the UI
shows as an image and authenticator apps scan."""

from __future__ import annotations

import io

import segno


def qr_svg(uri: str) -> str:
    """``uri`` as a standalone SVG (black modules on white, 4-module quiet zone, error correction M)."""
    buf = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(
        buf,
        kind="svg",
        scale=4,
        border=4,
        xmldecl=False,
        svgns=True,
        dark="#000",
        light="#fff",
        title="TOTP enrolment",
    )
    return buf.getvalue().decode("ascii")
