"""The fingerprint table (model/fingerprint_table.py) against a dict, compiled and in Python, with
fingerprints drawn from tiny ranges so that slots collide, probe sequences run into each other and
fingerprints share one half; and the compiled fingerprints against their Python reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model import fingerprint_table as ft

BOTH = [False, True]

# (hi, lo) from tiny sets: equal lo -> same start slot, equal hi with different lo, and lo values
# that are equal modulo every table size (multiples of 2**20) -> long probe chains.
_hi = st.sampled_from([0, 1, 2, 2**63, 2**64 - 1])
_lo = st.one_of(st.integers(0, 5), st.integers(0, 3).map(lambda k: k << 20), st.just(2**64 - 1))
_fp = st.tuples(_hi, _lo)
_op = st.one_of(
    st.tuples(st.just("put"), st.lists(st.tuples(_fp, st.integers(1, 2**32 - 1)), max_size=40)),
    st.tuples(st.just("drop"), st.lists(st.integers(1, 2**32 - 1), max_size=5)),
    st.tuples(st.just("drop_present"), st.integers(0, 10)),
)


def _arrays(fps: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([h for h, _ in fps], dtype=np.uint64), np.array([lo for _, lo in fps], dtype=np.uint64)


@pytest.mark.parametrize("native", BOTH)
@settings(max_examples=150, deadline=None)
@given(ops=st.lists(_op, max_size=25), probes=st.lists(_fp, max_size=30))
def test_the_table_answers_like_a_dict(native: bool, ops: list, probes: list[tuple[int, int]]) -> None:
    if native and ft._fptable is None:
        pytest.fail("the _fptable extension is built by `make setup`")
    table = ft.FingerprintTable(native=native)
    model: dict[tuple[int, int], int] = {}
    for kind, arg in ops:
        if kind == "put":
            hi, lo = _arrays([fp for fp, _ in arg])
            table.put(hi, lo, np.array([v for _, v in arg], dtype=np.uint32))
            model.update(dict(arg))
        else:
            dead = arg if kind == "drop" else sorted(set(model.values()))[: arg]
            table.drop_values(np.array(dead, dtype=np.uint32))
            model = {k: v for k, v in model.items() if v not in set(dead)}
        assert len(table) == len(model)
        assert table.nbytes >= len(model) * ft.ENTRY_BYTES * 8 // 7
    asked = list(model) + probes
    hi, lo = _arrays(asked)
    assert table.get(hi, lo).tolist() == [model.get(fp, 0) for fp in asked]


def test_a_table_grows_and_shrinks_with_its_entries() -> None:
    table = ft.FingerprintTable()
    n = 100_000
    hi, lo = ft.fingerprints([i.to_bytes(8, "little") for i in range(n)])
    table.put(hi, lo, np.arange(1, n + 1, dtype=np.uint32))
    assert len(table) == n
    assert n * ft.ENTRY_BYTES * 8 // 7 <= table.nbytes <= n * ft.ENTRY_BYTES * 16 // 7
    assert table.get(hi, lo).tolist() == list(range(1, n + 1))
    table.drop_values(np.arange(1, n - 9, dtype=np.uint32))
    assert len(table) == 10 and table.nbytes == ft.MIN_SLOTS * ft.ENTRY_BYTES
    assert table.get(hi, lo).tolist() == [0] * (n - 10) + list(range(n - 9, n + 1))


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.binary(max_size=70), max_size=20), seed=st.integers(0, 2**64 - 1))
def test_compiled_fingerprints_equal_the_reference(keys: list[bytes], seed: int) -> None:
    if ft._fptable is None:
        pytest.fail("the _fptable extension is built by `make setup`")
    hi, lo = ft.fingerprints(keys, seed)
    ref_hi, ref_lo = ft.fingerprints_py(keys, seed)
    assert hi.tolist() == ref_hi.tolist() and lo.tolist() == ref_lo.tolist()
    assert lo.tolist() == [ft.murmur64a(k, seed) for k in keys]


def test_murmur64a_matches_published_vectors() -> None:
    # the test vectors of the murmurhash package's hash64A (Python binding of Appleby's C code)
    assert ft.murmur64a(b"fransisco", 1) == 0x83FDAF4A6D0D3D9
    assert ft.murmur64a(b"aaaa", 0x9747B28C) == 0x41DA53FDABAF04C8


def test_distinct_keys_get_distinct_fingerprints() -> None:
    keys = [f"series-{i}".encode() for i in range(50_000)] + [b"", b"\x00", b"\x00\x00"]
    hi, lo = ft.fingerprints(keys)
    assert len(set(zip(hi.tolist(), lo.tolist(), strict=True))) == len(keys)
