"""IDX parsing and checksums."""

import gzip

import numpy as np
import pytest

from digitpipe.mnist import idx


def test_roundtrip_keeps_shape_and_values():
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    parsed = idx.parse(idx.encode(images))
    assert parsed.shape == (5, 28, 28)
    assert np.array_equal(parsed, images)


def test_header_is_big_endian_mnist_layout():
    data = idx.encode(np.zeros((3, 2, 4), dtype=np.uint8))
    assert data[:4] == bytes([0, 0, 0x08, 3])
    assert data[4:16] == (3).to_bytes(4, "big") + (2).to_bytes(4, "big") + (4).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00\x08\x01" + b"\x00" * 8, "magic"),
        (b"\x00\x00\x42\x01\x00\x00\x00\x01\x00", "type code"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "needs 5"),
    ],
)
def test_malformed_files_are_rejected(data, message):
    with pytest.raises(idx.IdxError, match=message):
        idx.parse(data)


def test_gz_files_are_read_transparently(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "labels.gz").write_bytes(gzip.compress(idx.encode(labels)))
    assert np.array_equal(idx.parse(idx.read_bytes(tmp_path / "labels.gz")), labels)


def test_sha256_of_known_bytes():
    assert idx.sha256(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
