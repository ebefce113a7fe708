"""Reading a QR code back with a real decoder (zbarimg, Debian's zbar-tools): the SVG that
auth/qr.py draws (segno's one-path form: ``M``/``m`` moves and ``h`` runs of dark modules, stroke
width 1 on the module's centre line) is rasterised to a PGM here and handed to zbarimg."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

SCALE = 8


def zbarimg() -> str:
    found = shutil.which("zbarimg")
    assert found, "zbarimg missing: apt-get install zbar-tools (scripts/install-peers.sh)"
    return found


def rasterise(svg: str) -> bytes:
    """The SVG's dark modules as a binary PGM (P5), ``SCALE`` pixels per module."""
    size = re.search(r'width="(\d+)" height="(\d+)"', svg)
    scale = re.search(r'transform="scale\((\d+)\)"', svg)
    path = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg)
    assert size and scale and path, svg[:200]
    modules = int(size.group(1)) // int(scale.group(1))
    grid = [[255] * modules for _ in range(modules)]
    x = y = 0.0
    for cmd, args in re.findall(r"([Mmh])([-\d. ]+)", path.group(1)):
        nums = [float(n) for n in args.split()]
        if cmd == "M":
            x, y = nums
        elif cmd == "m":
            x, y = x + nums[0], y + nums[1]
        else:  # h: a run of dark modules on row int(y)
            for col in range(int(x), int(x + nums[0])):
                grid[int(y)][col] = 0
            x += nums[0]
    px = modules * SCALE
    rows = b"".join(bytes(v for v in row for _ in range(SCALE)) * SCALE for row in grid)
    return f"P5 {px} {px} 255\n".encode() + rows


def decode_qr_svg(svg: str, tmp: Path) -> str:
    image = tmp / "qr.pgm"
    image.write_bytes(rasterise(svg))
    out = subprocess.run([zbarimg(), "-q", "--raw", str(image)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.rstrip("\n")
