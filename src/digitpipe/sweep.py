"""Hydra callback: one MLflow parent run per multirun sweep, created before jobs fan out.

Creating the store and the parent in the launching process, once, avoids the schema-migration
race of parallel jobs opening a fresh SQLite database; each job then logs a child run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from digitpipe import tracking
from digitpipe.config import validate
from digitpipe.paths import Paths


def _pipeline_config(config: DictConfig) -> DictConfig:
    return validate({k: v for k, v in config.items() if k != "hydra"})


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        sweep_id = f"{sweep_dir.parent.name}_{sweep_dir.name}"
        parent = tracking.start_sweep_parent(
            _pipeline_config(config), Paths.here(), sweep_id, sweep_dir
        )
        print(f"sweep {sweep_id}: MLflow parent run {parent}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        tracking.end_sweep_parent(_pipeline_config(config), Paths.here(), sweep_dir)
