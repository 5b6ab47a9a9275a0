"""Read and write IDX files (the original MNIST format: big-endian header, then raw values)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(np.uint8): 0x08}


class IdxError(ValueError):
    """The bytes are not a well-formed IDX file."""


def read_bytes(path: Path) -> bytes:
    """File contents, transparently gunzipped when the name ends in .gz."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def parse(data: bytes) -> np.ndarray:
    """Decode IDX bytes into an array of the declared type and shape."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxError("missing IDX magic number (expected two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise IdxError(f"unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError("truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise IdxError(f"IDX body has {len(data) - header} bytes, shape {shape} needs {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def encode(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes (the inverse of `parse`)."""
    code = _CODES.get(array.dtype)
    if code is None:
        raise IdxError(f"only uint8 arrays can be encoded, got {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
