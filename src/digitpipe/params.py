"""Write params.yaml = conf/ composed, with DVC's own composition (the same as `dvc exp run`).

python -m digitpipe.params [override ...]      e.g. model=seed_lab_cnn train.epochs=3
"""

from __future__ import annotations

import sys

from digitpipe.config import load_params, one_line_hydra_error
from digitpipe.errors import UserError, cli
from digitpipe.paths import Paths


def write(paths: Paths, overrides: list[str]) -> None:
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import HydraException

    try:
        compose_and_dump(paths.params_file, str(paths.conf_dir), None, "config", "", overrides)
    except HydraException as exc:
        raise UserError(f"config: {one_line_hydra_error(exc)}") from None
    load_params(paths.params_file)  # validate what was written


@cli
def main() -> None:
    paths = Paths.here()
    write(paths, sys.argv[1:])
    print(f"wrote {paths.params_file}")


if __name__ == "__main__":
    main()
