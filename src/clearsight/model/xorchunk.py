"""Gorilla XOR chunks, in the byte format of Prometheus' ``chunkenc`` XOR encoding (what remote-read's
STREAMED_XOR_CHUNKS responses carry). Pure, no I/O. Written from the format description:

- 2 bytes: the number of samples (big-endian uint16);
- sample 0: its timestamp as a zig-zag varint, its value as 64 raw bits;
- sample 1: the timestamp delta as an unsigned varint, the value XOR-encoded (below);
- sample n >= 2: the delta-of-delta ``dod`` of the timestamp as ``0`` (dod 0), ``10`` + 14 bits,
  ``110`` + 17 bits, ``1110`` + 20 bits (two's complement, when dod fits that many bits as
  ``-(2^(b-1) - 1) <= dod <= 2^(b-1)``) or ``1111`` + 64 bits; then the value XOR-encoded.
- value: ``x = bits(v) XOR bits(previous v)``; ``0`` when x is 0; else ``1``, then ``0`` + the
  meaningful bits when they fit in the previous window (as many leading and at least as many
  trailing zero bits as the previous window), else ``1`` + 5 bits of leading zeros (at most 31) +
  6 bits of the meaningful bit count (64 written as 0) + the meaningful bits.

Bits are written most significant first; the last byte is padded with zero bits. NaN payloads
(the stale marker) are kept bit-exact. ``decode_xor`` reads the format back (tests and clients).
"""

from __future__ import annotations

import struct

MAX_SAMPLES_PER_CHUNK = 120  # as Prometheus cuts its head chunks

_D = struct.Struct(">d")
_Q = struct.Struct(">Q")
_MASK64 = (1 << 64) - 1


class _Bits:
    def __init__(self) -> None:
        self.acc = 0  # the bits written so far, as one integer
        self.n = 0

    def write(self, value: int, nbits: int) -> None:
        self.acc = (self.acc << nbits) | (value & ((1 << nbits) - 1))
        self.n += nbits

    def write_byte(self, b: int) -> None:
        self.write(b, 8)

    def uvarint(self, v: int) -> None:
        v &= _MASK64
        while v >= 0x80:
            self.write_byte((v & 0x7F) | 0x80)
            v >>= 7
        self.write_byte(v)

    def varint(self, v: int) -> None:
        self.uvarint((v << 1) ^ (v >> 63))

    def to_bytes(self) -> bytes:
        pad = (-self.n) % 8
        return ((self.acc << pad).to_bytes((self.n + pad) // 8, "big")) if self.n else b""


def _bits_of(v: float) -> int:
    return int(_Q.unpack(_D.pack(v))[0])


def _fits(dod: int, nbits: int) -> bool:
    return -((1 << (nbits - 1)) - 1) <= dod <= (1 << (nbits - 1))


def encode_xor(timestamps: list[int], values: list[float]) -> bytes:
    """One chunk of at most 65,535 samples (Prometheus cuts at ``MAX_SAMPLES_PER_CHUNK``)."""
    n = len(timestamps)
    if n != len(values) or n > 0xFFFF:
        raise ValueError("timestamps and values differ in length or exceed 65535 samples")
    out = _Bits()
    out.write(n, 16)
    prev_t = prev_delta = 0
    prev_bits = 0
    leading, trailing = 0xFF, 0
    for i in range(n):
        t = int(timestamps[i])
        bits = _bits_of(float(values[i]))
        if i == 0:
            out.varint(t)
            out.write(bits, 64)
        else:
            delta = t - prev_t
            if i == 1:
                out.uvarint(delta)
            else:
                dod = delta - prev_delta
                if dod == 0:
                    out.write(0, 1)
                elif _fits(dod, 14):
                    out.write(0b10, 2)
                    out.write(dod, 14)
                elif _fits(dod, 17):
                    out.write(0b110, 3)
                    out.write(dod, 17)
                elif _fits(dod, 20):
                    out.write(0b1110, 4)
                    out.write(dod, 20)
                else:
                    out.write(0b1111, 4)
                    out.write(dod, 64)
            prev_delta = delta
            x = bits ^ prev_bits
            if x == 0:
                out.write(0, 1)
            else:
                out.write(1, 1)
                lz = 64 - x.bit_length()
                tz = (x & -x).bit_length() - 1
                lz = min(lz, 31)
                if leading != 0xFF and lz >= leading and tz >= trailing:
                    out.write(0, 1)
                    out.write(x >> trailing, 64 - leading - trailing)
                else:
                    leading, trailing = lz, tz
                    out.write(1, 1)
                    out.write(lz, 5)
                    sig = 64 - lz - tz
                    out.write(sig, 6)  # 64 wraps to 0 in 6 bits
                    out.write(x >> tz, sig)
        prev_t = t
        prev_bits = bits
    return out.to_bytes()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.acc = int.from_bytes(data, "big")
        self.total = len(data) * 8
        self.pos = 0

    def read(self, nbits: int) -> int:
        if self.pos + nbits > self.total:
            raise ValueError("XOR chunk truncated")
        self.pos += nbits
        return (self.acc >> (self.total - self.pos)) & ((1 << nbits) - 1)

    def uvarint(self) -> int:
        v = shift = 0
        while True:
            b = self.read(8)
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v
            shift += 7


def _signed(v: int, nbits: int) -> int:
    return v - (1 << nbits) if v >= 1 << (nbits - 1) else v


def decode_xor(data: bytes) -> list[tuple[int, float]]:
    """The (timestamp, value) samples of a chunk written in this format."""
    r = _Reader(data)
    n = r.read(16)
    out: list[tuple[int, float]] = []
    t = delta = bits = 0
    leading = trailing = 0
    for i in range(n):
        if i == 0:
            zz = r.uvarint()
            t = (zz >> 1) ^ -(zz & 1)
            bits = r.read(64)
        else:
            if i == 1:
                delta = r.uvarint()
            else:
                width = 0  # prefix 0, 10, 110, 1110, 1111 -> 0, 14, 17, 20, 64 bits
                for w in (14, 17, 20, 64):
                    if r.read(1) == 0:
                        break
                    width = w
                delta += _signed(r.read(width), width) if width else 0
            t += delta
            if r.read(1) == 1:
                if r.read(1) == 1:
                    leading = r.read(5)
                    sig = r.read(6) or 64
                    trailing = 64 - leading - sig
                sig = 64 - leading - trailing
                bits ^= r.read(sig) << trailing
        out.append((t, _D.unpack(_Q.pack(bits))[0]))
    return out
