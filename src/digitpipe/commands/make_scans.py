"""Regenerate the committed sample scans (real UCI handwriting rendered as scans).

python -m digitpipe.commands.make_scans --out data/scans --per-digit 3     (make scans)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from digitpipe.errors import cli
from digitpipe.scans.synthetic import make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/scans"))
    parser.add_argument("--per-digit", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    labels = make(args.out, args.per_digit, args.seed)
    kept = labels.attrs["kept"]
    others = f" (kept the rows of {kept} other picture{'s' if kept != 1 else ''})" if kept else ""
    print(f"wrote {len(labels)} scans and labels.csv to {args.out}{others}")


if __name__ == "__main__":
    cli(main)()
