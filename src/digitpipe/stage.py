"""How a DVC stage starts: this workspace's params.yaml in, user mistakes out as one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from digitpipe.config import load_params
from digitpipe.errors import cli
from digitpipe.paths import Paths


def run_stage(run: Callable[[DictConfig, Paths], Any]) -> None:
    """Call a stage's run(cfg, paths) the way `dvc repro` does."""

    @cli
    def main() -> None:
        paths = Paths.here()
        run(load_params(paths.params_file), paths)

    main()
