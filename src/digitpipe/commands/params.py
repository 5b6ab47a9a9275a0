"""Write params.yaml = conf/ composed, with DVC's own composition (the same as `dvc exp run`).

    python -m digitpipe.commands.params [override ...]   e.g. model=seed_lab_cnn train.epochs=3

The composed config is validated first and replaces params.yaml atomically: a rejected override
leaves the previous params.yaml as it was.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from digitpipe.config import load_params, one_line_hydra_error
from digitpipe.errors import UserError, cli
from digitpipe.paths import Paths


def write(paths: Paths, overrides: list[str]) -> None:
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import HydraException

    target = paths.params_file
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        draft = Path(tmp) / target.name
        try:
            compose_and_dump(draft, str(paths.conf_dir), None, "config", "", overrides)
        except HydraException as exc:
            raise UserError(f"config: {one_line_hydra_error(exc)}") from None
        load_params(draft)  # validate before anything replaces the real file
        draft.replace(target)


@cli
def main() -> None:
    paths = Paths.here()
    write(paths, sys.argv[1:])
    print(f"wrote {paths.params_file}")


if __name__ == "__main__":
    main()
