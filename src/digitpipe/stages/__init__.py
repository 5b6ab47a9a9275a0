"""The DVC stages, one module each; `dvc.yaml` is the one definition of their order.

Each stage module has `run(cfg, paths)` and runs as `python -m digitpipe.stages.<module>`, which
is exactly the `cmd` of its stage in dvc.yaml. The in-process sweep runner (commands/sweep.py)
reads the same list, so both run the same stages in the same order.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from digitpipe.config import load_params
from digitpipe.errors import UserError, cli
from digitpipe.paths import Paths

COMMAND_PREFIX = "python -m digitpipe.stages."
# Stages that log into the pipeline's MLflow run (prepare only writes data).
UNTRACKED = ("prepare",)
# Stages that read pictures with the model `scans.model_uri` names when it is set: their results
# then go to runs of their own (scans/results.py), so the pipeline run is done without.
READ_WITH_MODEL_URI = ("predict_scans", "scan_benchmark")


def pipeline(dvc_file: Path) -> dict[str, str]:
    """{stage name: module name} in dvc.yaml's order."""
    try:
        stages = yaml.safe_load(dvc_file.read_text())["stages"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise UserError(f"{dvc_file}: cannot read the stage list ({exc})") from None
    order = {}
    for name, stage in stages.items():
        cmd = stage["cmd"]
        if not cmd.startswith(COMMAND_PREFIX):
            raise UserError(f"{dvc_file}: stage {name}: cmd must be '{COMMAND_PREFIX}<module>'")
        order[name] = cmd.removeprefix(COMMAND_PREFIX).strip()
    return order


def tracked_stages(cfg: DictConfig, paths: Paths) -> list[str]:
    """The stages whose completion makes a pipeline run FINISHED in MLflow."""
    skipped = UNTRACKED + (READ_WITH_MODEL_URI if cfg.scans.model_uri else ())
    return [name for name, module in pipeline(paths.pipeline_file).items() if module not in skipped]


def stage_function(module: str) -> Callable[[DictConfig, Paths], Any]:
    return importlib.import_module(f"digitpipe.stages.{module}").run


def run_stage(run: Callable[[DictConfig, Paths], Any]) -> None:
    """Call a stage's run(cfg, paths) the way `dvc repro` does: params.yaml in, user mistakes
    out as one line."""

    @cli
    def main() -> None:
        if len(sys.argv) > 1:  # an override here would be silently ignored: refuse it
            raise UserError(
                f"{' '.join(sys.argv[1:])}: a stage takes no arguments, it reads params.yaml "
                "(set values with `make params ARGS=...` or `make exp S=...`)"
            )
        paths = Paths.here()
        run(load_params(paths.params_file), paths)

    main()
