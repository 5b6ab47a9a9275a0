"""Write params.yaml = conf/ composed, with DVC's own composition (the same as `dvc exp run`).

    python -m digitpipe.commands.params [override ...]   e.g. model=seed_lab_cnn train.epochs=3
    python -m digitpipe.commands.params --check [override ...]   validate only, write nothing
    python -m digitpipe.commands.params --exp-run [override ...]   check, then dvc exp run -S ...

The composed config is checked first and replaces params.yaml atomically: a rejected override
leaves the previous params.yaml as it was. The check is what the stages would refuse: the
schema; the model with its optimizer and loss, built as the train stage will (Keras's
registries are the option lists, so a layer argument or an optimizer Keras does not have is
refused); the scans folder's listing and labels file as predict-scans reads them; and the model
scans.model_uri names. `make exp` checks its overrides this way before DVC starts (DVC removes
a stage's outputs before running it, so a bad value found by the stage itself would cost them).
--exp-run passes each override to DVC whole, so a value may hold spaces.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from digitpipe import checks
from digitpipe.config import one_line_hydra_error, validate
from digitpipe.errors import UserError, cli
from digitpipe.paths import Paths


def write(paths: Paths, overrides: list[str], check_only: bool = False) -> None:
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import HydraException

    for override in overrides:
        if override.startswith("hparams_search="):
            raise UserError(
                f"{override}: a search runs many trainings, and params.yaml holds one: run it "
                f"with python -m digitpipe.commands.sweep {override}"
            )
    target = paths.params_file
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        draft = Path(tmp) / target.name
        try:
            compose_and_dump(draft, str(paths.conf_dir), None, "config", "", overrides)
        except HydraException as exc:
            raise UserError(f"config: {one_line_hydra_error(exc, paths.conf_dir)}") from None
        cfg = validate(OmegaConf.load(draft))  # before anything replaces the real file
        checks.builds(cfg)
        checks.scans(cfg, paths)
        if not check_only:
            draft.replace(target)


def dvc_exp_run(overrides: list[str]) -> None:
    """Become `dvc exp run -S <override> ...` (the environment's dvc), each override whole."""
    dvc = Path(sys.executable).with_name("dvc")
    command = [str(dvc) if dvc.is_file() else "dvc", "exp", "run"]
    command += [arg for override in overrides for arg in ("-S", override)]
    print(shlex.join(command), flush=True)
    os.execvp(command[0], command)


@cli
def main() -> None:
    args = sys.argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return
    mode = args[0] if args and args[0] in ("--check", "--exp-run") else None
    overrides = args[1:] if mode else args
    paths = Paths.here()
    write(paths, overrides, check_only=mode is not None)
    print(f"wrote {paths.params_file}" if mode is None else "config is valid")
    if mode == "--exp-run":
        dvc_exp_run(overrides)


if __name__ == "__main__":
    main()
