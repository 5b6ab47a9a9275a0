"""Print the configured experiment's id in the project's store (for `make ui`'s deep link)."""

from __future__ import annotations

from digitpipe import tracking
from digitpipe.config import load_params
from digitpipe.errors import cli
from digitpipe.paths import Paths


@cli
def main() -> None:
    paths = Paths.here()
    print(tracking.configure(load_params(paths.params_file), paths))


if __name__ == "__main__":
    main()
