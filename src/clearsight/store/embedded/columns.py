"""Columns handed to DuckDB without pyarrow: a registered ``dict`` of numpy arrays is a table DuckDB
scans in place (numeric columns zero-copy); text and bytes go in object arrays (VARCHAR, BLOB)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def objects(values: Sequence[bytes] | Sequence[str]) -> npt.NDArray[np.object_]:
    """A one-dimensional object array of ``values`` (``np.array`` could make a 2-D one or a
    fixed-width ``S``/``U`` array instead)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
