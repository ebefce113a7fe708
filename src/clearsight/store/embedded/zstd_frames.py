"""zstd frames for the chunk codecs of the first format and the histogram chunks (cramjam's binding).

Standard zstd frames, byte for byte what pyarrow's ``Codec("zstd")`` wrote before (the stores read
their older files unchanged); cramjam is a dependency already (snappy for remote-write), so the
metrics store needs no pyarrow, whose import alone costs ~50 MiB of RSS (docs/storage.md "Memory").
A frame that does not decompress to exactly the expected size raises ``ZstdError``.
"""

from __future__ import annotations

import cramjam
import numpy as np
import numpy.typing as npt


class ZstdError(ValueError):
    """A zstd frame that is damaged or does not hold the expected number of bytes."""


def compress(data: bytes, level: int) -> bytes:
    return bytes(cramjam.zstd.compress(data, level=level))


def decompress_into(data: bytes | memoryview, out: npt.NDArray[np.uint8]) -> None:
    """Decompresses ``data`` into ``out`` (contiguous), which it must fill exactly."""
    try:
        got = cramjam.zstd.decompress_into(data, memoryview(out))  # type: ignore[arg-type]
    except cramjam.DecompressionError as e:  # damaged, or larger than ``out``
        raise ZstdError(f"zstd frame: {e}") from e
    if got != out.shape[0]:
        raise ZstdError(f"zstd frame holds {got} bytes, expected {out.shape[0]}")


def decompress(data: bytes | memoryview, size: int) -> bytes:
    """The ``size`` bytes of the frame ``data``."""
    out = np.empty(size, dtype=np.uint8)
    decompress_into(data, out)
    return out.tobytes()
